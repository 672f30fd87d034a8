// RuleEngine: evaluates rules (rule.h) against the new slot's metrics, the stable slot's metrics
// (the baseline), health, dependencies and external metric values, and turns the results into
// a decision: continue, warn or roll back.
//
// Example (the controller, once a second during bake time and each canary step):
//   RuleEngine engine(rules);
//   ...
//   judge::Inputs in;
//   in.window = [&](SlotRole role, std::chrono::seconds w) -> std::optional<WindowSnapshot> {
//     return (role == SlotRole::kNew ? green : blue).Window(w, now);
//   };
//   in.health = judge::Condition{.ok = healthy, .since = health_changed_at};
//   std::vector<RuleResult> results = engine.Evaluate(now, in);
//   Decision d = Decide(results);  // d.action == Action::kRollback -> roll back, d.reasons why
//
// `for` semantics (like Prometheus alerts): a rule is pending from the first evaluation whose
// condition is true and firing once the condition has been true at every evaluation for
// `for`. A false evaluation, or one without enough data, ends the run. So does a gap: when two
// evaluations are further apart than `max_gap` (two evaluation intervals; 2 s for the default
// one-second interval), the engine did not watch the condition in between, and the run restarts
// at the later evaluation. With enough requests in the window, a rule whose condition becomes
// true fires `for` plus at most one evaluation interval later.
// Health and dependency rules are the exception: their inputs carry the time the state began
// (`since`), which is more exact than our ticks, so they fire when now - since >= for.
//
// Insufficient data (too few requests in a window, no baseline slot, a missing or stale input)
// is a state of its own and never counts as ok. The rule's policy says what the decision does
// with it: wait (the decision reports it as waiting), pass (ignored by the decision, but still
// listed among its reasons), fail (treated as the condition being true: pending, then firing at
// the rule's severity once it has lasted `for`).
//
// Thread-safety: not thread-safe (one controller thread evaluates). Evaluate() keeps the runs.

#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "judge/rule.h"
#include "metrics/metrics.h"

namespace turnout::judge {

enum class SlotRole { kNew, kBaseline };  // the canary / new slot; the stable slot

// A state that holds since a time: health of the new slot, a dependency.
struct Condition {
  bool ok = true;
  Clock::TimePoint since{};  // when it last changed; a zero time point means "unknown: now"
};

// A value from an external source (e.g. a Prometheus query), stamped when it was measured.
struct ExternalValue {
  double value = 0;
  Clock::TimePoint at{};
};

struct Inputs {
  // Metrics of a slot over the last `window` seconds ending at the evaluation time; nullopt when
  // the slot does not exist (e.g. no stable slot to compare with). May be empty when no rule
  // needs slot metrics.
  std::function<std::optional<metrics::WindowSnapshot>(SlotRole, std::chrono::seconds window)>
      window;
  std::optional<Condition> health;                // absent: unknown -> insufficient data
  std::map<std::string, Condition> dependencies;  // name -> state; absent -> insufficient data
  std::map<std::string, ExternalValue> external;  // name -> latest value
  // The start of what is judged (a canary step, the bake), when known: a window reaches back
  // no further than the one-second bucket holding it, so traffic the slot served earlier
  // (another version, an earlier step) does not dilute the statistic. The window asked for is
  // then min(rule window, buckets from the one holding `since` to the current one).
  std::optional<Clock::TimePoint> since;
};

enum class RuleState { kOk, kPending, kFiring, kInsufficientData };
std::string_view RuleStateName(RuleState s);  // "ok", "pending", "firing", "insufficient_data"

struct RuleResult {
  std::string name;
  std::string expr;  // the rule's expression text
  RuleState state = RuleState::kOk;
  Severity severity = Severity::kCritical;
  InsufficientDataPolicy policy = InsufficientDataPolicy::kWait;
  // True when the data was insufficient at this evaluation (also when the fail policy turned it
  // into pending/firing).
  bool insufficient_data = false;
  // The start of the current run (condition true, or insufficient data under the fail policy);
  // set when pending or firing.
  std::optional<Clock::TimePoint> since;
  double observed = 0;   // the statistic (fraction, µs, per second, metric value); 0 if unknown
  double threshold = 0;  // the threshold it was compared with (baseline * factor when relative)
  std::optional<double> baseline;  // the baseline statistic, for relative rules
  uint64_t samples = 0;            // requests in the new slot's window (slot rules)
  uint64_t baseline_samples = 0;   // requests in the stable slot's window (relative rules)
  std::chrono::seconds window{0};  // the window the statistic covered (slot rules)
  // e.g. "error_rate 9.8% > 5% for 2m (1,234 requests)", "p95 450ms, needs 50 requests, has 12".
  std::string sentence;
};

struct EngineOptions {
  // Two evaluations further apart than this break a run (see the top of this file).
  // Default: 2 s (the controller evaluates every second).
  Clock::Duration max_gap = std::chrono::seconds(2);
  // An external value older than this is insufficient data. Default: 30 s.
  Clock::Duration max_external_age = std::chrono::seconds(30);

  // The options for rules evaluated every `evaluation_interval`: max_gap is two intervals (at
  // least 2 s), so one missed evaluation is tolerated and a slower cadence still lets a rule
  // hold for its `for`.
  static EngineOptions ForInterval(Clock::Duration evaluation_interval);
};

class RuleEngine {
 public:
  explicit RuleEngine(std::vector<Rule> rules, EngineOptions options = {});

  // The windows (seconds) each slot's metrics are asked for, sorted, without duplicates: a
  // caller can snapshot them once per evaluation. With Inputs::since, the first seconds of a
  // step ask for shorter ones (the time since `since`).
  std::vector<std::chrono::seconds> RequiredWindows() const;

  // One result per rule, in the rules' order. `now` must not go back between calls.
  std::vector<RuleResult> Evaluate(Clock::TimePoint now, const Inputs& inputs);

  // Forgets every run (e.g. when a new canary step starts).
  void Reset();

  const std::vector<Rule>& rules() const { return rules_; }

 private:
  struct Run {
    std::optional<Clock::TimePoint> since;
    std::optional<Clock::TimePoint> last;  // the last evaluation that extended the run
  };
  RuleResult EvaluateOne(const Rule& rule, Run& run, Clock::TimePoint now, const Inputs& in);

  std::vector<Rule> rules_;
  std::vector<Run> runs_;
  EngineOptions options_;
};

enum class Action { kContinue, kWarn, kRollback };
std::string_view ActionName(Action a);  // "continue", "warn", "rollback"

struct Decision {
  Action action = Action::kContinue;
  // One line per rule that is not ok: firing rules first, then pending, then insufficient
  // data (with what its policy did), e.g. "critical: error_rate 9.8% > 5% for 2m (1,234
  // requests)".
  std::vector<std::string> reasons;
  // True when a rule with the wait policy has insufficient data: a bake time or canary step
  // should not count as passed yet.
  bool waiting_for_data = false;
};

// rollback when a critical rule is firing; warn when only warning rules are firing; else
// continue.
Decision Decide(const std::vector<RuleResult>& results);

// Error count used by error_rate: 5xx plus aborted requests, except those the client aborted.
uint64_t ErrorCount(const metrics::Counters& c);
double ErrorRate(const metrics::Counters& c);  // ErrorCount / requests; 0 without requests

}  // namespace turnout::judge
