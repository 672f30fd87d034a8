// Supervisor: keeps watched instances running by relaunching the ones that ended, with
// exponential backoff, and rotates their log files.
//
// It does nothing by itself: the owner calls Tick(now) periodically (the daemon every few
// hundred ms; tests with a ManualClock's time). Per tick and per watched instance:
//   - running: if it has been up for `reset_after`, its failure count goes back to 0; its log
//     is rotated when larger than the rotation limit;
//   - ended (exited, gone, pid reused): a kExited event, then a restart is scheduled after
//     initial_backoff * multiplier^failures, capped at max_backoff (1s, 2s, 4s, ... 60s);
//   - its restart time came: Stop the ended instance (it may leave something behind that only
//     Stop removes, like a container; its logs stay readable until then; a failure is a kError
//     event and the restart goes on), then Launch from the same spec; kRestarted with the new
//     handle, or kRestartFailed and the next, longer, delay.
// Instances the controller stops on purpose must be Unwatch'ed first, or they come back.
//
// Thread-safe: Watch/Unwatch/Current may be called from other threads than Tick. The callback
// runs on the thread calling Tick, without the supervisor's lock held (it may call Current, but
// must not call Tick).

#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/mutex.h"
#include "platform/log_rotation.h"
#include "platform/platform.h"

namespace turnout::platform {

struct SupervisorOptions {
  Clock::Duration initial_backoff = std::chrono::seconds(1);  // Default: 1s
  Clock::Duration max_backoff = std::chrono::seconds(60);     // Default: 60s
  double multiplier = 2.0;                                    // Default: 2
  // An instance that stayed up this long counts as healthy again: the next crash waits
  // initial_backoff. Default: 30s
  Clock::Duration reset_after = std::chrono::seconds(30);
  // Rotation of each watched instance's log file. Default: 10 MiB, 5 old files.
  std::optional<LogRotationOptions> log_rotation = LogRotationOptions{};
};

struct SupervisorEvent {
  enum class Type {
    kExited,            // the instance ended; `status` says how
    kRestartScheduled,  // a relaunch will happen `delay` from now (attempt `attempt`)
    kRestarted,         // relaunched; `handle` is the new instance
    kRestartFailed,     // Launch failed with `error`; another attempt is scheduled
    kLogRotated,        // the instance's log file was rotated
    kError,             // Inspect or rotation failed with `error`; retried next tick
  };
  Type type;
  std::string key;          // the key given to Watch
  InstanceHandle handle;    // the instance concerned (the new one for kRestarted)
  InstanceStatus status;    // kExited
  int attempt = 0;          // restarts in a row without a reset, counting this one
  Clock::Duration delay{};  // kRestartScheduled
  Status error;             // kRestartFailed, kError
};
std::string_view SupervisorEventTypeName(SupervisorEvent::Type type);

class Supervisor {
 public:
  using Callback = std::function<void(const SupervisorEvent&)>;

  // `platform` must outlive the supervisor. `callback` may be empty.
  Supervisor(Platform& platform, SupervisorOptions options, Callback callback);

  // Starts watching the instance `handle` launched from `spec`, under `key` (e.g.
  // "web/blue/0"); `now` counts as its start. Replaces an earlier watch with the same key.
  void Watch(const std::string& key, const InstanceSpec& spec, const InstanceHandle& handle,
             Clock::TimePoint now);
  // Stops watching; the instance itself is left as it is. NotFound for an unknown key.
  Status Unwatch(const std::string& key);
  // The instance currently running under `key` (it changes on restart). NotFound if unknown;
  // FailedPrecondition while it is waiting for a restart.
  Result<InstanceHandle> Current(const std::string& key) const;

  void Tick(Clock::TimePoint now);

  // The delay before restart number `failures` + 1: initial * multiplier^failures, capped.
  Clock::Duration BackoffFor(int failures) const;

 private:
  struct Watched {
    InstanceSpec spec;
    std::optional<InstanceHandle> handle;  // empty while waiting for a restart
    Clock::TimePoint started;              // when the current handle was launched
    int failures = 0;                      // restarts in a row without a reset
    Clock::TimePoint restart_at;           // when handle is empty
    std::optional<InstanceHandle> ended;   // the instance that ended, until its restart
  };

  Platform& platform_;
  const SupervisorOptions options_;
  const Callback callback_;
  mutable Mutex mu_;
  std::map<std::string, Watched> watched_ TURNOUT_GUARDED_BY(mu_);
};

}  // namespace turnout::platform
