// CanaryJudge: a sequential, always-valid comparison of a canary slot with the stable slot
// during one canary step. Call Evaluate() as often as you like (every second): the decision
// rules stay valid under continuous monitoring, so checking often does not raise the chance of
// a wrong call (docs/judge.md has the math).
//
// Two tests, each on counts accumulated since the step started:
//   errors   canary error rate vs stable error rate (ErrorCount in rule_engine.h). The canary
//            is tolerated while  canary <= (1 + error_relative_margin) * stable + error_margin.
//   latency  the share of requests slower than the stable slot's p95: about 5 % for the stable
//            slot, and for a canary with the same latency distribution. Tolerated while
//            canary_share <= (1 + latency_relative_margin) * stable_share + latency_margin.
//            The test starts at the first evaluation at which both slots have min_samples
//            requests in the step: the threshold is taken then, from the stable slot's
//            requests so far (calibration), and both slots' shares count only the requests
//            after it (the test), over the same time. So the canary's first min_samples
//            requests of a step (a fresh process, new connections, a new weight) are not
//            judged for latency, and the threshold never judges the requests it came from.
// Each test bounds canary - (1 + relative) * stable with confidence sequences (confidence.h):
//   rollback  as soon as the lower bound of either test exceeds its margin (at any sample
//             size: a confidence sequence is valid from the first request);
//   promote   as soon as the upper bounds of both tests are within their margins and both
//             slots have min_samples requests;
//   otherwise continue until max_duration, then: insufficient_data when a slot has fewer than
//   min_samples requests, else the end policy (promote by default: no evidence of harm).
// Low traffic never promotes: it is insufficient_data, and the caller's policy decides.
//
// Example (the controller, every second of a canary step):
//   CanaryJudge judge(config, step_started_at);
//   CumulativeSnapshot start_c = canary.Cumulative(), start_s = stable.Cumulative();
//   ...
//   Verdict v = judge.Evaluate(clock.Now(), SlotSince(start_c, canary.Cumulative()),
//                              SlotSince(start_s, stable.Cumulative()));
//   if (v.verdict == VerdictKind::kRollback) ...  // record ToJson(v) in the history
//
// Thread-safety: not thread-safe (one controller thread). Cheap: well under a millisecond.

#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "judge/confidence.h"
#include "metrics/metrics.h"

namespace turnout::judge {

enum class VerdictKind { kPromote, kRollback, kContinue, kInsufficientData };
// "promote", "rollback", "continue", "insufficient_data"
std::string_view VerdictName(VerdictKind v);

enum class EndPolicy { kPromote, kRollback };
std::string_view EndPolicyName(EndPolicy p);  // "promote", "rollback"

struct CanaryJudgeConfig {
  // Chance of a wrong early call per step and test, however often it is checked. Default: 0.05.
  double alpha = 0.05;
  // Tolerated error-rate excess, absolute (0.01 = 1 percentage point). Default: 0.01.
  double error_margin = 0.01;
  // Tolerated error-rate excess relative to the stable rate (0.5 = 50 % more). Default: 0.5.
  double error_relative_margin = 0.5;
  // Whether the latency test runs. Default: true.
  bool judge_latency = true;
  // The stable percentile whose exceedance share is compared. Default: 95.
  double latency_percentile = 95;
  // Tolerated excess of the canary's share of requests slower than that percentile,
  // absolute. Default: 0.05 (10 % of canary requests above the stable p95 when 5 % are).
  double latency_margin = 0.05;
  // Relative part of the same tolerance. Default: 0.
  double latency_relative_margin = 0;
  // Added to the stable percentile to make the threshold: a canary request counts as slow only
  // when it is this much slower than the stable p95. Differences below it are noise, not a
  // regression (a fresh process, cold connection pools and caches cost a fraction of a
  // millisecond that a sub-millisecond service would otherwise be judged on). Default: 2 ms.
  Clock::Duration latency_tolerance = std::chrono::milliseconds(2);
  // Requests (per slot) needed before a promotion and before the latency test starts (see
  // above). Default: 100.
  uint64_t min_samples = 100;
  // The step's maximum time. Default: 10 minutes.
  Clock::Duration max_duration = std::chrono::minutes(10);
  // What an undecided step with enough data ends with. Default: promote.
  EndPolicy end_policy = EndPolicy::kPromote;
};

// Fails (InvalidArgument) when a field is out of range: alpha in (0, 0.5], margins >= 0 and
// below 1, percentile in (0, 100), min_samples >= 1, max_duration > 0.
Status ValidateCanaryJudgeConfig(const CanaryJudgeConfig& c);

// What one slot did in the step so far.
struct SlotData {
  metrics::Counters counters;
  metrics::Histogram::Counts latency;  // whole-request latency (fine layout)
  // Upstream request sent -> response head received. Not judged: evidence only, so that a
  // latency verdict shows whether the time went to the instance or to reaching it.
  metrics::Histogram::Counts upstream_latency;
};
// From a window snapshot whose window is the time since the step started (possible only while
// the step is shorter than the window the router keeps). A sliding window that drops the
// step's first requests would break the judge's guarantee: use SlotSince then.
SlotData SlotFromWindow(const metrics::WindowSnapshot& w);
// `now` minus `start` of the same SlotMetrics' cumulative snapshots (the step's own counts).
// max_us is the maximum since the process started.
SlotData SlotSince(const metrics::CumulativeSnapshot& start,
                   const metrics::CumulativeSnapshot& now);

struct SlotSummary {
  uint64_t requests = 0;
  uint64_t errors = 0;
  double error_rate = 0;
  double p50_us = 0, p95_us = 0, p99_us = 0, mean_us = 0;
  // Of SlotData::upstream_latency (0 when none was recorded).
  uint64_t upstream_requests = 0;
  double upstream_p50_us = 0, upstream_p95_us = 0, upstream_mean_us = 0;
};

// One sequential test: counts, bounds and the anytime-valid p-values.
struct ProportionTest {
  uint64_t canary_n = 0, canary_x = 0;  // trials and "bad" outcomes (errors / slow requests)
  uint64_t stable_n = 0, stable_x = 0;
  double canary_rate = 0, stable_rate = 0;
  DifferenceBounds bounds;  // of canary - (1 + relative) * stable
  double margin = 0;
  double relative_margin = 0;
  SequentialPValues p_values;
  VerdictKind verdict = VerdictKind::kContinue;  // this test alone (before min_samples/end)
};

struct Verdict {
  VerdictKind verdict = VerdictKind::kContinue;
  std::string reason;         // one sentence for humans
  Clock::Duration elapsed{};  // since the step started
  bool max_duration_reached = false;
  double alpha = 0;
  uint64_t min_samples = 0;
  SlotSummary canary, stable;
  ProportionTest errors;
  std::optional<ProportionTest> latency;         // absent until the latency test starts
  std::optional<double> latency_threshold_us;    // the frozen stable percentile + tolerance
  std::optional<Clock::Duration> latency_since;  // when the latency test started (step time)
};

class CanaryJudge {
 public:
  // `config` must pass ValidateCanaryJudgeConfig (asserted).
  CanaryJudge(CanaryJudgeConfig config, Clock::TimePoint step_start);

  // `canary` and `stable` hold everything since the step started. `now` must not go back.
  // Act on the first promote or rollback: each call recomputes from the data it is given.
  Verdict Evaluate(Clock::TimePoint now, const SlotData& canary, const SlotData& stable);

  const CanaryJudgeConfig& config() const { return config_; }

 private:
  CanaryJudgeConfig config_;
  Clock::TimePoint step_start_;
  // Taken once, at the evaluation that starts the latency test.
  std::optional<uint64_t> latency_threshold_us_;
  Clock::Duration latency_since_{};
  metrics::Histogram::Counts canary_latency_at_start_, stable_latency_at_start_;
};

// The upper edge (µs) of the bucket holding the p-th percentile (not clamped to max_us, so
// CountAtOrBelow(edge) includes that whole bucket); 0 for an empty histogram.
uint64_t PercentileBucketUpperUs(const metrics::Histogram::Counts& h, double p);

}  // namespace turnout::judge
