// Health of upstream instances: active HTTP checks with rise/fall, and passive ejection after
// consecutive connect failures seen by the data plane.
//
// Every upstream instance has one InstanceHealth, shared (std::shared_ptr) by all router workers
// and the HealthChecker. Workers read Routable() on the request path and report connect
// outcomes; the checker writes `healthy`. Everything in InstanceHealth is a relaxed atomic: no
// locks, no allocation, safe from any thread.
//
// Active checks: every `interval` the checker sends `GET <path>` with `Host: <address>` and
// `Connection: close` to every target at once (coroutines on one Boost.Asio io_context, run by
// the checker's own thread). Any 2xx response head received within `timeout` is a success;
// anything else (refused, reset, timeout, non-2xx, a malformed head) is a failure. A check whose
// socket cannot be opened because the router is out of descriptors (EMFILE/ENFILE) is neither:
// the instance keeps its state, the check is counted in skipped() and a warning is logged at
// most once per second. The first
// result for a target decides its state at once (so a fresh router learns the truth after one
// round); after that it takes `rise` consecutive successes to become healthy and `fall`
// consecutive failures to become unhealthy. A success also clears a passive ejection: the
// instance answers again, so it goes back into rotation.
//
// Passive ejection: RecordConnectFailure counts consecutive failed connects; from the
// `eject_after_connect_failures`-th on, each failure ejects the instance until now + `eject_for`.
// A successful connect resets the count (it does not cancel a running ejection; an active check
// success does).

#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/throttled_count.h"
#include "router/config.h"

namespace turnout::router {

// One per upstream instance, shared by all workers (they write passive signals) and the checker.
struct InstanceHealth {
  std::atomic<bool> healthy{true};           // decided by active checks (true when disabled)
  std::atomic<int64_t> ejected_until_ns{0};  // passive ejection deadline in Clock ns, 0 = none
  std::atomic<uint32_t> consecutive_connect_failures{0};

  void RecordConnectSuccess();
  void RecordConnectFailure(Clock::TimePoint now, const HealthCheckConfig& config);
  bool Routable(Clock::TimePoint now) const;  // healthy && not ejected
  bool Ejected(Clock::TimePoint now) const;   // a passive ejection is running at `now`
};

// The rise/fall state machine of one target, fed with check results. Pure: no I/O, time comes
// in with each observation (kept for the status of the last change). Not thread-safe; the
// checker owns one per target.
class HealthState {
 public:
  enum class Transition { kNone, kBecameHealthy, kBecameUnhealthy };

  // `rise` and `fall` below 1 are treated as 1.
  HealthState(int rise, int fall);

  // Feeds one check result. The first observation decides the state at once (and reports the
  // transition when it differs from the initial healthy state, i.e. when it is a failure).
  Transition Observe(bool ok, Clock::TimePoint now);

  bool healthy() const { return healthy_; }
  bool decided() const { return decided_; }  // at least one observation so far
  // When the state last changed (or was first decided); epoch before any observation.
  Clock::TimePoint last_change() const { return last_change_; }
  int consecutive_successes() const { return successes_; }
  int consecutive_failures() const { return failures_; }

 private:
  int rise_;
  int fall_;
  bool healthy_ = true;
  bool decided_ = false;
  int successes_ = 0;
  int failures_ = 0;
  Clock::TimePoint last_change_{};
};

// Active HTTP checks on its own thread.
//
// Thread-safety: SetTargets, Start and Stop may be called from any thread (not concurrently with
// the destructor). Targets are identified by their InstanceHealth pointer: a target kept across
// SetTargets keeps its rise/fall progress; a new one starts undecided.
// With `config.enabled == false` Start() succeeds and does nothing; `healthy` stays as it is.
class HealthChecker {
 public:
  HealthChecker(HealthCheckConfig config, Clock& clock);
  ~HealthChecker();  // Stop()s

  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // `targets`: ("host:port", health) pairs. Takes effect at the next check round; a target not
  // in the list before is checked at once (not a round: the others keep their pace).
  void SetTargets(std::vector<std::pair<std::string, std::shared_ptr<InstanceHealth>>> targets);

  // Starts the checker thread (first round immediately). FailedPrecondition when already
  // started. Fails only when the thread cannot be created.
  Status Start();

  // Stops the thread and waits for it; checks in progress are abandoned. Idempotent.
  void Stop();

  // Completed check rounds so far (for tests and status).
  uint64_t rounds() const { return rounds_.load(std::memory_order_relaxed); }
  // Checks not run because the router had no descriptor for them.
  uint64_t skipped() const { return skipped_.total(); }

 private:
  struct Impl;
  HealthCheckConfig config_;
  Clock& clock_;
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> rounds_{0};
  ThrottledCount skipped_;
};

}  // namespace turnout::router
