// Test-only helpers for the demo binaries' integration tests: start a real child process and
// read its first stdout line, and speak raw HTTP/1.1 to it over a blocking loopback socket.
//
// Every wait is bounded by a deadline and waits for a real event (poll on a pipe, a socket or
// a pidfd); nothing sleeps. A ChildProcess that is still running when destroyed is killed
// (SIGKILL, by its own pid) and reaped. Not thread-safe; one test thread uses one object.

#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace turnout::demo::testing {

using std::chrono::milliseconds;

class ChildProcess {
 public:
  // Starts argv[0] with argv, the current environment plus `env` ("NAME=value"). stdout is a
  // pipe read by ReadLine()/ReadAll(); stderr is inherited so that failures show in test logs,
  // unless `stderr_too`, which sends it into the same pipe.
  static Result<ChildProcess> Start(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& env = {},
                                    bool stderr_too = false);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // The next line of stdout (without '\n'); DeadlineExceeded / Unavailable (EOF) otherwise.
  Result<std::string> ReadLine(milliseconds timeout);
  // Everything left on stdout until EOF.
  Result<std::string> ReadAll(milliseconds timeout);
  Status Signal(int signo);
  // The raw wait status (use WIFEXITED etc.) once the child ended; DeadlineExceeded otherwise.
  Result<int> Wait(milliseconds timeout);

 private:
  ChildProcess(pid_t pid, int out_fd, int pid_fd) : pid_(pid), out_fd_(out_fd), pid_fd_(pid_fd) {}
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int pid_fd_ = -1;
  bool reaped_ = false;
  std::string pending_;  // stdout bytes read but not yet returned
};

// Starts turnout-demo-app with `args` and returns it with the port from its first line.
struct DemoApp {
  ChildProcess process;
  uint16_t port = 0;
};
Result<DemoApp> StartDemoApp(const std::string& binary, std::vector<std::string> args,
                             const std::vector<std::string>& env = {});

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& lower_name) const;
};

// A blocking client connection to 127.0.0.1:port.
class Client {
 public:
  static Result<Client> Connect(uint16_t port, milliseconds timeout = milliseconds(5000));
  Client(Client&& other) noexcept;
  Client& operator=(Client&&) = delete;
  ~Client();

  Status Send(std::string_view bytes);
  // Reads one response (Content-Length framed, or until close); `head_request` for HEAD.
  Result<HttpReply> Receive(milliseconds timeout = milliseconds(5000), bool head_request = false);
  // True when the peer closed the connection (EOF or reset) before `timeout`.
  bool ClosedByPeer(milliseconds timeout);
  int fd() const { return fd_; }

 private:
  explicit Client(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection: "GET /path" -> reply.
Result<HttpReply> Get(uint16_t port, const std::string& target, const std::string& method = "GET");

// Whether a TCP connect to 127.0.0.1:port is refused right now.
bool ConnectRefused(uint16_t port);

}  // namespace turnout::demo::testing
