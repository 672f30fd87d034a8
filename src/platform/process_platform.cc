#include "platform/process_platform.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "common/host_port.h"
#include "common/unique_fd.h"
#include "platform/command.h"
#include "platform/log_tail.h"
#include "platform/ports.h"
#include "platform/proc.h"

extern char** environ;

namespace turnout::platform {
namespace {

InstanceStatus Gone() { return InstanceStatus{InstanceState::kGone, std::nullopt, std::nullopt}; }
InstanceStatus Running() {
  return InstanceStatus{InstanceState::kRunning, std::nullopt, std::nullopt};
}
InstanceStatus PidReused() {
  return InstanceStatus{InstanceState::kPidReused, std::nullopt, std::nullopt};
}

InstanceStatus FromWaitStatus(int status) {
  InstanceStatus s;
  s.state = InstanceState::kExited;
  if (WIFEXITED(status)) s.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) s.term_signal = WTERMSIG(status);
  return s;
}

// mkdir -p; the directory may exist already.
Status MakeDirs(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST) {
      return ErrnoError("create log directory " + prefix, errno);
    }
  }
  return Status::Ok();
}

// "NAME=value" strings: the daemon's environment with `overrides` applied in order.
std::vector<std::string> BuildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  for (const auto& [name, value] : overrides) {
    std::string prefix = name + "=";
    std::erase_if(env, [&](const std::string& s) { return s.starts_with(prefix); });
    env.push_back(prefix + value);
  }
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Raw syscalls: glibc 2.36's <sys/pidfd.h> declares these without C linkage for C++.
// Both pidfd calls exist since Linux 5.3 (pidfd_send_signal since 5.1); on older kernels they
// fail with ENOSYS and the callers fall back to plain pids.
int OpenPidfd(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  // pidfds are always close-on-exec.
  return fd >= 0 ? static_cast<int>(fd) : -errno;
}

int PidfdSendSignal(int pidfd, int signo) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
}

}  // namespace

std::string InstanceLogPath(const InstanceSpec& spec) {
  std::string dir = spec.log_dir.empty() ? "." : spec.log_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + "/" + spec.service + "-" + spec.slot + "-" + std::to_string(spec.instance) + ".log";
}

ProcessPlatform::ProcessPlatform(const Clock& clock, ProcessPlatformOptions options)
    : clock_(clock), options_(options) {}

Result<InstanceAddress> ProcessPlatform::AllocateAddress(const AddressRequest& request) {
  if (request.first_port != 0) {
    const int port = request.first_port + request.slot_index * request.replicas + request.instance;
    if (request.slot_index < 0 || request.instance < 0 || port > 65535) {
      return InvalidArgument("the port of " + request.slot + "-" +
                             std::to_string(request.instance) + " does not fit below 65536");
    }
    return InstanceAddress{request.host, static_cast<uint16_t>(port)};
  }
  return FreeAddressNotIn(request.host, request.in_use);
}

Result<InstanceHandle> ProcessPlatform::Launch(const InstanceSpec& spec) {
  TURNOUT_RETURN_IF_ERROR(ValidateSpec(spec));
  TURNOUT_ASSIGN_OR_RETURN(std::vector<std::string> argv, ExpandCommand(spec));
  TURNOUT_ASSIGN_OR_RETURN(std::string boot_id, BootId());
  // A port someone else holds would only show up as "Address already in use" in the instance's
  // log; say it here instead.
  if (spec.port != 0) TURNOUT_RETURN_IF_ERROR(CheckPortFree(spec.port));

  std::string log_path = InstanceLogPath(spec);
  TURNOUT_RETURN_IF_ERROR(MakeDirs(log_path.substr(0, log_path.rfind('/'))));
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (log.get() < 0) return ErrnoError("open log file " + log_path, errno);
  if (log.get() <= STDERR_FILENO) {
    // A daemon running with closed stdio got 0..2 back; the child's own stdin/stdout/stderr
    // set-up would overwrite it, so move it out of the way first.
    UniqueFd moved(::fcntl(log.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
    if (moved.get() < 0) return ErrnoError("dup log file descriptor", errno);
    log.swap(moved);
  }

  std::vector<std::pair<std::string, std::string>> overrides = spec.env;
  overrides.insert(overrides.end(), spec.secret_env.begin(), spec.secret_env.end());
  overrides.emplace_back("TURNOUT_VERSION", spec.version);
  overrides.emplace_back("TURNOUT_SLOT", spec.slot);
  overrides.emplace_back("TURNOUT_PORT", std::to_string(spec.port));
  overrides.emplace_back("TURNOUT_INSTANCE", std::to_string(spec.instance));
  std::vector<std::string> env = BuildEnvironment(overrides);
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigset_t all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log.get(), STDERR_FILENO);
  if (!spec.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  }
  // Descriptors other code in the daemon opened without O_CLOEXEC must not leak into the app.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);

  pid_t pid = 0;
  MutexLock lock(mu_);
  int rc = ::posix_spawnp(&pid, c_argv[0], &actions, &attr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    Status error = ErrnoError("start '" + argv[0] + "'", rc);
    return spec.working_dir.empty() ? error : error.WithContext("in " + spec.working_dir);
  }

  // The child is not reaped until we say so, so its pid and start time are stable here.
  Result<ProcStat> stat = ReadProcStat(pid);
  if (!stat.ok()) {
    if (stat.status().code() == StatusCode::kNotFound) {
      // Already reaped behind our back (SIGCHLD set to SIG_IGN): its pid is free again, so it
      // must not be signalled.
      return Unavailable("pid " + std::to_string(pid) + " ended before it could be identified");
    }
    // Cannot name it safely, so it must not run unnamed. Unreaped, the pid is still ours.
    ::kill(pid, SIGKILL);
    int ignored;
    ::waitpid(pid, &ignored, 0);
    return stat.status().WithContext("read start time of launched process");
  }

  InstanceHandle handle;
  handle.id = spec.service + "-" + spec.slot + "-" + std::to_string(spec.instance) + "-" +
              std::to_string(pid);
  handle.pid = pid;
  handle.start_time_ticks = stat->start_time_ticks;
  handle.boot_id = boot_id;
  handle.port = spec.port;
  handle.address = FormatHostPort(spec.host, spec.port);
  handle.spec_hash = SpecHash(spec);
  handle.stop_signal = spec.stop_signal;
  handle.grace = spec.grace;
  handle.log_path = log_path;
  tracked_[pid] = Tracked{stat->start_time_ticks, /*child=*/true, std::nullopt};
  return handle;
}

Result<InstanceStatus> ProcessPlatform::InspectLocked(const InstanceHandle& handle) {
  if (handle.pid <= 0) return InvalidArgument("instance handle has no pid");
  TURNOUT_ASSIGN_OR_RETURN(std::string boot_id, BootId());
  // A process from an earlier boot is gone, whatever has its pid now.
  if (handle.boot_id != boot_id) return Gone();

  auto it = tracked_.find(handle.pid);
  Tracked* tracked = nullptr;
  if (it != tracked_.end() && it->second.start_time_ticks == handle.start_time_ticks) {
    tracked = &it->second;
    if (tracked->ended) return *tracked->ended;
    if (tracked->child) {
      int status = 0;
      pid_t r;
      do {
        r = ::waitpid(handle.pid, &status, WNOHANG);
      } while (r < 0 && errno == EINTR);
      if (r == handle.pid) {
        tracked->ended = FromWaitStatus(status);
        return *tracked->ended;
      }
      if (r == 0) return Running();
      // ECHILD: reaped elsewhere (SIGCHLD ignored, or another waiter); fall back to /proc.
      tracked->child = false;
    }
  }

  Result<ProcStat> stat = ReadProcStat(handle.pid);
  if (!stat.ok()) {
    if (stat.status().code() != StatusCode::kNotFound) return stat.status();
    if (tracked) tracked->ended = Gone();
    return Gone();
  }
  if (stat->start_time_ticks != handle.start_time_ticks) {
    if (tracked) tracked->ended = Gone();
    return PidReused();
  }
  if (stat->zombie()) return Gone();
  return Running();
}

Result<InstanceStatus> ProcessPlatform::Inspect(const InstanceHandle& handle) {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kProcessKind));
  MutexLock lock(mu_);
  return InspectLocked(handle);
}

std::string ProcessPlatform::LogTail(const InstanceHandle& handle, size_t max_lines,
                                     size_t max_bytes) {
  if (!CheckHandleKind(handle, kProcessKind).ok() || handle.log_path.empty()) return "";
  return ReadLogTail(handle.log_path, max_lines, max_bytes);
}

Result<InstanceStatus> ProcessPlatform::Adopt(const InstanceHandle& handle) {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kProcessKind));
  MutexLock lock(mu_);
  if (handle.pid <= 0) return InvalidArgument("instance handle has no pid");
  TURNOUT_ASSIGN_OR_RETURN(std::string boot_id, BootId());
  if (handle.boot_id == boot_id) {
    Result<ProcStat> stat = ReadProcStat(handle.pid);
    if (stat.ok() && stat->start_time_ticks == handle.start_time_ticks) {
      Tracked& t = tracked_[handle.pid];
      if (t.start_time_ticks != handle.start_time_ticks || t.ended) {
        // An earlier process with this pid (or an ended copy) is replaced by the adopted one.
        t = Tracked{handle.start_time_ticks, stat->parent == ::getpid(), std::nullopt};
      }
    } else if (!stat.ok() && stat.status().code() != StatusCode::kNotFound) {
      return stat.status();
    }
  }
  return InspectLocked(handle);
}

bool ProcessPlatform::WaitForEnd(int pidfd, const InstanceHandle& handle,
                                 Clock::TimePoint deadline) {
  while (true) {
    // Rounded up: a deadline is never reported as passed before it has.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock_.Now());
    int timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 60'000));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      int r = ::poll(&p, 1, timeout_ms);
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    } else {
      Result<ProcStat> stat = ReadProcStat(handle.pid);
      if (!stat.ok() || stat->start_time_ticks != handle.start_time_ticks || stat->zombie()) {
        return true;
      }
      auto nap = std::min<int64_t>(timeout_ms, options_.poll_interval.count());
      timespec ts{static_cast<time_t>(nap / 1000), static_cast<long>(nap % 1000) * 1'000'000};
      ::nanosleep(&ts, nullptr);
    }
    if (timeout_ms == 0) return false;
  }
}

bool ProcessPlatform::SignalPinned(int pidfd, const InstanceHandle& handle, int signo) {
  Result<ProcStat> stat = ReadProcStat(handle.pid);
  if (!stat.ok() || stat->start_time_ticks != handle.start_time_ticks || stat->zombie()) {
    return false;
  }
  // With a pidfd, this check is about the very process whose start time we just read: if it had
  // been replaced since, the pidfd would name the old (ended) one and fail with ESRCH.
  if (pidfd >= 0 && PidfdSendSignal(pidfd, 0) != 0) return false;
  if (::kill(-handle.pid, signo) == 0) return true;
  // Not a group leader any more (the app changed its process group): signal just the process.
  if (pidfd >= 0) return PidfdSendSignal(pidfd, signo) == 0;
  return ::kill(handle.pid, signo) == 0;
}

Status ProcessPlatform::Stop(const InstanceHandle& handle) {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kProcessKind));
  {
    MutexLock lock(mu_);
    TURNOUT_ASSIGN_OR_RETURN(InstanceStatus status, InspectLocked(handle));
    if (!status.running()) return Status::Ok();
  }
  int pidfd_or_error = OpenPidfd(handle.pid);
  if (pidfd_or_error == -ESRCH) {
    MutexLock lock(mu_);
    return InspectLocked(handle).status();
  }
  UniqueFd pidfd(pidfd_or_error >= 0 ? pidfd_or_error : -1);

  bool ended = !SignalPinned(pidfd.get(), handle, handle.stop_signal);
  if (!ended) ended = WaitForEnd(pidfd.get(), handle, clock_.Now() + handle.grace);
  if (!ended) {
    ended = !SignalPinned(pidfd.get(), handle, SIGKILL);
    if (!ended) ended = WaitForEnd(pidfd.get(), handle, clock_.Now() + options_.kill_wait);
    if (!ended) {
      return DeadlineExceeded("pid " + std::to_string(handle.pid) + " did not end " +
                              std::to_string(options_.kill_wait.count()) + "ms after SIGKILL");
    }
  }

  MutexLock lock(mu_);
  auto it = tracked_.find(handle.pid);
  if (it != tracked_.end() && it->second.child && !it->second.ended &&
      it->second.start_time_ticks == handle.start_time_ticks) {
    // Our unreaped child still holds its pid, so its group id cannot have been reused: finish
    // what is left of the group (helpers of an `sh -c` wrapper) before reaping the leader.
    ::kill(-handle.pid, SIGKILL);
  }
  TURNOUT_ASSIGN_OR_RETURN(InstanceStatus final_status, InspectLocked(handle));
  if (final_status.running()) {
    // Only when a signal was refused (EPERM: a process of another user).
    return FailedPrecondition("pid " + std::to_string(handle.pid) +
                              " is still running: it could not be signalled");
  }
  return Status::Ok();
}

Result<InstanceStatus> ProcessPlatform::Wait(const InstanceHandle& handle,
                                             std::chrono::milliseconds timeout) {
  TURNOUT_RETURN_IF_ERROR(CheckHandleKind(handle, kProcessKind));
  Clock::TimePoint deadline = clock_.Now() + timeout;
  {
    MutexLock lock(mu_);
    TURNOUT_ASSIGN_OR_RETURN(InstanceStatus status, InspectLocked(handle));
    if (!status.running()) return status;
  }
  int pidfd_or_error = OpenPidfd(handle.pid);
  UniqueFd pidfd(pidfd_or_error >= 0 ? pidfd_or_error : -1);
  if (pidfd_or_error != -ESRCH) {
    Result<ProcStat> stat = ReadProcStat(handle.pid);
    // Only wait on the pidfd when it pins the process the handle names.
    if (stat.ok() && stat->start_time_ticks == handle.start_time_ticks) {
      WaitForEnd(pidfd.get(), handle, deadline);
    }
  }
  MutexLock lock(mu_);
  return InspectLocked(handle);
}

}  // namespace turnout::platform
