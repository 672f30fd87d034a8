#include "controller/http_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>

#include "http/parser.h"

namespace turnout::controller {
namespace {

using Steady = std::chrono::steady_clock;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

int MillisLeft(Steady::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Steady::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 60'000));
}

// Waits for `events` on fd until the deadline; false when it passed.
bool WaitFor(int fd, short events, Steady::time_point deadline) {
  while (true) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, MillisLeft(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return true;  // let the following call report the error
  }
}

}  // namespace

Result<ProbeResponse> HttpProbe(const ProbeRequest& request) {
  const Steady::time_point deadline = Steady::now() + request.timeout;
  size_t colon = request.address.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument("probe address '" + request.address + "' has no port");
  }
  std::string host = request.address.substr(0, colon);
  int port = std::atoi(request.address.c_str() + colon + 1);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (port <= 0 || port > 65535 || ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgument("probe address '" + request.address + "' is not IPv4:port");
  }

  Fd sock{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (sock.fd < 0) return ErrnoError("socket", errno);
  if (::connect(sock.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS)
      return Unavailable("connect to " + request.address + ": " + std::strerror(errno));
    if (!WaitFor(sock.fd, POLLOUT, deadline)) {
      return DeadlineExceeded("connect to " + request.address + " timed out");
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(sock.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      return Unavailable("connect to " + request.address + ": " + std::strerror(err));
    }
  }

  const bool own_host =
      std::any_of(request.headers.begin(), request.headers.end(), [](const auto& h) {
        return h.first.size() == 4 && ::strncasecmp(h.first.c_str(), "host", 4) == 0;
      });
  std::string out = request.method + " " + request.path + " HTTP/1.1\r\n";
  if (!own_host) out += "Host: " + request.address + "\r\n";
  out += "Connection: close\r\nContent-Length: " + std::to_string(request.body.size()) + "\r\n";
  for (const auto& [name, value] : request.headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  out += request.body;
  size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(sock.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(sock.fd, POLLOUT, deadline)) return DeadlineExceeded("send timed out");
    } else {
      return Unavailable(std::string("send to ") + request.address + ": " + std::strerror(errno));
    }
  }

  std::string in;
  http::ResponseHead head;
  http::ParseLimits limits;
  size_t head_size = 0;
  bool eof = false;
  auto read_some = [&]() -> Status {
    char buf[4096];
    while (true) {
      ssize_t n = ::recv(sock.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        in.append(buf, static_cast<size_t>(n));
        return Status::Ok();
      }
      if (n == 0) {
        eof = true;
        return Status::Ok();
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        return Unavailable("read from " + request.address + ": " + std::strerror(errno));
      }
      if (!WaitFor(sock.fd, POLLIN, deadline)) {
        return DeadlineExceeded("no response from " + request.address + " within " +
                                std::to_string(request.timeout.count()) + " ms");
      }
    }
  };
  while (true) {
    http::ParseResult r = http::ParseResponseHead(in, request.method, limits, &head);
    if (r.state == http::ParseState::kComplete) {
      head_size = r.consumed;
      break;
    }
    if (r.state == http::ParseState::kError) {
      return Unavailable("bad response head from " + request.address + ": " + r.error_reason);
    }
    if (eof) return Unavailable("connection closed by " + request.address + " before a response");
    TURNOUT_RETURN_IF_ERROR(read_some());
  }
  ProbeResponse response;
  response.status = head.status;
  for (size_t i = 0; i < head.headers.count; ++i) {
    response.headers.emplace_back(std::string(head.headers.fields[i].name),
                                  std::string(head.headers.fields[i].value));
  }
  // The head's views point into `in`; copy everything we need before reading more.
  const http::BodyKind kind = head.body;
  const uint64_t length = head.content_length;
  if (kind == http::BodyKind::kContentLength || kind == http::BodyKind::kUntilClose) {
    const uint64_t want = kind == http::BodyKind::kContentLength
                              ? std::min<uint64_t>(length, request.max_body_bytes)
                              : request.max_body_bytes;
    while (in.size() - head_size < want && !eof) {
      Status s = read_some();
      if (!s.ok()) break;  // the status line is what probes judge; a short body is kept
    }
    response.body = in.substr(head_size, static_cast<size_t>(want));
  }
  return response;
}

}  // namespace turnout::controller
