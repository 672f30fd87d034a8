#include "metrics/metrics.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <cmath>
#include <limits>

namespace turnout::metrics {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

// One writer per shard: a plain load + store is enough and cheaper than a locked RMW.
template <typename T>
inline void Bump(std::atomic<T>& a, T delta) {
  a.store(a.load(kRelaxed) + delta, kRelaxed);
}

inline void RaiseMax(std::atomic<uint64_t>& a, uint64_t v) {
  if (v > a.load(kRelaxed)) a.store(v, kRelaxed);
}

// Log-linear layout shared by the fine (cumulative) and coarse (window) histograms.
template <int kSubBits, int kRangeBits>
struct LogLinear {
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr int kBuckets = (kRangeBits - kSubBits + 1) << kSubBits;

  static int Index(uint64_t v) {
    if (v < 2 * kSub) return static_cast<int>(v);
    if (v >= (uint64_t{1} << kRangeBits)) return kBuckets - 1;
    const int shift = std::bit_width(v) - 1 - kSubBits;
    return (shift << kSubBits) + static_cast<int>(v >> shift);
  }

  static uint64_t Upper(int i) {
    if (i >= kBuckets - 1) return std::numeric_limits<uint64_t>::max();
    if (i < static_cast<int>(2 * kSub)) return static_cast<uint64_t>(i);
    const int shift = (i >> kSubBits) - 1;
    const uint64_t sub = static_cast<uint64_t>(i) - (static_cast<uint64_t>(shift) << kSubBits);
    return ((sub + 1) << shift) - 1;
  }
};

using Fine = LogLinear<Histogram::kSubBucketBits, Histogram::kRangeBits>;
static_assert(Fine::kBuckets == Histogram::kBuckets);
using Coarse = LogLinear<5, 27>;
static_assert(Coarse::kBuckets == 736);

// Fine bucket index of each coarse bucket (same upper edge; the last maps to the last).
const std::array<int, Coarse::kBuckets>& CoarseToFine() {
  static const std::array<int, Coarse::kBuckets> table = [] {
    std::array<int, Coarse::kBuckets> t{};
    for (int i = 0; i < Coarse::kBuckets - 1; ++i) {
      t[i] = Fine::Index(Coarse::Upper(i));
      assert(Fine::Upper(t[i]) == Coarse::Upper(i));
    }
    t[Coarse::kBuckets - 1] = Fine::kBuckets - 1;
    return t;
  }();
  return table;
}

uint64_t ToMicros(std::chrono::nanoseconds d) {
  return d.count() <= 0 ? 0 : static_cast<uint64_t>(d.count() / 1000);
}

int StatusClass(int status) {
  if (status == 0) return 0;
  if (status >= 100 && status < 600) return status / 100;
  return 5;
}

constexpr size_t kRouterErrors = static_cast<size_t>(RouterError::kCount);

// Counters as atomics, shared by the cumulative part and each one-second bucket.
struct AtomicCounters {
  std::atomic<uint64_t> requests{0};
  std::array<std::atomic<uint64_t>, 6> by_class{};
  std::array<std::atomic<uint64_t>, kRouterErrors> router_errors{};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};

  void Record(const RequestSample& s) {
    Bump<uint64_t>(requests, 1);
    Bump<uint64_t>(by_class[StatusClass(s.status)], 1);
    if (s.router_error) {
      const auto e = static_cast<size_t>(s.error);
      if (e < kRouterErrors) Bump<uint64_t>(router_errors[e], 1);
    }
    Bump(bytes_in, s.bytes_in);
    Bump(bytes_out, s.bytes_out);
  }
  void Clear() {
    requests.store(0, kRelaxed);
    for (auto& c : by_class) c.store(0, kRelaxed);
    for (auto& c : router_errors) c.store(0, kRelaxed);
    bytes_in.store(0, kRelaxed);
    bytes_out.store(0, kRelaxed);
  }
  void AddTo(Counters* into) const {
    into->requests += requests.load(kRelaxed);
    for (size_t i = 0; i < by_class.size(); ++i) into->by_class[i] += by_class[i].load(kRelaxed);
    for (size_t i = 0; i < kRouterErrors; ++i) {
      into->router_errors[i] += router_errors[i].load(kRelaxed);
    }
    into->bytes_in += bytes_in.load(kRelaxed);
    into->bytes_out += bytes_out.load(kRelaxed);
  }
};

// A coarse histogram for one second: 32-bit counts keep the ring small.
struct CoarseHistogram {
  std::array<std::atomic<uint32_t>, Coarse::kBuckets> buckets{};
  std::atomic<uint64_t> sum_us{0};
  std::atomic<uint64_t> max_us{0};

  void Record(uint64_t us) {
    Bump<uint32_t>(buckets[Coarse::Index(us)], 1);
    Bump(sum_us, us);
    RaiseMax(max_us, us);
  }
  void Clear() {
    for (auto& b : buckets) b.store(0, kRelaxed);
    sum_us.store(0, kRelaxed);
    max_us.store(0, kRelaxed);
  }
};

// A plain copy of a CoarseHistogram, taken before the reader knows whether it is valid.
struct CoarseCopy {
  std::array<uint32_t, Coarse::kBuckets> buckets;
  uint64_t sum_us;
  uint64_t max_us;

  void CopyFrom(const CoarseHistogram& h) {
    for (int i = 0; i < Coarse::kBuckets; ++i) buckets[i] = h.buckets[i].load(kRelaxed);
    sum_us = h.sum_us.load(kRelaxed);
    max_us = h.max_us.load(kRelaxed);
  }
};

// Coarse counts summed over seconds and shards; converted to the fine layout once at the end.
struct CoarseSum {
  std::array<uint64_t, Coarse::kBuckets> buckets{};
  uint64_t sum_us = 0;
  uint64_t max_us = 0;

  void Add(const CoarseCopy& c) {
    for (int i = 0; i < Coarse::kBuckets; ++i) buckets[i] += c.buckets[i];
    sum_us += c.sum_us;
    max_us = std::max(max_us, c.max_us);
  }
  void AddTo(Histogram::Counts* into) const {
    const auto& to_fine = CoarseToFine();
    uint64_t n = 0;
    for (int i = 0; i < Coarse::kBuckets; ++i) {
      if (buckets[i] == 0) continue;
      if (into->buckets.empty()) into->buckets.assign(Histogram::kBuckets, 0);
      into->buckets[to_fine[i]] += buckets[i];
      n += buckets[i];
    }
    if (n == 0) return;
    into->count += n;
    into->sum_us += sum_us;
    into->max_us = std::max(into->max_us, max_us);
  }
};

// A reader's working memory for Window() (~18 KiB, so it lives on the heap).
struct WindowScratch {
  CoarseCopy total_copy;
  CoarseCopy upstream_copy;
  CoarseSum total;
  CoarseSum upstream;
  Counters counters;
};

// Stamps that are never inside a window.
constexpr int64_t kEmpty = std::numeric_limits<int64_t>::min();
constexpr int64_t kClearing = std::numeric_limits<int64_t>::min() + 1;

struct alignas(64) Second {
  std::atomic<int64_t> stamp{kEmpty};
  AtomicCounters counters;
  CoarseHistogram total;
  CoarseHistogram upstream;
};
static_assert(sizeof(Second) <= 6 * 1024, "update the memory budget in metrics.h");

int64_t SecondOf(Clock::TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RouterError

std::string_view RouterErrorName(RouterError e) {
  switch (e) {
    case RouterError::kBadRequest:
      return "bad_request";
    case RouterError::kHeadTooLarge:
      return "head_too_large";
    case RouterError::kUriTooLong:
      return "uri_too_long";
    case RouterError::kHeadTimeout:
      return "head_timeout";
    case RouterError::kNoHealthyUpstream:
      return "no_healthy_upstream";
    case RouterError::kUpstreamConnect:
      return "upstream_connect";
    case RouterError::kUpstreamReset:
      return "upstream_reset";
    case RouterError::kUpstreamBadResponse:
      return "upstream_bad_response";
    case RouterError::kUpstreamTimeout:
      return "upstream_timeout";
    case RouterError::kUpstreamAbort:
      return "upstream_abort";
    case RouterError::kClientAbort:
      return "client_abort";
    case RouterError::kConnectionLimit:
      return "connection_limit";
    case RouterError::kMaintenance:
      return "maintenance";
    case RouterError::kCount:
      break;
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Histogram

int Histogram::BucketIndex(uint64_t value_us) { return Fine::Index(value_us); }
uint64_t Histogram::BucketUpperUs(int index) { return Fine::Upper(index); }

void Histogram::Record(std::chrono::nanoseconds value) { RecordUs(ToMicros(value)); }

void Histogram::RecordUs(uint64_t value_us) {
  Bump<uint64_t>(buckets_[Fine::Index(value_us)], 1);
  Bump(sum_us_, value_us);
  RaiseMax(max_us_, value_us);
}

void Histogram::Clear() {
  for (auto& b : buckets_) b.store(0, kRelaxed);
  sum_us_.store(0, kRelaxed);
  max_us_.store(0, kRelaxed);
}

void Histogram::AddTo(Counts* into) const {
  // count is the sum of the buckets read, so that percentiles stay consistent even when the
  // writer is between its bucket and count stores.
  uint64_t n = 0;
  for (int i = 0; i < kBuckets; ++i) {
    const uint64_t c = buckets_[i].load(kRelaxed);
    if (c == 0) continue;
    if (into->buckets.empty()) into->buckets.assign(kBuckets, 0);
    into->buckets[i] += c;
    n += c;
  }
  if (n == 0) return;
  into->count += n;
  into->sum_us += sum_us_.load(kRelaxed);
  into->max_us = std::max(into->max_us, max_us_.load(kRelaxed));
}

void Histogram::Counts::Merge(const Counts& other) {
  if (other.count == 0) return;
  if (buckets.empty()) buckets.assign(kBuckets, 0);
  for (size_t i = 0; i < buckets.size() && i < other.buckets.size(); ++i) {
    buckets[i] += other.buckets[i];
  }
  count += other.count;
  sum_us += other.sum_us;
  max_us = std::max(max_us, other.max_us);
}

double Histogram::Counts::PercentileUs(double p) const {
  if (count == 0 || buckets.empty()) return 0.0;
  if (!(p >= 0.0)) p = 0.0;  // also NaN
  p = std::min(p, 100.0);
  // The tiny shave keeps e.g. 95 / 100 * 100 = 95.00000000000001 from becoming rank 96.
  const double exact = p / 100.0 * static_cast<double>(count);
  uint64_t rank = static_cast<uint64_t>(std::ceil(exact * (1.0 - 1e-12)));
  rank = std::clamp<uint64_t>(rank, 1, count);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    seen += buckets[i];
    if (seen >= rank) {
      return static_cast<double>(std::min(BucketUpperUs(static_cast<int>(i)), max_us));
    }
  }
  return static_cast<double>(max_us);
}

uint64_t Histogram::Counts::CountAtOrBelow(double le_us) const {
  uint64_t n = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (static_cast<double>(BucketUpperUs(static_cast<int>(i))) > le_us) break;
    n += buckets[i];
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Counters

double Counters::ErrorRate() const {
  if (requests == 0) return 0.0;
  return static_cast<double>(by_class[5] + by_class[0]) / static_cast<double>(requests);
}

void Counters::Merge(const Counters& other) {
  requests += other.requests;
  for (size_t i = 0; i < by_class.size(); ++i) by_class[i] += other.by_class[i];
  for (size_t i = 0; i < router_errors.size(); ++i) router_errors[i] += other.router_errors[i];
  bytes_in += other.bytes_in;
  bytes_out += other.bytes_out;
}

// ---------------------------------------------------------------------------------------------
// Shard

struct alignas(64) SlotMetrics::Shard::Impl {
  explicit Impl(int window_seconds)
      : window(window_seconds), ring(std::make_unique<Second[]>(window_seconds)) {}

  // Clears a bucket for `second` such that a reader either skips it or sees it cleared:
  // the reader copies the data between an acquire load of the stamp and a re-check after an
  // acquire fence; if it read any cleared value, the fences make it see the kClearing (or new)
  // stamp on the re-check, so it drops the copy.
  static void Reset(Second& b, int64_t second) {
    b.stamp.store(kClearing, kRelaxed);
    std::atomic_thread_fence(std::memory_order_release);
    b.counters.Clear();
    b.total.Clear();
    b.upstream.Clear();
    b.stamp.store(second, std::memory_order_release);
  }

  Second* BucketFor(int64_t second) {
    Second& b = ring[static_cast<size_t>(((second % window) + window) % window)];
    const int64_t stamp = b.stamp.load(kRelaxed);
    if (stamp == second) return &b;
    if (stamp > second) return nullptr;  // a newer second owns it: too old for the window
    Reset(b, second);
    return &b;
  }

  // Adds one bucket to the scratch sums if its stamp is in (lo, hi] and stayed so while read.
  static bool AddSecondTo(const Second& b, int64_t lo, int64_t hi, WindowScratch* w) {
    const int64_t before = b.stamp.load(std::memory_order_acquire);
    if (before <= lo || before > hi) return false;
    Counters c;
    b.counters.AddTo(&c);
    w->total_copy.CopyFrom(b.total);
    w->upstream_copy.CopyFrom(b.upstream);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (b.stamp.load(kRelaxed) != before) return false;  // cleared while we read it
    w->counters.Merge(c);
    w->total.Add(w->total_copy);
    w->upstream.Add(w->upstream_copy);
    return true;
  }

  const int window;
  AtomicCounters counters;
  Histogram total;
  Histogram upstream;
  std::atomic<int64_t> in_flight{0};
  std::unique_ptr<Second[]> ring;
};

SlotMetrics::Shard::Shard(int window_seconds)
    : impl_(std::make_unique<Impl>(std::max(1, window_seconds))) {}
SlotMetrics::Shard::~Shard() = default;

void SlotMetrics::Shard::Record(const RequestSample& sample, Clock::TimePoint now) {
  Impl& s = *impl_;
  const uint64_t total_us = ToMicros(sample.total);
  const bool has_upstream = sample.upstream.count() > 0;
  const uint64_t upstream_us = ToMicros(sample.upstream);

  s.counters.Record(sample);
  s.total.RecordUs(total_us);
  if (has_upstream) s.upstream.RecordUs(upstream_us);

  Second* b = s.BucketFor(SecondOf(now));
  if (b == nullptr) return;
  b->counters.Record(sample);
  b->total.Record(total_us);
  if (has_upstream) b->upstream.Record(upstream_us);
}

void SlotMetrics::Shard::AddInFlight(int64_t delta) { Bump(impl_->in_flight, delta); }

// ---------------------------------------------------------------------------------------------
// SlotMetrics

SlotMetrics::SlotMetrics(int shards, int window_seconds)
    : window_seconds_(std::max(1, window_seconds)) {
  assert(shards >= 1);
  shards_.reserve(static_cast<size_t>(std::max(1, shards)));
  for (int i = 0; i < std::max(1, shards); ++i) {
    shards_.push_back(std::make_unique<Shard>(window_seconds_));
  }
}

SlotMetrics::~SlotMetrics() = default;

SlotMetrics::Shard& SlotMetrics::shard(int index) {
  assert(index >= 0 && index < shards());
  return *shards_[static_cast<size_t>(index)];
}

CumulativeSnapshot SlotMetrics::Cumulative() const {
  CumulativeSnapshot out;
  for (const auto& sh : shards_) {
    const auto& s = *sh->impl_;
    s.counters.AddTo(&out.counters);
    s.total.AddTo(&out.total_latency);
    s.upstream.AddTo(&out.upstream_latency);
    out.in_flight += s.in_flight.load(kRelaxed);
  }
  return out;
}

WindowSnapshot SlotMetrics::Window(std::chrono::seconds window, Clock::TimePoint now) const {
  WindowSnapshot out;
  const int64_t w = std::clamp<int64_t>(window.count(), 0, window_seconds_);
  out.window = std::chrono::seconds(w);
  if (w == 0) return out;
  const int64_t hi = SecondOf(now);
  const int64_t lo = hi - w;
  auto scratch = std::make_unique<WindowScratch>();
  for (const auto& sh : shards_) {
    const auto& s = *sh->impl_;
    for (int i = 0; i < s.window; ++i) {
      Shard::Impl::AddSecondTo(s.ring[static_cast<size_t>(i)], lo, hi, scratch.get());
    }
  }
  out.counters = scratch->counters;
  scratch->total.AddTo(&out.total_latency);
  scratch->upstream.AddTo(&out.upstream_latency);
  return out;
}

int64_t SlotMetrics::InFlight() const {
  int64_t n = 0;
  for (const auto& sh : shards_) n += sh->impl_->in_flight.load(kRelaxed);
  return n;
}

// ---------------------------------------------------------------------------------------------
// PrometheusWriter

namespace {

void AppendDouble(std::string* out, double v) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
    return;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, ec == std::errc() ? end : buf);
}

void AppendEscaped(std::string* out, std::string_view s, bool quotes) {
  for (char c : s) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '"':
        if (quotes) {
          out->append("\\\"");
        } else {
          out->push_back(c);
        }
        break;
      default:
        out->push_back(c);
    }
  }
}

void AppendLabelName(std::string* out, std::string_view name) {
  if (name.empty()) {
    out->push_back('_');
    return;
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    out->push_back(ok ? c : '_');
  }
}

// `{a="x",b="y"}` with an optional extra label last; nothing when there are no labels.
void AppendLabels(std::string* out, const PrometheusWriter::Labels& labels,
                  std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return;
  out->push_back('{');
  bool first = true;
  auto one = [&](std::string_view k, std::string_view v) {
    if (!first) out->push_back(',');
    first = false;
    AppendLabelName(out, k);
    out->append("=\"");
    AppendEscaped(out, v, /*quotes=*/true);
    out->push_back('"');
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out->push_back('}');
}

struct LeBound {
  const char* text;
  double us;
};
constexpr std::array<LeBound, 13> kLeBounds = {{
    {"0.001", 1e3},
    {"0.0025", 2.5e3},
    {"0.005", 5e3},
    {"0.01", 1e4},
    {"0.025", 2.5e4},
    {"0.05", 5e4},
    {"0.1", 1e5},
    {"0.25", 2.5e5},
    {"0.5", 5e5},
    {"1", 1e6},
    {"2.5", 2.5e6},
    {"5", 5e6},
    {"10", 1e7},
}};

}  // namespace

struct PrometheusWriter::Family {
  std::string name;
  std::string help;
  std::string type;
  std::string samples;
};

PrometheusWriter::PrometheusWriter(std::string* out) : out_(out) {}
PrometheusWriter::~PrometheusWriter() = default;

PrometheusWriter::Family& PrometheusWriter::GetFamily(std::string_view name, std::string_view help,
                                                      std::string_view type) {
  for (auto& f : families_) {
    if (f->name == name) return *f;
  }
  auto f = std::make_unique<Family>();
  f->name = std::string(name);
  f->help = std::string(help);
  f->type = std::string(type);
  families_.push_back(std::move(f));
  return *families_.back();
}

void PrometheusWriter::Add(std::string_view name, std::string_view help, std::string_view type,
                           const Labels& labels, double value) {
  Family& f = GetFamily(name, help, type);
  f.samples.append(name);
  AppendLabels(&f.samples, labels);
  f.samples.push_back(' ');
  AppendDouble(&f.samples, value);
  f.samples.push_back('\n');
}

void PrometheusWriter::Write(const Labels& labels, const SlotMetrics& m) {
  const CumulativeSnapshot snap = m.Cumulative();
  const Counters& c = snap.counters;
  auto counter = [&](std::string_view name, std::string_view help, uint64_t v,
                     std::string_view extra_name = {}, std::string_view extra_value = {}) {
    Family& f = GetFamily(name, help, "counter");
    f.samples.append(name);
    AppendLabels(&f.samples, labels, extra_name, extra_value);
    f.samples.push_back(' ');
    f.samples.append(std::to_string(v));
    f.samples.push_back('\n');
  };

  counter("turnout_requests_total", "Requests routed, by slot or instance.", c.requests);
  static constexpr std::array<std::string_view, 6> kClass = {"aborted", "1xx", "2xx",
                                                             "3xx",     "4xx", "5xx"};
  for (size_t i = 1; i < kClass.size(); ++i) {
    counter("turnout_responses_total", "Responses sent, by status class (aborted: none sent).",
            c.by_class[i], "code_class", kClass[i]);
  }
  counter("turnout_responses_total", "", c.by_class[0], "code_class", kClass[0]);
  for (size_t i = 0; i < kRouterErrors; ++i) {
    counter("turnout_router_errors_total",
            "Responses generated or aborted by the router itself, by reason.", c.router_errors[i],
            "reason", RouterErrorName(static_cast<RouterError>(i)));
  }
  Add("turnout_requests_in_flight", "Requests currently in flight.", "gauge", labels,
      static_cast<double>(snap.in_flight));
  counter("turnout_request_bytes_total", "Request bytes read from clients.", c.bytes_in);
  counter("turnout_response_bytes_total", "Response bytes written to clients.", c.bytes_out);

  auto histogram = [&](std::string_view name, std::string_view help, const Histogram::Counts& h) {
    Family& f = GetFamily(name, help, "histogram");
    std::string bucket = std::string(name) + "_bucket";
    for (const LeBound& le : kLeBounds) {
      f.samples.append(bucket);
      AppendLabels(&f.samples, labels, "le", le.text);
      f.samples.push_back(' ');
      f.samples.append(std::to_string(h.CountAtOrBelow(le.us)));
      f.samples.push_back('\n');
    }
    f.samples.append(bucket);
    AppendLabels(&f.samples, labels, "le", "+Inf");
    f.samples.push_back(' ');
    f.samples.append(std::to_string(h.count));
    f.samples.push_back('\n');
    f.samples.append(name).append("_sum");
    AppendLabels(&f.samples, labels);
    f.samples.push_back(' ');
    AppendDouble(&f.samples, static_cast<double>(h.sum_us) / 1e6);
    f.samples.push_back('\n');
    f.samples.append(name).append("_count");
    AppendLabels(&f.samples, labels);
    f.samples.push_back(' ');
    f.samples.append(std::to_string(h.count));
    f.samples.push_back('\n');
  };
  histogram("turnout_request_duration_seconds",
            "Time from the first request byte to the last response byte.", snap.total_latency);
  histogram("turnout_upstream_duration_seconds",
            "Time from sending the request upstream to receiving the response head.",
            snap.upstream_latency);
}

void PrometheusWriter::Finish() {
  for (const auto& f : families_) {
    out_->append("# HELP ").append(f->name).push_back(' ');
    AppendEscaped(out_, f->help, /*quotes=*/false);
    out_->push_back('\n');
    out_->append("# TYPE ").append(f->name).push_back(' ');
    out_->append(f->type).push_back('\n');
    out_->append(f->samples);
  }
  families_.clear();
}

}  // namespace turnout::metrics
