#include "demo/util.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>

namespace turnout::demo {
namespace {

bool ParseDouble(std::string_view text, double* out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && ptr == text.data() + text.size() && std::isfinite(*out);
}

}  // namespace

Result<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  const std::string bad = "bad duration '" + std::string(text) +
                          "': use a number with a unit, e.g. 250us, 50ms, 1.5s, 2m";
  if (text == "0") return std::chrono::nanoseconds(0);
  size_t unit_at = text.find_first_not_of("0123456789.");
  if (unit_at == std::string_view::npos || unit_at == 0) return InvalidArgument(bad);
  double number = 0;
  if (!ParseDouble(text.substr(0, unit_at), &number) || number < 0) return InvalidArgument(bad);
  std::string_view unit = text.substr(unit_at);
  double ns_per_unit = 0;
  if (unit == "ns") {
    ns_per_unit = 1;
  } else if (unit == "us") {
    ns_per_unit = 1e3;
  } else if (unit == "ms") {
    ns_per_unit = 1e6;
  } else if (unit == "s") {
    ns_per_unit = 1e9;
  } else if (unit == "m") {
    ns_per_unit = 60e9;
  } else if (unit == "h") {
    ns_per_unit = 3600e9;
  } else {
    return InvalidArgument(bad);
  }
  double ns = number * ns_per_unit;
  // Beyond ~290 years int64 nanoseconds overflow; no flag of ours needs more than days.
  if (ns > 9e18) return InvalidArgument(bad + " (too large)");
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(ns)));
}

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgument("bad URL '" + std::string(url) +
                           "': only http://host[:port]/path is supported");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (out.target.front() == '?') out.target.insert(0, "/");
  out.host_header = std::string(authority);
  bool has_port = !authority.empty() && authority.back() != ']' &&
                  authority.rfind(':') != std::string_view::npos;
  std::string with_port = std::string(authority) + (has_port ? "" : ":80");
  Result<HostPort> endpoint = ParseHostPort(with_port);
  if (!endpoint.ok()) {
    return InvalidArgument("bad URL '" + std::string(url) + "': " + endpoint.status().message());
  }
  out.endpoint = std::move(endpoint).value();
  return out;
}

Result<double> ParseRate(std::string_view text) {
  double value = 0;
  if (!ParseDouble(text, &value) || value < 0 || value > 1) {
    return InvalidArgument("bad rate '" + std::string(text) +
                           "': expected a share between 0 and 1, e.g. 0.1");
  }
  return value;
}

Result<uint64_t> ParsePositive(std::string_view flag, std::string_view value, uint64_t max) {
  uint64_t out = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || ptr != value.data() + value.size() || out == 0 || out > max) {
    return InvalidArgument(std::string(flag) + " needs a whole number from 1 to " +
                           std::to_string(max) + ", got '" + std::string(value) + "'");
  }
  return out;
}

Result<bool> ParseBool(std::string_view text) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  return InvalidArgument("bad boolean '" + std::string(text) + "': expected true or false");
}

int FlagErrorExit(const Status& status, std::string_view program, std::string_view usage) {
  if (status.code() == StatusCode::kAborted) {
    std::fwrite(usage.data(), 1, usage.size(), stdout);
    return 0;
  }
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(),
               status.message().c_str());
  std::fwrite(usage.data(), 1, usage.size(), stderr);
  return 2;
}

int LatencyHistogram::BucketOf(uint64_t us) {
  if (us < kSub) return static_cast<int>(us);
  int exp = std::bit_width(us) - 1;
  if (exp > kMaxExp) return kBuckets - 1;
  int sub = static_cast<int>(us >> (exp - kSubBits)) - kSub;
  return (exp - kSubBits + 1) * kSub + sub;
}

uint64_t LatencyHistogram::BucketUpperMicros(int bucket) {
  if (bucket < kSub) return static_cast<uint64_t>(bucket);
  int group = bucket / kSub;
  int sub = bucket % kSub;
  int shift = group - 1;  // exp - kSubBits
  uint64_t lower = static_cast<uint64_t>(kSub + sub) << shift;
  return lower + (uint64_t{1} << shift) - 1;
}

void LatencyHistogram::Record(std::chrono::nanoseconds latency) {
  int64_t ns = std::max<int64_t>(0, latency.count());
  uint64_t us = static_cast<uint64_t>(ns / 1000);
  ++buckets_[BucketOf(us)];
  ++count_;
  sum_us_ += us;
  max_us_ = std::max(max_us_, us);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_us_ += other.sum_us_;
  max_us_ = std::max(max_us_, other.max_us_);
}

double LatencyHistogram::PercentileMicros(double percent) const {
  if (count_ == 0) return 0;
  double clamped = std::clamp(percent, 0.0, 100.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(count_)));
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      return static_cast<double>(std::min(BucketUpperMicros(i), max_us_));
    }
  }
  return static_cast<double>(max_us_);
}

double LatencyHistogram::MeanMicros() const {
  return count_ == 0 ? 0 : static_cast<double>(sum_us_) / static_cast<double>(count_);
}

}  // namespace turnout::demo
