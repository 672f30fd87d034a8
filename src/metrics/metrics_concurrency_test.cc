// Two writers on two shards record a fixed number of samples while a reader takes snapshots;
// run under ThreadSanitizer (the tsan preset) to check the lock-free protocol.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "metrics/metrics.h"

namespace turnout::metrics {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kPerWriter = 200'000;  // one per simulated millisecond: 200 s, wraps the ring
const Clock::TimePoint kStart{std::chrono::hours(1)};

TEST(MetricsConcurrencyTest, WritersAndReaderAgreeOnExactTotals) {
  SlotMetrics m(2);                     // default 120-second window
  std::atomic<int64_t> progress_ms{0};  // how far writer 0 got, for the reader's "now"
  std::atomic<int> writers_done{0};

  auto writer = [&](int shard) {
    SlotMetrics::Shard& s = m.shard(shard);
    for (int i = 0; i < kPerWriter; ++i) {
      RequestSample r;
      r.status = i % 10 == 0 ? 503 : 200;
      r.total = milliseconds(1 + i % 50);
      r.upstream = milliseconds(1 + i % 40);
      r.bytes_in = 10;
      r.bytes_out = 100;
      s.AddInFlight(1);
      s.Record(r, kStart + milliseconds(i));
      s.AddInFlight(-1);
      if (shard == 0 && i % 1000 == 0) progress_ms.store(i, std::memory_order_relaxed);
    }
    writers_done.fetch_add(1);
  };

  int reads = 0;
  uint64_t last_requests = 0;
  auto reader = [&] {
    while (writers_done.load() < 2) {
      const CumulativeSnapshot c = m.Cumulative();
      // Each counter has one writer and only grows, so the sum never goes back.
      EXPECT_GE(c.counters.requests, last_requests);
      last_requests = c.counters.requests;
      EXPECT_LE(c.counters.requests, 2u * kPerWriter);
      EXPECT_GE(c.in_flight, 0);
      EXPECT_LE(c.in_flight, 2);
      const auto now = kStart + milliseconds(progress_ms.load(std::memory_order_relaxed));
      const WindowSnapshot w = m.Window(seconds(60), now);
      // At most 60 seconds x 1000 samples x 2 shards, however the race with resets goes.
      EXPECT_LE(w.counters.requests, 120'000u);
      EXPECT_LE(w.total_latency.count, 120'000u);
      EXPECT_LE(w.total_latency.max_us, 50'000u);
      ++reads;
    }
  };

  std::thread r(reader);
  std::thread w0(writer, 0);
  std::thread w1(writer, 1);
  w0.join();
  w1.join();
  r.join();
  EXPECT_GT(reads, 0);
  RecordProperty("reads", reads);

  const CumulativeSnapshot c = m.Cumulative();
  EXPECT_EQ(c.counters.requests, 2u * kPerWriter);
  EXPECT_EQ(c.counters.by_class[5], 2u * kPerWriter / 10);
  EXPECT_EQ(c.counters.by_class[2], 2u * kPerWriter * 9 / 10);
  EXPECT_EQ(c.counters.bytes_out, 2u * kPerWriter * 100);
  EXPECT_EQ(c.total_latency.count, 2u * kPerWriter);
  EXPECT_EQ(c.upstream_latency.count, 2u * kPerWriter);
  EXPECT_EQ(c.in_flight, 0);
  EXPECT_EQ(m.InFlight(), 0);

  // The last simulated second is 199; a 120 s window holds seconds 80..199.
  const auto end = kStart + milliseconds(kPerWriter - 1);
  const WindowSnapshot w120 = m.Window(seconds(120), end);
  EXPECT_EQ(w120.counters.requests, 2u * 120 * 1000);
  EXPECT_EQ(w120.total_latency.count, 2u * 120 * 1000);
  EXPECT_EQ(w120.upstream_latency.count, 2u * 120 * 1000);
  EXPECT_DOUBLE_EQ(w120.counters.ErrorRate(), 0.1);
  const WindowSnapshot w60 = m.Window(seconds(60), end);
  EXPECT_EQ(w60.counters.requests, 2u * 60 * 1000);
  EXPECT_EQ(w60.counters.by_class[5], 2u * 60 * 100);
  EXPECT_EQ(w60.total_latency.max_us, 50'000u);
}

}  // namespace
}  // namespace turnout::metrics
