#include "cli/router_output.h"

#include <algorithm>
#include <cstdio>

#include "cli/table.h"

namespace turnout::cli {
namespace {

std::string Plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string Ms(double us) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), us < 10'000 ? "%.2f" : "%.0f", us / 1000.0);
  return buf;
}

}  // namespace

std::string FormatPercent(uint32_t bp) {
  std::string out = std::to_string(bp / 100);
  uint32_t frac = bp % 100;
  if (frac != 0) {
    out += '.';
    out += static_cast<char>('0' + frac / 10);
    if (frac % 10 != 0) out += static_cast<char>('0' + frac % 10);
  }
  return out;
}

uint32_t TrafficShare(const router::RoutingPolicy& policy, const std::string& slot) {
  const uint32_t canary = policy.canary ? policy.canary->weight_bp : 0;
  if (slot == policy.active) return 10000 - canary;
  if (policy.canary && policy.canary->slot == slot) return canary;
  return 0;
}

std::string DescribePolicy(const router::RoutingPolicy& p) {
  std::string out = "active " + p.active + " " + FormatPercent(TrafficShare(p, p.active)) + " %";
  if (p.canary) {
    out += ", canary " + p.canary->slot + " " + FormatPercent(p.canary->weight_bp) + " %";
    out += std::string(" (sticky by ") +
           (p.sticky.source == router::StickinessPolicy::Source::kCookie ? "cookie " : "header ") +
           p.sticky.name + ")";
  }
  return out;
}

std::string FormatStatus(const router::RouterStatus& s) {
  std::string out = "policy: " + DescribePolicy(s.policy) + "\n";
  out += "generation " + std::to_string(s.generation);
  if (!s.listen.empty()) {
    out += ", listening on ";
    for (size_t i = 0; i < s.listen.size(); ++i) out += (i ? ", " : "") + s.listen[i];
  }
  out += "\n\n";
  std::vector<std::vector<std::string>> rows = {
      {"SLOT", "TRAFFIC", "IN FLIGHT", "TUNNELS", "STATE", "INSTANCES"}};
  for (const auto& slot : s.slots) {
    std::string state = slot.receives_traffic ? "serving" : (slot.drained ? "drained" : "draining");
    std::string instances;
    for (const auto& i : slot.instances) {
      if (!instances.empty()) instances += ", ";
      instances += i.address + " (" +
                   std::string(i.ejected ? "ejected" : (i.healthy ? "healthy" : "unhealthy"));
      if (i.in_flight > 0) instances += ", " + std::to_string(i.in_flight) + " in flight";
      instances += ")";
    }
    if (instances.empty()) instances = "(none)";
    rows.push_back({slot.name, FormatPercent(TrafficShare(s.policy, slot.name)) + " %",
                    std::to_string(slot.in_flight), std::to_string(slot.tunnels), state,
                    instances});
  }
  return out + FormatTable(rows);
}

std::string FormatMetrics(std::chrono::seconds window,
                          const std::vector<router::SlotWindowMetrics>& slots) {
  std::string out = "last " + std::to_string(window.count()) + " s\n";
  std::vector<std::vector<std::string>> rows = {{"SLOT", "REQUESTS", "2xx", "3xx", "4xx", "5xx",
                                                 "ABORTED", "ERROR %", "P50 ms", "P95 ms", "P99 ms",
                                                 "MAX ms"}};
  for (const auto& s : slots) {
    const auto& c = s.window.counters;
    const auto& h = s.window.total_latency;
    char rate[32];
    std::snprintf(rate, sizeof(rate), "%.2f", c.ErrorRate() * 100.0);
    rows.push_back({s.slot, std::to_string(c.requests), std::to_string(c.by_class[2]),
                    std::to_string(c.by_class[3]), std::to_string(c.by_class[4]),
                    std::to_string(c.by_class[5]), std::to_string(c.by_class[0]), rate,
                    Ms(h.PercentileUs(50)), Ms(h.PercentileUs(95)), Ms(h.PercentileUs(99)),
                    Ms(static_cast<double>(h.max_us))});
  }
  return out + FormatTable(rows);
}

std::string DescribeDrain(const router::SlotStatus& slot) {
  if (slot.drained) {
    return slot.tunnels > 0 ? "drained (" + Plural(slot.tunnels, "tunnel", "tunnels") +
                                  " still open; closed after timeouts.tunnel_drain)"
                            : "drained";
  }
  return "draining: " + Plural(slot.in_flight, "request", "requests") + " in flight, " +
         Plural(slot.tunnels, "tunnel", "tunnels");
}

}  // namespace turnout::cli
