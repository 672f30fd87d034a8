// Per-slot and per-instance request metrics, recorded lock-free on the router's request path.
//
// Model: a SlotMetrics (one per slot, also one per instance) holds one Shard per worker thread.
// A shard has exactly one writer (its worker), which updates relaxed atomics without locks or
// allocation. Readers (admin API, judge, Prometheus exposition) sum the shards; their view is
// eventually consistent to within the requests in flight.
//
// Latencies go into log-linear histograms (HdrHistogram-style: relative error below 1 %, range
// 1 µs .. ~1 h), kept both cumulatively (for Prometheus) and in a sliding window of one-second
// buckets (for "the last 60 s", p50/p95/p99/p99.9).
//
// Example (a worker):
//   metrics::RequestSample s{.status = 200, .total = 1.2ms, .upstream = 1.0ms, ...};
//   slot_metrics.shard(worker_index).Record(s, clock.Now());
// Example (a reader):
//   metrics::WindowSnapshot w = slot_metrics.Window(std::chrono::seconds(60), clock.Now());
//   double p95 = w.total_latency.Percentile(95.0);

#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"

namespace turnout::metrics {

// Why the router itself answered instead of an upstream (or aborted the client).
enum class RouterError : uint8_t {
  kBadRequest = 0,     // 400 malformed request
  kHeadTooLarge,       // 431
  kUriTooLong,         // 414
  kHeadTimeout,        // 408 (slowloris)
  kNoHealthyUpstream,  // 503
  kUpstreamConnect,    // 502 connect failed
  kUpstreamReset,      // 502 upstream closed/reset before a complete response head
  kUpstreamBadResponse,// 502 invalid response framing
  kUpstreamTimeout,    // 504
  kUpstreamAbort,      // upstream broke mid-response: client connection aborted
  kClientAbort,        // the client went away mid-request
  kConnectionLimit,    // refused: connection limit reached
  kCount,
};
std::string_view RouterErrorName(RouterError e);  // "upstream_timeout", ...

// A latency histogram with fixed log-linear buckets. Not thread-safe by itself: the shard that
// owns it has one writer; readers use Snapshot() to copy it with relaxed loads.
class Histogram {
 public:
  static constexpr int kSubBuckets = 128;  // per power of two -> < 1 % relative error
  static constexpr int kPowers = 32;       // 1 µs .. 2^32 µs
  static constexpr int kBuckets = kSubBuckets * kPowers;

  void Record(std::chrono::nanoseconds value);  // writer only; relaxed atomic increments
  void Clear();                                 // writer only

  // A plain (non-atomic) copy used for merging and reading.
  struct Counts {
    std::vector<uint64_t> buckets;  // size kBuckets, or empty when count == 0
    uint64_t count = 0;
    uint64_t sum_us = 0;
    uint64_t max_us = 0;

    void Merge(const Counts& other);
    // Value (µs) at percentile p in [0, 100]; 0 when count == 0. Returns the upper edge of the
    // bucket holding that rank, clamped to max_us.
    double PercentileUs(double p) const;
    // Count of values <= le_us (for Prometheus `le` buckets).
    uint64_t CountAtOrBelow(double le_us) const;
  };
  void AddTo(Counts* into) const;  // any thread

  static int BucketIndex(uint64_t value_us);
  static uint64_t BucketUpperUs(int index);

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_us_{0};
  std::atomic<uint64_t> max_us_{0};
};

struct RequestSample {
  int status = 0;                        // status sent to the client (0 when aborted)
  std::chrono::nanoseconds total{};      // first request byte -> last response byte
  std::chrono::nanoseconds upstream{};   // upstream request sent -> response head received
  uint64_t bytes_in = 0;                 // request bytes read from the client
  uint64_t bytes_out = 0;                // response bytes written to the client
  bool router_error = false;             // true when the router generated/aborted the response
  RouterError error = RouterError::kBadRequest;  // valid when router_error
};

// Aggregated counters: cumulative or over a window.
struct Counters {
  uint64_t requests = 0;
  std::array<uint64_t, 6> by_class{};  // index 1..5 = 1xx..5xx; 0 = aborted (no status)
  std::array<uint64_t, static_cast<size_t>(RouterError::kCount)> router_errors{};
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  // 5xx + aborted, over requests; 0 when requests == 0.
  double ErrorRate() const;
};

struct WindowSnapshot {
  std::chrono::seconds window{};
  Counters counters;
  Histogram::Counts total_latency;
  Histogram::Counts upstream_latency;
};

struct CumulativeSnapshot {
  Counters counters;
  Histogram::Counts total_latency;
  Histogram::Counts upstream_latency;
  int64_t in_flight = 0;
};

// Metrics of one slot (or one instance). Create with the number of writer shards (workers).
class SlotMetrics {
 public:
  // `window_seconds`: how many one-second buckets the sliding window keeps. Default: 300.
  SlotMetrics(int shards, int window_seconds = 300);
  ~SlotMetrics();

  class Shard;
  Shard& shard(int index);

  // In-flight gauge (writer side): +1 when a request is routed here, -1 when it ends.
  // Summed across shards by readers.

  CumulativeSnapshot Cumulative() const;
  // The last `window` (<= window_seconds) ending at `now`.
  WindowSnapshot Window(std::chrono::seconds window, Clock::TimePoint now) const;
  int64_t InFlight() const;

 private:
  std::vector<std::unique_ptr<Shard>> shards_;
  int window_seconds_;
};

class SlotMetrics::Shard {
 public:
  explicit Shard(int window_seconds);
  void Record(const RequestSample& sample, Clock::TimePoint now);  // writer only
  void AddInFlight(int64_t delta);                                  // writer only
  // (internal layout is the implementation's; readers go through SlotMetrics)
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ~Shard();
};

// Prometheus text exposition (format 0.0.4) of a set of labelled SlotMetrics.
class PrometheusWriter {
 public:
  explicit PrometheusWriter(std::string* out);
  ~PrometheusWriter();
  // Writes all turnout_* series of `m` with the given labels, e.g. {{"slot","green"}}.
  // Series: turnout_requests_total, turnout_responses_total{code_class},
  // turnout_router_errors_total{reason}, turnout_requests_in_flight,
  // turnout_request_bytes_total, turnout_response_bytes_total,
  // turnout_request_duration_seconds (histogram), turnout_upstream_duration_seconds (histogram).
  // HELP/TYPE lines are written once per metric name across calls.
  void Write(const std::vector<std::pair<std::string, std::string>>& labels,
             const SlotMetrics& m);
  void Finish();  // writes the metric families collected so far, grouped by name

 private:
  std::string* out_;
  struct Family;
  std::vector<std::unique_ptr<Family>> families_;
};

}  // namespace turnout::metrics
