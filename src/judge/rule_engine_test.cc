#include "judge/rule_engine.h"

#include <gtest/gtest.h>

#include "judge/judge_json.h"

namespace turnout::judge {
namespace {

using std::chrono::seconds;

Rule R(std::string_view expr) {
  Result<Rule> r = ParseRule(expr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return *r;
}

// A window with `requests` requests, `errors` of them 5xx, all with latency `latency_us`.
metrics::WindowSnapshot Snapshot(uint64_t requests, uint64_t errors, uint64_t latency_us,
                                 seconds window = seconds(30)) {
  metrics::WindowSnapshot w;
  w.window = window;
  w.counters.requests = requests;
  w.counters.by_class[5] = errors;
  w.counters.by_class[2] = requests - errors;
  if (requests > 0) {
    w.total_latency.buckets.assign(metrics::Histogram::kBuckets, 0);
    w.total_latency.buckets[metrics::Histogram::BucketIndex(latency_us)] = requests;
    w.total_latency.count = requests;
    w.total_latency.sum_us = requests * latency_us;
    w.total_latency.max_us = latency_us;
  }
  return w;
}

// Inputs whose new slot shows `fresh` and whose stable slot shows `stable` (if any), whatever
// the window asked for; records the windows asked for.
struct FakeSlots {
  std::optional<metrics::WindowSnapshot> fresh;
  std::optional<metrics::WindowSnapshot> stable;
  std::vector<std::pair<SlotRole, seconds>> asked;

  Inputs MakeInputs() {
    Inputs in;
    in.window = [this](SlotRole role, seconds w) -> std::optional<metrics::WindowSnapshot> {
      asked.emplace_back(role, w);
      return role == SlotRole::kNew ? fresh : stable;
    };
    return in;
  }
};

class RuleEngineTest : public ::testing::Test {
 protected:
  ManualClock clock_;
};

TEST_F(RuleEngineTest, ErrorRateIsPendingThenFiringAfterItsForDuration) {
  RuleEngine engine({R("error_rate > 5% for 2m")});
  FakeSlots slots;
  slots.fresh = Snapshot(1234, 121, 1000);  // 9.8 %
  Inputs in = slots.MakeInputs();
  const Clock::TimePoint start = clock_.Now();

  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].state, RuleState::kPending);
  EXPECT_EQ(r[0].since, start);
  EXPECT_NEAR(r[0].observed, 121.0 / 1234, 1e-12);
  EXPECT_DOUBLE_EQ(r[0].threshold, 0.05);
  EXPECT_EQ(r[0].samples, 1234u);
  EXPECT_EQ(slots.asked.at(0), std::make_pair(SlotRole::kNew, seconds(120)));

  for (int i = 1; i < 120; ++i) {
    clock_.Advance(seconds(1));
    r = engine.Evaluate(clock_.Now(), in);
    ASSERT_EQ(r[0].state, RuleState::kPending) << "after " << i << " s";
  }
  clock_.Advance(seconds(1));
  r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kFiring);
  EXPECT_EQ(r[0].sentence, "error_rate 9.806% > 5% for 2m (1,234 requests in the last 2m)");
  Decision d = Decide(r);
  EXPECT_EQ(d.action, Action::kRollback);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_EQ(d.reasons[0],
            "critical firing: error_rate > 5% for 2m: error_rate 9.806% > 5% for 2m (1,234 "
            "requests in the last 2m)");
}

TEST_F(RuleEngineTest, OneFalseEvaluationResetsTheRun) {
  RuleEngine engine({R("error_rate > 5% for 10s")});
  FakeSlots slots;
  Inputs in = slots.MakeInputs();
  slots.fresh = Snapshot(1000, 100, 1000);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[0].state, RuleState::kPending);
    clock_.Advance(seconds(1));
  }
  slots.fresh = Snapshot(1000, 10, 1000);  // 1 %: fine
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kOk);
  EXPECT_EQ(r[0].sentence, "error_rate 1% not > 5% (1,000 requests in the last 10s)");
  EXPECT_EQ(Decide(r).action, Action::kContinue);
  EXPECT_TRUE(Decide(r).reasons.empty());
  slots.fresh = Snapshot(1000, 100, 1000);
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(seconds(1));
    EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[0].state, RuleState::kPending) << i;
  }
  clock_.Advance(seconds(1));
  EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[0].state, RuleState::kFiring);
}

TEST_F(RuleEngineTest, AFlappingConditionNeverFires) {
  // Noisy data around the threshold: 4 % and 6 % errors on alternate seconds for 10 minutes.
  RuleEngine engine({R("error_rate > 5% for 2m")});
  FakeSlots slots;
  Inputs in = slots.MakeInputs();
  for (int s = 0; s < 600; ++s) {
    slots.fresh = Snapshot(1000, s % 2 == 0 ? 60 : 40, 1000);
    std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
    ASSERT_NE(r[0].state, RuleState::kFiring) << s;
    ASSERT_EQ(r[0].state, s % 2 == 0 ? RuleState::kPending : RuleState::kOk) << s;
    clock_.Advance(seconds(1));
  }
}

TEST_F(RuleEngineTest, AGapLongerThanMaxGapRestartsTheRun) {
  RuleEngine engine({R("error_rate > 5% for 5s")});
  FakeSlots slots;
  slots.fresh = Snapshot(1000, 100, 1000);
  Inputs in = slots.MakeInputs();
  EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[0].state, RuleState::kPending);
  clock_.Advance(seconds(2));  // exactly max_gap: still continuous
  EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[0].state, RuleState::kPending);
  clock_.Advance(seconds(3));  // a 3 s gap: the engine did not watch; restart here
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kPending);
  EXPECT_EQ(r[0].since, clock_.Now());
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(seconds(1));
    r = engine.Evaluate(clock_.Now(), in);
  }
  EXPECT_EQ(r[0].state, RuleState::kFiring);
}

TEST_F(RuleEngineTest, WithoutForTheFirstTrueEvaluationFires) {
  RuleEngine engine({R("p95 > 2s")});
  FakeSlots slots;
  slots.fresh = Snapshot(100, 0, 2'500'000);
  Inputs in = slots.MakeInputs();
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kFiring);
  EXPECT_GE(r[0].observed, 2'500'000);
  EXPECT_LT(r[0].observed, 2'500'000 * (1 + 1.0 / 32));
}

// One evaluation of an error-rate rule with `policy` over 12 requests (min_samples is 50).
std::vector<RuleResult> EvaluateStarved(InsufficientDataPolicy policy, Clock::TimePoint now) {
  Rule rule = R("error_rate > 5% for 10s");
  rule.on_insufficient_data = policy;
  RuleEngine engine({rule});
  FakeSlots slots;
  slots.fresh = Snapshot(12, 12, 1000);  // 100 % errors, but only 12 requests
  return engine.Evaluate(now, slots.MakeInputs());
}

TEST_F(RuleEngineTest, TooFewRequestsIsInsufficientDataThatWaitWaitsForAndPassLists) {
  struct Case {
    InsufficientDataPolicy policy;
    bool waiting;
    std::string_view reason_prefix;
  };
  for (const Case& c : {Case{InsufficientDataPolicy::kWait, true, "waiting for data: "},
                        Case{InsufficientDataPolicy::kPass, false, "passed by policy: "}}) {
    std::vector<RuleResult> r = EvaluateStarved(c.policy, clock_.Now());
    EXPECT_EQ(r[0].state, RuleState::kInsufficientData);
    EXPECT_TRUE(r[0].insufficient_data);
    EXPECT_EQ(r[0].sentence, "insufficient data: error_rate: needs 50 requests in 10s, has 12");
    Decision d = Decide(r);
    EXPECT_EQ(d.action, Action::kContinue);
    EXPECT_EQ(d.waiting_for_data, c.waiting);
    ASSERT_EQ(d.reasons.size(), 1u);  // never silent, whatever the policy
    EXPECT_EQ(d.reasons[0].rfind(c.reason_prefix, 0), 0u) << d.reasons[0];
  }
}

TEST_F(RuleEngineTest, FailPolicyFiresAfterForWithoutData) {
  Rule rule = R("p95 > 2s for 10s");
  rule.on_insufficient_data = InsufficientDataPolicy::kFail;
  RuleEngine engine({rule});
  FakeSlots slots;  // no metrics at all for the new slot
  Inputs in = slots.MakeInputs();
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kPending);
  EXPECT_TRUE(r[0].insufficient_data);
  EXPECT_EQ(Decide(r).action, Action::kContinue);
  clock_.Advance(seconds(10));
  // (a 10 s jump is a gap: the run restarts, so tick through it)
  r = engine.Evaluate(clock_.Now(), in);
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(seconds(1));
    r = engine.Evaluate(clock_.Now(), in);
  }
  EXPECT_EQ(r[0].state, RuleState::kFiring);
  EXPECT_EQ(r[0].sentence,
            "insufficient data, failing by policy: p95: no metrics for the new slot for 10s");
  EXPECT_EQ(Decide(r).action, Action::kRollback);
}

TEST_F(RuleEngineTest, BaselineComparesWithTheStableSlotOverTheSameWindow) {
  RuleEngine engine({R("p99 > baseline * 1.5 for 1m")});
  FakeSlots slots;
  slots.fresh = Snapshot(500, 0, 300'000);
  Inputs in = slots.MakeInputs();
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kInsufficientData);
  EXPECT_EQ(r[0].sentence, "insufficient data: p99: no baseline (stable) slot to compare with");

  slots.stable = Snapshot(40, 0, 100'000);
  r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kInsufficientData);
  EXPECT_EQ(r[0].baseline_samples, 40u);

  slots.stable = Snapshot(5000, 0, 250'000);  // 300 ms is not > 1.5 x 250 ms
  r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kOk);
  ASSERT_TRUE(r[0].baseline.has_value());
  EXPECT_NEAR(r[0].threshold, *r[0].baseline * 1.5, 1e-9);

  slots.stable = Snapshot(5000, 0, 100'000);  // 300 ms > 1.5 x 100 ms
  r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kPending);
  EXPECT_NE(r[0].sentence.find("x 1.5)"), std::string::npos) << r[0].sentence;
  bool asked_baseline_same_window = false;
  for (auto& [role, w] : slots.asked) {
    if (role == SlotRole::kBaseline) asked_baseline_same_window = w == seconds(60);
  }
  EXPECT_TRUE(asked_baseline_same_window);
}

TEST_F(RuleEngineTest, HealthUsesTheTimeTheFailureBegan) {
  RuleEngine engine({R("health failing for 30s")});
  Inputs in;
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kInsufficientData);

  in.health = Condition{.ok = true, .since = clock_.Now()};
  EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[0].state, RuleState::kOk);

  in.health = Condition{.ok = false, .since = clock_.Now() - seconds(20)};
  r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kPending);
  EXPECT_EQ(r[0].sentence, "health failing for 20s of 30s");
  clock_.Advance(seconds(10));
  r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kFiring);
  EXPECT_EQ(r[0].sentence, "health failing for 30s");
  EXPECT_EQ(Decide(r).action, Action::kRollback);
}

TEST_F(RuleEngineTest, DependencyUnavailable) {
  Rule rule = R("dependency postgres unavailable for 10s");
  rule.severity = Severity::kWarning;
  RuleEngine engine({rule});
  Inputs in;
  EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[0].state, RuleState::kInsufficientData);
  in.dependencies["postgres"] = Condition{.ok = false, .since = {}};  // since unknown: from now
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kPending);
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(seconds(1));
    r = engine.Evaluate(clock_.Now(), in);
  }
  EXPECT_EQ(r[0].state, RuleState::kFiring);
  EXPECT_EQ(r[0].sentence, "dependency postgres unavailable for 10s");
  Decision d = Decide(r);
  EXPECT_EQ(d.action, Action::kWarn);  // a warning notifies, never rolls back
  in.dependencies["postgres"].ok = true;
  EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[0].state, RuleState::kOk);
}

TEST_F(RuleEngineTest, ExternalMetricGoesStale) {
  RuleEngine engine({R("metric db_connections > 90")});
  Inputs in;
  in.external["db_connections"] = ExternalValue{95, clock_.Now()};
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kFiring);
  EXPECT_EQ(r[0].sentence, "metric db_connections 95 > 90");
  clock_.Advance(seconds(31));
  r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kInsufficientData);
  EXPECT_EQ(r[0].sentence, "insufficient data: metric db_connections: the latest value is 31s old");
}

TEST_F(RuleEngineTest, RequestRateNeedsNoMinimumSamples) {
  RuleEngine engine({R("request_rate < 1/s")});
  FakeSlots slots;
  slots.fresh = Snapshot(15, 0, 1000, seconds(30));  // 0.5/s
  Inputs in = slots.MakeInputs();
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].state, RuleState::kFiring);
  EXPECT_DOUBLE_EQ(r[0].observed, 0.5);
  slots.fresh = Snapshot(0, 0, 0, seconds(0));
  EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[0].state, RuleState::kInsufficientData);
}

TEST_F(RuleEngineTest, DecisionOrdersReasonsAndPicksTheWorstAction) {
  Rule warn = R("p95 > 100ms");
  warn.severity = Severity::kWarning;
  RuleEngine engine({warn, R("error_rate > 50% for 1m"), R("health failing for 30s")});
  FakeSlots slots;
  slots.fresh = Snapshot(1000, 600, 200'000);
  Inputs in = slots.MakeInputs();
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  Decision d = Decide(r);
  EXPECT_EQ(d.action, Action::kWarn);
  ASSERT_EQ(d.reasons.size(), 3u);
  EXPECT_EQ(d.reasons[0].rfind("warning firing: ", 0), 0u);
  EXPECT_EQ(d.reasons[1].rfind("critical pending: ", 0), 0u);
  EXPECT_EQ(d.reasons[2].rfind("waiting for data: ", 0), 0u);
  EXPECT_EQ(engine.RequiredWindows(), (std::vector<seconds>{seconds(1), seconds(60)}));

  nlohmann::json j = ToJson(r[1], clock_.Now());
  EXPECT_EQ(j["state"], "pending");
  EXPECT_EQ(j["pending_for_ms"], 0);
  EXPECT_EQ(j["window_ms"], 60000);
  EXPECT_EQ(j["samples"], 1000);
  EXPECT_EQ(ToJson(d)["action"], "warn");

  engine.Reset();
  clock_.Advance(seconds(1));
  EXPECT_EQ(engine.Evaluate(clock_.Now(), in)[1].since, clock_.Now());
}

// A slot's real sliding-window metrics, fed request by request on the manual clock.
class ServedSlot {
 public:
  explicit ServedSlot(ManualClock& clock) : clock_(clock), metrics_(1) {}

  // `per_second` requests a second for `duration`, every `error_every`-th one a 500 (0: none).
  void Serve(seconds duration, int per_second, int error_every) {
    const auto gap = std::chrono::duration_cast<Clock::Duration>(seconds(1)) / per_second;
    for (int64_t i = 0; i < duration.count() * per_second; ++i) {
      clock_.Advance(gap);
      metrics::RequestSample s;
      s.status = error_every > 0 && ++served_ % error_every == 0 ? 500 : 200;
      s.total = std::chrono::milliseconds(2);
      metrics_.shard(0).Record(s, clock_.Now());
    }
  }

  Inputs MakeInputs() {
    Inputs in;
    in.window = [this](SlotRole role, seconds w) -> std::optional<metrics::WindowSnapshot> {
      if (role != SlotRole::kNew) return std::nullopt;
      asked.push_back(w);
      return metrics_.Window(w, clock_.Now());
    };
    return in;
  }

  std::vector<seconds> asked;

 private:
  ManualClock& clock_;
  metrics::SlotMetrics metrics_;
  int64_t served_ = 0;
};

// The reported fault: with `for 5s` the rule looked at a 30 s window, so a bad version on a slot
// that had served well just before could not fire until the good traffic left the window.
TEST_F(RuleEngineTest, ForFiveSecondsFiresFiveSecondsAndOneEvaluationAfterTheStepStarts) {
  RuleEngine engine({R("error_rate > 5% for 5s")});
  ServedSlot slot(clock_);
  slot.Serve(seconds(60), 100, 0);  // the slot's previous version, healthy
  const Clock::TimePoint step_started = clock_.Now();
  Inputs in = slot.MakeInputs();
  in.since = step_started;
  std::optional<Clock::Duration> fired_after;
  for (int tick = 1; tick <= 40 && !fired_after; ++tick) {
    slot.Serve(seconds(1), 100, 10);  // the new version: 10 % errors at 100 req/s
    std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
    ASSERT_NE(r[0].state, RuleState::kInsufficientData) << r[0].sentence;
    if (r[0].state == RuleState::kFiring) fired_after = clock_.Now() - step_started;
  }
  ASSERT_TRUE(fired_after.has_value());
  // 5 s of `for` plus the one evaluation that first saw the condition.
  EXPECT_EQ(*fired_after, seconds(6));
  // The window followed the rule (5 s) and never reached back before the step (its first
  // second's bucket included).
  EXPECT_EQ(slot.asked.front(), seconds(2));
  EXPECT_EQ(slot.asked.back(), seconds(5));
}

TEST_F(RuleEngineTest, AWindowStartsNoEarlierThanTheStepButKeepsTheRulesLength) {
  RuleConfig c;
  c.expr = "error_rate > 5% for 5s";
  c.window = std::chrono::milliseconds(20'000);
  Result<Rule> rule = MakeRule(c);
  ASSERT_TRUE(rule.ok());
  RuleEngine engine({*rule});
  ServedSlot slot(clock_);
  Inputs in = slot.MakeInputs();
  in.since = clock_.Now();
  slot.Serve(seconds(3), 100, 0);
  std::vector<RuleResult> r = engine.Evaluate(clock_.Now(), in);
  // The step began on a second's boundary 3 s ago: its buckets are that second's and the
  // three after it (the current one holding one request).
  EXPECT_EQ(r[0].window, seconds(4));
  EXPECT_EQ(r[0].sentence, "error_rate 0% not > 5% (300 requests in the last 4s)");
  slot.Serve(seconds(30), 10, 0);
  r = engine.Evaluate(clock_.Now(), in);
  EXPECT_EQ(r[0].window, seconds(20));
  EXPECT_GE(r[0].samples, 190u);
  EXPECT_LE(r[0].samples, 200u);
}

TEST_F(RuleEngineTest, AtASlowerEvaluationIntervalAForStillHolds) {
  // Evaluated every 2 s (analysis_interval: 2s), with the engine's usual lateness.
  RuleConfig config;
  config.expr = "error_rate > 5% for 5s";
  Result<Rule> rule = MakeRule(config, std::chrono::milliseconds(2'000));
  ASSERT_TRUE(rule.ok());
  RuleEngine engine({*rule}, EngineOptions::ForInterval(seconds(2)));
  FakeSlots slots;
  slots.fresh = Snapshot(1000, 100, 1000);
  Inputs in = slots.MakeInputs();
  const Clock::TimePoint start = clock_.Now();
  std::optional<Clock::Duration> fired_after;
  for (int tick = 0; tick < 10 && !fired_after; ++tick) {
    if (engine.Evaluate(clock_.Now(), in)[0].state == RuleState::kFiring) {
      fired_after = clock_.Now() - start;
    }
    clock_.Advance(std::chrono::milliseconds(2'010));
  }
  ASSERT_TRUE(fired_after.has_value()) << "runs broke at every evaluation";
  EXPECT_LE(*fired_after, seconds(5) + seconds(2) + std::chrono::milliseconds(100));
  EXPECT_EQ(EngineOptions::ForInterval(std::chrono::milliseconds(250)).max_gap, seconds(2));
  EXPECT_EQ(EngineOptions::ForInterval(seconds(5)).max_gap, seconds(10));
}

TEST(ErrorCount, ClientAbortsAreNotTheVersionsFault) {
  metrics::Counters c;
  c.requests = 100;
  c.by_class[5] = 3;  // incl. router 502/503/504
  c.by_class[0] = 5;  // aborted
  c.router_errors[static_cast<size_t>(metrics::RouterError::kClientAbort)] = 4;
  c.router_errors[static_cast<size_t>(metrics::RouterError::kUpstreamAbort)] = 1;
  EXPECT_EQ(ErrorCount(c), 4u);
  EXPECT_DOUBLE_EQ(ErrorRate(c), 0.04);
  EXPECT_DOUBLE_EQ(ErrorRate(metrics::Counters{}), 0.0);
}

}  // namespace
}  // namespace turnout::judge
