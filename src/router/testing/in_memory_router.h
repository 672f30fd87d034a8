// InMemoryRouter: a RouterControl that keeps its state in memory and validates like a router
// does (ValidatePolicy against its slots), for tests and fuzz targets of the admin API that need
// no data plane. Its metrics are fixed: one window for blue with 5 requests (4 2xx, 1 5xx, one
// upstream timeout) and a latency histogram of 1, 2, 3, 4 and 50 ms.
//
// Thread-safety: every method may be called from any thread.

#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "metrics/metrics.h"
#include "router/config.h"
#include "router/policy.h"
#include "router/router_control.h"

namespace turnout::router::testing {

class InMemoryRouter : public RouterControl {
 public:
  InMemoryRouter() { Reset(); }

  // Back to the state of a new object: slots blue (127.0.0.1:9001, 127.0.0.1:9003) and green
  // (127.0.0.1:9002), blue active, generation 1.
  void Reset() {
    std::lock_guard<std::mutex> lock(mu_);
    slots_ = {{"blue", {"127.0.0.1:9001", "127.0.0.1:9003"}}, {"green", {"127.0.0.1:9002"}}};
    policy_ = RoutingPolicy{};
    policy_.active = "blue";
    generation_ = 1;
    latency_ = metrics::Histogram::Counts{};
    metrics::Histogram h;
    for (int ms : {1, 2, 3, 4, 50}) h.Record(std::chrono::milliseconds(ms));
    h.AddTo(&latency_);
    last_window_ = std::chrono::seconds(0);
  }

  Result<RouterStatus> GetStatus() override {
    std::lock_guard<std::mutex> lock(mu_);
    RouterStatus s;
    s.policy = policy_;
    s.generation = generation_;
    s.listen = {"127.0.0.1:8080"};
    s.admin = "127.0.0.1:9901";
    for (const auto& slot : slots_) s.slots.push_back(SlotLocked(slot.name));
    return s;
  }
  Result<RoutingPolicy> GetPolicy() override {
    std::lock_guard<std::mutex> lock(mu_);
    return policy_;
  }
  Result<uint64_t> SetPolicy(const RoutingPolicy& policy) override {
    std::lock_guard<std::mutex> lock(mu_);
    TURNOUT_RETURN_IF_ERROR(ValidatePolicy(policy, NamesLocked()));
    policy_ = policy;
    return ++generation_;
  }
  Result<uint64_t> SetPolicyIf(const RoutingPolicy& policy, uint64_t if_generation) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation_ != if_generation) return StaleGeneration(if_generation, generation_);
    TURNOUT_RETURN_IF_ERROR(ValidatePolicy(policy, NamesLocked()));
    policy_ = policy;
    return ++generation_;
  }
  Result<uint64_t> SetSlotInstances(const std::string& slot,
                                    const std::vector<std::string>& instances) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : slots_) {
      if (s.name == slot) {
        s.instances = instances;
        return ++generation_;
      }
    }
    return NotFound("no slot named '" + slot + "'");
  }
  Result<SlotStatus> GetSlotStatus(const std::string& slot) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : slots_) {
      if (s.name == slot) return SlotLocked(slot);
    }
    return NotFound("no slot named '" + slot + "'");
  }
  Result<std::vector<SlotWindowMetrics>> GetWindowMetrics(std::chrono::seconds window) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<SlotWindowMetrics> out;
    SlotWindowMetrics m;
    m.slot = "blue";
    m.window.window = window;
    m.window.counters.requests = 5;
    m.window.counters.by_class[2] = 4;
    m.window.counters.by_class[5] = 1;
    m.window.counters.router_errors[static_cast<size_t>(metrics::RouterError::kUpstreamTimeout)] =
        1;
    m.window.counters.bytes_in = 100;
    m.window.counters.bytes_out = 2000;
    m.window.total_latency = latency_;
    m.window.upstream_latency = latency_;
    out.push_back(m);
    last_window_ = window;
    return out;
  }

  uint64_t generation() {
    std::lock_guard<std::mutex> lock(mu_);
    return generation_;
  }
  RoutingPolicy policy() {
    std::lock_guard<std::mutex> lock(mu_);
    return policy_;
  }
  std::vector<std::string> instances(const std::string& slot) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& s : slots_) {
      if (s.name == slot) return s.instances;
    }
    return {};
  }
  // Health as a test says: `address` is reported healthy (true) or ejected (false), instead of
  // the fixed rule (ejected when it ends in "3"), which UseFixedEjection(false) turns off for
  // every address.
  void SetHealthy(const std::string& address, bool healthy) {
    std::lock_guard<std::mutex> lock(mu_);
    health_[address] = healthy;
  }
  void UseFixedEjection(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    fixed_ejection_ = on;
  }
  // The window of the last GetWindowMetrics call (0 before any).
  std::chrono::seconds last_window() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_window_;
  }

 private:
  std::vector<std::string> NamesLocked() const {
    std::vector<std::string> names;
    for (const auto& s : slots_) names.push_back(s.name);
    return names;
  }
  SlotStatus SlotLocked(const std::string& name) const {
    SlotStatus st;
    st.name = name;
    for (const auto& s : slots_) {
      if (s.name != name) continue;
      for (const auto& i : s.instances) {
        bool healthy = true, ejected = fixed_ejection_ && i.ends_with("3");
        if (auto h = health_.find(i); h != health_.end()) healthy = h->second, ejected = !h->second;
        st.instances.push_back({i, healthy, ejected, 2});
      }
    }
    // In maintenance the router answers every request itself: no slot receives traffic.
    st.receives_traffic =
        !policy_.maintenance.enabled &&
        (policy_.active == name ||
         (policy_.canary && policy_.canary->slot == name && policy_.canary->weight_bp > 0));
    st.in_flight = st.receives_traffic ? 3 : 0;
    st.tunnels = 1;
    st.drained = !st.receives_traffic;
    return st;
  }

  std::mutex mu_;
  std::vector<SlotConfig> slots_;
  RoutingPolicy policy_;
  uint64_t generation_ = 1;
  metrics::Histogram::Counts latency_;
  std::chrono::seconds last_window_{0};
  std::map<std::string, bool> health_;
  bool fixed_ejection_ = true;
};

}  // namespace turnout::router::testing
