// A small blocking HTTP(S) client for turnout's outbound calls: Prometheus queries, dependency
// checks, webhooks. Built on libcurl; one easy handle per call, nothing shared between calls.
//
// What it does and does not do:
//   - http:// and https:// only (other schemes are refused before anything is sent); TLS peers
//     are verified against the system's CA store.
//   - Redirects are not followed: a 3xx is returned as the response it is.
//   - No proxy from the environment is used unless libcurl's usual variables are set
//     (http_proxy, https_proxy, no_proxy): that is libcurl's behaviour and operators expect it.
//   - The response body is kept in memory, at most `max_response_bytes`.
//
// Thread-safety: Fetch may be called from any number of threads at once (libcurl's global init
// runs exactly once, signals are never used for timeouts).
//
// Errors (an HTTP status, even 5xx, is NOT an error: it is a Response):
//   InvalidArgument   a URL that does not parse or has another scheme, an empty method
//   Unavailable       DNS failure, connection refused or reset, TLS failure, the peer closed
//                     before a complete response
//   DeadlineExceeded  `connect_timeout` or `timeout` passed
//   IoError           the response body exceeds `max_response_bytes`; other local failures

#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::httpc {

using Millis = std::chrono::milliseconds;
using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";    // Default: GET
  std::string url;               // http:// or https://; required
  HeaderList headers;            // sent as given (Host and Content-Length are set by the client)
  std::string body;              // sent when non-empty (or for POST/PUT/PATCH). Default: none
  Millis timeout{10000};         // the whole exchange, connect included. Default: 10 s
  Millis connect_timeout{3000};  // TCP (+TLS) connect. Default: 3 s
  size_t max_response_bytes = 8 * 1024 * 1024;  // Default: 8 MiB
};

struct Response {
  int status = 0;
  HeaderList headers;  // of the final response, in order, names as received
  std::string body;
  Millis duration{0};  // from the start of the call to the last byte

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
