// HttpProbe: the mechanism behind the controller's Prober (prober.h) for readiness probes and
// smoke checks, and turnoutd's own instance checks, over turnout's one outbound HTTP client
// (httpc, libcurl).
//
// One request per call on a fresh connection; a 2xx body is read up to `max_body_bytes` and the
// rest left unread. Every wait is bounded by `timeout` in real time, because it waits on a real
// socket; it is not meant for ManualClock.
//
// Thread-safety: stateless; calls may run in parallel.
// Errors: Unavailable when the connection is refused or reset or the response is malformed (the
// peer's fault, like a refused connection), DeadlineExceeded when the timeout passes,
// InvalidArgument for an address without a port.

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
