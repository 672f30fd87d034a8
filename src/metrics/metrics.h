// Per-slot and per-instance request metrics, recorded lock-free on the router's request path.
//
// Model: a SlotMetrics (one per slot, also one per instance) holds one Shard per worker thread.
// A shard has exactly one writer (its worker), which updates relaxed atomics without locks,
// allocation or syscalls. Readers (admin API, judge, Prometheus exposition) sum the shards from
// any thread; their view is eventually consistent to within the requests being recorded.
//
// Latencies go into log-linear histograms (HdrHistogram-style), at two resolutions:
//   - cumulative (since start, for Prometheus): Histogram, 128 sub-buckets per power of two,
//     relative error < 1/128 (0.8 %), range 0 .. 2^32 µs (~71 min);
//   - sliding window (for "the last 60 s", p50/p95/p99/p99.9): a ring of one-second buckets,
//     each with two 32-sub-bucket histograms, relative error < 1/32 (3.2 %), range
//     0 .. 2^27 µs (~134 s). The cumulative resolution would cost 26 KiB per histogram per
//     second; the coarse one costs 2.9 KiB (uint32 counts: one second never sees 2^32 requests).
// Values beyond a range land in the last bucket, which percentiles report as the observed max.
// Window snapshots are returned in the fine layout (every coarse bucket is a union of fine
// buckets with the same upper edge), so all Histogram::Counts can be merged with each other.
//
// Memory per SlotMetrics per shard with the default 120-second window:
//   window      120 s x 6 KiB (2 x 736 buckets x 4 B + counters)  ~ 0.70 MiB
//   cumulative  2 x 3328 buckets x 8 B                             ~ 0.05 MiB
//   total                                                          ~ 0.75 MiB
// (e.g. 4 workers x (3 slots + 12 instances) ~ 45 MiB).
//
// Example (a worker):
//   metrics::RequestSample s{.status = 200, .total = 1200us, .upstream = 1000us, ...};
//   slot_metrics.shard(worker_index).Record(s, clock.Now());
// Example (a reader):
//   metrics::WindowSnapshot w = slot_metrics.Window(std::chrono::seconds(60), clock.Now());
//   double p95_us = w.total_latency.PercentileUs(95.0);

#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace turnout::metrics {

// Why the router itself answered instead of an upstream (or aborted the client).
enum class RouterError : uint8_t {
  kBadRequest = 0,       // 400 malformed request
  kHeadTooLarge,         // 431
  kUriTooLong,           // 414
  kHeadTimeout,          // 408 (slowloris)
  kNoHealthyUpstream,    // 503
  kUpstreamConnect,      // 502 connect failed
  kUpstreamReset,        // 502 upstream closed/reset before a complete response head
  kUpstreamBadResponse,  // 502 invalid response framing
  kUpstreamTimeout,      // 504
  kUpstreamAbort,        // upstream broke mid-response: client connection aborted
  kClientAbort,          // the client went away mid-request
  kConnectionLimit,      // refused: connection limit reached
  kMaintenance,          // 503 with Retry-After: the policy's maintenance mode
  kCount,
};
// Stable snake_case name used as the Prometheus `reason` label and in JSON: "bad_request",
// "head_too_large", "uri_too_long", "head_timeout", "no_healthy_upstream", "upstream_connect",
// "upstream_reset", "upstream_bad_response", "upstream_timeout", "upstream_abort",
// "client_abort", "connection_limit", "maintenance"; "unknown" for values out of range.
std::string_view RouterErrorName(RouterError e);

// A latency histogram with fixed log-linear buckets, values in whole microseconds (nanoseconds
// are truncated). Bucket layout: values below 2 * kSubBuckets have a bucket each (exact); above,
// each power of two [2^e, 2^(e+1)) is split into kSubBuckets equal buckets, so a bucket's width
// is below 1/kSubBuckets of its values. The last bucket also takes every value beyond the range.
//
// Thread-safety: one writer (Record, Clear) at a time; any number of concurrent readers
// (AddTo), which may see a recording half done (e.g. the bucket but not yet the sum).
class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;          // -> < 0.8 % relative error
  static constexpr int kRangeBits = 32;                            // 0 .. 2^32 µs (~71 min)
  static constexpr int kPowers = kRangeBits - kSubBucketBits + 1;  // rows of kSubBuckets
  static constexpr int kBuckets = kSubBuckets * kPowers;           // 3328 (26 KiB)

  void Record(std::chrono::nanoseconds value);  // writer only; negative values count as 0
  void RecordUs(uint64_t value_us);             // writer only
  void Clear();                                 // writer only

  // A plain (non-atomic) copy used for merging and reading.
  struct Counts {
    std::vector<uint64_t> buckets;  // size kBuckets, or empty when count == 0
    uint64_t count = 0;             // always the sum of `buckets`
    uint64_t sum_us = 0;
    uint64_t max_us = 0;

    void Merge(const Counts& other);
    // Value (µs) at percentile p in [0, 100] (clamped into it): the upper edge of the bucket
    // holding rank ceil(p / 100 * count) (rank 1 for p == 0), clamped to max_us; 0 when
    // count == 0. For values within the range: never below the exact value at that rank, and
    // above it by less than 1/kSubBuckets relative (1/32 for window snapshots).
    double PercentileUs(double p) const;
    // Count of values in buckets whose upper edge is <= le_us (for Prometheus `le` buckets).
    // Values in the one bucket that straddles le_us are counted above it.
    uint64_t CountAtOrBelow(double le_us) const;
    double MeanUs() const { return count == 0 ? 0.0 : static_cast<double>(sum_us) / count; }
  };
  void AddTo(Counts* into) const;  // any thread

  static int BucketIndex(uint64_t value_us);
  // Largest value of the bucket; UINT64_MAX for the last bucket (it also holds overflow).
  static uint64_t BucketUpperUs(int index);

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> sum_us_{0};  // (the count is the sum of the buckets)
  std::atomic<uint64_t> max_us_{0};
};

struct RequestSample {
  int status = 0;                    // status sent to the client (0 when aborted)
  std::chrono::nanoseconds total{};  // first request byte -> last response byte
  // Upstream request sent -> response head received. Zero when no upstream response head was
  // received (e.g. a 400 from the router, a connect failure): then it is not recorded.
  std::chrono::nanoseconds upstream{};
  uint64_t bytes_in = 0;      // request bytes read from the client
  uint64_t bytes_out = 0;     // response bytes written to the client
  bool router_error = false;  // true when the router generated/aborted the response
  RouterError error = RouterError::kBadRequest;  // valid when router_error
};

// Aggregated counters: cumulative or over a window.
struct Counters {
  uint64_t requests = 0;
  // Index 1..5 = 1xx..5xx; 0 = aborted (no status). A status outside 100..599 other than 0 is
  // counted as 5xx: only a broken upstream sends one. Router errors count into the class of the
  // status they sent (and into router_errors[reason]).
  std::array<uint64_t, 6> by_class{};
  std::array<uint64_t, static_cast<size_t>(RouterError::kCount)> router_errors{};
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  // (5xx + aborted) / requests; 0 when requests == 0.
  double ErrorRate() const;
  void Merge(const Counters& other);
};

struct WindowSnapshot {
  std::chrono::seconds window{};  // the window actually covered (clamped to window_seconds)
  Counters counters;
  Histogram::Counts total_latency;     // fine layout, 1/32 resolution (see top of file)
  Histogram::Counts upstream_latency;  // fine layout, 1/32 resolution
};

struct CumulativeSnapshot {
  Counters counters;
  Histogram::Counts total_latency;
  Histogram::Counts upstream_latency;
  int64_t in_flight = 0;
};

// Metrics of one slot (or one instance). Create with the number of writer shards (workers).
// Not copyable or movable: shards are handed out by reference to the workers.
//
// Sliding window: each shard keeps a ring of `window_seconds` one-second buckets, each stamped
// with the second (of Clock::TimePoint, floor) it holds. Record(now) lands in the bucket of
// now's second; when that bucket still holds an older second, the writer clears it first.
// Window(w, now) sums the buckets stamped in (now - w, now] (whole seconds, so the current,
// partial second is included and the oldest second is dropped as soon as it is w old). A
// reader that races with the writer clearing a bucket skips that bucket: it may miss the
// requests of that one bucket (at most the newest second of one shard), never sees a half
// cleared bucket as data. A sample whose second is older than the one its bucket already holds
// (more than window_seconds behind) is counted cumulatively only.
class SlotMetrics {
 public:
  // `shards` >= 1. `window_seconds`: how many one-second buckets the sliding window keeps,
  // >= 1. Default: 120 (enough for "p95 over the last 60 s" evaluated every second).
  explicit SlotMetrics(int shards, int window_seconds = 120);
  ~SlotMetrics();
  SlotMetrics(const SlotMetrics&) = delete;
  SlotMetrics& operator=(const SlotMetrics&) = delete;

  class Shard;
  // 0 <= index < shards(); the reference is valid for the life of this object.
  Shard& shard(int index);
  int shards() const { return static_cast<int>(shards_.size()); }
  int window_seconds() const { return window_seconds_; }

  // Any thread. Allocates (the snapshot's vectors); a few tens of µs per shard for Window().
  CumulativeSnapshot Cumulative() const;
  // The last `window` (clamped to 0 .. window_seconds) ending at `now`.
  WindowSnapshot Window(std::chrono::seconds window, Clock::TimePoint now) const;
  // In-flight gauge: the sum of the shards' AddInFlight deltas.
  int64_t InFlight() const;

 private:
  std::vector<std::unique_ptr<Shard>> shards_;
  int window_seconds_;
};

class SlotMetrics::Shard {
 public:
  explicit Shard(int window_seconds);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Writer only (the shard's worker). No locks, no allocation, no syscalls.
  void Record(const RequestSample& sample, Clock::TimePoint now);
  // Writer only: +1 when a request is routed here, -1 when it ends (on the same worker).
  void AddInFlight(int64_t delta);

  // (internal layout is the implementation's; readers go through SlotMetrics)
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Prometheus text exposition (format 0.0.4) of a set of labelled SlotMetrics.
//
// Write() collects samples; Finish() appends them to *out, one HELP and one TYPE line per
// metric family followed by all samples of that family, families in order of first use. Label
// values are escaped (\\, \", \n); label names that are not [a-zA-Z_][a-zA-Z0-9_]* get their
// bad characters replaced by '_'. Histograms have the fixed `le` bounds (seconds) .001 .0025
// .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 +Inf, with `_sum` in seconds and `_count`.
// Not thread-safe; use one writer per exposition.
class PrometheusWriter {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  explicit PrometheusWriter(std::string* out);  // `out` must outlive the writer
  ~PrometheusWriter();

  // Writes all turnout_* series of `m` with the given labels, e.g. {{"slot","green"}}.
  // Series: turnout_requests_total, turnout_responses_total{code_class="1xx".."5xx"|"aborted"},
  // turnout_router_errors_total{reason}, turnout_requests_in_flight,
  // turnout_request_bytes_total, turnout_response_bytes_total,
  // turnout_request_duration_seconds (histogram), turnout_upstream_duration_seconds (histogram).
  void Write(const Labels& labels, const SlotMetrics& m);

  // One sample of another family (e.g. the router's own gauges). `type` is "counter" or
  // "gauge"; a family's HELP/TYPE come from its first use.
  void Add(std::string_view name, std::string_view help, std::string_view type,
           const Labels& labels, double value);

  // Appends the families collected so far, grouped by name, and forgets them.
  void Finish();

 private:
  struct Family;
  Family& GetFamily(std::string_view name, std::string_view help, std::string_view type);

  std::string* out_;
  std::vector<std::unique_ptr<Family>> families_;
};

}  // namespace turnout::metrics
