#include "container/testing/engine_service.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/file_util.h"
#include "container/engine_client.h"
#include "platform/testing/test_util.h"
#include "router/testing/test_upstream.h"

namespace turnout::container::testing {
namespace {

using std::chrono::milliseconds;

constexpr char kPodmanConf[] = R"([containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
)";

// Mount points under `dir` (deepest first), from /proc/self/mounts.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string source, target;
    fields >> source >> target;
    if (target.rfind(dir + "/", 0) == 0) out.push_back(target);
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

}  // namespace

std::string EngineName(EngineKind kind) {
  return kind == EngineKind::kPodman ? "podman" : "dockerd";
}

std::vector<std::string> EngineService::CliPrefix() const {
  if (kind_ == EngineKind::kDockerd) return {"docker", "-H", "unix://" + socket_};
  return {"podman",   "--root",      dir_ + "/root",     "--runroot", dir_ + "/runroot",
          "--tmpdir", dir_ + "/tmp", "--storage-driver", "vfs"};
}

std::vector<std::string> EngineService::ServiceArgv() const {
  if (kind_ == EngineKind::kDockerd) {
    return {
        "dockerd",     "--host",        "unix://" + socket_, "--data-root",    dir_ + "/data",
        "--exec-root", dir_ + "/exec",  "--pidfile",         dir_ + "/pid",    "--storage-driver",
        "vfs",         "--bridge=none", "--iptables=false",  "--ip-masq=false"};
  }
  std::vector<std::string> argv = CliPrefix();
  for (const char* a : {"system", "service", "--time=0"}) argv.emplace_back(a);
  argv.push_back("unix://" + socket_);
  return argv;
}

Result<platform::RunResult> EngineService::Cli(std::vector<std::string> args,
                                               milliseconds timeout) const {
  platform::RunSpec spec;
  spec.argv = CliPrefix();
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  if (kind_ == EngineKind::kPodman) spec.env = {{"CONTAINERS_CONF", conf_}};
  spec.timeout = timeout;
  return platform::RunCommand(spec);
}

Result<std::unique_ptr<EngineService>> EngineService::Start(EngineKind kind,
                                                            milliseconds ready_timeout) {
  std::string program = kind == EngineKind::kPodman ? "podman" : "dockerd";
  platform::RunSpec probe;
  probe.argv = {program, "--version"};
  probe.timeout = std::chrono::seconds(10);
  auto version = platform::RunCommand(probe);
  if (!version.ok() || !version->ok()) {
    return FailedPrecondition(program + " is not installed (scripts/install-deps.sh installs it)");
  }
  std::unique_ptr<EngineService> s(new EngineService(kind));
  std::string pattern =
      (std::filesystem::temp_directory_path() / ("turnout-" + program + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) return ErrnoError("mkdtemp", errno);
  s->dir_ = pattern;
  s->socket_ = s->dir_ + (kind == EngineKind::kPodman ? "/podman.sock" : "/docker.sock");
  std::vector<std::string> env;
  if (kind == EngineKind::kPodman) {
    s->conf_ = s->dir_ + "/containers.conf";
    TURNOUT_RETURN_IF_ERROR(WriteFileAtomically(s->conf_, kPodmanConf, 0644));
    env.push_back("CONTAINERS_CONF=" + s->conf_);
  }
  std::string log = s->dir_ + "/service.log";
  // Its own directory is its working directory: conmon writes files there ("oom").
  Result<pid_t> pid = platform::testing::SpawnService(s->ServiceArgv(), log, env, s->dir_);
  if (!pid.ok()) {
    s->Stop();
    return pid.status();
  }
  s->pid_ = *pid;
  EngineClient client(s->socket_, milliseconds(2000));
  bool up = router::testing::WaitUntil([&] { return client.Ping().ok(); }, ready_timeout);
  if (!up) {
    std::string text = ReadFileToString(log).value_or("");
    s->Stop();
    return Unavailable(program + " did not answer /_ping within " +
                       std::to_string(ready_timeout.count()) + " ms; its log:\n" + text);
  }
  return s;
}

Status EngineService::ImportImage(const std::string& rootfs_dir, const std::string& tag,
                                  const std::vector<std::string>& changes) const {
  std::string tar = dir_ + "/import.tar";
  platform::RunSpec spec;
  spec.argv = {"tar", "-C", rootfs_dir, "-cf", tar, "."};
  TURNOUT_ASSIGN_OR_RETURN(platform::RunResult packed, platform::RunCommand(spec));
  if (!packed.ok()) return IoError("tar " + packed.Describe() + ": " + packed.Tail());
  std::vector<std::string> args = {"import"};
  for (const auto& c : changes) {
    args.push_back("--change");
    args.push_back(c);
  }
  args.push_back(tar);
  args.push_back(tag);
  TURNOUT_ASSIGN_OR_RETURN(platform::RunResult imported, Cli(args));
  std::filesystem::remove(tar);
  if (!imported.ok()) return IoError("import " + imported.Describe() + ": " + imported.Tail());
  return Status::Ok();
}

void EngineService::Stop() {
  if (dir_.empty()) return;
  if (pid_ > 0) {
    // Every container of this engine goes first (their shims, mounts and cgroups).
    EngineClient client(socket_, milliseconds(30000));
    auto all = client.ContainerList({});
    if (all.ok()) {
      for (const auto& c : *all) {
        Status removed = client.ContainerRemove(c.id, /*force=*/true);
        if (!removed.ok() && removed.code() != StatusCode::kNotFound) {
          ADD_FAILURE() << "removing container " << c.id << ": " << removed.ToString();
        }
      }
    }
    ::kill(pid_, SIGTERM);
    if (!platform::testing::WaitPidGone(pid_, std::chrono::seconds(15))) {
      ADD_FAILURE() << EngineName(kind_) << " ignored SIGTERM for 15 s; killing it";
      ::kill(pid_, SIGKILL);
    }
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  for (const std::string& m : MountsUnder(dir_)) ::umount2(m.c_str(), MNT_DETACH);
  // A container's monitor (conmon) outlives the engine by a moment and may still write its exit
  // file while the tree is removed ("Directory not empty"): try again, for up to 5 s.
  std::error_code ec;
  for (int attempt = 0; attempt < 50; ++attempt) {
    ec.clear();
    std::filesystem::remove_all(dir_, ec);
    if (!ec) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  if (ec) ADD_FAILURE() << "cannot remove " << dir_ << ": " << ec.message();
  dir_.clear();
}

EngineService::~EngineService() { Stop(); }

namespace {

struct Shared {
  std::once_flag once;
  std::unique_ptr<EngineService> service;
  std::string why;
};

Shared& TheShared(EngineKind kind) {
  static Shared podman;
  static Shared dockerd;
  return kind == EngineKind::kPodman ? podman : dockerd;
}

// Stops the shared engines when the test binary is done.
class EngineEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    TheShared(EngineKind::kPodman).service.reset();
    TheShared(EngineKind::kDockerd).service.reset();
  }
};

[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new EngineEnvironment);

}  // namespace

EngineService* SharedEngine(EngineKind kind, std::string* why) {
  Shared& shared = TheShared(kind);
  std::call_once(shared.once, [&] {
    auto started = EngineService::Start(kind);
    if (!started.ok()) {
      shared.why = started.status().ToString();
      return;
    }
    std::unique_ptr<EngineService> service = std::move(started).value();
    std::string root = service->dir() + "/image-root";
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    std::filesystem::copy_file(TURNOUT_CONTAINER_TEST_APP, root + "/app",
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
      shared.why = "cannot copy the test app " + std::string(TURNOUT_CONTAINER_TEST_APP) + ": " +
                   ec.message();
      return;
    }
    Status imported =
        service->ImportImage(root, kTestImage, {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=v1"});
    if (!imported.ok()) {
      shared.why = imported.ToString();
      return;
    }
    shared.service = std::move(service);
  });
  if (!shared.service && why != nullptr) *why = shared.why;
  return shared.service.get();
}

}  // namespace turnout::container::testing
