// EngineService: a real container engine for the container tests, started by the tests with
// everything of its own in one temporary directory (its socket, its storage, its configuration;
// the machine's default storage and sockets are never touched):
//
//   Podman   `podman system service --time=0 unix://DIR/podman.sock` with --root, --runroot,
//            --tmpdir under DIR, the vfs driver, and CONTAINERS_CONF pointing at a generated
//            containers.conf with the fixes these machines need: [engine] runtime = "runc" (crun
//            fails on hybrid cgroups), cgroup_manager = "cgroupfs" and events_logger = "file" (no
//            systemd); [containers] default_ulimits nofile=1024:1024 and nproc=4096:4096
//            (Podman's default rlimits exceed the hard limits).
//   dockerd  `dockerd --host unix://DIR/docker.sock --data-root --exec-root --pidfile` under DIR,
//            the vfs driver, and --bridge=none --iptables=false --ip-masq=false: it creates no
//            docker0 bridge and no iptables chains, so nothing is left on the machine (and only
//            host networking is available: published ports need the bridge).
//
// Start() waits until /_ping answers. Stop() (and the destructor) removes every container the
// engine holds, stops the engine by its pid (SIGTERM, then SIGKILL after 15 s), unmounts what
// is left under the directory (dockerd's network namespace handle) and removes it.
//
// SharedEngine() is the one engine of each kind for a test binary, started on first use with the
// test image imported; the tests skip (GTEST_SKIP with the reason) when the engine is not
// installed or cannot start here.

#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "platform/run.h"

namespace turnout::container::testing {

enum class EngineKind { kPodman, kDockerd };

std::string EngineName(EngineKind kind);  // "podman", "dockerd"

class EngineService {
 public:
  // FailedPrecondition when the engine is not installed; Unavailable when it does not answer
  // /_ping within `ready_timeout` (the message holds its log).
  static Result<std::unique_ptr<EngineService>> Start(
      EngineKind kind, std::chrono::milliseconds ready_timeout = std::chrono::seconds(20));
  ~EngineService();
  EngineService(const EngineService&) = delete;
  EngineService& operator=(const EngineService&) = delete;

  EngineKind kind() const { return kind_; }
  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }
  // Published ports work (Podman's bridge; dockerd runs without one here).
  bool has_bridge() const { return kind_ == EngineKind::kPodman; }

  // Runs the engine's CLI against this engine (`podman <storage flags> args...` or
  // `docker -H unix://... args...`) to completion.
  Result<platform::RunResult> Cli(
      std::vector<std::string> args,
      std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

  // Imports the files of `rootfs_dir` as image `tag` (`<cli> import --change ...`), with no
  // registry. `changes` are Dockerfile instructions: `CMD ["/app"]`, `ENV A=b`.
  Status ImportImage(const std::string& rootfs_dir, const std::string& tag,
                     const std::vector<std::string>& changes) const;

  void Stop();

 private:
  explicit EngineService(EngineKind kind) : kind_(kind) {}
  std::vector<std::string> CliPrefix() const;
  std::vector<std::string> ServiceArgv() const;

  EngineKind kind_;
  std::string dir_;
  std::string socket_;
  std::string conf_;  // Podman's CONTAINERS_CONF
  pid_t pid_ = -1;
};

// The test image: the statically linked test app (testing/test_app_main.cc) as /app, CMD
// ["/app", "serve"], ENV APP_VERSION=v1.
inline constexpr char kTestImage[] = "localhost/turnout-test-app:v1";

// The engine of this kind shared by the tests of one binary, with kTestImage imported (once);
// nullptr with `*why` set when it cannot run here. Stopped when the test binary ends (a gtest
// Environment).
EngineService* SharedEngine(EngineKind kind, std::string* why);

}  // namespace turnout::container::testing
