// Human-readable renderings of router state for the `turnout router ...` commands.
//
// Thread-safety: pure functions.

#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "router/policy.h"
#include "router/router_control.h"

namespace turnout::cli {

// Basis points as a percentage without trailing zeros: 2500 -> "25", 1250 -> "12.5", 1 -> "0.01".
std::string FormatPercent(uint32_t basis_points);

// The share of new requests the policy sends to `slot`, in basis points (override header aside).
uint32_t TrafficShare(const router::RoutingPolicy& policy, const std::string& slot);

// "active blue 75 %, canary green 25 % (sticky by cookie turnout_sticky)".
std::string DescribePolicy(const router::RoutingPolicy& policy);

// A header line and a table of slots: traffic, in flight, tunnels, state, instances.
std::string FormatStatus(const router::RouterStatus& status);

// A table of per-slot request counts, error rate and latency percentiles.
std::string FormatMetrics(std::chrono::seconds window,
                          const std::vector<router::SlotWindowMetrics>& slots);

// "drained", or "draining: 3 requests in flight, 1 tunnel".
std::string DescribeDrain(const router::SlotStatus& slot);

}  // namespace turnout::cli
