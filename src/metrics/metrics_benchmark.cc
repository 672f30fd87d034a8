// Cost of Shard::Record on the request path, and of the readers' snapshots.

#include <benchmark/benchmark.h>

#include "metrics/metrics.h"

namespace turnout::metrics {
namespace {

const Clock::TimePoint kStart{std::chrono::hours(1)};

// Many requests per second with varied latencies: the common case (no bucket reset).
void BM_Record(benchmark::State& state) {
  SlotMetrics m(1);
  SlotMetrics::Shard& s = m.shard(0);
  RequestSample r;
  r.status = 200;
  r.bytes_in = 300;
  r.bytes_out = 2000;
  uint64_t i = 0;
  for (auto _ : state) {
    r.total = std::chrono::microseconds(100 + (i * 7919) % 100'000);
    r.upstream = r.total - std::chrono::microseconds(50);
    // Advances one simulated second every 10'000 records, so bucket resets are included.
    s.Record(r, kStart + std::chrono::microseconds(i * 100));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Record);

// Worst case for the writer: every record lands in a new second (clears a 6 KiB bucket).
void BM_RecordNewSecondEachTime(benchmark::State& state) {
  SlotMetrics m(1);
  SlotMetrics::Shard& s = m.shard(0);
  RequestSample r;
  r.status = 200;
  r.total = std::chrono::milliseconds(3);
  int64_t sec = 0;
  for (auto _ : state) s.Record(r, kStart + std::chrono::seconds(sec++));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordNewSecondEachTime);

void BM_Window60s(benchmark::State& state) {
  const int shards = static_cast<int>(state.range(0));
  SlotMetrics m(shards);
  RequestSample r;
  r.status = 200;
  for (int sh = 0; sh < shards; ++sh) {
    for (int i = 0; i < 120'000; ++i) {
      r.total = std::chrono::microseconds(100 + i % 5000);
      m.shard(sh).Record(r, kStart + std::chrono::milliseconds(i));
    }
  }
  const auto now = kStart + std::chrono::seconds(120);
  for (auto _ : state) benchmark::DoNotOptimize(m.Window(std::chrono::seconds(60), now));
}
BENCHMARK(BM_Window60s)->Arg(1)->Arg(4);

}  // namespace
}  // namespace turnout::metrics

BENCHMARK_MAIN();
