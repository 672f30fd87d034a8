#include "platform/testing/test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "platform/ports.h"
#include "platform/proc.h"

namespace turnout::platform::testing {

using Steady = std::chrono::steady_clock;

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "turnout-platform-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

Result<uint16_t> FreePort() { return platform::FreePort("127.0.0.1"); }

HeldPort::HeldPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd_, 4) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "cannot hold a loopback port: " << std::strerror(errno);
    return;
  }
  port_ = ntohs(addr.sin_port);
}

void HeldPort::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WaitForFileContains(const std::string& path, const std::string& needle,
                           std::chrono::milliseconds timeout) {
  auto deadline = Steady::now() + timeout;
  int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (in < 0) return ErrnoError("inotify_init1", errno);
  // Watch the directory: the file may not exist yet, and writes show up as IN_MODIFY there.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (::inotify_add_watch(in, dir.c_str(), IN_MODIFY | IN_CREATE) < 0) {
    int err = errno;
    ::close(in);
    return ErrnoError("inotify_add_watch " + dir, err);
  }
  Status result = Status::Ok();
  while (ReadFile(path).find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
    if (left.count() <= 0) {
      result = DeadlineExceeded("'" + needle + "' did not appear in " + path + "; it has:\n" +
                                ReadFile(path));
      break;
    }
    pollfd p{in, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char buf[4096];
      while (::read(in, buf, sizeof(buf)) > 0) {
      }
    }
  }
  ::close(in);
  return result;
}

std::vector<pid_t> GroupMembers(pid_t pgid) {
  std::vector<pid_t> members;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = ReadFile("/proc/" + name + "/stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    char state;
    long parent, group;
    if (!(fields >> state >> parent >> group)) continue;
    if (group == pgid && state != 'Z' && state != 'X') members.push_back(std::stoi(name));
  }
  return members;
}

bool WaitPidGone(pid_t pid, std::chrono::milliseconds timeout) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  ::close(fd);
  return r > 0;
}

Result<pid_t> SpawnService(std::vector<std::string> argv, const std::string& log,
                           const std::vector<std::string>& env, const std::string& working_dir) {
  if (argv.empty()) return InvalidArgument("SpawnService: empty argv");
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=') + 1); };
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    bool replaced = std::any_of(env.begin(), env.end(),
                                [&](const std::string& x) { return name_of(*e) == name_of(x); });
    if (!replaced) env_strings.emplace_back(*e);
  }
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  std::vector<char*> cenv;
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  if (!working_dir.empty()) posix_spawn_file_actions_addchdir_np(&actions, working_dir.c_str());
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, cargv[0], &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return ErrnoError("spawn " + argv[0], rc);
  return pid;
}

InstanceCleaner::~InstanceCleaner() {
  for (InstanceHandle h : handles_) {
    h.grace = std::chrono::milliseconds(0);
    (void)platform_.Stop(h);
  }
}

}  // namespace turnout::platform::testing
