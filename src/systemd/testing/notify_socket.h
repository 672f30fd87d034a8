// A service manager's end of the notify protocol, for tests: an AF_UNIX datagram socket bound in
// a directory of the test's own, whose path a child gets as NOTIFY_SOCKET.

#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace turnout::systemd::testing {

class NotifySocket {
 public:
  // Binds `path` (removed first when it exists). Fails the test (ADD_FAILURE) when it cannot.
  explicit NotifySocket(std::string path);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  const std::string& path() const { return path_; }
  // "NOTIFY_SOCKET=<path>", for a child's environment.
  std::string Env() const { return "NOTIFY_SOCKET=" + path_; }
  // The next datagram, or nullopt when none arrives within `timeout`.
  std::optional<std::string> Receive(std::chrono::milliseconds timeout);

 private:
  std::string path_;
  int fd_ = -1;
};

// True when `message` holds the assignment `line` ("READY=1") as one of its lines.
bool HasLine(const std::string& message, const std::string& line);
// The value of `name`= in `message` ("" when absent).
std::string ValueOf(const std::string& message, const std::string& name);

}  // namespace turnout::systemd::testing
