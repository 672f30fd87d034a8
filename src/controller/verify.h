// Post-switch verification (DeploymentSpec::verify): the Verifier role, through which the engine
// has a performance check measured, and the pure rules that judge its result against the
// baseline. The engine runs command checks itself through platform::CommandRunner (like the
// smoke-test commands) and a performance check through Verifier; turnoutd wires HttpVerifier
// (http_verifier.h: real requests through the router), the engine's state-machine tests a fake.
//
// The baseline of a performance check is the result recorded by the last succeeded revision of
// the service whose check had the same mix hash (MixHash): another mix measures something else.
// It is stored with the revision, in the detail of its step "verify:<name>" (PerformanceToJson).

#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "controller/deployment_spec.h"

namespace turnout::controller {

struct PerformanceRequest {
  std::string address;  // the router's public listener, "127.0.0.1:8080"
  std::vector<VerifyPath> paths;
  int requests = 0;
  int concurrency = 1;
  Millis timeout{60000};  // all the requests together (real time)
};

struct PerformanceResult {
  int64_t count = 0;   // requests answered or failed (== requests unless it timed out)
  int64_t errors = 0;  // no answer, or a 5xx
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;  // over every request counted, failed ones too
  Millis duration{0};
  bool timed_out = false;   // the timeout passed before every request was sent
  std::string first_error;  // what the first error was ("" when none): "503", "Unavailable: ..."
};

// The role. Implementations say whether they are thread-safe.
class Verifier {
 public:
  virtual ~Verifier() = default;
  // Sends request.requests requests of the mix (PathForRequest order), request.concurrency at
  // once, and measures each one's latency (real time: this measures the service). Bounded by
  // request.timeout. An error only when nothing could be measured on our side (a malformed
  // address); a service that fails or is slow is a result.
  virtual Result<PerformanceResult> MeasurePerformance(const PerformanceRequest& request) = 0;
};

// The path of request `index` (0-based) of the mix: weighted round robin over a cycle of
// sum-of-weights requests, interleaved (3:1 -> a a b a, a a b a, ...), the same every time.
size_t PathForRequest(const std::vector<VerifyPath>& paths, int64_t index);

// SHA-256 (hex) of what a performance check measures: its methods, paths, weights, requests and
// concurrency. Tolerances and the timeout are not part of it (they judge, they do not measure).
std::string MixHash(const VerifyCheck& check);

// The p-th percentile (0 < p <= 100, nearest rank) of `sorted_ms` (ascending); 0 when empty.
double Percentile(const std::vector<double>& sorted_ms, double p);

// A recorded result and the revision that recorded it.
struct Baseline {
  int64_t revision = 0;
  PerformanceResult result;
};

// Why `result` fails `check` against `baseline` (nullopt when it passes): errors first
// ("3 of 500 requests failed (first: 503)"), a timeout, then the first percentile that is above
// the baseline's by more than both its tolerance and tolerance_min:
// "p95 41.0 ms > baseline 20.1 ms +25%". Without a baseline only errors and timeouts fail.
std::optional<std::string> JudgePerformance(const VerifyCheck& check,
                                            const PerformanceResult& result,
                                            const std::optional<Baseline>& baseline);

// The result as stored in the step detail, and back (nullopt when `j` holds none).
// {"count","errors","p50_ms","p95_ms","p99_ms","duration_ms","timed_out","first_error"}
nlohmann::json PerformanceToJson(const PerformanceResult& result);
std::optional<PerformanceResult> PerformanceFromJson(const nlohmann::json& j);

}  // namespace turnout::controller
