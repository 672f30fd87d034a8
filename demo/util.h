// Small helpers shared by the demo app and the load generator: flag values (durations,
// host:port, URLs) and a latency histogram. Nothing here is on the router's path; it exists so
// that `turnout-demo-app` and `turnout-load` parse their flags the same way.
//
// Thread-safety: the free functions are pure. LatencyHistogram is not synchronised; give each
// thread its own and Merge() them at the end.

#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/host_port.h"
#include "common/status.h"

namespace turnout::demo {

// "50ms", "2s", "1.5s", "250us", "1m", "0" -> duration. A bare number other than 0 is refused
// (the unit is required so that "--latency 50" cannot silently mean 50 s).
// Fails with InvalidArgument naming the accepted forms.
Result<std::chrono::nanoseconds> ParseDuration(std::string_view text);

// "http://127.0.0.1:8080/path?q" -> host, port (default 80), target ("/path?q", default "/").
// Only plain http is supported; https and anything unparsable fail with InvalidArgument.
struct HttpUrl {
  HostPort endpoint;
  std::string host_header;  // "127.0.0.1:8080" as written in the URL, sent as Host
  std::string target;
};
Result<HttpUrl> ParseHttpUrl(std::string_view url);

// A probability in [0, 1] ("0.1"); anything else fails.
Result<double> ParseRate(std::string_view text);

// A whole number from 1 to `max` given to `flag`; anything else fails naming the flag.
Result<uint64_t> ParsePositive(std::string_view flag, std::string_view value, uint64_t max);

// "true"/"false"/"1"/"0"/"yes"/"no"/"on"/"off" (case-sensitive lower case).
Result<bool> ParseBool(std::string_view text);

// A flag parser signals --help with an kAborted status. This prints the usage (stdout, exit 0
// for help; stderr with the error, exit 2 otherwise) and returns the exit code.
int FlagErrorExit(const Status& status, std::string_view program, std::string_view usage);

// Log-linear histogram of latencies in microseconds: 64 linear sub-buckets per power of two, so
// any recorded value is reported within 1/64 (~1.6 %) of itself. Range 0 .. 2^40 us (~12 days);
// larger values are clamped to the top bucket.
class LatencyHistogram {
 public:
  void Record(std::chrono::nanoseconds latency);
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  // The latency below which `percent` % of the samples fall (0 when empty), in microseconds.
  double PercentileMicros(double percent) const;
  double MaxMicros() const { return static_cast<double>(max_us_); }
  double MeanMicros() const;

 private:
  static constexpr int kSubBits = 6;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMaxExp = 40;
  static constexpr int kBuckets = (kMaxExp - kSubBits + 2) * kSub;

  static int BucketOf(uint64_t us);
  static uint64_t BucketUpperMicros(int bucket);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_us_ = 0;
  uint64_t max_us_ = 0;
};

}  // namespace turnout::demo
