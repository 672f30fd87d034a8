// PodmanService: a real Podman API service (`podman system service`) for the container tests,
// with everything of its own in one temporary directory: its socket, its storage (--root,
// --runroot, --tmpdir, the vfs driver: no mounts of the machine's default storage are touched),
// and a generated containers.conf (CONTAINERS_CONF) with the fixes these machines need:
//   [engine] runtime = "runc" (crun fails on hybrid cgroups), cgroup_manager = "cgroupfs" and
//   events_logger = "file" (no systemd); [containers] default_ulimits nofile=1024:1024 and
//   nproc=4096:4096 (Podman's default rlimits exceed the hard limits).
//
// Start() waits until /_ping answers. Stop() (and the destructor) removes every container the
// service holds, stops the service by its pid (SIGTERM, then SIGKILL after 10 s), unmounts what
// is left under the directory and removes it.
//
// SharedPodman() is the one service of a test binary, started on first use with the test image
// imported; the tests skip (GTEST_SKIP with the reason) when podman is not installed or cannot
// start here.

#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "platform/run.h"

namespace turnout::container::testing {

class PodmanService {
 public:
  // FailedPrecondition when podman is not installed; Unavailable when the service does not
  // answer /_ping within `ready_timeout` (the message holds its log).
  static Result<std::unique_ptr<PodmanService>> Start(
      std::chrono::milliseconds ready_timeout = std::chrono::seconds(20));
  ~PodmanService();
  PodmanService(const PodmanService&) = delete;
  PodmanService& operator=(const PodmanService&) = delete;

  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }

  // Runs `podman <this service's storage and config> args...` to completion.
  Result<platform::RunResult> Podman(std::vector<std::string> args,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

  // Imports the files of `rootfs_dir` as image `tag` (`podman import --change ...`), with no
  // registry. `changes` are Dockerfile instructions: `CMD ["/app"]`, `ENV A=b`.
  Status ImportImage(const std::string& rootfs_dir, const std::string& tag,
                     const std::vector<std::string>& changes) const;

  void Stop();

 private:
  PodmanService() = default;
  std::vector<std::string> GlobalFlags() const;

  std::string dir_;
  std::string socket_;
  std::string conf_;
  pid_t pid_ = -1;
};

// The test image: the statically linked test app (testing/test_app_main.cc) as /app, CMD
// ["/app", "serve"], ENV APP_VERSION=v1.
inline constexpr char kTestImage[] = "localhost/turnout-test-app:v1";

// The service shared by the tests of one binary, with kTestImage imported (once); nullptr with
// `*why` set when it cannot run here. Stopped at exit of the test binary (a gtest Environment).
PodmanService* SharedPodman(std::string* why);

}  // namespace turnout::container::testing
