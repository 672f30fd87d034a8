#include "controller/http_verifier.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "controller/http_probe.h"

namespace turnout::controller {

Result<PerformanceResult> HttpVerifier::MeasurePerformance(const PerformanceRequest& request) {
  if (request.address.find(':') == std::string::npos) {
    return InvalidArgument("performance check: the address '" + request.address + "' has no port");
  }
  if (request.paths.empty() || request.requests < 1 || request.concurrency < 1) {
    return InvalidArgument("performance check: needs paths, requests and concurrency");
  }
  using SteadyClock = std::chrono::steady_clock;
  const SteadyClock::time_point start = SteadyClock::now();
  const SteadyClock::time_point deadline = start + request.timeout;
  std::atomic<int64_t> next{0};
  std::atomic<bool> timed_out{false};
  std::mutex mu;
  std::vector<double> latencies;  // guarded by mu
  int64_t errors = 0;             // guarded by mu
  std::string first_error;        // guarded by mu
  latencies.reserve(static_cast<size_t>(request.requests));

  const auto worker = [&] {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= request.requests) return;
      const SteadyClock::time_point begin = SteadyClock::now();
      if (begin >= deadline) {
        timed_out = true;
        return;
      }
      const VerifyPath& p = request.paths[PathForRequest(request.paths, i)];
      ProbeRequest probe;
      probe.address = request.address;
      probe.method = p.method;
      probe.path = p.path;
      // At least 1 ms: httpc reads 0 as "no limit".
      probe.timeout = std::max(Millis(1), std::chrono::duration_cast<Millis>(deadline - begin));
      Result<ProbeResponse> r = HttpProbe(probe);
      // A request's timeout is what is left of the check's, so its DeadlineExceeded is the
      // check's timeout cutting it off: not the service's error, and not a latency.
      if (!r.ok() &&
          (r.status().code() == StatusCode::kDeadlineExceeded || SteadyClock::now() >= deadline)) {
        timed_out = true;
        return;
      }
      const double ms =
          std::chrono::duration<double, std::milli>(SteadyClock::now() - begin).count();
      std::string error;
      if (!r.ok()) {
        error = r.status().ToString();
      } else if (r->status >= 500) {
        error = std::to_string(r->status) + " from " + p.method + " " + p.path;
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies.push_back(ms);
      if (!error.empty() && errors++ == 0) first_error = error;
    }
  };
  const int threads = std::min(request.concurrency, request.requests);
  std::vector<std::thread> pool;
  pool.reserve(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();

  PerformanceResult result;
  std::sort(latencies.begin(), latencies.end());
  result.count = static_cast<int64_t>(latencies.size());
  result.errors = errors;
  result.first_error = first_error;
  result.timed_out = timed_out;
  result.p50_ms = Percentile(latencies, 50);
  result.p95_ms = Percentile(latencies, 95);
  result.p99_ms = Percentile(latencies, 99);
  result.duration = std::chrono::duration_cast<Millis>(SteadyClock::now() - start);
  return result;
}

}  // namespace turnout::controller
