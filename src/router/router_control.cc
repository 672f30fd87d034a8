#include "router/router_control.h"

namespace turnout::router {

// Both helpers read the policy and write it back; two concurrent writers may therefore overwrite
// each other's change. Callers that need serialisation (the controller) already hold a lease.
Result<std::vector<SlotWindowMetrics>> RouterControl::GetCumulativeMetrics() {
  return FailedPrecondition("this router does not report cumulative metrics");
}

Result<uint64_t> RouterControl::Switch(const std::string& slot) {
  TURNOUT_ASSIGN_OR_RETURN(RoutingPolicy policy, GetPolicy());
  policy.active = slot;
  policy.canary.reset();
  return SetPolicy(policy);
}

Result<uint64_t> RouterControl::SetCanaryWeight(const std::string& slot, uint32_t weight_bp) {
  TURNOUT_ASSIGN_OR_RETURN(RoutingPolicy current, GetPolicy());
  RoutingPolicy next = current;
  next.canary = CanaryPolicy{.slot = slot, .weight_bp = weight_bp, .seed = 0};
  FillCanarySeed(current, &next);
  return SetPolicy(next);
}

}  // namespace turnout::router
