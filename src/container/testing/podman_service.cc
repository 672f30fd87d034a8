#include "container/testing/podman_service.h"

#include <fcntl.h>
#include <spawn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "common/file_util.h"
#include "container/engine_client.h"
#include "router/testing/test_upstream.h"

namespace turnout::container::testing {
namespace {

using std::chrono::milliseconds;

constexpr char kConf[] = R"([containers]
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
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

// Reaps `pid` once it has exited; false when it still runs after `within`.
bool Reaped(pid_t pid, milliseconds within) {
  return router::testing::WaitUntil(
      [&] {
        pid_t r = ::waitpid(pid, nullptr, WNOHANG);
        return r == pid || (r < 0 && errno == ECHILD);
      },
      within);
}

}  // namespace

std::vector<std::string> PodmanService::GlobalFlags() const {
  return {"podman",      "--root",  dir_ + "/root",       "--runroot", dir_ + "/runroot",
          "--tmpdir",    dir_ + "/tmp", "--storage-driver", "vfs"};
}

Result<platform::RunResult> PodmanService::Podman(std::vector<std::string> args,
                                                  milliseconds timeout) const {
  platform::RunSpec spec;
  spec.argv = GlobalFlags();
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.env = {{"CONTAINERS_CONF", conf_}};
  spec.timeout = timeout;
  return platform::RunCommand(spec);
}

Result<std::unique_ptr<PodmanService>> PodmanService::Start(milliseconds ready_timeout) {
  platform::RunSpec probe;
  probe.argv = {"podman", "--version"};
  probe.timeout = std::chrono::seconds(10);
  auto version = platform::RunCommand(probe);
  if (!version.ok() || !version->ok()) {
    return FailedPrecondition("podman is not installed (scripts/install-deps.sh installs it)");
  }
  std::unique_ptr<PodmanService> s(new PodmanService());
  std::string pattern =
      (std::filesystem::temp_directory_path() / "turnout-podman-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) return ErrnoError("mkdtemp", errno);
  s->dir_ = pattern;
  s->socket_ = s->dir_ + "/podman.sock";
  s->conf_ = s->dir_ + "/containers.conf";
  TURNOUT_RETURN_IF_ERROR(WriteFileAtomically(s->conf_, kConf, 0644));

  std::vector<std::string> argv = s->GlobalFlags();
  for (const char* a : {"system", "service", "--time=0"}) argv.emplace_back(a);
  argv.push_back("unix://" + s->socket_);
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  // The environment: ours, with CONTAINERS_CONF pointing at the generated file.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("CONTAINERS_CONF=", 0) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back("CONTAINERS_CONF=" + s->conf_);
  std::vector<char*> cenv;
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  std::string log = s->dir_ + "/service.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, "podman", &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    s->Stop();
    return ErrnoError("posix_spawnp podman", rc);
  }
  s->pid_ = pid;
  EngineClient client(s->socket_, milliseconds(2000));
  bool up = router::testing::WaitUntil([&] { return client.Ping().ok(); }, ready_timeout);
  if (!up) {
    std::string text = ReadFileToString(log).value_or("");
    s->Stop();
    return Unavailable("podman system service did not answer /_ping within " +
                       std::to_string(ready_timeout.count()) + " ms; its log:\n" + text);
  }
  return s;
}

Status PodmanService::ImportImage(const std::string& rootfs_dir, const std::string& tag,
                                  const std::vector<std::string>& changes) const {
  std::string tar = dir_ + "/import-" + std::to_string(::getpid()) + ".tar";
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
  TURNOUT_ASSIGN_OR_RETURN(platform::RunResult imported, Podman(args));
  std::filesystem::remove(tar);
  if (!imported.ok()) return IoError("podman import " + imported.Describe() + ": " + imported.Tail());
  return Status::Ok();
}

void PodmanService::Stop() {
  if (dir_.empty()) return;
  if (pid_ > 0) {
    // Every container of this storage goes first (their conmon processes and shm mounts).
    auto removed = Podman({"rm", "--all", "--force", "--time", "0"}, std::chrono::seconds(60));
    if (!removed.ok() || !removed->ok()) {
      ADD_FAILURE() << "podman rm --all: "
                    << (removed.ok() ? removed->Describe() + " " + removed->Tail()
                                     : removed.status().ToString());
    }
    ::kill(pid_, SIGTERM);
    if (!Reaped(pid_, std::chrono::seconds(10))) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
  }
  for (const std::string& m : MountsUnder(dir_)) ::umount2(m.c_str(), MNT_DETACH);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  if (ec) ADD_FAILURE() << "cannot remove " << dir_ << ": " << ec.message();
  dir_.clear();
}

PodmanService::~PodmanService() { Stop(); }

namespace {

struct Shared {
  std::once_flag once;
  std::unique_ptr<PodmanService> service;
  std::string why;
};

Shared& TheShared() {
  static Shared shared;
  return shared;
}

// Stops the shared service when the test binary is done.
class PodmanEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { TheShared().service.reset(); }
};

[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PodmanEnvironment);

}  // namespace

PodmanService* SharedPodman(std::string* why) {
  Shared& shared = TheShared();
  std::call_once(shared.once, [&] {
    auto started = PodmanService::Start();
    if (!started.ok()) {
      shared.why = started.status().ToString();
      return;
    }
    std::unique_ptr<PodmanService> service = std::move(started).value();
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
    Status imported = service->ImportImage(root, kTestImage,
                                           {R"(CMD ["/app", "serve"])", "ENV APP_VERSION=v1"});
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
