#include "judge/canary_judge.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "judge/judge_json.h"

namespace turnout::judge {
namespace {

using std::chrono::seconds;

// One slot's traffic since the step started, generated a second at a time.
class SimSlot {
 public:
  SimSlot(double requests_per_second, double error_rate, double median_latency_us)
      : rps_(requests_per_second), error_rate_(error_rate), median_us_(median_latency_us) {}

  void Tick(std::mt19937_64& rng) {
    std::poisson_distribution<uint64_t> arrivals(rps_);
    const uint64_t n = arrivals(rng);
    std::bernoulli_distribution error(error_rate_);
    std::lognormal_distribution<double> latency(std::log(median_us_), 0.5);
    if (n > 0 && data_.latency.buckets.empty()) {
      data_.latency.buckets.assign(metrics::Histogram::kBuckets, 0);
    }
    for (uint64_t i = 0; i < n; ++i) {
      const bool failed = error(rng);
      data_.counters.requests++;
      data_.counters.by_class[failed ? 5 : 2]++;
      const auto us = static_cast<uint64_t>(latency(rng));
      data_.latency.buckets[metrics::Histogram::BucketIndex(us)]++;
      data_.latency.count++;
      data_.latency.sum_us += us;
      data_.latency.max_us = std::max(data_.latency.max_us, us);
    }
  }
  void set_error_rate(double r) { error_rate_ = r; }
  const SlotData& data() const { return data_; }

 private:
  double rps_, error_rate_, median_us_;
  SlotData data_;
};

struct RunOutcome {
  Verdict verdict;
  int seconds = 0;
};

// Runs one canary step, judged every second, until a final verdict or the step's end.
RunOutcome RunStep(const CanaryJudgeConfig& config, SimSlot canary, SimSlot stable, uint64_t seed) {
  std::mt19937_64 rng(seed);
  ManualClock clock;
  CanaryJudge judge(config, clock.Now());
  RunOutcome out;
  for (;;) {
    clock.Advance(seconds(1));
    ++out.seconds;
    canary.Tick(rng);
    stable.Tick(rng);
    out.verdict = judge.Evaluate(clock.Now(), canary.data(), stable.data());
    if (out.verdict.verdict == VerdictKind::kPromote ||
        out.verdict.verdict == VerdictKind::kRollback || out.verdict.max_duration_reached) {
      return out;
    }
  }
}

TEST(CanaryJudge, NoFalseRollbackOver200HealthyCanariesCheckedEverySecond) {
  CanaryJudgeConfig config;
  config.max_duration = std::chrono::minutes(5);
  int rollbacks = 0, promotions = 0, other = 0;
  int promote_seconds = 0;
  for (uint64_t run = 0; run < 200; ++run) {
    // 5 % canary weight: 20 req/s against 380 req/s, both with 1 % errors, same latency.
    RunOutcome o =
        RunStep(config, SimSlot(20, 0.01, 20'000), SimSlot(380, 0.01, 20'000), 1000 + run);
    if (o.verdict.verdict == VerdictKind::kRollback) {
      ++rollbacks;
      ADD_FAILURE() << "false rollback in run " << run << ": " << o.verdict.reason;
    } else if (o.verdict.verdict == VerdictKind::kPromote) {
      ++promotions;
      promote_seconds += o.seconds;
    } else {
      ++other;
    }
  }
  std::printf("healthy canaries: %d rollbacks, %d promotions (mean %.1f s), %d undecided\n",
              rollbacks, promotions, promotions ? 1.0 * promote_seconds / promotions : 0.0, other);
  EXPECT_EQ(rollbacks, 0);
  EXPECT_EQ(promotions, 200);
}

TEST(CanaryJudge, ErrorRateDriftSharedByBothSlotsIsNoReasonToRollBack) {
  // Noisy traffic: the error rate of both slots jumps between 0.2 % and 4 % every 20 s (a bad
  // client, a flaky dependency), which the canary shares with the stable slot.
  int rollbacks = 0;
  for (uint64_t run = 0; run < 50; ++run) {
    std::mt19937_64 rng(9000 + run);
    ManualClock clock;
    CanaryJudge judge(CanaryJudgeConfig{}, clock.Now());
    SimSlot canary(30, 0.002, 20'000), stable(570, 0.002, 20'000);
    for (int s = 1; s <= 600; ++s) {
      const double rate = (s / 20) % 2 == 0 ? 0.002 : 0.04;
      canary.set_error_rate(rate);
      stable.set_error_rate(rate);
      clock.Advance(seconds(1));
      canary.Tick(rng);
      stable.Tick(rng);
      Verdict v = judge.Evaluate(clock.Now(), canary.data(), stable.data());
      if (v.verdict == VerdictKind::kRollback) ++rollbacks;
      if (v.verdict == VerdictKind::kRollback || v.verdict == VerdictKind::kPromote) break;
    }
  }
  EXPECT_EQ(rollbacks, 0);
}

// Runs `runs` seeded steps that must all roll back with `reason` in their verdict.
std::vector<RunOutcome> ExpectRollbacks(int runs, uint64_t seed, const SimSlot& canary,
                                        const SimSlot& stable, std::string_view reason) {
  std::vector<RunOutcome> out;
  for (int run = 0; run < runs; ++run) {
    RunOutcome o = RunStep(CanaryJudgeConfig{}, canary, stable, seed + run);
    EXPECT_EQ(o.verdict.verdict, VerdictKind::kRollback) << o.verdict.reason;
    EXPECT_NE(o.verdict.reason.find(reason), std::string::npos) << o.verdict.reason;
    out.push_back(std::move(o));
  }
  return out;
}

TEST(CanaryJudge, TenPercentErrorsAgainstHalfAPercentRollsBackWithinAFewHundredRequests) {
  uint64_t worst_requests = 0;
  for (const RunOutcome& o :
       ExpectRollbacks(20, 77, SimSlot(50, 0.10, 20'000), SimSlot(950, 0.005, 20'000),
                       "error rate worse than tolerated")) {
    EXPECT_GT(o.verdict.errors.bounds.lower, CanaryJudgeConfig{}.error_margin);
    EXPECT_LT(o.verdict.errors.p_values.harm, CanaryJudgeConfig{}.alpha);
    worst_requests = std::max(worst_requests, o.verdict.canary.requests);
  }
  std::printf("10%% vs 0.5%% errors: rolled back after at most %llu canary requests\n",
              static_cast<unsigned long long>(worst_requests));
  EXPECT_LE(worst_requests, 500u);
}

TEST(CanaryJudge, LatencyRegressionIsRolledBack) {
  int worst_seconds = 0;
  // Canary median 40 ms against 20 ms, no extra errors.
  for (const RunOutcome& o :
       ExpectRollbacks(10, 500, SimSlot(50, 0.001, 40'000), SimSlot(950, 0.001, 20'000),
                       "latency worse than tolerated")) {
    ASSERT_TRUE(o.verdict.latency.has_value());
    ASSERT_TRUE(o.verdict.latency_threshold_us.has_value());
    // The threshold is the stable p95 plus the 2 ms tolerance: about a quarter of the canary
    // is above it, and about 5 % of the stable requests (judged on other requests than the
    // ones the threshold came from, so a little more or less).
    EXPECT_GT(o.verdict.latency->canary_rate, 0.2);
    EXPECT_LT(o.verdict.latency->stable_rate, 0.07);
    EXPECT_GT(o.verdict.canary.p95_us, o.verdict.stable.p95_us);
    worst_seconds = std::max(worst_seconds, o.seconds);
  }
  std::printf("latency x2: rolled back within %d s\n", worst_seconds);
  EXPECT_LE(worst_seconds, 10);
}

TEST(CanaryJudge, ASubMillisecondDifferenceIsNotALatencyRegression) {
  // A fast service: the fresh canary answers in 1.3 ms where the warm stable slot takes 1 ms.
  // That is below the latency tolerance, so the canary is promoted, every time.
  CanaryJudgeConfig config;
  config.max_duration = std::chrono::minutes(2);
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    RunOutcome o = RunStep(config, SimSlot(100, 0.001, 1'300), SimSlot(900, 0.001, 1'000), seed);
    EXPECT_EQ(o.verdict.verdict, VerdictKind::kPromote) << o.verdict.reason;
  }
  // Without the tolerance the same difference is caught as a regression.
  config.latency_tolerance = Clock::Duration::zero();
  RunOutcome strict = RunStep(config, SimSlot(100, 0.001, 1'300), SimSlot(900, 0.001, 1'000), 1);
  EXPECT_EQ(strict.verdict.verdict, VerdictKind::kRollback) << strict.verdict.reason;
}

// `n` successful requests of `us` microseconds each.
void AddRequests(SlotData* d, uint64_t us, uint64_t n) {
  if (d->latency.buckets.empty()) d->latency.buckets.assign(metrics::Histogram::kBuckets, 0);
  d->counters.requests += n;
  d->counters.by_class[2] += n;
  d->latency.buckets[metrics::Histogram::BucketIndex(us)] += n;
  d->latency.count += n;
  d->latency.sum_us += us * n;
  d->latency.max_us = std::max(d->latency.max_us, us);
}

// One second of the warm stable slot (and of a warm healthy canary, `scale` times as many):
// 94.4 % at 0.3 ms, 5 % at 1 ms, 0.55 % at 4 ms (slower than p95 + the 2 ms tolerance).
void WarmSecond(SlotData* d, uint64_t scale) {
  AddRequests(d, 300, 850 * scale);
  AddRequests(d, 1'000, 45 * scale);
  AddRequests(d, 4'000, 5 * scale);
}

// The false rollbacks of healthy canaries on a loaded machine (bench/judge, 10 of 50): the
// canary's first requests, from a process that has just started, through connections just
// opened, at a weight just set, are slower than the warm stable slot's; afterwards it answers
// like the stable slot. Recorded: "requests slower than stable p95 (3.055ms) canary 20.63% of
// 189 vs stable 0.5482% of 1,824". The judge compared the canary's cold start with the stable
// slot's steady state, and took the threshold from the same stable requests it then judged.
// Fixed samples: the canary's first 100 requests have 40 % at 4 ms, then it is warm.
TEST(CanaryJudge, AColdStartOfTheCanaryIsNotALatencyRegression) {
  CanaryJudgeConfig config;
  config.max_duration = std::chrono::minutes(2);
  ManualClock clock;
  CanaryJudge judge(config, clock.Now());
  SlotData canary, stable;
  // Second 1: the cold start (100 canary requests at 10 % weight).
  AddRequests(&canary, 300, 60);
  AddRequests(&canary, 4'000, 40);
  WarmSecond(&stable, 1);
  Verdict v;
  int seconds_judged = 0;
  for (; seconds_judged < 120; ++seconds_judged) {
    clock.Advance(seconds(1));
    v = judge.Evaluate(clock.Now(), canary, stable);
    ASSERT_NE(v.verdict, VerdictKind::kRollback)
        << "second " << seconds_judged + 1 << ": " << v.reason << "\n"
        << ToJsonText(ToJson(v));
    if (v.verdict == VerdictKind::kPromote) break;
    // Then warm: 100 canary requests a second, the stable slot's distribution.
    AddRequests(&canary, 300, 94);
    AddRequests(&canary, 1'000, 5);
    AddRequests(&canary, 4'000, 1);
    WarmSecond(&stable, 1);
  }
  EXPECT_EQ(v.verdict, VerdictKind::kPromote) << v.reason;
  // The test started at the first evaluation with min_samples requests in both slots, and
  // counted only what came after it.
  ASSERT_TRUE(v.latency_since.has_value());
  EXPECT_EQ(*v.latency_since, seconds(1));
  ASSERT_TRUE(v.latency.has_value());
  EXPECT_EQ(v.latency->canary_n, v.canary.requests - 100);
  EXPECT_EQ(v.latency->stable_n, v.stable.requests - 900);
  // The threshold: the stable p95's bucket edge (1 ms) plus the 2 ms tolerance.
  ASSERT_TRUE(v.latency_threshold_us.has_value());
  EXPECT_GE(*v.latency_threshold_us, 3'000);
  EXPECT_LT(*v.latency_threshold_us, 3'010);
}

// The same step with a canary 300 ms slower from its first request: still rolled back, by the
// latency test, one evaluation after it starts.
TEST(CanaryJudge, A300MillisecondRegressionIsRolledBackOnceTheLatencyTestStarts) {
  ManualClock clock;
  CanaryJudge judge(CanaryJudgeConfig{}, clock.Now());
  SlotData canary, stable;
  Verdict v;
  int second = 0;
  while (second < 10) {
    AddRequests(&canary, 300'300, 60);
    WarmSecond(&stable, 1);
    clock.Advance(seconds(1));
    ++second;
    v = judge.Evaluate(clock.Now(), canary, stable);
    if (v.verdict == VerdictKind::kRollback) break;
  }
  EXPECT_EQ(v.verdict, VerdictKind::kRollback) << v.reason;
  EXPECT_NE(v.reason.find("latency worse than tolerated"), std::string::npos) << v.reason;
  // 60 canary requests a second: min_samples (100) after 2 s, then one more second of test.
  EXPECT_EQ(second, 3);
}

TEST(CanaryJudge, LowTrafficIsInsufficientDataAndNeverPromotes) {
  CanaryJudgeConfig config;
  config.max_duration = std::chrono::minutes(5);
  std::mt19937_64 rng(9);
  ManualClock clock;
  CanaryJudge judge(config, clock.Now());
  SimSlot canary(0.1, 0.0, 20'000), stable(5, 0.0, 20'000);
  Verdict v;
  for (int s = 0; s < 300; ++s) {
    clock.Advance(seconds(1));
    canary.Tick(rng);
    stable.Tick(rng);
    v = judge.Evaluate(clock.Now(), canary.data(), stable.data());
    ASSERT_EQ(v.verdict, VerdictKind::kInsufficientData) << s << ": " << v.reason;
  }
  EXPECT_TRUE(v.max_duration_reached);
  EXPECT_NE(v.reason.find("at the end of the step"), std::string::npos) << v.reason;
}

TEST(CanaryJudge, FewRequestsThatAllFailStillRollBack) {
  // A confidence sequence is valid from the first request: a dead canary need not wait for
  // min_samples.
  ManualClock clock;
  CanaryJudge judge(CanaryJudgeConfig{}, clock.Now());
  SlotData canary, stable;
  canary.counters.requests = 30;
  canary.counters.by_class[5] = 30;
  stable.counters.requests = 3000;
  stable.counters.by_class[2] = 3000;
  clock.Advance(seconds(2));
  Verdict v = judge.Evaluate(clock.Now(), canary, stable);
  EXPECT_EQ(v.verdict, VerdictKind::kRollback) << v.reason;
  EXPECT_EQ(v.canary.errors, 30u);
}

TEST(CanaryJudge, UndecidedStepEndsWithTheEndPolicy) {
  // 1.5 % vs 1 %: within the 1 pp + 50 % tolerance, but too close to tell at this traffic.
  CanaryJudgeConfig config;
  config.judge_latency = false;
  config.max_duration = seconds(60);
  SlotData canary, stable;
  canary.counters.requests = 400;
  canary.counters.by_class[5] = 6;
  stable.counters.requests = 400;
  stable.counters.by_class[5] = 4;
  ManualClock clock;
  CanaryJudge judge(config, clock.Now());
  clock.Advance(seconds(30));
  EXPECT_EQ(judge.Evaluate(clock.Now(), canary, stable).verdict, VerdictKind::kContinue);
  clock.Advance(seconds(30));
  Verdict v = judge.Evaluate(clock.Now(), canary, stable);
  EXPECT_EQ(v.verdict, VerdictKind::kPromote);
  EXPECT_NE(v.reason.find("end policy promote"), std::string::npos);

  config.end_policy = EndPolicy::kRollback;
  CanaryJudge strict(config, clock.Now() - seconds(60));
  EXPECT_EQ(strict.Evaluate(clock.Now(), canary, stable).verdict, VerdictKind::kRollback);
}

TEST(CanaryJudge, VerdictJsonCarriesTheEvidence) {
  ManualClock clock;
  CanaryJudge judge(CanaryJudgeConfig{}, clock.Now());
  std::mt19937_64 rng(3);
  SimSlot canary(50, 0.10, 20'000), stable(950, 0.005, 20'000);
  Verdict v;
  for (int s = 0; s < 60 && v.verdict != VerdictKind::kRollback; ++s) {
    clock.Advance(seconds(1));
    canary.Tick(rng);
    stable.Tick(rng);
    v = judge.Evaluate(clock.Now(), canary.data(), stable.data());
  }
  nlohmann::json j = ToJson(v);
  EXPECT_EQ(j["verdict"], "rollback");
  EXPECT_EQ(j["canary"]["requests"], v.canary.requests);
  EXPECT_EQ(j["errors"]["canary_x"], v.canary.errors);
  EXPECT_EQ(j["errors"]["excess_bounds"].size(), 2u);
  EXPECT_LT(j["errors"]["p_value_harm"].get<double>(), 0.05);
  EXPECT_EQ(j["alpha"], 0.05);
  EXPECT_TRUE(j.contains("latency_threshold_us"));
  EXPECT_GT(j["elapsed_ms"].get<int64_t>(), 0);
  EXPECT_FALSE(ToJsonText(j).empty());
}

TEST(CanaryJudge, SlotSinceSubtractsTheStepStart) {
  metrics::SlotMetrics m(1);
  ManualClock clock;
  metrics::RequestSample ok{.status = 200, .total = std::chrono::milliseconds(5)};
  metrics::RequestSample bad{.status = 503, .total = std::chrono::milliseconds(50)};
  for (int i = 0; i < 10; ++i) m.shard(0).Record(bad, clock.Now());
  metrics::CumulativeSnapshot start = m.Cumulative();
  for (int i = 0; i < 7; ++i) m.shard(0).Record(ok, clock.Now());
  m.shard(0).Record(bad, clock.Now());
  SlotData d = SlotSince(start, m.Cumulative());
  EXPECT_EQ(d.counters.requests, 8u);
  EXPECT_EQ(d.counters.by_class[5], 1u);
  EXPECT_EQ(d.latency.count, 8u);
  EXPECT_EQ(d.latency.sum_us, 7u * 5000 + 50000);
  EXPECT_EQ(d.latency.CountAtOrBelow(static_cast<double>(
                metrics::Histogram::BucketUpperUs(metrics::Histogram::BucketIndex(5000)))),
            7u);

  SlotData w = SlotFromWindow(m.Window(seconds(60), clock.Now()));
  EXPECT_EQ(w.counters.requests, 18u);
  EXPECT_EQ(w.latency.count, 18u);
}

TEST(CanaryJudge, PercentileBucketUpperEdgeIncludesTheWholeBucket) {
  metrics::Histogram::Counts h;
  h.buckets.assign(metrics::Histogram::kBuckets, 0);
  h.buckets[metrics::Histogram::BucketIndex(1000)] = 95;
  h.buckets[metrics::Histogram::BucketIndex(9000)] = 5;
  h.count = 100;
  h.max_us = 9000;
  const uint64_t edge = PercentileBucketUpperUs(h, 95);
  EXPECT_GE(edge, 1000u);
  EXPECT_LT(edge, 1010u);
  EXPECT_EQ(h.CountAtOrBelow(static_cast<double>(edge)), 95u);
  EXPECT_EQ(PercentileBucketUpperUs(metrics::Histogram::Counts{}, 95), 0u);
}

TEST(CanaryJudge, ConfigValidation) {
  EXPECT_TRUE(ValidateCanaryJudgeConfig(CanaryJudgeConfig{}).ok());
  CanaryJudgeConfig c;
  c.alpha = 0;
  EXPECT_FALSE(ValidateCanaryJudgeConfig(c).ok());
  c = {};
  c.error_margin = -0.1;
  EXPECT_FALSE(ValidateCanaryJudgeConfig(c).ok());
  c = {};
  c.latency_percentile = 100;
  EXPECT_FALSE(ValidateCanaryJudgeConfig(c).ok());
  c = {};
  c.min_samples = 0;
  EXPECT_FALSE(ValidateCanaryJudgeConfig(c).ok());
  c = {};
  c.max_duration = {};
  EXPECT_FALSE(ValidateCanaryJudgeConfig(c).ok());
}

}  // namespace
}  // namespace turnout::judge
