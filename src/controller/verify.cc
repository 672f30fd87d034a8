#include "controller/verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "common/sha256.h"

namespace turnout::controller {

size_t PathForRequest(const std::vector<VerifyPath>& paths, int64_t index) {
  if (paths.size() <= 1) return 0;
  int64_t cycle = 0;
  for (const VerifyPath& p : paths) cycle += std::max(1, p.weight);
  const int64_t at = index % cycle;
  // Smooth weighted round robin over one cycle: each turn every path gains its weight and the
  // one ahead (the first on a tie) is picked and pays the cycle. Deterministic, interleaved.
  std::vector<int64_t> credit(paths.size(), 0);
  size_t picked = 0;
  for (int64_t turn = 0; turn <= at; ++turn) {
    picked = 0;
    for (size_t i = 0; i < paths.size(); ++i) {
      credit[i] += std::max(1, paths[i].weight);
      if (credit[i] > credit[picked]) picked = i;
    }
    credit[picked] -= cycle;
  }
  return picked;
}

std::string MixHash(const VerifyCheck& check) {
  std::string text = "requests " + std::to_string(check.requests) + "\nconcurrency " +
                     std::to_string(check.concurrency) + "\n";
  for (const VerifyPath& p : check.paths) {
    text += p.method + " " + p.path + " " + std::to_string(p.weight) + "\n";
  }
  return Sha256Hex(text);
}

double Percentile(const std::vector<double>& sorted_ms, double p) {
  if (sorted_ms.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted_ms.size()));
  const size_t at = static_cast<size_t>(std::clamp(rank, 1.0, double(sorted_ms.size()))) - 1;
  return sorted_ms[at];
}

namespace {

std::string Ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", ms);
  return buf;
}

std::string Percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", fraction * 100);
  return buf;
}

}  // namespace

std::optional<std::string> JudgePerformance(const VerifyCheck& check,
                                            const PerformanceResult& result,
                                            const std::optional<Baseline>& baseline) {
  if (result.errors > 0) {
    return std::to_string(result.errors) + " of " + std::to_string(result.count) +
           " requests failed (first: " + result.first_error + ")";
  }
  if (result.timed_out) {
    return "timed out after " + std::to_string(result.count) + " of " +
           std::to_string(check.requests) + " requests";
  }
  if (!baseline) return std::nullopt;
  const double min_ms = static_cast<double>(check.tolerance_min.count());
  const struct {
    const char* name;
    double now, base, tolerance;
  } percentiles[] = {
      {"p50", result.p50_ms, baseline->result.p50_ms, check.tolerance_p50},
      {"p95", result.p95_ms, baseline->result.p95_ms, check.tolerance_p95},
      {"p99", result.p99_ms, baseline->result.p99_ms, check.tolerance_p99},
  };
  for (const auto& p : percentiles) {
    if (p.now > p.base * (1 + p.tolerance) && p.now - p.base > min_ms) {
      return std::string(p.name) + " " + Ms(p.now) + " > baseline " + Ms(p.base) + " +" +
             Percent(p.tolerance) + " (revision " + std::to_string(baseline->revision) + ")";
    }
  }
  return std::nullopt;
}

nlohmann::json PerformanceToJson(const PerformanceResult& r) {
  return {{"count", r.count},         {"errors", r.errors},
          {"p50_ms", r.p50_ms},       {"p95_ms", r.p95_ms},
          {"p99_ms", r.p99_ms},       {"duration_ms", r.duration.count()},
          {"timed_out", r.timed_out}, {"first_error", r.first_error}};
}

std::optional<PerformanceResult> PerformanceFromJson(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  const auto number = [&](const char* key) { return j.contains(key) && j[key].is_number(); };
  if (!number("count") || !number("errors") || !number("p50_ms") || !number("p95_ms") ||
      !number("p99_ms")) {
    return std::nullopt;
  }
  PerformanceResult r;
  r.count = j["count"].get<int64_t>();
  r.errors = j["errors"].get<int64_t>();
  r.p50_ms = j["p50_ms"].get<double>();
  r.p95_ms = j["p95_ms"].get<double>();
  r.p99_ms = j["p99_ms"].get<double>();
  if (number("duration_ms")) r.duration = Millis(j["duration_ms"].get<int64_t>());
  if (j.contains("timed_out") && j["timed_out"].is_boolean()) r.timed_out = j["timed_out"];
  if (j.contains("first_error") && j["first_error"].is_string()) r.first_error = j["first_error"];
  return r;
}

}  // namespace turnout::controller
