#include "judge/rule_engine.h"

#include <algorithm>
#include <set>

#include "judge/format.h"

namespace turnout::judge {
namespace {

enum class Outcome { kTrue, kFalse, kInsufficient };

std::string SecondsText(Clock::Duration d) {
  return FormatFor(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::floor<std::chrono::seconds>(d)));
}

double SlotStatistic(Statistic s, const metrics::WindowSnapshot& w) {
  switch (s) {
    case Statistic::kErrorRate:
      return ErrorRate(w.counters);
    case Statistic::kRequestRate:
      return w.window.count() > 0 ? static_cast<double>(w.counters.requests) / w.window.count()
                                  : 0.0;
    case Statistic::kMeanLatency:
      return w.total_latency.MeanUs();
    default:
      return w.total_latency.PercentileUs(PercentileOf(s));
  }
}

// Requests that a statistic is computed from.
uint64_t SamplesOf(Statistic s, const metrics::WindowSnapshot& w) {
  return IsLatency(s) ? w.total_latency.count : w.counters.requests;
}

}  // namespace

std::string_view RuleStateName(RuleState s) {
  switch (s) {
    case RuleState::kOk:
      return "ok";
    case RuleState::kPending:
      return "pending";
    case RuleState::kFiring:
      return "firing";
    case RuleState::kInsufficientData:
      return "insufficient_data";
  }
  return "unknown";
}

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kContinue:
      return "continue";
    case Action::kWarn:
      return "warn";
    case Action::kRollback:
      return "rollback";
  }
  return "unknown";
}

uint64_t ErrorCount(const metrics::Counters& c) {
  const uint64_t aborted = c.by_class[0];
  const uint64_t client_aborts =
      c.router_errors[static_cast<size_t>(metrics::RouterError::kClientAbort)];
  // A client abort is counted as aborted (status 0); it says nothing about the version.
  return c.by_class[5] + (aborted > client_aborts ? aborted - client_aborts : 0);
}

double ErrorRate(const metrics::Counters& c) {
  if (c.requests == 0) return 0.0;
  return std::min(1.0, static_cast<double>(ErrorCount(c)) / static_cast<double>(c.requests));
}

EngineOptions EngineOptions::ForInterval(Clock::Duration evaluation_interval) {
  EngineOptions o;
  o.max_gap = std::max<Clock::Duration>(std::chrono::seconds(2), 2 * evaluation_interval);
  return o;
}

RuleEngine::RuleEngine(std::vector<Rule> rules, EngineOptions options)
    : rules_(std::move(rules)), runs_(rules_.size()), options_(options) {}

std::vector<std::chrono::seconds> RuleEngine::RequiredWindows() const {
  std::set<std::chrono::seconds> windows;
  for (const Rule& r : rules_) {
    if (r.expr.kind == Expression::Kind::kSlotStatistic) windows.insert(r.window);
  }
  return {windows.begin(), windows.end()};
}

void RuleEngine::Reset() { runs_.assign(rules_.size(), Run{}); }

std::vector<RuleResult> RuleEngine::Evaluate(Clock::TimePoint now, const Inputs& inputs) {
  std::vector<RuleResult> out;
  out.reserve(rules_.size());
  for (size_t i = 0; i < rules_.size(); ++i) {
    out.push_back(EvaluateOne(rules_[i], runs_[i], now, inputs));
  }
  return out;
}

RuleResult RuleEngine::EvaluateOne(const Rule& rule, Run& run, Clock::TimePoint now,
                                   const Inputs& in) {
  RuleResult r;
  r.name = rule.name;
  r.expr = rule.expr.text;
  r.severity = rule.severity;
  r.policy = rule.on_insufficient_data;
  const Expression& e = rule.expr;

  Outcome outcome = Outcome::kInsufficient;
  std::string condition;  // "error_rate 9.8% > 5%" (what was compared)
  std::string detail;     // "(1,234 requests)" or why the data is insufficient
  std::optional<Clock::TimePoint> exact_since;  // health/dependency: when the state began

  switch (e.kind) {
    case Expression::Kind::kSlotStatistic: {
      const std::string stat(StatisticName(e.statistic));
      r.window = rule.window;
      if (in.since) {
        // Windows are whole one-second buckets ending with the current one (metrics.h): the
        // buckets from the one holding `since` to the current one.
        using std::chrono::floor;
        using std::chrono::seconds;
        const seconds judged = floor<seconds>(now.time_since_epoch()) -
                               floor<seconds>(in.since->time_since_epoch()) + seconds(1);
        r.window = std::clamp(judged, seconds(1), rule.window);
      }
      std::optional<metrics::WindowSnapshot> w;
      if (in.window) w = in.window(SlotRole::kNew, r.window);
      if (!w) {
        detail = stat + ": no metrics for the new slot";
        break;
      }
      r.samples = SamplesOf(e.statistic, *w);
      if (e.statistic == Statistic::kRequestRate && w->window.count() == 0) {
        detail = stat + ": the window covers no time yet";
        break;
      }
      const bool needs_samples = e.statistic != Statistic::kRequestRate;
      if (needs_samples && r.samples < rule.min_samples) {
        detail = stat + ": needs " + FormatCount(rule.min_samples) + " requests in " +
                 SecondsText(r.window) + ", has " + FormatCount(r.samples);
        break;
      }
      r.observed = SlotStatistic(e.statistic, *w);
      std::string threshold_text;
      if (e.vs_baseline) {
        std::optional<metrics::WindowSnapshot> b = in.window(SlotRole::kBaseline, r.window);
        if (!b) {
          detail = stat + ": no baseline (stable) slot to compare with";
          break;
        }
        r.baseline_samples = SamplesOf(e.statistic, *b);
        if (needs_samples && r.baseline_samples < rule.min_samples) {
          detail = stat + ": the baseline needs " + FormatCount(rule.min_samples) +
                   " requests in " + SecondsText(r.window) + ", has " +
                   FormatCount(r.baseline_samples);
          break;
        }
        r.baseline = SlotStatistic(e.statistic, *b);
        r.threshold = *r.baseline * e.baseline_factor;
        threshold_text =
            FormatStatistic(e.statistic, r.threshold) + " (baseline " +
            FormatStatistic(e.statistic, *r.baseline) +
            (e.baseline_factor != 1.0 ? " x " + FormatNumber(e.baseline_factor) : std::string()) +
            ")";
      } else {
        r.threshold = e.threshold;
        threshold_text = FormatStatistic(e.statistic, r.threshold);
      }
      outcome = Compare(r.observed, e.op, r.threshold) ? Outcome::kTrue : Outcome::kFalse;
      condition = stat + " " + FormatStatistic(e.statistic, r.observed) +
                  (outcome == Outcome::kTrue ? " " : " not ") +
                  std::string(ComparisonSymbol(e.op)) + " " + threshold_text;
      detail =
          "(" + FormatCount(r.samples) + " requests in the last " + SecondsText(r.window) + ")";
      break;
    }
    case Expression::Kind::kHealthFailing: {
      if (!in.health) {
        detail = "health: no health state for the new slot";
        break;
      }
      outcome = in.health->ok ? Outcome::kFalse : Outcome::kTrue;
      r.observed = in.health->ok ? 0 : 1;
      condition = in.health->ok ? "health passing" : "health failing";
      if (!in.health->ok && in.health->since != Clock::TimePoint{}) {
        exact_since = std::min(in.health->since, now);
      }
      break;
    }
    case Expression::Kind::kDependencyUnavailable: {
      auto it = in.dependencies.find(e.name);
      if (it == in.dependencies.end()) {
        detail = "dependency " + e.name + ": no state reported";
        break;
      }
      const Condition& c = it->second;
      outcome = c.ok ? Outcome::kFalse : Outcome::kTrue;
      r.observed = c.ok ? 0 : 1;
      condition = "dependency " + e.name + (c.ok ? " available" : " unavailable");
      if (!c.ok && c.since != Clock::TimePoint{}) exact_since = std::min(c.since, now);
      break;
    }
    case Expression::Kind::kExternalMetric: {
      auto it = in.external.find(e.name);
      if (it == in.external.end()) {
        detail = "metric " + e.name + ": no value";
        break;
      }
      if (now - it->second.at > options_.max_external_age) {
        detail = "metric " + e.name + ": the latest value is " + SecondsText(now - it->second.at) +
                 " old";
        break;
      }
      r.observed = it->second.value;
      r.threshold = e.threshold;
      outcome = Compare(r.observed, e.op, r.threshold) ? Outcome::kTrue : Outcome::kFalse;
      condition = "metric " + e.name + " " + FormatNumber(r.observed) +
                  (outcome == Outcome::kTrue ? " " : " not ") +
                  std::string(ComparisonSymbol(e.op)) + " " + FormatNumber(r.threshold);
      break;
    }
  }

  r.insufficient_data = outcome == Outcome::kInsufficient;
  const bool counts_as_true =
      outcome == Outcome::kTrue ||
      (r.insufficient_data && rule.on_insufficient_data == InsufficientDataPolicy::kFail);
  if (!counts_as_true) {
    run = Run{};
    r.state = r.insufficient_data ? RuleState::kInsufficientData : RuleState::kOk;
    if (r.insufficient_data) {
      r.sentence = "insufficient data: " + detail;
    } else {
      r.sentence = condition + (detail.empty() ? "" : " " + detail);
    }
    return r;
  }

  if (exact_since) {
    run.since = exact_since;
  } else if (!run.since || !run.last || now - *run.last > options_.max_gap) {
    run.since = now;
  }
  run.last = now;
  r.since = run.since;
  const Clock::Duration held = now - *run.since;
  r.state = held >= rule.for_duration ? RuleState::kFiring : RuleState::kPending;

  std::string what =
      r.insufficient_data ? "insufficient data, failing by policy: " + detail : condition;
  std::string tail = r.insufficient_data || detail.empty() ? "" : " " + detail;
  if (r.state == RuleState::kFiring) {
    r.sentence =
        what + (rule.for_duration.count() > 0 ? " for " + SecondsText(held) : std::string()) + tail;
  } else {
    r.sentence = what + " for " + SecondsText(held) + " of " + FormatFor(rule.for_duration) + tail;
  }
  return r;
}

Decision Decide(const std::vector<RuleResult>& results) {
  Decision d;
  std::vector<std::string> pending, insufficient;
  for (const RuleResult& r : results) {
    const std::string label = r.name == r.expr ? r.name : r.name + " (" + r.expr + ")";
    switch (r.state) {
      case RuleState::kOk:
        break;
      case RuleState::kFiring:
        if (r.severity == Severity::kCritical) {
          d.action = Action::kRollback;
        } else if (d.action == Action::kContinue) {
          d.action = Action::kWarn;
        }
        d.reasons.push_back(std::string(SeverityName(r.severity)) + " firing: " + label + ": " +
                            r.sentence);
        break;
      case RuleState::kPending:
        pending.push_back(std::string(SeverityName(r.severity)) + " pending: " + label + ": " +
                          r.sentence);
        break;
      case RuleState::kInsufficientData:
        if (r.policy == InsufficientDataPolicy::kWait) {
          d.waiting_for_data = true;
          insufficient.push_back("waiting for data: " + label + ": " + r.sentence);
        } else {
          insufficient.push_back("passed by policy: " + label + ": " + r.sentence);
        }
        break;
    }
  }
  d.reasons.insert(d.reasons.end(), pending.begin(), pending.end());
  d.reasons.insert(d.reasons.end(), insufficient.begin(), insufficient.end());
  return d;
}

}  // namespace turnout::judge
