#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace turnout::metrics {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

RequestSample Sample(int status, microseconds total, microseconds upstream = microseconds(0)) {
  RequestSample s;
  s.status = status;
  s.total = total;
  s.upstream = upstream;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Histogram layout

TEST(HistogramTest, BucketsAreContiguousMonotonicAndTight) {
  uint64_t prev_upper = 0;
  for (int i = 0; i < Histogram::kBuckets - 1; ++i) {
    const uint64_t upper = Histogram::BucketUpperUs(i);
    if (i > 0) {
      ASSERT_EQ(Histogram::BucketIndex(prev_upper + 1), i) << i;
    }
    ASSERT_EQ(Histogram::BucketIndex(upper), i) << i;
    const uint64_t lower = i == 0 ? 0 : prev_upper + 1;
    // Width relative to the smallest value of the bucket stays under 1/kSubBuckets.
    if (lower > 0) {
      ASSERT_LT(static_cast<double>(upper - lower) / static_cast<double>(lower),
                1.0 / Histogram::kSubBuckets)
          << i;
    }
    prev_upper = upper;
  }
  EXPECT_EQ(Histogram::BucketIndex(0), 0);
  EXPECT_EQ(Histogram::BucketIndex((uint64_t{1} << 32) - 1), Histogram::kBuckets - 1);
  EXPECT_EQ(Histogram::BucketIndex(uint64_t{1} << 40), Histogram::kBuckets - 1);
  EXPECT_EQ(Histogram::BucketUpperUs(Histogram::kBuckets - 1), UINT64_MAX);
}

TEST(HistogramTest, CountsSumMaxAndPercentileEdges) {
  Histogram h;
  Histogram::Counts empty;
  h.AddTo(&empty);
  EXPECT_EQ(empty.count, 0u);
  EXPECT_TRUE(empty.buckets.empty());
  EXPECT_EQ(empty.PercentileUs(50), 0.0);

  for (int v = 1; v <= 100; ++v) h.Record(microseconds(v));
  h.Record(std::chrono::nanoseconds(-5));  // counts as 0
  Histogram::Counts c;
  h.AddTo(&c);
  EXPECT_EQ(c.count, 101u);
  EXPECT_EQ(c.sum_us, 5050u);
  EXPECT_EQ(c.max_us, 100u);
  // Values below 256 µs are exact.
  EXPECT_EQ(c.PercentileUs(0), 0.0);
  EXPECT_EQ(c.PercentileUs(50), 50.0);  // rank 51 -> value 50 (0 is rank 1)
  EXPECT_EQ(c.PercentileUs(100), 100.0);
  EXPECT_EQ(c.PercentileUs(250), 100.0);  // clamped to 100
  EXPECT_EQ(c.CountAtOrBelow(10), 11u);
  EXPECT_EQ(c.CountAtOrBelow(1e9), 101u);

  h.Clear();
  Histogram::Counts cleared;
  h.AddTo(&cleared);
  EXPECT_EQ(cleared.count, 0u);
  EXPECT_EQ(cleared.sum_us, 0u);
}

TEST(HistogramTest, OverflowIsReportedAsTheObservedMax) {
  Histogram h;
  h.Record(std::chrono::hours(5));  // beyond 2^32 µs
  Histogram::Counts c;
  h.AddTo(&c);
  EXPECT_EQ(c.PercentileUs(99), 5.0 * 3600 * 1e6);
}

// Exact value at rank ceil(p/100 * n) of sorted samples.
uint64_t ExactPercentile(const std::vector<uint64_t>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<size_t>(std::ceil(p / 100.0 * n * (1 - 1e-12)));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void ExpectAccurate(const std::vector<uint64_t>& values_us, double bound) {
  // Cumulative (fine) and window (coarse) histograms of the same samples.
  ManualClock clock;
  SlotMetrics m(1);
  for (uint64_t v : values_us) {
    m.shard(0).Record(Sample(200, microseconds(v)), clock.Now());
  }
  std::vector<uint64_t> sorted = values_us;
  std::sort(sorted.begin(), sorted.end());
  const Histogram::Counts fine = m.Cumulative().total_latency;
  const Histogram::Counts coarse = m.Window(seconds(60), clock.Now()).total_latency;
  ASSERT_EQ(fine.count, values_us.size());
  ASSERT_EQ(coarse.count, values_us.size());
  for (double p : {0.0, 1.0, 10.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0}) {
    const double exact = static_cast<double>(ExactPercentile(sorted, p));
    const double got_fine = fine.PercentileUs(p);
    const double got_coarse = coarse.PercentileUs(p);
    EXPECT_GE(got_fine, exact) << "p" << p;
    EXPECT_LE(got_fine, exact * (1 + 1.0 / Histogram::kSubBuckets)) << "p" << p;
    EXPECT_GE(got_coarse, exact) << "p" << p;
    EXPECT_LE(got_coarse, exact * (1 + bound)) << "p" << p;
  }
}

TEST(HistogramTest, PercentilesOfLogNormalWithinBound) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(std::log(20'000.0), 1.0);  // median 20 ms
  std::vector<uint64_t> v;
  for (int i = 0; i < 50'000; ++i) v.push_back(static_cast<uint64_t>(dist(rng)) + 1);
  ExpectAccurate(v, 1.0 / 32);
}

TEST(HistogramTest, PercentilesOfBimodalWithinBound) {
  // 90 % fast cache hits around 300 µs, 10 % slow database calls around 800 ms.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> fast(300, 40);
  std::normal_distribution<double> slow(800'000, 100'000);
  std::bernoulli_distribution is_slow(0.1);
  std::vector<uint64_t> v;
  for (int i = 0; i < 50'000; ++i) {
    const double x = is_slow(rng) ? slow(rng) : fast(rng);
    v.push_back(static_cast<uint64_t>(std::max(1.0, x)));
  }
  ExpectAccurate(v, 1.0 / 32);
}

TEST(HistogramTest, MergeAddsCountsAndKeepsMax) {
  Histogram a, b;
  a.Record(microseconds(10));
  b.Record(microseconds(1000));
  b.Record(microseconds(3000));
  Histogram::Counts ca, cb;
  a.AddTo(&ca);
  b.AddTo(&cb);
  Histogram::Counts merged;
  merged.Merge(ca);
  merged.Merge(cb);
  merged.Merge(Histogram::Counts{});
  EXPECT_EQ(merged.count, 3u);
  EXPECT_EQ(merged.sum_us, 4010u);
  EXPECT_EQ(merged.max_us, 3000u);
  EXPECT_EQ(merged.PercentileUs(100), 3000.0);
  EXPECT_EQ(merged.PercentileUs(1), 10.0);
}

// ---------------------------------------------------------------------------------------------
// Counters

TEST(CountersTest, StatusClassesRouterErrorsAndErrorRate) {
  ManualClock clock;
  SlotMetrics m(1);
  EXPECT_EQ(m.Cumulative().counters.ErrorRate(), 0.0);
  auto& s = m.shard(0);
  for (int i = 0; i < 6; ++i) s.Record(Sample(200, milliseconds(1)), clock.Now());
  s.Record(Sample(101, milliseconds(1)), clock.Now());
  s.Record(Sample(304, milliseconds(1)), clock.Now());
  s.Record(Sample(404, milliseconds(1)), clock.Now());
  s.Record(Sample(500, milliseconds(1)), clock.Now());
  RequestSample r = Sample(504, milliseconds(1));
  r.router_error = true;
  r.error = RouterError::kUpstreamTimeout;
  r.bytes_in = 100;
  r.bytes_out = 50;
  s.Record(r, clock.Now());
  RequestSample aborted = Sample(0, milliseconds(1));
  aborted.router_error = true;
  aborted.error = RouterError::kClientAbort;
  s.Record(aborted, clock.Now());

  const Counters c = m.Cumulative().counters;
  EXPECT_EQ(c.requests, 12u);
  EXPECT_EQ(c.by_class[0], 1u);
  EXPECT_EQ(c.by_class[1], 1u);
  EXPECT_EQ(c.by_class[2], 6u);
  EXPECT_EQ(c.by_class[3], 1u);
  EXPECT_EQ(c.by_class[4], 1u);
  EXPECT_EQ(c.by_class[5], 2u);
  EXPECT_EQ(c.router_errors[static_cast<size_t>(RouterError::kUpstreamTimeout)], 1u);
  EXPECT_EQ(c.router_errors[static_cast<size_t>(RouterError::kClientAbort)], 1u);
  EXPECT_EQ(c.router_errors[static_cast<size_t>(RouterError::kBadRequest)], 0u);
  EXPECT_EQ(c.bytes_in, 100u);
  EXPECT_EQ(c.bytes_out, 50u);
  EXPECT_DOUBLE_EQ(c.ErrorRate(), 3.0 / 12.0);  // two 5xx + one aborted

  // The window sees the same.
  const Counters w = m.Window(seconds(60), clock.Now()).counters;
  EXPECT_EQ(w.requests, 12u);
  EXPECT_DOUBLE_EQ(w.ErrorRate(), 3.0 / 12.0);
}

TEST(CountersTest, RouterErrorNamesAreDistinctSnakeCase) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < static_cast<size_t>(RouterError::kCount); ++i) {
    const std::string_view n = RouterErrorName(static_cast<RouterError>(i));
    EXPECT_NE(n, "unknown");
    EXPECT_EQ(n.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string_view::npos) << n;
    names.insert(n);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(RouterError::kCount));
  EXPECT_EQ(RouterErrorName(RouterError::kUpstreamTimeout), "upstream_timeout");
  EXPECT_EQ(RouterErrorName(RouterError::kCount), "unknown");
}

TEST(CountersTest, UpstreamLatencyOnlyWhenAnUpstreamAnswered) {
  ManualClock clock;
  SlotMetrics m(1);
  m.shard(0).Record(Sample(200, milliseconds(5), milliseconds(4)), clock.Now());
  m.shard(0).Record(Sample(400, microseconds(50)), clock.Now());  // router's own 400
  const CumulativeSnapshot c = m.Cumulative();
  EXPECT_EQ(c.total_latency.count, 2u);
  EXPECT_EQ(c.upstream_latency.count, 1u);
  EXPECT_EQ(c.upstream_latency.max_us, 4000u);
  EXPECT_EQ(m.Window(seconds(10), clock.Now()).upstream_latency.count, 1u);
}

// ---------------------------------------------------------------------------------------------
// Sliding window

TEST(WindowTest, SlidesOverWholeSeconds) {
  ManualClock clock;  // starts on a whole second
  const Clock::TimePoint t = clock.Now();
  SlotMetrics m(1);
  m.shard(0).Record(Sample(200, milliseconds(10)), t);
  m.shard(0).Record(Sample(500, milliseconds(20)), t + seconds(30));
  m.shard(0).Record(Sample(200, milliseconds(40)), t + seconds(61));

  auto requests = [&](Clock::TimePoint now) {
    return m.Window(seconds(60), now).counters.requests;
  };
  // Before anything was recorded: a reader's clock may lag the writers'.
  EXPECT_EQ(requests(t - seconds(1)), 0u);
  EXPECT_EQ(requests(t), 1u);
  EXPECT_EQ(requests(t + milliseconds(999)), 1u);
  EXPECT_EQ(requests(t + seconds(30)), 2u);
  EXPECT_EQ(requests(t + seconds(59) + milliseconds(999)), 2u);
  EXPECT_EQ(requests(t + seconds(60)), 1u);  // second t is now 60 s old: out
  EXPECT_EQ(requests(t + seconds(61)), 2u);
  EXPECT_EQ(requests(t + seconds(89) + milliseconds(999)), 2u);
  EXPECT_EQ(requests(t + seconds(90)), 1u);
  EXPECT_EQ(requests(t + seconds(120)), 1u);
  EXPECT_EQ(requests(t + seconds(121)), 0u);

  const WindowSnapshot at61 = m.Window(seconds(60), t + seconds(61));
  EXPECT_EQ(at61.window, seconds(60));
  EXPECT_EQ(at61.counters.by_class[5], 1u);
  EXPECT_DOUBLE_EQ(at61.counters.ErrorRate(), 0.5);
  EXPECT_EQ(at61.total_latency.max_us, 40'000u);
  EXPECT_EQ(at61.total_latency.sum_us, 60'000u);

  // Longer and shorter windows at the same instant.
  EXPECT_EQ(m.Window(seconds(120), t + seconds(61)).counters.requests, 3u);
  EXPECT_EQ(m.Window(seconds(1), t + seconds(61)).counters.requests, 1u);
  EXPECT_EQ(m.Window(seconds(0), t + seconds(61)).counters.requests, 0u);
  // Clamped to window_seconds.
  const WindowSnapshot big = m.Window(seconds(1000), t + seconds(61));
  EXPECT_EQ(big.window, seconds(120));
  EXPECT_EQ(big.counters.requests, 3u);
  // Cumulative keeps everything.
  EXPECT_EQ(m.Cumulative().counters.requests, 3u);
}

TEST(WindowTest, BucketIsReusedAfterWrapAround) {
  ManualClock clock;
  const Clock::TimePoint t = clock.Now();
  SlotMetrics m(1, /*window_seconds=*/10);
  auto& s = m.shard(0);
  for (int i = 0; i < 5; ++i) s.Record(Sample(500, milliseconds(100)), t + seconds(3));
  // Same ring position, one lap later: the old second must be cleared, not added to.
  s.Record(Sample(200, milliseconds(1)), t + seconds(13));
  WindowSnapshot w = m.Window(seconds(10), t + seconds(13));
  EXPECT_EQ(w.counters.requests, 1u);
  EXPECT_EQ(w.counters.by_class[5], 0u);
  EXPECT_EQ(w.total_latency.count, 1u);
  EXPECT_EQ(w.total_latency.max_us, 1000u);
  EXPECT_EQ(w.total_latency.sum_us, 1000u);

  // Many laps later, still exactly one second's worth in each bucket.
  for (int lap = 2; lap < 50; ++lap) {
    for (int sec = 0; sec < 10; ++sec) {
      s.Record(Sample(200, milliseconds(sec + 1)), t + seconds(lap * 10 + sec));
    }
  }
  w = m.Window(seconds(10), t + seconds(499));
  EXPECT_EQ(w.counters.requests, 10u);
  EXPECT_EQ(w.total_latency.count, 10u);
  EXPECT_EQ(w.total_latency.max_us, 10'000u);
  EXPECT_EQ(m.Cumulative().counters.requests, 6u + 48u * 10u);

  // A late sample for a second whose bucket already holds a newer one is not in the window.
  s.Record(Sample(500, milliseconds(1)), t + seconds(480));
  EXPECT_EQ(m.Window(seconds(10), t + seconds(499)).counters.requests, 10u);
  EXPECT_EQ(m.Cumulative().counters.by_class[5], 6u);
}

TEST(WindowTest, MergesAcrossShards) {
  ManualClock clock;
  const Clock::TimePoint t = clock.Now();
  SlotMetrics m(3);
  EXPECT_EQ(m.shards(), 3);
  for (int sh = 0; sh < 3; ++sh) {
    for (int i = 0; i <= sh; ++i) {
      m.shard(sh).Record(Sample(sh == 2 ? 503 : 200, milliseconds(10 * (sh + 1))), t + seconds(sh));
    }
  }
  const WindowSnapshot w = m.Window(seconds(60), t + seconds(2));
  EXPECT_EQ(w.counters.requests, 6u);
  EXPECT_EQ(w.counters.by_class[5], 3u);
  EXPECT_DOUBLE_EQ(w.counters.ErrorRate(), 0.5);
  EXPECT_EQ(w.total_latency.count, 6u);
  EXPECT_EQ(w.total_latency.max_us, 30'000u);
  EXPECT_EQ(w.total_latency.sum_us, (10 + 2 * 20 + 3 * 30) * 1000u);
  // p50 is rank 3 -> 20 ms (coarse bucket edge within 1/32 above).
  EXPECT_GE(w.total_latency.PercentileUs(50), 20'000.0);
  EXPECT_LE(w.total_latency.PercentileUs(50), 20'000.0 * (1 + 1.0 / 32));
  // Only shard 2's second is in a 1-second window at t+2.
  EXPECT_EQ(m.Window(seconds(1), t + seconds(2)).counters.requests, 3u);

  const CumulativeSnapshot c = m.Cumulative();
  EXPECT_EQ(c.counters.requests, 6u);
  EXPECT_EQ(c.total_latency.count, 6u);
}

TEST(InFlightTest, SumsShardDeltas) {
  SlotMetrics m(2);
  EXPECT_EQ(m.InFlight(), 0);
  m.shard(0).AddInFlight(1);
  m.shard(0).AddInFlight(1);
  m.shard(1).AddInFlight(1);
  EXPECT_EQ(m.InFlight(), 3);
  m.shard(0).AddInFlight(-1);
  EXPECT_EQ(m.InFlight(), 2);
  EXPECT_EQ(m.Cumulative().in_flight, 2);
  // A shard may go negative on its own if requests end elsewhere; the sum is what counts.
  m.shard(1).AddInFlight(-2);
  EXPECT_EQ(m.InFlight(), 0);
}

// ---------------------------------------------------------------------------------------------
// Prometheus exposition

struct ParsedSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// A strict little parser for the text format: returns false (with a message) on any line it
// does not understand.
bool ParseSampleLine(const std::string& line, ParsedSample* out, std::string* why) {
  size_t i = 0;
  while (i < line.size() &&
         (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_' || line[i] == ':')) {
    ++i;
  }
  if (i == 0) return *why = "no metric name", false;
  out->name = line.substr(0, i);
  out->labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t k = i;
      while (k < line.size() &&
             (std::isalnum(static_cast<unsigned char>(line[k])) || line[k] == '_')) {
        ++k;
      }
      if (k == i || k + 1 >= line.size() || line[k] != '=' || line[k + 1] != '"') {
        return *why = "bad label name", false;
      }
      const std::string key = line.substr(i, k - i);
      i = k + 2;
      std::string value;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\') {
          if (i + 1 >= line.size()) return *why = "dangling escape", false;
          const char e = line[i + 1];
          if (e == 'n') {
            value.push_back('\n');
          } else if (e == '\\' || e == '"') {
            value.push_back(e);
          } else {
            return *why = "bad escape", false;
          }
          i += 2;
        } else {
          value.push_back(line[i++]);
        }
      }
      if (i >= line.size()) return *why = "unterminated label value", false;
      ++i;  // closing quote
      if (!out->labels.emplace(key, value).second) return *why = "duplicate label", false;
      if (i < line.size() && line[i] == ',') ++i;
    }
  }
  if (i >= line.size() || line[i] != ' ') return *why = "no space before value", false;
  const std::string v = line.substr(i + 1);
  if (v == "+Inf") {
    out->value = INFINITY;
    return true;
  }
  std::istringstream in(v);
  in >> out->value;
  if (!in || !in.eof()) return *why = "bad value '" + v + "'", false;
  return true;
}

std::string SeriesKey(const ParsedSample& s, const std::string& drop_label) {
  std::string key;
  for (const auto& [k, v] : s.labels) {
    if (k != drop_label) key += k + "=" + v + ";";
  }
  return key;
}

TEST(PrometheusTest, OutputParsesBackWithGroupedFamiliesAndConsistentHistograms) {
  ManualClock clock;
  SlotMetrics green(2), blue(1);
  for (int i = 0; i < 100; ++i) {
    green.shard(i % 2).Record(
        Sample(i < 95 ? 200 : 502, microseconds(500 + i * 1000), microseconds(400 + i * 900)),
        clock.Now());
  }
  RequestSample r = Sample(502, milliseconds(3));
  r.router_error = true;
  r.error = RouterError::kUpstreamConnect;
  r.bytes_out = 123;
  blue.shard(0).Record(r, clock.Now());
  blue.shard(0).AddInFlight(2);

  std::string out;
  PrometheusWriter w(&out);
  w.Write({{"slot", "green"}}, green);
  w.Write({{"slot", "bl\"ue\\\nx"}, {"bad-name", "v"}}, blue);
  w.Add("turnout_router_connections", "Open client connections.", "gauge", {}, 7);
  w.Finish();
  ASSERT_FALSE(out.empty());
  ASSERT_EQ(out.back(), '\n');

  std::map<std::string, std::string> type_of;  // family -> type
  std::set<std::string> helped;
  std::set<std::string> finished_families;
  std::string current;
  std::vector<ParsedSample> samples;
  std::istringstream lines(out);
  std::string line;
  int line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    ASSERT_FALSE(line.empty()) << "line " << line_no;
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(name).second) << "second HELP for " << name;
      if (!current.empty()) finished_families.insert(current);
      EXPECT_EQ(finished_families.count(name), 0u) << name << " is not grouped";
      current = name;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream in(line.substr(7));
      std::string name, type;
      in >> name >> type;
      EXPECT_EQ(name, current) << "TYPE must follow its HELP";
      EXPECT_TRUE(type_of.emplace(name, type).second) << "second TYPE for " << name;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << type;
      continue;
    }
    ASSERT_NE(line[0], '#') << line;
    ParsedSample s;
    std::string why;
    ASSERT_TRUE(ParseSampleLine(line, &s, &why)) << why << ": " << line;
    // Every sample belongs to the family whose HELP/TYPE came last.
    std::string family = s.name;
    if (type_of[current] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string suf = suffix;
        if (family.size() > suf.size() && family.ends_with(suf)) {
          family = family.substr(0, family.size() - suf.size());
          break;
        }
      }
    }
    EXPECT_EQ(family, current) << line;
    samples.push_back(s);
  }

  for (const char* name :
       {"turnout_requests_total", "turnout_responses_total", "turnout_router_errors_total",
        "turnout_requests_in_flight", "turnout_request_bytes_total", "turnout_response_bytes_total",
        "turnout_request_duration_seconds", "turnout_upstream_duration_seconds",
        "turnout_router_connections"}) {
    EXPECT_EQ(helped.count(name), 1u) << name;
  }
  EXPECT_EQ(type_of["turnout_request_duration_seconds"], "histogram");
  EXPECT_EQ(type_of["turnout_requests_in_flight"], "gauge");
  EXPECT_EQ(type_of["turnout_requests_total"], "counter");

  auto find = [&](const std::string& name,
                  const std::map<std::string, std::string>& labels) -> const ParsedSample* {
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) return &s;
    }
    return nullptr;
  };
  const std::string blue_slot = "bl\"ue\\\nx";  // escaped on output, back after parsing
  const ParsedSample* p = find("turnout_requests_total", {{"slot", "green"}});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->value, 100);
  p = find("turnout_responses_total", {{"slot", "green"}, {"code_class", "5xx"}});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->value, 5);
  p = find("turnout_router_errors_total",
           {{"slot", blue_slot}, {"bad_name", "v"}, {"reason", "upstream_connect"}});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->value, 1);
  p = find("turnout_requests_in_flight", {{"slot", blue_slot}, {"bad_name", "v"}});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->value, 2);
  p = find("turnout_response_bytes_total", {{"slot", blue_slot}, {"bad_name", "v"}});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->value, 123);
  p = find("turnout_router_connections", {});
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->value, 7);

  // Histograms: per series, `le` ascending with non-decreasing counts, +Inf == _count.
  int histograms_checked = 0;
  for (const char* hname :
       {"turnout_request_duration_seconds", "turnout_upstream_duration_seconds"}) {
    std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // series -> (le, n)
    std::map<std::string, double> counts, sums;
    for (const auto& s : samples) {
      if (s.name == std::string(hname) + "_bucket") {
        ASSERT_EQ(s.labels.count("le"), 1u);
        const std::string le = s.labels.at("le");
        buckets[SeriesKey(s, "le")].emplace_back(le == "+Inf" ? INFINITY : std::stod(le), s.value);
      } else if (s.name == std::string(hname) + "_count") {
        counts[SeriesKey(s, "")] = s.value;
      } else if (s.name == std::string(hname) + "_sum") {
        sums[SeriesKey(s, "")] = s.value;
      }
    }
    ASSERT_EQ(buckets.size(), 2u) << hname;  // green and blue
    for (const auto& [series, bs] : buckets) {
      ASSERT_EQ(bs.size(), 14u);
      for (size_t i = 1; i < bs.size(); ++i) {
        EXPECT_LT(bs[i - 1].first, bs[i].first) << hname << " " << series;
        EXPECT_LE(bs[i - 1].second, bs[i].second) << hname << " " << series;
      }
      EXPECT_TRUE(std::isinf(bs.back().first));
      ASSERT_EQ(counts.count(series), 1u);
      EXPECT_EQ(bs.back().second, counts[series]);
      ASSERT_EQ(sums.count(series), 1u);
      ++histograms_checked;
    }
  }
  EXPECT_EQ(histograms_checked, 4);

  // Green's request durations: 0.5 ms .. 99.5 ms in 1 ms steps.
  const std::map<std::string, std::string> g{{"slot", "green"}};
  auto bucket = [&](const std::string& le) {
    auto labels = g;
    labels["le"] = le;
    const ParsedSample* s = find("turnout_request_duration_seconds_bucket", labels);
    return s == nullptr ? -1.0 : s->value;
  };
  EXPECT_EQ(bucket("0.001"), 1);  // 0.5 ms
  EXPECT_EQ(bucket("0.01"), 10);  // 0.5 .. 9.5 ms
  EXPECT_EQ(bucket("0.05"), 50);
  EXPECT_EQ(bucket("0.1"), 100);
  EXPECT_EQ(bucket("+Inf"), 100);
  p = find("turnout_request_duration_seconds_sum", g);
  ASSERT_NE(p, nullptr);
  EXPECT_NEAR(p->value, (100 * 500 + 1000 * 4950) / 1e6, 1e-9);
  p = find("turnout_request_duration_seconds_count", g);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->value, 100);

  // Finish() forgot what it wrote: a second exposition starts fresh.
  std::string again;
  PrometheusWriter w2(&again);
  w2.Finish();
  EXPECT_TRUE(again.empty());
}

TEST(PrometheusTest, HelpIsEscapedAndEmptyLabelsHaveNoBraces) {
  std::string out;
  PrometheusWriter w(&out);
  w.Add("turnout_x", "line one\nback\\slash \"quoted\"", "counter", {}, 1.5);
  w.Finish();
  EXPECT_EQ(out,
            "# HELP turnout_x line one\\nback\\\\slash \"quoted\"\n"
            "# TYPE turnout_x counter\n"
            "turnout_x 1.5\n");
}

}  // namespace
}  // namespace turnout::metrics
