// Rollback and alert rules: the small language of the runbooks, parsed into plain structs.
//
//   error_rate > 5% for 2m
//   p95 > 2s for 5m
//   p99 > baseline * 1.5 for 1m
//   mean_latency >= 300ms
//   request_rate < 1/s for 1m
//   health failing for 30s
//   dependency postgres unavailable for 10s
//   metric db_connections > 90 for 1m
//
// Grammar (tokens may be separated by spaces or not: "p95>2s" is the same rule):
//   rule       := slot_rule | health_rule | dep_rule | metric_rule   [ "for" DURATION ]
//   slot_rule  := STATISTIC OP ( VALUE | "baseline" [ "*" NUMBER ] )
//   health_rule:= "health" "failing"
//   dep_rule   := "dependency" NAME ( "unavailable" | "down" )
//   metric_rule:= "metric" NAME OP NUMBER
//   STATISTIC  := error_rate | p50 | p90 | p95 | p99 | p999 | mean_latency | request_rate
//   OP         := ">" | ">=" | "<" | "<="
// A VALUE carries the statistic's unit: error_rate takes a percentage ("5%", "0.5%") or a
// fraction ("0.05", at most 1); latencies take a duration ("2s", "150ms", "800us", "1.5s");
// request_rate takes a rate ("1/s", "30/m") or a bare number (per second). Without "for" the
// rule fires on the first evaluation whose condition is true.
//
// What the statistics mean (the evaluator in rule_engine.h computes them):
//   error_rate   (5xx + aborted requests, except those the client aborted) / requests, over the
//                rule's window; router-generated 502/503/504 count as 5xx.
//   pNN          the NN-th percentile of the whole request latency (first request byte to last
//                response byte) over the window; p999 is the 99.9th.
//   mean_latency the mean of the same latencies.
//   request_rate requests per second over the window.
//   baseline     the same statistic of the stable slot over the same window.
//
// Thread-safety: plain values and pure functions.

#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turnout::judge {

// The longest window a statistic can be computed over: what the router's per-slot sliding
// window keeps (metrics::SlotMetrics' default window_seconds).
inline constexpr std::chrono::seconds kMaxWindow{120};
// How often rules are evaluated when nobody says otherwise (turnout.yaml's analysis_interval).
inline constexpr std::chrono::milliseconds kDefaultEvaluationInterval{1000};

enum class Severity { kWarning, kCritical };
enum class InsufficientDataPolicy { kWait, kPass, kFail };
enum class Statistic { kErrorRate, kP50, kP90, kP95, kP99, kP999, kMeanLatency, kRequestRate };
enum class Comparison { kGreater, kGreaterEqual, kLess, kLessEqual };

// "warning" / "critical"; "wait" / "pass" / "fail"; "error_rate", "p95", ...; ">", ">=", ...
std::string_view SeverityName(Severity s);
std::string_view InsufficientDataPolicyName(InsufficientDataPolicy p);
std::string_view StatisticName(Statistic s);
std::string_view ComparisonSymbol(Comparison c);
Result<Severity> ParseSeverity(std::string_view text);
Result<InsufficientDataPolicy> ParseInsufficientDataPolicy(std::string_view text);

// True when `value op threshold`.
bool Compare(double value, Comparison op, double threshold);
// True for the statistics computed from latencies (p50 .. mean_latency).
bool IsLatency(Statistic s);
// The percentile (50, 90, 95, 99, 99.9) of a pNN statistic; 0 for the others.
double PercentileOf(Statistic s);

// A parsed condition. Units are fixed: error_rate is a fraction in [0, 1], latencies are
// microseconds, request_rate is per second, external metrics are taken as they come.
struct Expression {
  enum class Kind {
    kSlotStatistic,          // statistic of the new slot op threshold (or op baseline * factor)
    kHealthFailing,          // the new slot's health checks are failing
    kDependencyUnavailable,  // dependency `name` is down
    kExternalMetric,         // external metric `name` op threshold
  };
  Kind kind = Kind::kSlotStatistic;
  Statistic statistic = Statistic::kErrorRate;  // kSlotStatistic only
  Comparison op = Comparison::kGreater;         // kSlotStatistic, kExternalMetric
  double threshold = 0;                         // when !vs_baseline
  bool vs_baseline = false;                     // kSlotStatistic only
  double baseline_factor = 1.0;                 // when vs_baseline; > 0
  std::string name;                             // dependency or metric name
  std::chrono::milliseconds for_duration{0};    // the "for" clause; 0 when absent
  std::string text;                             // the source text, trimmed
};

// Parses one expression. Errors are InvalidArgument and read like
//   "error_rate > 5% for 2 minutes: column 20: expected a duration after 'for' (e.g. 30s, 2m),
//    got '2 minutes'".
Result<Expression> ParseExpression(std::string_view text);

struct Rule {
  std::string name;  // for humans and history; defaults to the expression text
  Expression expr;
  Severity severity = Severity::kCritical;
  // Requests in the window needed to judge an error-rate or latency rule (in both slots when
  // compared with the baseline). Not used by request_rate, health, dependency or metric rules.
  uint64_t min_samples = 50;
  InsufficientDataPolicy on_insufficient_data = InsufficientDataPolicy::kWait;
  // The lookback a statistic is computed over, whole seconds in 1 s .. kMaxWindow.
  // Default: DefaultWindow(for, evaluation interval): the window follows the rule, so
  // "error_rate > 5% for 5s" looks at the last 5 s. A `for` longer than the window is fine:
  // "p95 > 2s for 5m" needs the 120 s p95 to stay above 2 s for 5 minutes.
  std::chrono::seconds window{1};
  std::chrono::milliseconds for_duration{0};  // copy of expr.for_duration
};

// The default window of a rule: max(for, evaluation_interval) rounded up to whole seconds (so
// at least 1 s), at most kMaxWindow. A rule without `for` looks at what happened since about the
// previous evaluation.
std::chrono::seconds DefaultWindow(
    std::chrono::milliseconds for_duration,
    std::chrono::milliseconds evaluation_interval = kDefaultEvaluationInterval);

// A rule with every other field at its default (critical, min_samples 50, wait; the window for
// the default evaluation interval).
Result<Rule> ParseRule(std::string_view expr);

// A rule as configured (turnout.yaml maps onto this). Unset optionals take the defaults above.
struct RuleConfig {
  std::string name;                         // Default: the expression text
  std::string expr;                         // required
  Severity severity = Severity::kCritical;  // Default: critical
  std::optional<uint64_t> min_samples;      // Default: 50
  InsufficientDataPolicy on_insufficient_data = InsufficientDataPolicy::kWait;  // Default: wait
  std::optional<std::chrono::milliseconds> window;  // Default: DefaultWindow(for, interval)
};

// Fails (InvalidArgument, prefixed with the rule's name) on a bad expression, a window that is
// not whole seconds in 1 s .. 120 s, min_samples of 0, or a `for` shorter than the evaluation
// interval (the rule could not hold for less than one interval between two evaluations; the
// message says what to write instead). `evaluation_interval` is how often the rule will be
// evaluated (turnout.yaml's analysis_interval).
Result<Rule> MakeRule(const RuleConfig& config,
                      std::chrono::milliseconds evaluation_interval = kDefaultEvaluationInterval);

}  // namespace turnout::judge
