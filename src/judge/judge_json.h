// JSON for the history records and the API: rule results, decisions, canary verdicts with their
// evidence, SLO budgets. Field names are snake_case and stable; durations are milliseconds
// (`*_ms`), latencies microseconds (`*_us`), rates fractions in [0, 1].
//
// Times (Clock::TimePoint) are monotonic and mean nothing outside the process, so results
// carry durations ("pending_for_ms") relative to the `now` passed in, never time points.
//
// Thread-safety: pure functions. Never throws: text that is not valid UTF-8 (a rule name from
// a config file) is replaced with U+FFFD by ToJsonText.

#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "judge/canary_judge.h"
#include "judge/rule_engine.h"
#include "judge/slo.h"

namespace turnout::judge {

// {"name","expr","state","severity","policy","insufficient_data","observed","threshold",
//  "baseline"?,"samples","baseline_samples","window_ms","pending_for_ms"?,"sentence"}
nlohmann::json ToJson(const RuleResult& r, Clock::TimePoint now);
// {"action","reasons":[...],"waiting_for_data"}
nlohmann::json ToJson(const Decision& d);
// {"verdict","reason","elapsed_ms","max_duration_reached","alpha","min_samples",
//  "canary":{slot},"stable":{slot},"errors":{test},"latency":{test}?,"latency_threshold_us"?}
// slot: {"requests","errors","error_rate","p50_us","p95_us","p99_us","mean_us"}
// test: {"canary_n","canary_x","canary_rate","stable_n","stable_x","stable_rate",
//        "canary_bounds":[lo,hi],"stable_bounds":[lo,hi],"excess_bounds":[lo,hi],"margin",
//        "relative_margin","p_value_harm","p_value_safety","verdict"}
nlohmann::json ToJson(const Verdict& v);
// {"allowed_bad","bad","remaining","good_share"}
nlohmann::json ToJson(const ErrorBudget& b);
// {"name","severity","long_window_s","short_window_s","factor","long_burn","short_burn",
//  "firing","long":{"total","good"},"short":{"total","good"}}
nlohmann::json ToJson(const BurnRateAlertResult& r);

// Compact text of any of the above.
std::string ToJsonText(const nlohmann::json& j);

}  // namespace turnout::judge
