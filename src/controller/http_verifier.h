// HttpVerifier: the mechanism behind the controller's Verifier (verify.h), which turnoutd wires
// into the engine. A performance check's requests go to the router's public listener over the
// one outbound HTTP client (HttpProbe, on httpc): `concurrency` threads, each sending one request
// at a time on a fresh connection, taking the next request of the mix until all are sent or the
// timeout passed. Each request's latency is real time from its start to its last byte,
// connection included (loopback: a fraction of a millisecond). A request the check's timeout
// cuts off is neither counted nor an error: the result says it timed out.
//
// Why threads over httpc and not an event loop: httpc runs calls in parallel (one libcurl handle
// per call, thread-safe), the concurrency is bounded (at most 64), and so no second HTTP client
// is needed.
//
// Thread-safety: stateless; calls may run in parallel.
// Errors: InvalidArgument for an address without a port (nothing is sent).

#pragma once

#include "controller/verify.h"

namespace turnout::controller {

class HttpVerifier final : public Verifier {
 public:
  Result<PerformanceResult> MeasurePerformance(const PerformanceRequest& request) override;
};

}  // namespace turnout::controller
