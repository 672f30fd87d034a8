// A small blocking HTTP(S) client for turnout's outbound control-plane calls: Prometheus queries,
// dependency checks, webhooks, container engines (Docker Engine API over a Unix socket). Built on
// libcurl; one easy handle per call, nothing shared between calls.
//
// What it does and does not do:
//   - http:// and https:// only (other schemes are refused before anything is sent); TLS peers
//     are verified against the system's CA store.
//   - Unix stream sockets: set `Request::unix_socket` to the socket's path and keep an http://
//     URL; the URL then only gives the path, the query and the Host header (by convention
//     "http://localhost/..."). Nothing is resolved and no TCP connection is made.
//   - Streaming: with `Request::on_body` set, the body of a 2xx response is handed to it piece by
//     piece as it arrives (for logs and event streams) instead of being kept; the callback ends
//     the transfer by returning false, and `Request::cancel` ends it from another thread even
//     while no byte arrives. Either way Fetch returns the Response with `stopped` true.
//   - Redirects are not followed: a 3xx is returned as the response it is.
//   - No proxy from the environment is used unless libcurl's usual variables are set
//     (http_proxy, https_proxy, no_proxy): that is libcurl's behaviour and operators expect it.
//   - The response body is kept in memory, at most `max_response_bytes`.
//
// Thread-safety: Fetch may be called from any number of threads at once (libcurl's global init
// runs exactly once, signals are never used for timeouts).
//
// Errors (an HTTP status, even 5xx, is NOT an error: it is a Response):
//   InvalidArgument   a URL that does not parse or has another scheme, an empty method, a Unix
//                     socket path longer than the system allows (107 bytes)
//   Unavailable       DNS failure, connection refused or reset (also: no such Unix socket or
//                     nothing listening on it; the message names the socket), TLS failure, the
//                     peer closed before a complete response
//   DeadlineExceeded  `connect_timeout` or `timeout` passed
//   IoError           the response body exceeds `max_response_bytes`; other local failures

#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::httpc {

using Millis = std::chrono::milliseconds;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Receives a 2xx response's body as it arrives, in pieces of any size (an empty piece never).
// Return false to stop the transfer. Runs on the calling thread of Fetch.
using BodyCallback = std::function<bool(std::string_view piece)>;

struct Request {
  std::string method = "GET";  // Default: GET
  std::string url;             // http:// or https://; required
  HeaderList headers;          // sent as given (Host and Content-Length are set by the client)
  std::string body;            // sent when non-empty (or for POST/PUT/PATCH). Default: none
  // The whole exchange, connect included; Millis(0) = no limit (for streams that `on_body` or
  // `cancel` end). Default: 10 s
  Millis timeout{10000};
  Millis connect_timeout{3000};  // TCP (+TLS) or Unix socket connect. Default: 3 s
  // The body of a response kept in memory (a non-2xx one too when streaming). Default: 8 MiB
  size_t max_response_bytes = 8 * 1024 * 1024;
  // Connect to this Unix stream socket instead of the URL's host. Default: "" (TCP)
  std::string unix_socket;
  // Streaming (see the file comment). A non-2xx response's body is still kept in `body`, so that
  // the caller can read the error. Default: none (the body is kept)
  BodyCallback on_body;
  // When set, the transfer stops (within about a second) once it holds true. Must outlive Fetch.
  // Default: none
  const std::atomic<bool>* cancel = nullptr;
};

struct Response {
  int status = 0;
  HeaderList headers;  // of the final response, in order, names as received
  std::string body;    // empty for a 2xx response given to `on_body`
  Millis duration{0};  // from the start of the call to the last byte
  // The transfer was ended early by `on_body` returning false or by `cancel` (`status` is 0 when
  // that happened before a response head arrived).
  bool stopped = false;

  // The first value of a header (ASCII case-insensitive name), "" when absent.
  std::string Header(std::string_view name) const;
};

// Performs one request. See the file comment for errors.
Result<Response> Fetch(const Request& request);

// Percent-encodes `text` for a URL query or an application/x-www-form-urlencoded body
// (unreserved characters stay, everything else is %XX).
std::string UrlEncode(std::string_view text);

// True for status codes worth retrying: 5xx and 429.
inline bool IsRetryableStatus(int status) { return status == 429 || status >= 500; }

}  // namespace turnout::httpc
