#include "judge/canary_judge.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "judge/format.h"
#include "judge/rule_engine.h"

namespace turnout::judge {
namespace {

std::string PercentText(double fraction) { return FormatPercent(fraction); }

SlotSummary Summarize(const SlotData& d) {
  SlotSummary s;
  s.requests = d.counters.requests;
  s.errors = std::min(ErrorCount(d.counters), s.requests);
  s.error_rate = ErrorRate(d.counters);
  s.p50_us = d.latency.PercentileUs(50);
  s.p95_us = d.latency.PercentileUs(95);
  s.p99_us = d.latency.PercentileUs(99);
  s.mean_us = d.latency.MeanUs();
  s.upstream_requests = d.upstream_latency.count;
  s.upstream_p50_us = d.upstream_latency.PercentileUs(50);
  s.upstream_p95_us = d.upstream_latency.PercentileUs(95);
  s.upstream_mean_us = d.upstream_latency.MeanUs();
  return s;
}

ProportionTest RunTest(uint64_t cx, uint64_t cn, uint64_t sx, uint64_t sn, double margin,
                       double relative, double alpha) {
  ProportionTest t;
  t.canary_n = cn;
  t.canary_x = std::min(cx, cn);
  t.stable_n = sn;
  t.stable_x = std::min(sx, sn);
  t.canary_rate = cn == 0 ? 0.0 : static_cast<double>(t.canary_x) / static_cast<double>(cn);
  t.stable_rate = sn == 0 ? 0.0 : static_cast<double>(t.stable_x) / static_cast<double>(sn);
  t.margin = margin;
  t.relative_margin = relative;
  t.bounds = RateDifferenceBounds(t.canary_x, cn, t.stable_x, sn, relative, alpha);
  t.p_values = RateDifferencePValues(t.canary_x, cn, t.stable_x, sn, relative, margin);
  if (t.bounds.lower > margin) {
    t.verdict = VerdictKind::kRollback;
  } else if (t.bounds.upper <= margin) {
    t.verdict = VerdictKind::kPromote;
  }
  return t;
}

std::string TestText(std::string_view what, const ProportionTest& t) {
  return std::string(what) + " canary " + PercentText(t.canary_rate) + " of " +
         FormatCount(t.canary_n) + " vs stable " + PercentText(t.stable_rate) + " of " +
         FormatCount(t.stable_n) + ", excess bound [" + PercentText(t.bounds.lower) + ", " +
         PercentText(t.bounds.upper) + "] vs margin " + PercentText(t.margin);
}

metrics::Histogram::Counts Subtract(const metrics::Histogram::Counts& now,
                                    const metrics::Histogram::Counts& start) {
  metrics::Histogram::Counts out;
  if (now.count == 0) return out;
  out.buckets = now.buckets;
  uint64_t n = 0;
  for (size_t i = 0; i < out.buckets.size(); ++i) {
    const uint64_t before = i < start.buckets.size() ? start.buckets[i] : 0;
    out.buckets[i] = out.buckets[i] > before ? out.buckets[i] - before : 0;
    n += out.buckets[i];
  }
  if (n == 0) return {};
  out.count = n;
  out.sum_us = now.sum_us > start.sum_us ? now.sum_us - start.sum_us : 0;
  out.max_us = now.max_us;
  return out;
}

}  // namespace

std::string_view VerdictName(VerdictKind v) {
  switch (v) {
    case VerdictKind::kPromote:
      return "promote";
    case VerdictKind::kRollback:
      return "rollback";
    case VerdictKind::kContinue:
      return "continue";
    case VerdictKind::kInsufficientData:
      return "insufficient_data";
  }
  return "unknown";
}

std::string_view EndPolicyName(EndPolicy p) {
  return p == EndPolicy::kPromote ? "promote" : "rollback";
}

Status ValidateCanaryJudgeConfig(const CanaryJudgeConfig& c) {
  auto in = [](double v, double lo, double hi) { return v >= lo && v < hi; };
  if (!(c.alpha > 0 && c.alpha <= 0.5)) {
    return InvalidArgument("canary judge: alpha must be in (0, 0.5], got " + FormatNumber(c.alpha));
  }
  if (!in(c.error_margin, 0, 1) || !in(c.error_relative_margin, 0, 100)) {
    return InvalidArgument("canary judge: error margins must be >= 0 (absolute below 1)");
  }
  if (!in(c.latency_margin, 0, 1) || !in(c.latency_relative_margin, 0, 100)) {
    return InvalidArgument("canary judge: latency margins must be >= 0 (absolute below 1)");
  }
  if (!(c.latency_percentile > 0 && c.latency_percentile < 100)) {
    return InvalidArgument("canary judge: latency_percentile must be in (0, 100), got " +
                           FormatNumber(c.latency_percentile));
  }
  if (c.min_samples == 0) return InvalidArgument("canary judge: min_samples must be >= 1");
  if (c.latency_tolerance < Clock::Duration::zero()) {
    return InvalidArgument("canary judge: latency_tolerance must be >= 0");
  }
  if (c.max_duration <= Clock::Duration::zero()) {
    return InvalidArgument("canary judge: max_duration must be > 0");
  }
  return Status::Ok();
}

SlotData SlotFromWindow(const metrics::WindowSnapshot& w) {
  return SlotData{w.counters, w.total_latency, w.upstream_latency};
}

SlotData SlotSince(const metrics::CumulativeSnapshot& start,
                   const metrics::CumulativeSnapshot& now) {
  SlotData d;
  auto sub = [](uint64_t a, uint64_t b) { return a > b ? a - b : 0; };
  const metrics::Counters& a = now.counters;
  const metrics::Counters& b = start.counters;
  d.counters.requests = sub(a.requests, b.requests);
  for (size_t i = 0; i < a.by_class.size(); ++i) {
    d.counters.by_class[i] = sub(a.by_class[i], b.by_class[i]);
  }
  for (size_t i = 0; i < a.router_errors.size(); ++i) {
    d.counters.router_errors[i] = sub(a.router_errors[i], b.router_errors[i]);
  }
  d.counters.bytes_in = sub(a.bytes_in, b.bytes_in);
  d.counters.bytes_out = sub(a.bytes_out, b.bytes_out);
  d.latency = Subtract(now.total_latency, start.total_latency);
  d.upstream_latency = Subtract(now.upstream_latency, start.upstream_latency);
  return d;
}

uint64_t PercentileBucketUpperUs(const metrics::Histogram::Counts& h, double p) {
  if (h.count == 0 || h.buckets.empty()) return 0;
  p = std::clamp(p, 0.0, 100.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(h.count)));
  rank = std::clamp<uint64_t>(rank, 1, h.count);
  uint64_t seen = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    seen += h.buckets[i];
    if (seen >= rank) return metrics::Histogram::BucketUpperUs(static_cast<int>(i));
  }
  return metrics::Histogram::BucketUpperUs(static_cast<int>(h.buckets.size()) - 1);
}

CanaryJudge::CanaryJudge(CanaryJudgeConfig config, Clock::TimePoint step_start)
    : config_(config), step_start_(step_start) {
  assert(ValidateCanaryJudgeConfig(config_).ok());
}

Verdict CanaryJudge::Evaluate(Clock::TimePoint now, const SlotData& canary,
                              const SlotData& stable) {
  const CanaryJudgeConfig& c = config_;
  Verdict v;
  v.elapsed = now - step_start_;
  v.max_duration_reached = v.elapsed >= c.max_duration;
  v.alpha = c.alpha;
  v.min_samples = c.min_samples;
  v.canary = Summarize(canary);
  v.stable = Summarize(stable);

  v.errors = RunTest(v.canary.errors, v.canary.requests, v.stable.errors, v.stable.requests,
                     c.error_margin, c.error_relative_margin, c.alpha);

  // The latency test starts once both slots have min_samples requests: the threshold comes
  // from the stable slot's requests until then and is kept, and both slots are tested on their
  // requests from then on (the same time, data the threshold was not taken from).
  if (c.judge_latency && !latency_threshold_us_ && stable.latency.count >= c.min_samples &&
      canary.latency.count >= c.min_samples) {
    latency_threshold_us_ =
        PercentileBucketUpperUs(stable.latency, c.latency_percentile) +
        static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(c.latency_tolerance).count());
    latency_since_ = v.elapsed;
    canary_latency_at_start_ = canary.latency;
    stable_latency_at_start_ = stable.latency;
  }
  if (c.judge_latency && latency_threshold_us_) {
    const double t = static_cast<double>(*latency_threshold_us_);
    v.latency_threshold_us = t;
    v.latency_since = latency_since_;
    const metrics::Histogram::Counts ch = Subtract(canary.latency, canary_latency_at_start_);
    const metrics::Histogram::Counts sh = Subtract(stable.latency, stable_latency_at_start_);
    const uint64_t cn = ch.count, sn = sh.count;
    const uint64_t cslow = cn - std::min(cn, ch.CountAtOrBelow(t));
    const uint64_t sslow = sn - std::min(sn, sh.CountAtOrBelow(t));
    v.latency = RunTest(cslow, cn, sslow, sn, c.latency_margin, c.latency_relative_margin, c.alpha);
  }

  const std::string latency_name =
      "requests slower than stable p" + FormatNumber(c.latency_percentile) +
      (v.latency_threshold_us ? " (" + FormatLatencyUs(*v.latency_threshold_us) + ")" : "");

  // Rollback on evidence, at any sample size.
  if (v.errors.verdict == VerdictKind::kRollback) {
    v.verdict = VerdictKind::kRollback;
    v.reason = "error rate worse than tolerated: " + TestText("errors", v.errors);
    return v;
  }
  if (v.latency && v.latency->verdict == VerdictKind::kRollback) {
    v.verdict = VerdictKind::kRollback;
    v.reason = "latency worse than tolerated: " + TestText(latency_name, *v.latency);
    return v;
  }

  const uint64_t canary_samples =
      c.judge_latency ? std::min(v.canary.requests, canary.latency.count) : v.canary.requests;
  const uint64_t stable_samples =
      c.judge_latency ? std::min(v.stable.requests, stable.latency.count) : v.stable.requests;
  const bool enough = canary_samples >= c.min_samples && stable_samples >= c.min_samples &&
                      (!c.judge_latency || v.latency.has_value());
  if (!enough) {
    v.verdict = VerdictKind::kInsufficientData;
    v.reason = "insufficient data: needs " + FormatCount(c.min_samples) +
               " requests per slot, canary has " + FormatCount(canary_samples) + ", stable has " +
               FormatCount(stable_samples) +
               (v.max_duration_reached ? " at the end of the step" : "");
    return v;
  }

  const bool errors_ok = v.errors.verdict == VerdictKind::kPromote;
  const bool latency_ok = !c.judge_latency || v.latency->verdict == VerdictKind::kPromote;
  if (errors_ok && latency_ok) {
    v.verdict = VerdictKind::kPromote;
    v.reason = "canary within tolerance: " + TestText("errors", v.errors) +
               (v.latency ? "; " + TestText(latency_name, *v.latency) : "");
    return v;
  }
  if (v.max_duration_reached) {
    v.verdict =
        c.end_policy == EndPolicy::kPromote ? VerdictKind::kPromote : VerdictKind::kRollback;
    v.reason = "no decision within the step's maximum time; end policy " +
               std::string(EndPolicyName(c.end_policy)) + ": " + TestText("errors", v.errors) +
               (v.latency ? "; " + TestText(latency_name, *v.latency) : "");
    return v;
  }
  v.verdict = VerdictKind::kContinue;
  v.reason = "not decided yet: " + TestText("errors", v.errors) +
             (v.latency ? "; " + TestText(latency_name, *v.latency) : "");
  return v;
}

}  // namespace turnout::judge
