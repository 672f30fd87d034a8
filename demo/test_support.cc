#include "demo/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "http/parser.h"

extern char** environ;

namespace turnout::demo::testing {
namespace {

using Steady = std::chrono::steady_clock;

int RemainingMs(Steady::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Steady::now()).count();
  return static_cast<int>(std::max<int64_t>(0, left));
}

// Waits until `fd` is readable; false on timeout.
bool WaitReadable(int fd, Steady::time_point deadline) {
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

Result<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                         const std::vector<std::string>& env, bool stderr_too) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoError("pipe2", errno);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  if (stderr_too) posix_spawn_file_actions_adddup2(&actions, out[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  for (const std::string& e : env) env_storage.push_back(e);
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return ErrnoError("posix_spawn " + argv[0], rc);
  }
  // glibc 2.36 declares pidfd_open without C linkage for C++; the raw syscall is portable.
  int pid_fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  return ChildProcess(pid, out[0], pid_fd);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_),
      out_fd_(other.out_fd_),
      pid_fd_(other.pid_fd_),
      reaped_(other.reaped_),
      pending_(std::move(other.pending_)) {
  other.pid_ = -1;
  other.out_fd_ = -1;
  other.pid_fd_ = -1;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (pid_fd_ >= 0) ::close(pid_fd_);
}

Result<std::string> ChildProcess::ReadLine(milliseconds timeout) {
  Steady::time_point deadline = Steady::now() + timeout;
  while (true) {
    size_t nl = pending_.find('\n');
    if (nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return line;
    }
    if (!WaitReadable(out_fd_, deadline)) return DeadlineExceeded("no stdout line in time");
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Unavailable("stdout closed before a full line: '" + pending_ + "'");
    pending_.append(buf, static_cast<size_t>(n));
  }
}

Result<std::string> ChildProcess::ReadAll(milliseconds timeout) {
  Steady::time_point deadline = Steady::now() + timeout;
  while (true) {
    if (!WaitReadable(out_fd_, deadline)) return DeadlineExceeded("stdout not closed in time");
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending_.append(buf, static_cast<size_t>(n));
  }
  return std::exchange(pending_, std::string());
}

Status ChildProcess::Signal(int signo) {
  if (reaped_) return FailedPrecondition("process already reaped");
  if (::kill(pid_, signo) != 0) return ErrnoError("kill", errno);
  return Status::Ok();
}

Result<int> ChildProcess::Wait(milliseconds timeout) {
  Steady::time_point deadline = Steady::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return status;
    }
    if (r < 0 && errno != EINTR) return ErrnoError("waitpid", errno);
    if (RemainingMs(deadline) == 0) return DeadlineExceeded("process still running");
    // The pidfd becomes readable when the process exits.
    if (pid_fd_ >= 0) WaitReadable(pid_fd_, deadline);
  }
}

Result<DemoApp> StartDemoApp(const std::string& binary, std::vector<std::string> args,
                             const std::vector<std::string>& env) {
  args.insert(args.begin(), binary);
  TURNOUT_ASSIGN_OR_RETURN(ChildProcess process, ChildProcess::Start(args, env));
  TURNOUT_ASSIGN_OR_RETURN(std::string line, process.ReadLine(milliseconds(10000)));
  size_t colon = line.rfind(':');
  if (line.rfind("listening on ", 0) != 0 || colon == std::string::npos) {
    return Internal("unexpected first line: '" + line + "'");
  }
  int port = std::atoi(line.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return Internal("bad port in '" + line + "'");
  return DemoApp{std::move(process), static_cast<uint16_t>(port)};
}

std::string HttpReply::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

Result<Client> Client::Connect(uint16_t port, milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoError("connect 127.0.0.1:" + std::to_string(port), err);
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return Client(fd);
}

Client::Client(Client&& other) noexcept : fd_(other.fd_), buffer_(std::move(other.buffer_)) {
  other.fd_ = -1;
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

Status Client::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("send", errno);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Result<HttpReply> Client::Receive(milliseconds timeout, bool head_request) {
  Steady::time_point deadline = Steady::now() + timeout;
  bool eof = false;
  auto read_more = [&]() -> Status {
    if (!WaitReadable(fd_, deadline)) return DeadlineExceeded("no response in time");
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return ErrnoError("recv", errno);
    if (n == 0) eof = true;
    buffer_.append(buf, static_cast<size_t>(n));
    return Status::Ok();
  };
  http::ResponseHead head;
  http::ParseLimits limits;
  http::ParseResult parsed;
  while (true) {
    parsed = http::ParseResponseHead(buffer_, head_request ? "HEAD" : "GET", limits, &head);
    if (parsed.state == http::ParseState::kError) {
      return Internal(std::string("bad response head: ") + parsed.error_reason);
    }
    if (parsed.state == http::ParseState::kComplete) break;
    if (eof) return Unavailable("connection closed before a response head");
    TURNOUT_RETURN_IF_ERROR(read_more());
  }
  HttpReply reply;
  reply.status = head.status;
  for (size_t i = 0; i < head.headers.count; ++i) {
    reply.headers[Lower(head.headers.fields[i].name)] = std::string(head.headers.fields[i].value);
  }
  http::BodyKind kind = head.body;
  uint64_t length = head.content_length;
  buffer_.erase(0, parsed.consumed);
  if (kind == http::BodyKind::kContentLength) {
    while (buffer_.size() < length) {
      if (eof) return Unavailable("connection closed inside the body");
      TURNOUT_RETURN_IF_ERROR(read_more());
    }
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
  } else if (kind == http::BodyKind::kUntilClose) {
    while (!eof) TURNOUT_RETURN_IF_ERROR(read_more());
    reply.body = std::exchange(buffer_, std::string());
  } else if (kind == http::BodyKind::kChunked) {
    return Internal("chunked responses are not expected from the demo binaries");
  }
  return reply;
}

bool Client::ClosedByPeer(milliseconds timeout) {
  Steady::time_point deadline = Steady::now() + timeout;
  while (true) {
    if (!WaitReadable(fd_, deadline)) return false;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
    if (n > 0) buffer_.append(buf, static_cast<size_t>(n));
  }
}

Result<HttpReply> Get(uint16_t port, const std::string& target, const std::string& method) {
  TURNOUT_ASSIGN_OR_RETURN(Client client, Client::Connect(port));
  TURNOUT_RETURN_IF_ERROR(client.Send(method + " " + target +
                                      " HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n"
                                      "Connection: close\r\n\r\n"));
  return client.Receive(milliseconds(10000), method == "HEAD");
}

bool ConnectRefused(uint16_t port) {
  Result<Client> c = Client::Connect(port);
  return !c.ok();
}

}  // namespace turnout::demo::testing
