// HttpProbe: a small blocking HTTP/1.1 client, the mechanism behind the controller's Prober
// (prober.h) for readiness probes and smoke checks, and turnoutd's own instance checks.
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
#include "controller/prober.h"

namespace turnout::controller {

Result<ProbeResponse> HttpProbe(const ProbeRequest& request);

// The Prober turnoutd wires into the engine: HttpProbe. Thread-safe (stateless).
class HttpProber final : public Prober {
 public:
  Result<ProbeResponse> Probe(const ProbeRequest& request) override { return HttpProbe(request); }
};

}  // namespace turnout::controller
