#include "platform/supervisor.h"

#include <cmath>
#include <vector>

namespace turnout::platform {

std::string_view SupervisorEventTypeName(SupervisorEvent::Type type) {
  using T = SupervisorEvent::Type;
  switch (type) {
    case T::kExited:
      return "exited";
    case T::kRestartScheduled:
      return "restart scheduled";
    case T::kRestarted:
      return "restarted";
    case T::kRestartFailed:
      return "restart failed";
    case T::kLogRotated:
      return "log rotated";
    case T::kError:
      return "error";
  }
  return "unknown";
}

Supervisor::Supervisor(Platform& platform, SupervisorOptions options, Callback callback)
    : platform_(platform), options_(options), callback_(std::move(callback)) {}

void Supervisor::Watch(const std::string& key, const InstanceSpec& spec,
                       const InstanceHandle& handle, Clock::TimePoint now) {
  MutexLock lock(mu_);
  watched_[key] = Watched{spec, handle, now, 0, now, std::nullopt};
}

Status Supervisor::Unwatch(const std::string& key) {
  MutexLock lock(mu_);
  if (watched_.erase(key) == 0) return NotFound("not supervising '" + key + "'");
  return Status::Ok();
}

Result<InstanceHandle> Supervisor::Current(const std::string& key) const {
  MutexLock lock(mu_);
  auto it = watched_.find(key);
  if (it == watched_.end()) return NotFound("not supervising '" + key + "'");
  if (!it->second.handle) return FailedPrecondition("'" + key + "' is waiting for a restart");
  return *it->second.handle;
}

Clock::Duration Supervisor::BackoffFor(int failures) const {
  double delay = static_cast<double>(options_.initial_backoff.count()) *
                 std::pow(options_.multiplier, std::max(0, failures));
  double cap = static_cast<double>(options_.max_backoff.count());
  return Clock::Duration(static_cast<Clock::Duration::rep>(std::min(delay, cap)));
}

void Supervisor::Tick(Clock::TimePoint now) {
  using T = SupervisorEvent::Type;
  std::vector<SupervisorEvent> events;
  auto event = [&](T type, const std::string& key, const InstanceHandle& handle) {
    SupervisorEvent& e = events.emplace_back();
    e.type = type;
    e.key = key;
    e.handle = handle;
    return &e;
  };
  {
    // Inspect, Launch and the Stop of an instance that already ended do not block (Launch forks
    // and returns; a container's are single engine calls), so holding the lock across
    // them keeps Watch/Unwatch from racing with a restart without stalling anyone for long.
    MutexLock lock(mu_);
    for (auto& [key, w] : watched_) {
      if (w.handle) {
        Result<InstanceStatus> status = platform_.Inspect(*w.handle);
        if (!status.ok()) {
          event(T::kError, key, *w.handle)->error = status.status();
          continue;
        }
        if (status->running()) {
          if (w.failures > 0 && now - w.started >= options_.reset_after) w.failures = 0;
          if (options_.log_rotation && !w.handle->log_path.empty()) {
            Result<bool> rotated = RotateLogIfNeeded(w.handle->log_path, *options_.log_rotation);
            if (!rotated.ok()) {
              event(T::kError, key, *w.handle)->error = rotated.status();
            } else if (*rotated) {
              event(T::kLogRotated, key, *w.handle);
            }
          }
          continue;
        }
        // An instance that ran long enough before it ended starts a fresh backoff sequence.
        if (now - w.started >= options_.reset_after) w.failures = 0;
        SupervisorEvent* exited = event(T::kExited, key, *w.handle);
        exited->status = *status;
        exited->attempt = w.failures + 1;
        SupervisorEvent* scheduled = event(T::kRestartScheduled, key, *w.handle);
        scheduled->delay = BackoffFor(w.failures);
        scheduled->attempt = w.failures + 1;
        w.restart_at = now + scheduled->delay;
        w.ended = std::move(w.handle);
        w.handle.reset();
        continue;
      }
      if (now < w.restart_at) continue;
      if (w.ended) {
        // What is left of the ended instance goes before its replacement comes (a container
        // stays on the engine until removed; for a process this is a no-op).
        Status removed = platform_.Stop(*w.ended);
        if (!removed.ok()) event(T::kError, key, *w.ended)->error = removed;
        w.ended.reset();
      }
      ++w.failures;
      Result<InstanceHandle> launched = platform_.Launch(w.spec);
      if (launched.ok()) {
        w.handle = *launched;
        w.started = now;
        event(T::kRestarted, key, *launched)->attempt = w.failures;
      } else {
        SupervisorEvent* failed = event(T::kRestartFailed, key, InstanceHandle{});
        failed->error = launched.status();
        failed->attempt = w.failures;
        failed->delay = BackoffFor(w.failures);
        w.restart_at = now + failed->delay;
      }
    }
  }
  if (callback_) {
    for (const SupervisorEvent& e : events) callback_(e);
  }
}

}  // namespace turnout::platform
