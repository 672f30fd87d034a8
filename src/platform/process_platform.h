// ProcessPlatform: instances are local processes (the `process` platform of turnout.yaml).
//
// AllocateAddress: with a first port, instance i of slot s listens on first_port +
// s * replicas + i (checked at Launch); without one, on a port the OS reports free on the bind
// host now (FreePort), never one of request.in_use. Handles of another kind are refused by every
// method that takes one (FailedPrecondition, CheckHandleKind). A process killed by the kernel's
// OOM killer reports signal 9 (oom_killed stays false: see InstanceStatus).
//
// Launch first checks that the instance's port is free (CheckPortFree: a test bind on every
// address; FailedPrecondition naming the port when something holds it), then starts the
// expanded command with posix_spawn:
//   - in a new session (setsid), so the instance is its own process group and session leader:
//     it outlives the daemon, a terminal hangup does not reach it, and Stop can signal the group
//     (an `sh -c` wrapper and its children stop together);
//   - stdin is /dev/null; stdout and stderr are appended to the spec's log file, opened
//     O_APPEND|O_CLOEXEC in the daemon and dup2'd; every other descriptor is closed in the
//     child, whatever its close-on-exec flag;
//   - signal mask empty and every signal at its default action (the daemon's SIG_IGN for
//     SIGPIPE must not leak into the app);
//   - environment: the daemon's, then spec.env, then TURNOUT_VERSION / TURNOUT_SLOT /
//     TURNOUT_PORT / TURNOUT_INSTANCE.
//
// Identity: the handle records pid, start time (/proc/<pid>/stat field 22) and boot id. Before
// any signal the process is pinned with a pidfd (pidfd_open, Linux 5.3+) and its start time is
// checked again through /proc; the signal then goes through that pidfd, so a pid that was reused
// between the check and the signal cannot be hit. The process group is signalled with kill(-pid)
// only while the pinned leader is alive (a live leader keeps its pid, and so its group id, from
// being reused). Without pidfd support the check and the signal are two steps (a small window).
//
// Exit status: for processes this object launched (its children), waitpid(pid, WNOHANG) with
// that exact pid (never -1, other parts of the daemon have children too) gives the exit code or
// signal. Adopted processes are not our children: their end is seen as the pid vanishing, a
// zombie, or a different start time, and reported as kGone (code unknown) or kPidReused.
//
// Thread-safe. Stop and Wait block the calling thread (not the others) while they wait.
// Destroying the platform leaves the instances running: that is the point.

#pragma once

#include <chrono>
#include <map>
#include <optional>

#include "common/clock.h"
#include "common/mutex.h"
#include "platform/platform.h"

namespace turnout::platform {

struct ProcessPlatformOptions {
  // How long Stop waits for the process to end after SIGKILL before DeadlineExceeded.
  // Default: 5s
  std::chrono::milliseconds kill_wait = std::chrono::seconds(5);
  // Poll interval for waiting on a process when pidfd_open is not available. Default: 20ms
  std::chrono::milliseconds poll_interval = std::chrono::milliseconds(20);
};

// The log file of an instance: <log_dir>/<service>-<slot>-<instance>.log ("." when empty).
std::string InstanceLogPath(const InstanceSpec& spec);

class ProcessPlatform final : public Platform {
 public:
  // `clock` must be one that moves by itself (SystemClock): Stop and Wait wait for real
  // processes against deadlines taken from it. It must outlive the platform.
  explicit ProcessPlatform(const Clock& clock = SystemClock::Get(),
                           ProcessPlatformOptions options = {});
  ProcessPlatform(const ProcessPlatform&) = delete;
  ProcessPlatform& operator=(const ProcessPlatform&) = delete;
  ~ProcessPlatform() override = default;

  std::string_view Name() const override { return kProcessKind; }
  Result<InstanceAddress> AllocateAddress(const AddressRequest& request) override;
  Result<InstanceHandle> Launch(const InstanceSpec& spec) override;
  Status Stop(const InstanceHandle& handle) override;
  Result<InstanceStatus> Inspect(const InstanceHandle& handle) override;
  Result<InstanceStatus> Wait(const InstanceHandle& handle,
                              std::chrono::milliseconds timeout) override;
  Result<InstanceStatus> Adopt(const InstanceHandle& handle) override;
  // The end of the handle's log file.
  std::string LogTail(const InstanceHandle& handle, size_t max_lines, size_t max_bytes) override;

 private:
  struct Tracked {
    uint64_t start_time_ticks = 0;
    bool child = false;                   // waitpid works on it
    std::optional<InstanceStatus> ended;  // set once it was seen to end
  };

  // The current status; reaps a tracked child that ended.
  Result<InstanceStatus> InspectLocked(const InstanceHandle& handle) TURNOUT_REQUIRES(mu_);
  // Waits until the process pinned by `pidfd` (or, without one, the handle's pid) ends or
  // `deadline` passes. True when it ended.
  bool WaitForEnd(int pidfd, const InstanceHandle& handle, Clock::TimePoint deadline);
  // Signals the instance (its group while the leader is alive) after re-checking its identity
  // through the pinned pidfd. False when it is no longer the same live process.
  bool SignalPinned(int pidfd, const InstanceHandle& handle, int signo);

  const Clock& clock_;
  const ProcessPlatformOptions options_;
  Mutex mu_;
  // By pid; an entry is replaced when its pid is reused.
  std::map<pid_t, Tracked> tracked_ TURNOUT_GUARDED_BY(mu_);
};

}  // namespace turnout::platform
