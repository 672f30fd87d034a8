#include "router/router_control.h"

namespace turnout::router {

Status StaleGeneration(uint64_t if_generation, uint64_t current) {
  return Aborted("the router is at generation " + std::to_string(current) + ", not " +
                 std::to_string(if_generation) +
                 ": another writer changed it; read the policy again and retry");
}

Result<std::vector<SlotWindowMetrics>> RouterControl::GetCumulativeMetrics() {
  return FailedPrecondition("this router does not report cumulative metrics");
}

Result<uint64_t> RouterControl::RetryWhileStale(
    const std::function<Result<uint64_t>(bool* stale)>& attempt) {
  for (int n = 1;; ++n) {
    bool stale = false;
    Result<uint64_t> written = attempt(&stale);
    if (written.ok() || !stale) return written;
    if (n == kPolicyUpdateAttempts) {
      return Aborted("the routing policy kept changing under " + std::to_string(n) +
                     " attempts to update it (other writers are busy); retry later");
    }
  }
}

Result<uint64_t> RouterControl::UpdatePolicy(const PolicyChange& change) {
  return RetryWhileStale([&](bool* stale) -> Result<uint64_t> {
    TURNOUT_ASSIGN_OR_RETURN(RouterStatus status, GetStatus());
    TURNOUT_ASSIGN_OR_RETURN(RoutingPolicy next, change(status.policy, status.generation));
    Result<uint64_t> written = SetPolicyIf(next, status.generation);
    *stale = !written.ok() && written.status().code() == StatusCode::kAborted;
    return written;
  });
}

Result<uint64_t> RouterControl::Switch(const std::string& slot) {
  return UpdatePolicy([&](const RoutingPolicy& current, uint64_t) -> Result<RoutingPolicy> {
    RoutingPolicy next = current;
    next.active = slot;
    next.canary.reset();
    return next;
  });
}

Result<uint64_t> RouterControl::SetCanaryWeight(const std::string& slot, uint32_t weight_bp) {
  return UpdatePolicy([&](const RoutingPolicy& current, uint64_t) -> Result<RoutingPolicy> {
    RoutingPolicy next = current;
    next.canary = CanaryPolicy{.slot = slot, .weight_bp = weight_bp, .seed = 0};
    FillCanarySeed(current, &next);
    return next;
  });
}

Result<uint64_t> RouterControl::SetMaintenance(const MaintenancePolicy& m) {
  return UpdatePolicy([&](const RoutingPolicy& current, uint64_t) -> Result<RoutingPolicy> {
    RoutingPolicy next = current;
    if (m.enabled) {
      next.maintenance = m;
    } else {
      next.maintenance.enabled = false;
    }
    return next;
  });
}

}  // namespace turnout::router
