#include "platform/run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "common/unique_fd.h"
#include "platform/log_tail.h"

extern char** environ;

namespace turnout::platform {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The caller's environment with `overrides` applied (later entries win).
std::vector<std::string> BuildEnv(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  for (const auto& [name, value] : overrides) {
    const std::string prefix = name + "=";
    std::erase_if(env, [&](const std::string& e) { return e.starts_with(prefix); });
    env.push_back(prefix + value);
  }
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

bool SetNonBlocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// A descriptor that becomes readable when `pid` exits (without reaping it), or -1 where the
// kernel has no pidfd; the wait loop then looks for the exit every few milliseconds.
int OpenPidFd(pid_t pid) {
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#endif
  (void)pid;
  return -1;
}

// True when `pid` has exited; it stays a zombie (WNOWAIT), so its pid and process group id
// cannot be reused before we reap it.
bool HasExited(pid_t pid) {
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    if (errno != EINTR) return true;  // not our child any more: nothing to wait for
  }
  return info.si_pid == pid;
}

class OutputBuffer {
 public:
  explicit OutputBuffer(size_t max) : max_(max) {}
  void Add(const char* data, size_t n) {
    const size_t room = max_ > text_.size() ? max_ - text_.size() : 0;
    const size_t keep = std::min(room, n);
    text_.append(data, keep);
    dropped_ += n - keep;
  }
  // Reads what is available now. Returns false at end of file or on an error.
  bool ReadSome(int fd) {
    char buf[16384];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n > 0) {
        Add(buf, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
  }
  std::string& text() { return text_; }
  size_t dropped() const { return dropped_; }

 private:
  size_t max_;
  std::string text_;
  size_t dropped_ = 0;
};

std::string FormatDuration(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  if (d.count() < 1000) return std::to_string(d.count()) + " ms";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace

std::string RunResult::Describe() const {
  if (timed_out) return "timed out after " + FormatDuration(timeout);
  if (exit_code) return "exited with code " + std::to_string(*exit_code);
  if (term_signal) {
    const char* name = ::sigdescr_np(*term_signal);
    return "killed by signal " + std::to_string(*term_signal) +
           (name ? " (" + std::string(name) + ")" : std::string());
  }
  return "ended in an unknown way";
}

std::string RunResult::Tail(size_t max_lines) const { return LastLines(output, max_lines); }

Result<RunResult> RunCommand(const RunSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("RunCommand: empty argv");
  const SteadyClock::time_point start = SteadyClock::now();

  int out_fds[2];
  if (::pipe2(out_fds, O_CLOEXEC) != 0) return ErrnoError("pipe", errno);
  UniqueFd out_read(out_fds[0]);
  UniqueFd out_write(out_fds[1]);
  // stdin_data goes through a socket pair so that a command which stops reading early makes
  // send() fail with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE in the whole process.
  UniqueFd in_parent;
  UniqueFd in_child;
  if (spec.stdin_data) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      return ErrnoError("socketpair", errno);
    }
    UniqueFd a(sv[0]);
    UniqueFd b(sv[1]);
    in_parent.swap(a);
    in_child.swap(b);
    ::shutdown(in_child.get(), SHUT_WR);
    ::shutdown(in_parent.get(), SHUT_RD);
  }

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  if (posix_spawn_file_actions_init(&actions) != 0) return IoError("posix_spawn_file_actions");
  if (posix_spawnattr_init(&attr) != 0) {
    posix_spawn_file_actions_destroy(&actions);
    return IoError("posix_spawnattr_init");
  }
  sigset_t no_signals;
  sigemptyset(&no_signals);
  sigset_t default_signals;
  sigfillset(&default_signals);
  int rc = 0;
  // setsid: the command and everything it starts form one group that a timeout kills at once.
  // The signal mask and dispositions are reset: the caller's choices (a blocked SIGTERM in a
  // daemon thread) must not make the command unkillable.
  rc |= posix_spawnattr_setflags(
      &attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  rc |= posix_spawnattr_setsigmask(&attr, &no_signals);
  rc |= posix_spawnattr_setsigdefault(&attr, &default_signals);
  if (spec.stdin_data) {
    rc |= posix_spawn_file_actions_adddup2(&actions, in_child.get(), STDIN_FILENO);
  } else {
    rc |= posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  rc |= posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  rc |= posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDERR_FILENO);
  rc |= posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (!spec.working_dir.empty()) {
    rc |= posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  }
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv = Pointers(argv_strings);
  std::vector<std::string> env_strings = BuildEnv(spec.env);
  std::vector<char*> envp = Pointers(env_strings);
  pid_t pid = -1;
  if (rc == 0) {
    rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  } else {
    rc = EINVAL;
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    // glibc's posix_spawn reports a failed chdir or exec in the child as its return value.
    if (rc == ENOENT || rc == EACCES || rc == ENOTDIR) {
      struct stat st {};
      if (!spec.working_dir.empty() &&
          (::stat(spec.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) {
        return NotFound("working directory '" + spec.working_dir + "' of '" + spec.argv[0] +
                        "' does not exist");
      }
      return NotFound("program '" + spec.argv[0] + "' " +
                      (rc == EACCES ? "is not executable" : "was not found") + " (" +
                      ::strerrordesc_np(rc) + ")");
    }
    return ErrnoError("spawn '" + spec.argv[0] + "'", rc);
  }
  {
    UniqueFd closed;
    out_write.swap(closed);  // only the child writes now: EOF when it (and its group) is done
    UniqueFd closed_in;
    in_child.swap(closed_in);
  }
  SetNonBlocking(out_read.get());
  if (spec.stdin_data) SetNonBlocking(in_parent.get());
  UniqueFd pidfd(OpenPidFd(pid));

  RunResult result;
  result.timeout = spec.timeout;
  OutputBuffer output(spec.max_output_bytes);
  std::string_view to_write = spec.stdin_data ? std::string_view(*spec.stdin_data) : "";
  if (spec.stdin_data && to_write.empty()) {
    UniqueFd closed;
    in_parent.swap(closed);
  }
  bool out_open = true;
  bool exited = false;
  bool term_sent = false;
  SteadyClock::time_point deadline = start + spec.timeout;
  SteadyClock::time_point kill_at{};

  while (!exited) {
    const SteadyClock::time_point now = SteadyClock::now();
    if (!term_sent && now >= deadline) {
      result.timed_out = true;
      ::kill(-pid, SIGTERM);
      term_sent = true;
      kill_at = now + spec.kill_grace;
    }
    if (term_sent && now >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = SteadyClock::time_point::max();
    }
    const SteadyClock::time_point wake = term_sent ? kill_at : deadline;
    auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
    if (pidfd.get() < 0) wait_ms = std::min<int64_t>(wait_ms, 10);
    wait_ms = std::clamp<int64_t>(wait_ms, 0, 1000);

    pollfd fds[3];
    nfds_t n = 0;
    int out_index = -1, in_index = -1, pid_index = -1;
    if (out_open) {
      out_index = static_cast<int>(n);
      fds[n++] = {out_read.get(), POLLIN, 0};
    }
    if (in_parent.get() >= 0) {
      in_index = static_cast<int>(n);
      fds[n++] = {in_parent.get(), POLLOUT, 0};
    }
    if (pidfd.get() >= 0) {
      pid_index = static_cast<int>(n);
      fds[n++] = {pidfd.get(), POLLIN, 0};
    }
    const int ready = ::poll(fds, n, static_cast<int>(wait_ms));
    if (ready < 0 && errno != EINTR) {
      const int err = errno;
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return ErrnoError("poll", err);
    }
    if (ready > 0 && out_index >= 0 && fds[out_index].revents != 0) {
      out_open = output.ReadSome(out_read.get());
    }
    if (ready > 0 && in_index >= 0 && fds[in_index].revents != 0) {
      const ssize_t w = ::send(in_parent.get(), to_write.data(), to_write.size(), MSG_NOSIGNAL);
      if (w > 0) to_write.remove_prefix(static_cast<size_t>(w));
      if (to_write.empty() || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        UniqueFd closed;  // all written, or the command stopped reading: end its stdin
        in_parent.swap(closed);
      }
    }
    if (pid_index < 0 || (ready > 0 && fds[pid_index].revents != 0)) exited = HasExited(pid);
  }
  // What the command wrote before it ended is in the pipe; whatever its leftover children write
  // later is not waited for (they may hold the pipe open for hours).
  if (out_open) output.ReadSome(out_read.get());
  if (result.timed_out) {
    // The leader is a zombie until reaped, so the group id cannot have been reused: finish off
    // the members that ignored SIGTERM.
    ::kill(-pid, SIGKILL);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("waitpid", errno);
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  result.output = std::move(output.text());
  result.output_dropped = output.dropped();
  result.duration =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
  return result;
}

}  // namespace turnout::platform
