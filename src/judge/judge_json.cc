#include "judge/judge_json.h"

#include <chrono>

namespace turnout::judge {
namespace {

using nlohmann::json;

int64_t Millis(Clock::Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

json SlotJson(const SlotSummary& s) {
  return json{{"requests", s.requests},
              {"errors", s.errors},
              {"error_rate", s.error_rate},
              {"p50_us", s.p50_us},
              {"p95_us", s.p95_us},
              {"p99_us", s.p99_us},
              {"mean_us", s.mean_us},
              {"upstream_requests", s.upstream_requests},
              {"upstream_p50_us", s.upstream_p50_us},
              {"upstream_p95_us", s.upstream_p95_us},
              {"upstream_mean_us", s.upstream_mean_us}};
}

json TestJson(const ProportionTest& t) {
  return json{{"canary_n", t.canary_n},
              {"canary_x", t.canary_x},
              {"canary_rate", t.canary_rate},
              {"stable_n", t.stable_n},
              {"stable_x", t.stable_x},
              {"stable_rate", t.stable_rate},
              {"canary_bounds", {t.bounds.canary.lower, t.bounds.canary.upper}},
              {"stable_bounds", {t.bounds.stable.lower, t.bounds.stable.upper}},
              {"excess_bounds", {t.bounds.lower, t.bounds.upper}},
              {"margin", t.margin},
              {"relative_margin", t.relative_margin},
              {"p_value_harm", t.p_values.harm},
              {"p_value_safety", t.p_values.safety},
              {"verdict", VerdictName(t.verdict)}};
}

json CountsJson(const EventCounts& c) { return json{{"total", c.total}, {"good", c.good}}; }

}  // namespace

json ToJson(const RuleResult& r, Clock::TimePoint now) {
  json j{{"name", r.name},
         {"expr", r.expr},
         {"state", RuleStateName(r.state)},
         {"severity", SeverityName(r.severity)},
         {"policy", InsufficientDataPolicyName(r.policy)},
         {"insufficient_data", r.insufficient_data},
         {"observed", r.observed},
         {"threshold", r.threshold},
         {"samples", r.samples},
         {"baseline_samples", r.baseline_samples},
         {"window_ms", Millis(r.window)},
         {"sentence", r.sentence}};
  if (r.baseline) j["baseline"] = *r.baseline;
  if (r.since) j["pending_for_ms"] = Millis(now - *r.since);
  return j;
}

json ToJson(const Decision& d) {
  return json{{"action", ActionName(d.action)},
              {"reasons", d.reasons},
              {"waiting_for_data", d.waiting_for_data}};
}

json ToJson(const Verdict& v) {
  json j{{"verdict", VerdictName(v.verdict)},
         {"reason", v.reason},
         {"elapsed_ms", Millis(v.elapsed)},
         {"max_duration_reached", v.max_duration_reached},
         {"alpha", v.alpha},
         {"min_samples", v.min_samples},
         {"canary", SlotJson(v.canary)},
         {"stable", SlotJson(v.stable)},
         {"errors", TestJson(v.errors)}};
  if (v.latency) j["latency"] = TestJson(*v.latency);
  if (v.latency_threshold_us) j["latency_threshold_us"] = *v.latency_threshold_us;
  if (v.latency_since) j["latency_since_ms"] = Millis(*v.latency_since);
  return j;
}

json ToJson(const ErrorBudget& b) {
  return json{{"allowed_bad", b.allowed_bad},
              {"bad", b.bad},
              {"remaining", b.remaining},
              {"good_share", b.good_share}};
}

json ToJson(const BurnRateAlertResult& r) {
  return json{{"name", r.alert.name},
              {"severity", r.alert.severity},
              {"long_window_s", r.alert.long_window.count()},
              {"short_window_s", r.alert.short_window.count()},
              {"factor", r.alert.factor},
              {"long_burn", r.long_burn},
              {"short_burn", r.short_burn},
              {"firing", r.firing},
              {"long", CountsJson(r.long_counts)},
              {"short", CountsJson(r.short_counts)}};
}

std::string ToJsonText(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace turnout::judge
