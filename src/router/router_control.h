// RouterControl: how anything outside the data plane drives a router.
//
// Two implementations: router::Router (in process; the controller embeds it) and
// router::AdminClient (HTTP to the admin API of a standalone `turnout router`). The controller
// depends on this interface only, never on how the router is run.
//
// Contract of SetPolicy: when it returns OK, every request that starts afterwards is routed by
// the new policy; requests in flight finish where they started; no client connection is closed;
// pooled upstream connections to slots that lost traffic are not reused and are closed once idle.
// A policy that does not validate is refused and the old one keeps serving.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "metrics/metrics.h"
#include "router/policy.h"

namespace turnout::router {

struct InstanceStatus {
  std::string address;   // "127.0.0.1:9001"
  bool healthy = true;   // by active checks (true when checks are disabled)
  bool ejected = false;  // passively ejected after connect failures
  int64_t in_flight = 0;
};

struct SlotStatus {
  std::string name;
  std::vector<InstanceStatus> instances;
  bool receives_traffic = false;  // active, or canary with weight > 0
  int64_t in_flight = 0;          // HTTP requests in flight (tunnels excluded)
  int64_t tunnels = 0;            // open upgraded tunnels (WebSocket...)
  // No traffic routed here by policy and no requests in flight. Tunnels are reported apart:
  // they are closed by the router `tunnel_drain` after the slot lost traffic.
  bool drained = false;
};

struct RouterStatus {
  RoutingPolicy policy;
  uint64_t generation = 0;  // increases with every accepted policy or instance change
  std::vector<SlotStatus> slots;
  std::vector<std::string> listen;  // actual bound addresses (port 0 resolved)
  std::string admin;                // actual admin address, empty when disabled
};

// A failed request (5xx, or aborted by the upstream) that carried a trace id: evidence a
// rollback can point at. The router keeps the last kRecentFailuresKept per slot.
struct FailedRequest {
  int64_t unix_ms = 0;     // wall-clock start
  int status = 0;          // 0: aborted
  std::string error;       // metrics::RouterErrorName when the router answered, else ""
  std::string trace_id;    // 32 hex digits (W3C trace context)
  std::string request_id;  // empty when the router adds none
  std::string instance;
};
inline constexpr size_t kRecentFailuresKept = 16;

struct SlotWindowMetrics {
  std::string slot;
  metrics::WindowSnapshot window;
  // The slot's last failed requests with a trace id, oldest first (whatever the window).
  std::vector<FailedRequest> recent_failures;
};

// The Aborted status of a compare-and-set whose generation is stale.
Status StaleGeneration(uint64_t if_generation, uint64_t current);

class RouterControl {
 public:
  virtual ~RouterControl() = default;

  virtual Result<RouterStatus> GetStatus() = 0;
  virtual Result<RoutingPolicy> GetPolicy() = 0;
  // Returns the new generation.
  virtual Result<uint64_t> SetPolicy(const RoutingPolicy& policy) = 0;
  // Replaces a slot's instances (new instances start unhealthy until checked when checks are on).
  virtual Result<uint64_t> SetSlotInstances(const std::string& slot,
                                            const std::vector<std::string>& instances) = 0;
  virtual Result<SlotStatus> GetSlotStatus(const std::string& slot) = 0;
  // Per-slot metrics over the last `window`.
  virtual Result<std::vector<SlotWindowMetrics>> GetWindowMetrics(std::chrono::seconds window) = 0;
  // Per-slot totals since the router started (`window` is 0 in each snapshot). Subtracting two
  // of them gives the exact counts of a period of any length (a canary step longer than the
  // sliding window). The default refuses (FailedPrecondition) for routers that cannot.
  virtual Result<std::vector<SlotWindowMetrics>> GetCumulativeMetrics();

  // Compare-and-set: replaces the policy only while the router's generation is still
  // `if_generation` (as read from GetStatus). Aborted when it moved: another writer changed the
  // policy or the instances in between; re-read and decide again. Otherwise as SetPolicy.
  virtual Result<uint64_t> SetPolicyIf(const RoutingPolicy& policy, uint64_t if_generation) = 0;

  // A change to the policy: given the current policy and its generation, the next policy, or an
  // error that cancels the change (returned as is by UpdatePolicy). It may be called more than
  // once (after a lost race), so it must not have side effects.
  using PolicyChange =
      std::function<Result<RoutingPolicy>(const RoutingPolicy& current, uint64_t generation)>;
  // How many times UpdatePolicy tries before it gives up with Aborted.
  static constexpr int kPolicyUpdateAttempts = 8;

  // Applies `change` atomically: the policy it returns replaces exactly the policy it was given,
  // so no other writer's change is lost. The default reads GetStatus, then SetPolicyIf with the
  // generation it read, and retries on Aborted, at most kPolicyUpdateAttempts times; after that
  // it returns Aborted ("... retry later"). Router applies the change under its own lock, once.
  // AdminClient: the policy given to `change` has an empty override secret (the admin API never
  // shows it); an empty secret in the result keeps the router's secret.
  virtual Result<uint64_t> UpdatePolicy(const PolicyChange& change);

  // Atomic (UpdatePolicy): active = slot, canary cleared; other fields unchanged. AdminClient
  // sends it as one request (POST /v1/switch) that the router applies atomically.
  virtual Result<uint64_t> Switch(const std::string& slot);
  // Atomic (UpdatePolicy): canary = slot with weight (basis points); other fields unchanged.
  // Keeps the canary's seed when the slot is already the canary, else picks a new one (see
  // FillCanarySeed). AdminClient: one request (POST /v1/weight).
  virtual Result<uint64_t> SetCanaryWeight(const std::string& slot, uint32_t weight_bp);
  // Atomic (UpdatePolicy): maintenance = `m` when m.enabled, else only maintenance.enabled
  // cleared (the page stays for next time); other fields unchanged.
  Result<uint64_t> SetMaintenance(const MaintenancePolicy& m);

 protected:
  // Runs `attempt` until it succeeds, fails for another reason than a stale generation (the
  // attempt sets *stale when its compare-and-set lost the race), or kPolicyUpdateAttempts ran.
  static Result<uint64_t> RetryWhileStale(
      const std::function<Result<uint64_t>(bool* stale)>& attempt);
};

}  // namespace turnout::router
