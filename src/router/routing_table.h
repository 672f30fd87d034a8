// RoutingTable: the immutable snapshot a router worker routes by, and the pure functions that
// pick a slot and an instance for one request.
//
// The control side (Router) builds a new table for every accepted policy or instance change and
// publishes it; workers keep a shared_ptr to the table they route by, so a table lives until the
// last request routed by it has finished. Everything reachable from a table is either immutable
// or an atomic written without locks (InstanceHealth, SlotMetrics shards, SlotRuntime counters).
//
// Thread-safety: a built table is read-only and may be shared by any number of threads.

#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "http/parser.h"
#include "metrics/metrics.h"
#include "router/access_log.h"
#include "router/health.h"
#include "router/policy.h"
#include "router/router_control.h"

namespace turnout::router {

// Per-slot state that outlives routing tables (a slot keeps it for the router's life).
struct SlotRuntime {
  std::string name;
  std::shared_ptr<metrics::SlotMetrics> metrics;
  std::atomic<int64_t> tunnels{0};  // open upgraded tunnels routed to this slot
  // steady_clock nanoseconds since epoch when the slot last stopped receiving traffic; 0 while it
  // receives traffic. Tunnels of the slot are closed `tunnel_drain` after this moment.
  std::atomic<int64_t> lost_traffic_ns{0};

  // Keeps `f` among the last kRecentFailuresKept failures (a failed request only: takes a lock
  // that only failures and the admin side take).
  void RecordFailure(FailedRequest f) {
    std::lock_guard<std::mutex> lock(failures_mu);
    if (failures.size() >= kRecentFailuresKept) failures.pop_front();
    failures.push_back(std::move(f));
  }
  std::vector<FailedRequest> RecentFailures() const {
    std::lock_guard<std::mutex> lock(failures_mu);
    return {failures.begin(), failures.end()};
  }
  mutable std::mutex failures_mu;
  std::deque<FailedRequest> failures;  // guarded by failures_mu
};

// One upstream instance. Immutable once built; kept across tables while the slot lists it, so
// `id` stays stable and keys the workers' connection pools.
struct InstanceEntry {
  uint64_t id = 0;
  std::string address;  // as configured: "127.0.0.1:9001"
  boost::asio::ip::tcp::endpoint endpoint;
  std::shared_ptr<InstanceHealth> health;
  std::shared_ptr<metrics::SlotMetrics> metrics;
};

struct SlotEntry {
  std::shared_ptr<SlotRuntime> runtime;
  std::vector<std::shared_ptr<const InstanceEntry>> instances;
  bool receives_traffic = false;  // active, or canary with weight > 0
};

struct RoutingTable {
  uint64_t generation = 0;
  RoutingPolicy policy;
  std::vector<SlotEntry> slots;  // same order as the router's configured slots
  int active = 0;                // index into slots
  int canary = -1;               // index of the canary slot when its weight > 0, else -1

  // Index of the slot with this name, -1 when unknown.
  int FindSlot(std::string_view name) const;
};

// True when `slot` gets traffic under `policy` (active, or canary with a weight above 0).
bool SlotReceivesTraffic(const RoutingPolicy& policy, std::string_view slot);

// Fills in receives_traffic, active and canary from table->policy. The policy must have been
// validated against the slots (an unknown active slot is our bug: asserts, then uses slot 0).
void IndexRoutingTable(RoutingTable* table);

// The name of the header carrying the override secret.
inline constexpr std::string_view kOverrideSecretHeader = "X-Turnout-Secret";

// The sticky key of a request (cookie or header per policy.sticky), empty when it has none.
std::string_view FindStickyKey(const StickinessPolicy& sticky, const http::MessageHeaders& headers);

struct SlotSelection {
  // Index into table.slots; -1: the override named an unknown slot, or `bad_secret`.
  int slot = -1;
  bool by_override = false;
  RouteReason reason = RouteReason::kNone;  // why `slot` (for the access log)
  // The override header came without the right secret and the policy rejects that (400).
  bool bad_secret = false;
  // A key was generated for a client without one, and the sticky source is a cookie: the
  // response must carry `Set-Cookie: <sticky.name>=<generated_key>`.
  bool set_cookie = false;
};

// Chooses the slot for a request: an override with the right secret wins (never one without:
// a policy with no secret honours no override); an override without it is ignored, or reported
// as `bad_secret` when the policy rejects it; else the canary when ChoosesCanary(canary, key);
// else the active slot.
// A client without a sticky key is given `generated_key` (only used when a canary has weight).
// Pure: no I/O, no allocation.
SlotSelection SelectSlot(const RoutingTable& table, const http::RequestHead& head,
                         std::string_view generated_key);

// Round-robin over the Routable instances of `slot`, starting after *cursor (per worker, updated).
// Prefers an instance other than `exclude` (the one that just failed, for a retry) and falls back
// to `exclude` itself when it is the only routable one. Returns nullptr when none is routable.
const InstanceEntry* PickInstance(const SlotEntry& slot, Clock::TimePoint now, uint32_t* cursor,
                                  const InstanceEntry* exclude = nullptr);

}  // namespace turnout::router
