// What one evaluation costs the controller's once-a-second loop.

#include <benchmark/benchmark.h>

#include "judge/canary_judge.h"
#include "judge/rule_engine.h"

namespace turnout::judge {
namespace {

metrics::WindowSnapshot Window(uint64_t requests, uint64_t errors) {
  metrics::WindowSnapshot w;
  w.window = std::chrono::seconds(60);
  w.counters.requests = requests;
  w.counters.by_class[2] = requests - errors;
  w.counters.by_class[5] = errors;
  w.total_latency.buckets.assign(metrics::Histogram::kBuckets, 0);
  for (uint64_t i = 0; i < requests; ++i) {
    const uint64_t us = 5'000 + (i * 7919) % 40'000;
    w.total_latency.buckets[metrics::Histogram::BucketIndex(us)]++;
    w.total_latency.sum_us += us;
    w.total_latency.max_us = std::max(w.total_latency.max_us, us);
  }
  w.total_latency.count = requests;
  return w;
}

void BM_CanaryJudgeEvaluate(benchmark::State& state) {
  ManualClock clock;
  CanaryJudge judge(CanaryJudgeConfig{}, clock.Now());
  const SlotData canary = SlotFromWindow(Window(3'000, 40));
  const SlotData stable = SlotFromWindow(Window(57'000, 570));
  for (auto _ : state) {
    benchmark::DoNotOptimize(judge.Evaluate(clock.Now(), canary, stable));
  }
}
BENCHMARK(BM_CanaryJudgeEvaluate);

void BM_RuleEngineEvaluate(benchmark::State& state) {
  std::vector<Rule> rules;
  for (const char* e : {"error_rate > 5% for 2m", "p95 > 2s for 5m", "p99 > baseline * 1.5 for 1m",
                        "health failing for 30s", "dependency postgres unavailable for 10s"}) {
    rules.push_back(*ParseRule(e));
  }
  RuleEngine engine(rules);
  const metrics::WindowSnapshot fresh = Window(3'000, 40), stable = Window(57'000, 570);
  Inputs in;
  in.window = [&](SlotRole role, std::chrono::seconds) -> std::optional<metrics::WindowSnapshot> {
    return role == SlotRole::kNew ? fresh : stable;
  };
  in.health = Condition{.ok = true, .since = {}};
  in.dependencies["postgres"] = Condition{.ok = true, .since = {}};
  ManualClock clock;
  for (auto _ : state) {
    clock.Advance(std::chrono::seconds(1));
    benchmark::DoNotOptimize(engine.Evaluate(clock.Now(), in));
  }
}
BENCHMARK(BM_RuleEngineEvaluate);

void BM_ParseRule(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(ParseRule("p99 > baseline * 1.5 for 1m"));
}
BENCHMARK(BM_ParseRule);

}  // namespace
}  // namespace turnout::judge

BENCHMARK_MAIN();
