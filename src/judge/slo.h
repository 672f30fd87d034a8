// Service level objectives as pure functions over counts: error budgets and multi-window
// burn-rate alerts. The daemon feeds the counts (from the router's metrics or a Prometheus
// query); nothing here keeps state or reads a clock.
//
// An objective says which share of events must be good over a period:
//   availability 99.95 % over 30 d:  good = requests that were not errors (ErrorCount)
//   latency "p95 < 100ms":            good = requests faster than 100 ms, target 95 %
// The error budget is the bad events the target allows: (1 - target) * total.
// The burn rate of a window is its bad share divided by (1 - target): 1 spends the budget
// exactly over the period, 14.4 spends 2 % of a 30-day budget in one hour.
//
// A burn-rate alert fires when both its long and its short window burn faster than its factor:
// the long window shows the burn is significant, the short one that it is still going on (so
// the alert stops soon after the problem does). DefaultBurnRateAlerts():
//   page    1 h and 5 min at 14.4x  (2 % of a 30-day budget in an hour)
//   page    6 h and 30 min at 6x    (5 % in six hours)
//   ticket  3 d and 6 h at 1x       (10 % in three days)
//
// Thread-safety: plain values and pure functions.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "metrics/metrics.h"

namespace turnout::judge {

struct SloObjective {
  enum class Kind { kAvailability, kLatency };
  std::string name;  // e.g. "availability", "latency-p95"
  Kind kind = Kind::kAvailability;
  double target = 0.9995;  // share of good events, in (0, 1). Default: 0.9995
  std::chrono::seconds period = std::chrono::hours(24 * 30);  // Default: 30 days
  double latency_threshold_us = 0;  // kLatency: a request is good when not slower than this
};

// Fails (InvalidArgument) on a target outside (0, 1), a period <= 0, or a latency objective
// without a positive threshold.
Status ValidateSloObjective(const SloObjective& o);

struct EventCounts {
  uint64_t total = 0;
  uint64_t good = 0;  // <= total
};

// Good/total events of a window for an objective: availability counts ErrorCount as bad;
// latency counts requests whose latency bucket lies at or below the threshold as good (a
// request in the bucket that straddles the threshold counts as bad: the conservative side).
EventCounts CountEvents(const SloObjective& o, const metrics::Counters& counters,
                        const metrics::Histogram::Counts& latency);

struct ErrorBudget {
  double allowed_bad = 0;  // (1 - target) * total
  uint64_t bad = 0;        // total - good
  double remaining = 1;    // 1 - bad / allowed_bad; below 0 when overspent; 1 when empty
  double good_share = 1;   // good / total; 1 without events
};
// The budget of the period from the period's counts.
ErrorBudget ComputeErrorBudget(double target, const EventCounts& period);

// How long the remaining budget lasts at `burn_rate` (a burn rate of 1 spends a whole budget in
// one period): remaining * period / burn_rate. Zero when the budget is spent; nullopt when
// nothing burns.
std::optional<std::chrono::seconds> TimeToExhaustion(const ErrorBudget& b,
                                                     std::chrono::seconds period, double burn_rate);

// One line for `turnout slo`, e.g. "availability: 99.99% good over 30d (target 99.95%), 75% of
// the error budget left (125 of 500 bad events)".
std::string DescribeErrorBudget(const SloObjective& o, const ErrorBudget& b);

// (bad / total) / (1 - target); 0 without events.
double BurnRate(double target, const EventCounts& window);

struct BurnRateAlert {
  std::string name;      // e.g. "page-fast"
  std::string severity;  // "page" or "ticket" (free text for the notifier)
  std::chrono::seconds long_window{};
  std::chrono::seconds short_window{};
  double factor = 0;  // both windows must burn at least this fast
};
std::vector<BurnRateAlert> DefaultBurnRateAlerts();

struct BurnRateAlertResult {
  BurnRateAlert alert;
  double long_burn = 0;
  double short_burn = 0;
  EventCounts long_counts;
  EventCounts short_counts;
  bool firing = false;
};

// Evaluates every alert; `counts(window)` gives the events of the last `window`.
std::vector<BurnRateAlertResult> EvaluateBurnRateAlerts(
    double target, const std::vector<BurnRateAlert>& alerts,
    const std::function<EventCounts(std::chrono::seconds window)>& counts);

}  // namespace turnout::judge
