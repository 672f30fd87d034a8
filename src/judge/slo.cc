#include "judge/slo.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "judge/format.h"
#include "judge/rule_engine.h"

namespace turnout::judge {

Status ValidateSloObjective(const SloObjective& o) {
  const std::string label = "slo '" + o.name + "'";
  if (!(o.target > 0 && o.target < 1)) {
    return InvalidArgument(label + ": target must be between 0 and 1 (e.g. 0.9995), got " +
                           FormatNumber(o.target));
  }
  if (o.period.count() <= 0) return InvalidArgument(label + ": period must be positive");
  if (o.kind == SloObjective::Kind::kLatency && !(o.latency_threshold_us > 0)) {
    return InvalidArgument(label + ": a latency objective needs a positive threshold");
  }
  return Status::Ok();
}

EventCounts CountEvents(const SloObjective& o, const metrics::Counters& counters,
                        const metrics::Histogram::Counts& latency) {
  EventCounts e;
  if (o.kind == SloObjective::Kind::kAvailability) {
    e.total = counters.requests;
    e.good = e.total - std::min(e.total, ErrorCount(counters));
  } else {
    e.total = latency.count;
    e.good = std::min(e.total, latency.CountAtOrBelow(o.latency_threshold_us));
  }
  return e;
}

ErrorBudget ComputeErrorBudget(double target, const EventCounts& period) {
  ErrorBudget b;
  const uint64_t good = std::min(period.good, period.total);
  b.bad = period.total - good;
  b.allowed_bad = (1 - target) * static_cast<double>(period.total);
  if (period.total == 0) return b;
  b.good_share = static_cast<double>(good) / static_cast<double>(period.total);
  b.remaining = 1 - static_cast<double>(b.bad) / b.allowed_bad;
  return b;
}

std::optional<std::chrono::seconds> TimeToExhaustion(const ErrorBudget& b,
                                                     std::chrono::seconds period,
                                                     double burn_rate) {
  if (b.remaining <= 0) return std::chrono::seconds(0);
  if (!(burn_rate > 0)) return std::nullopt;
  const double s = b.remaining * static_cast<double>(period.count()) / burn_rate;
  // Beyond a century the answer is "never" for any purpose (and would overflow a cast).
  if (!(s < 100.0 * 365 * 24 * 3600)) return std::nullopt;
  return std::chrono::seconds(std::llround(s));
}

std::string DescribeErrorBudget(const SloObjective& o, const ErrorBudget& b) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(o.period);
  std::string out = o.name + ": " + FormatPercent(b.good_share) + " good over " + FormatFor(ms) +
                    " (target " + FormatPercent(o.target) + "), ";
  if (b.remaining >= 0) {
    out += FormatPercent(b.remaining) + " of the error budget left";
  } else {
    out += "error budget overspent by " + FormatPercent(-b.remaining);
  }
  char allowed[32];
  std::snprintf(allowed, sizeof allowed, "%.0f", b.allowed_bad);
  return out + " (" + FormatCount(b.bad) + " of " + allowed + " bad events)";
}

double BurnRate(double target, const EventCounts& window) {
  if (window.total == 0 || !(target < 1)) return 0;
  const uint64_t bad = window.total - std::min(window.good, window.total);
  return (static_cast<double>(bad) / static_cast<double>(window.total)) / (1 - target);
}

std::vector<BurnRateAlert> DefaultBurnRateAlerts() {
  using std::chrono::hours;
  using std::chrono::minutes;
  using std::chrono::seconds;
  auto s = [](auto d) { return std::chrono::duration_cast<seconds>(d); };
  return {
      {"page-fast", "page", s(hours(1)), s(minutes(5)), 14.4},
      {"page-slow", "page", s(hours(6)), s(minutes(30)), 6},
      {"ticket", "ticket", s(hours(72)), s(hours(6)), 1},
  };
}

std::vector<BurnRateAlertResult> EvaluateBurnRateAlerts(
    double target, const std::vector<BurnRateAlert>& alerts,
    const std::function<EventCounts(std::chrono::seconds window)>& counts) {
  std::vector<BurnRateAlertResult> out;
  out.reserve(alerts.size());
  for (const BurnRateAlert& a : alerts) {
    BurnRateAlertResult r;
    r.alert = a;
    r.long_counts = counts(a.long_window);
    r.short_counts = counts(a.short_window);
    r.long_burn = BurnRate(target, r.long_counts);
    r.short_burn = BurnRate(target, r.short_counts);
    r.firing = r.long_burn >= a.factor && r.short_burn >= a.factor;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace turnout::judge
