// Helpers for the platform's integration tests. Every wait is for a real event (inotify on a
// file, a pidfd) and bounded by a deadline; nothing sleeps.

#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "platform/platform.h"

namespace turnout::platform::testing {

// A fresh directory under the system's temporary directory, removed with its content at
// destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A port that was free a moment ago on 127.0.0.1 (bound to port 0, then closed).
Result<uint16_t> FreePort();

// A listener on a loopback port the OS hands out, held until Close() or destruction: a port
// that is in use (what an instance told to listen there runs into).
class HeldPort {
 public:
  HeldPort();  // a failure to bind or listen is a test failure (port() is then 0)
  ~HeldPort() { Close(); }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;
  uint16_t port() const { return port_; }
  void Close();

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// The whole content of a file ("" when missing).
std::string ReadFile(const std::string& path);

// Waits (inotify) until the file at `path` contains `needle`; DeadlineExceeded otherwise.
Status WaitForFileContains(const std::string& path, const std::string& needle,
                           std::chrono::milliseconds timeout);

// Pids of processes (not zombies) whose process group is `pgid`.
std::vector<pid_t> GroupMembers(pid_t pgid);

// Waits until the process `pid` ended (pidfd); true when it did before `timeout`.
bool WaitPidGone(pid_t pid, std::chrono::milliseconds timeout);

// Starts a service for a test in the background (a database, a metrics server, a container
// engine): `argv[0]` is looked up in PATH, stdin is /dev/null, stdout and stderr go to the file
// `log` (created or truncated), the environment is the caller's with `env` ("NAME=value") added
// or replacing, the working directory `working_dir` ("" = the caller's). The caller stops it by
// the returned pid (and reaps it with waitpid).
Result<pid_t> SpawnService(std::vector<std::string> argv, const std::string& log,
                           const std::vector<std::string>& env = {},
                           const std::string& working_dir = "");

// Stops every instance it was given when destroyed (grace 0: straight to SIGKILL after the
// stop signal), so a failing test leaves no process behind. Only ever signals instances whose
// identity still matches (Platform::Stop's guarantee).
class InstanceCleaner {
 public:
  explicit InstanceCleaner(Platform& platform) : platform_(platform) {}
  ~InstanceCleaner();
  InstanceCleaner(const InstanceCleaner&) = delete;
  InstanceCleaner& operator=(const InstanceCleaner&) = delete;
  void Add(const InstanceHandle& handle) { handles_.push_back(handle); }

 private:
  Platform& platform_;
  std::vector<InstanceHandle> handles_;
};

}  // namespace turnout::platform::testing
