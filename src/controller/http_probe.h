// A small blocking HTTP/1.1 client for the controller's readiness probes and smoke checks.
//
// One request per call on a fresh loopback TCP connection (`Connection: close`); the response
// head is parsed with http::ParseResponseHead, the body is read up to `max_body_bytes` (Content-
// Length or until close). Every wait is bounded by `timeout` in real time (poll), because it
// waits on a real socket; it is not meant for ManualClock.
//
// Thread-safety: stateless; calls may run in parallel.
// Errors: Unavailable when the connection is refused or reset, DeadlineExceeded when the timeout
// passes, InvalidArgument for a malformed address; a malformed response is Unavailable too (the
// peer's fault, like a refused connection).

#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::controller {

struct ProbeRequest {
  std::string address;         // "127.0.0.1:8080" (IPv4 literal and port)
  std::string method = "GET";  // Default: GET
  std::string path = "/";      // Default: /
  // Extra request headers (a Host header here replaces the default one).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;                         // sent with its Content-Length. Default: empty
  std::chrono::milliseconds timeout{1000};  // whole exchange. Default: 1 s
  size_t max_body_bytes = 64 * 1024;        // Default: 64 KiB (the rest is ignored)
};

struct ProbeResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // at most max_body_bytes
  // The first value of a header (case-insensitive name), or "".
  std::string Header(std::string_view name) const;
};

Result<ProbeResponse> HttpProbe(const ProbeRequest& request);

}  // namespace turnout::controller
