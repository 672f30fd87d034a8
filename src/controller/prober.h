// Prober: how the engine asks an instance (or the router) one HTTP question: readiness and
// liveness probes, HTTP smoke checks. A role, so that the engine does no I/O of its own: turnoutd
// wires HttpProber (http_probe.h: a real TCP exchange), the engine's state-machine tests a fake
// that answers per address and path as the test says (controller/testing/fake_prober.h).
//
// Errors of Probe: Unavailable when nothing answered (refused, reset, malformed answer),
// DeadlineExceeded when the timeout passed, InvalidArgument for a malformed address (the engine
// treats that one as its own error, the others as "not ready").

#pragma once

#include <chrono>
#include <string>
#include <string_view>
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

// The role. Implementations say whether they are thread-safe.
class Prober {
 public:
  virtual ~Prober() = default;
  // One request, one answer, bounded by request.timeout.
  virtual Result<ProbeResponse> Probe(const ProbeRequest& request) = 0;
};

}  // namespace turnout::controller
