// PrometheusSource: PromQL instant and range queries against a Prometheus server's HTTP API
// (/api/v1/query, /api/v1/query_range), with a timeout per attempt and bounded retries.
//
// Outcomes:
//   - a QueryResult with data;
//   - a QueryResult that is empty() ("no data": the query matched no series). This is NOT an
//     error: rule evaluation treats it as insufficient data, never as a pass;
//   - an error Status:
//       InvalidArgument    Prometheus refused the query (errorType bad_data: a PromQL syntax
//                          error, a bad step...); the message carries Prometheus' own text
//       DeadlineExceeded   the per-attempt timeout passed on every attempt, or Prometheus
//                          reports errorType timeout
//       Unavailable        the server could not be reached, or answered 5xx/429 on every
//                          attempt
//       FailedPrecondition Prometheus answered with another error (execution, canceled...) or a
//                          body that is not its API's JSON
//
// Retries: only network errors, timeouts, 5xx and 429 are retried, at most `retries` extra
// attempts, after a backoff that doubles from `backoff_initial` up to `backoff_max`. A 4xx
// answer (bad PromQL) is final at once.
//
// Sample values: Prometheus sends them as strings; "NaN", "+Inf" and "-Inf" become the matching
// doubles (std::isnan / std::isinf).
//
// Thread-safety: Query and QueryRange may be called from several threads at once (the options
// are fixed at construction; `sleep` must then be thread-safe too, as the default is).

#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace turnout::sources {

using Millis = std::chrono::milliseconds;

struct PrometheusOptions {
  // "http://127.0.0.1:9090" (a path prefix such as "http://host/prometheus" is kept). Required.
  std::string base_url;
  Millis timeout{5000};          // per attempt; also sent to Prometheus as `timeout`. Default: 5s
  Millis connect_timeout{2000};  // Default: 2s
  int retries = 2;               // extra attempts after a retryable failure. Default: 2
  Millis backoff_initial{250};   // Default: 250ms
  Millis backoff_max{2000};      // Default: 2s
  // Sent with every request (e.g. {"Authorization", "Bearer ..."}). Default: none
  std::vector<std::pair<std::string, std::string>> headers;
  // How a backoff waits. Default (empty): std::this_thread::sleep_for. Tests inject a recorder.
  std::function<void(Millis)> sleep;
};

struct Sample {
  double timestamp = 0;  // Unix seconds (Prometheus' own resolution: milliseconds)
  double value = 0;
};

struct Series {
  std::map<std::string, std::string> labels;  // includes __name__ when Prometheus sends it
  std::vector<Sample> samples;                // vector/scalar: exactly one; matrix: in time order
};

struct QueryResult {
  enum class Type { kVector, kScalar, kMatrix, kString };
  Type type = Type::kVector;
  // kVector/kMatrix: one per series; kScalar: one with no labels. kString: `text` instead.
  std::vector<Series> series;
  std::string text;                   // kString only
  std::vector<std::string> warnings;  // Prometheus' warnings (the result is still valid)
  int attempts = 1;                   // how many requests it took

  // "No data": no series matched (a scalar or string result is never empty).
  bool empty() const { return (type == Type::kVector || type == Type::kMatrix) && series.empty(); }
};

std::string_view QueryResultTypeName(QueryResult::Type type);

class PrometheusSource {
 public:
  // InvalidArgument when base_url is not http(s):// or retries/backoffs are negative.
  static Result<PrometheusSource> Create(PrometheusOptions options);

  // Instant query at `at` (Default: Prometheus' "now").
  Result<QueryResult> Query(std::string_view promql) const;
  Result<QueryResult> Query(std::string_view promql, Clock::WallTime at) const;

  // Range query over [start, end] at `step` (> 0). InvalidArgument locally when end < start
  // or step <= 0.
  Result<QueryResult> QueryRange(std::string_view promql, Clock::WallTime start,
                                 Clock::WallTime end, Millis step) const;

  const PrometheusOptions& options() const { return options_; }

 private:
  explicit PrometheusSource(PrometheusOptions options) : options_(std::move(options)) {}
  Result<QueryResult> Run(const std::string& path, const std::string& form) const;

  PrometheusOptions options_;
};

// Parses one /api/v1/query or /api/v1/query_range response body (exposed for tests and for
// callers that fetch through other means). `http_status` selects the error code when the body
// reports status "error".
Result<QueryResult> ParsePrometheusResponse(int http_status, std::string_view body);

}  // namespace turnout::sources
