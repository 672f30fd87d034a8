#include "systemd/service_manager.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "common/unique_fd.h"

namespace turnout::systemd {
namespace {

// What TakeNotifyEnvironment() found. Written once before any thread starts, then only read.
struct Environment {
  std::string socket;  // NOTIFY_SOCKET: a path, or "@name" for the abstract namespace
  std::chrono::microseconds watchdog{0};
};

Environment& Taken() {
  static Environment e;
  return e;
}

std::string Take(const char* name) {
  const char* v = std::getenv(name);
  std::string value = v == nullptr ? "" : v;
  ::unsetenv(name);
  return value;
}

void Send(const std::string& message) {
  const std::string& path = Taken().socket;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) return;
  if (path[0] != '/' && path[0] != '@') return;  // neither a path nor an abstract name
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                               (path[0] == '@' ? 0 : 1));
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return;
  (void)::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&addr), len);
}

std::string StatusLine(std::string_view status) {
  std::string line(status);
  for (char& c : line) {
    if (c == '\n') c = ' ';  // one line: the protocol separates assignments by newlines
  }
  return "STATUS=" + line;
}

}  // namespace

void TakeNotifyEnvironment() {
  Environment e;
  e.socket = Take("NOTIFY_SOCKET");
  const std::string usec = Take("WATCHDOG_USEC");
  const std::string pid = Take("WATCHDOG_PID");
  char* end = nullptr;
  const unsigned long long us = std::strtoull(usec.c_str(), &end, 10);
  const bool ours = pid.empty() || pid == std::to_string(::getpid());
  if (!e.socket.empty() && !usec.empty() && *end == '\0' && us > 0 && ours) {
    e.watchdog = std::chrono::microseconds(us);
  }
  Taken() = std::move(e);
}

void NotifyReady(std::string_view status) { Send("READY=1\n" + StatusLine(status)); }

void NotifyStatus(std::string_view status) { Send(StatusLine(status)); }

void NotifyStopping(std::string_view status) { Send("STOPPING=1\n" + StatusLine(status)); }

std::chrono::microseconds WatchdogTimeout() { return Taken().watchdog; }

Watchdog::Watchdog(std::function<bool()> alive) : alive_(std::move(alive)) {
  interval_ = WatchdogTimeout() / 2;
  if (interval_.count() > 0) thread_ = std::thread([this] { Run(); });
}

Watchdog::~Watchdog() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::Run() {
  MutexLock lock(mu_);
  while (!stop_) {
    const auto started = std::chrono::steady_clock::now();
    lock.Unlock();
    const bool alive = alive_();
    lock.Lock();
    // A check that took longer than the interval does not count: the process answered, but too
    // slowly to keep the service manager's promise.
    if (alive && !stop_ && std::chrono::steady_clock::now() - started <= interval_) {
      Send("WATCHDOG=1");
    }
    const auto next = started + interval_;
    while (!stop_ && !cv_.WaitUntil(mu_, next)) {
    }
  }
}

}  // namespace turnout::systemd
