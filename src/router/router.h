// Router: the in-process data plane of turnout, an HTTP/1.1 reverse proxy that switches traffic
// between slots (blue/green/canary) without dropping a request.
//
// Threads: `config.workers` worker threads (0 = one per core), each with its own io_context and
// its own SO_REUSEPORT acceptor per listen address; a client connection lives on one worker.
// Routing reads an immutable snapshot (RoutingTable) that the control methods replace; a worker
// notices a new snapshot with one atomic load per request, so the request path takes no lock.
//
// Per request: the slot comes from the override header when the request also carries the right
// `X-Turnout-Secret`, else from the canary's sticky bucket, else the active slot; the instance is
// chosen round-robin among the slot's routable instances. Bodies are streamed in bounded buffers
// both ways; upstream connections are pooled per worker and per instance.
//
// Router-generated responses carry `X-Turnout-Error: <reason>` (metrics::RouterErrorName) and a
// short text body:
//   400 malformed request, or the override header names an unknown slot (a typo in a smoke test
//       must not silently hit production);
//   408 head not received within timeouts.head; 414 / 431 limits;
//   502 connect failed, or the upstream closed before a complete response head, or sent an
//       invalid one (an idempotent request with a buffered body and no response byte out is
//       retried first, on another instance when there is one: docs/router.md "Retries");
//   503 no routable instance in the chosen slot; 504 no response head within
//       timeouts.upstream_response.
// An upstream that breaks mid-body makes the router reset the client connection (never a clean
// end). A response framed by the upstream's close is relayed and the client connection closed
// after it.
//
// Override secret: an override header is never honoured without the secret. A secret in the
// config wins over a persisted one; a policy given without one (config, SetPolicy) keeps the
// current secret; with none at all, Create() takes the
// one in the secret file (RouterConfig::override_secret_file, else `<state_file>.override-secret`)
// or generates one (128 bits, CSPRNG). Start() and SetPolicy() write it there (mode 0600); it is
// never logged, and GetPolicy() of this in-process router is the other way to read it (the
// admin API shows only `secret_set`). Without the secret, the header is ignored, or answered 400
// with `on_bad_secret: reject`.
//
// Descriptors (fd_budget.h): Create() raises the process's soft RLIMIT_NOFILE to the hard limit
// and derives the client connection limit from it, keeping descriptors for the admin API, health
// checks and pooled upstream connections (limits.max_connections only lowers it). A connection
// over the limit is accepted and reset at once; when accept() itself fails for want of
// descriptors, a spare descriptor is freed to accept and reset the waiting connections, so the
// listener never stalls. Both count as connection_limit on the active slot and in
// turnout_client_connections_refused_total, with a warning on stderr at most once per second.
//
// Thread-safety: every public method may be called from any thread; the RouterControl methods
// never block a worker. Start/Stop must not race with the destructor.

#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "router/config.h"
#include "router/fd_budget.h"
#include "router/router_control.h"

namespace turnout::router {

class Router final : public RouterControl {
 public:
  // Validates `config` (ValidateRouterConfig), resolves instance addresses, raises the soft
  // descriptor limit and plans the descriptor budget (FailedPrecondition when the limit leaves no
  // room for clients); does not bind anything yet. `clock` must outlive the router.
  static Result<std::unique_ptr<Router>> Create(RouterConfig config,
                                                Clock& clock = SystemClock::Get());
  ~Router() override;  // Stop()s if running

  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Restores the persisted policy from config.state_file when present and valid (else keeps
  // config.policy and logs why to stderr), binds every listen address (port 0 resolved), starts
  // the worker threads and the health checker. Returns once the listeners accept. IoError when an
  // address cannot be bound; FailedPrecondition when called twice.
  Status Start();
  // Stops accepting, closes client and upstream connections, joins all threads. Idempotent.
  void Stop();
  // "127.0.0.1:41234" per listen address, after Start().
  std::vector<std::string> ListenAddresses() const;
  // Prometheus text (format 0.0.4) for every slot ({slot}) and instance ({slot, instance}), and
  // the router's connection and descriptor gauges.
  std::string PrometheusText() const;
  // The access log (config.access_log): reopen its file after an external rotation (what
  // `turnout router` does on SIGHUP); write out what the workers have logged so far. No-ops
  // without an access log.
  void ReopenAccessLog();
  bool FlushAccessLog();  // false when the writer did not take the lines within 2 s
  // The descriptor budget decided by Create() (DescribeFdBudget prints it).
  FdBudget fd_budget() const;

  Result<RouterStatus> GetStatus() override;
  Result<RoutingPolicy> GetPolicy() override;
  // Validates, fills a missing canary seed (FillCanarySeed), persists to state_file when set
  // (refusing the change when that fails), then publishes. On return every new request uses it.
  Result<uint64_t> SetPolicy(const RoutingPolicy& policy) override;
  // As SetPolicy, under the same lock as the generation check.
  Result<uint64_t> SetPolicyIf(const RoutingPolicy& policy, uint64_t if_generation) override;
  // Calls `change` once, under the router's lock: no other write can fall in between.
  Result<uint64_t> UpdatePolicy(const PolicyChange& change) override;
  // NotFound for an unknown slot; InvalidArgument for an address that does not parse/resolve.
  Result<uint64_t> SetSlotInstances(const std::string& slot,
                                    const std::vector<std::string>& instances) override;
  Result<SlotStatus> GetSlotStatus(const std::string& slot) override;
  Result<std::vector<SlotWindowMetrics>> GetWindowMetrics(std::chrono::seconds window) override;
  Result<std::vector<SlotWindowMetrics>> GetCumulativeMetrics() override;

 private:
  struct Impl;
  explicit Router(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace turnout::router
