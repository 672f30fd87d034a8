// api::Client: blocking HTTP/1.1 over one kept-alive socket, with poll() bounding every wait by
// the exchange's deadline. Plain POSIX sockets rather than Asio: the CLI makes one call at a time
// and needs no event loop.

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "api/api.h"
#include "common/text.h"
#include "http/api_support.h"
#include "http/parser.h"

namespace turnout::api {
namespace {

using SteadyClock = std::chrono::steady_clock;

// A reply larger than this is a daemon bug, not something to buffer.
constexpr uint64_t kMaxReplyBodyBytes = 64ull << 20;

constexpr std::string_view kHint = "is turnoutd running? start it with `turnout up`";

bool IsTarget(std::string_view s) {
  if (s.empty() || s[0] != '/') return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return false;
  }
  return true;
}

int MillisLeft(SteadyClock::time_point deadline) {
  // Rounded up: poll() must not return before the deadline.
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

// Waits until `fd` is ready for `events`; false when the deadline passed first.
bool WaitFor(int fd, short events, SteadyClock::time_point deadline) {
  for (;;) {
    const int timeout = MillisLeft(deadline);
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, timeout);
    if (n > 0) return true;
    if (n == 0) {
      if (SteadyClock::now() >= deadline) return false;
      continue;
    }
    if (errno != EINTR) return true;  // let the following call report the error
  }
}

// How one attempt on a connection ended.
struct Attempt {
  Status status;
  Reply reply;
  bool reusable = false;
  // The peer closed the connection before a byte of the reply arrived: on a kept connection this
  // is the server's idle close racing the request, and the request can be sent again.
  bool closed_before_reply = false;
  // ... and it did so while the request was still being sent (so it was never read whole).
  bool failed_sending = false;
};

}  // namespace

struct Client::Impl {
  explicit Impl(Options o) : options(std::move(o)) { endpoint_status = ParseEndpoint(); }
  ~Impl() { Disconnect(); }

  Status ParseEndpoint();
  Status Connect(SteadyClock::time_point deadline);
  // `on_data` (Stream): a body that lasts until the close is handed over as it arrives, with
  // no deadline after the head.
  Attempt Exchange(std::string_view method, const std::string& request,
                   SteadyClock::time_point deadline,
                   const std::function<bool(std::string_view)>* on_data = nullptr);
  std::string BuildRequest(std::string_view method, std::string_view target,
                           std::string_view body) const;
  // The endpoint, method, token and target are usable (InvalidArgument naming what is not).
  Status Check(std::string_view method, std::string_view target) const;
  bool KeptConnectionClosed() const;
  void Disconnect() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  std::string Describe() const { return options.endpoint; }

  Options options;
  Status endpoint_status;
  bool is_unix = false;
  std::string unix_path;
  std::string host;  // TCP
  std::string port;  // TCP
  std::string host_header;
  int fd = -1;
};

Status Client::Impl::ParseEndpoint() {
  std::string_view e = options.endpoint;
  constexpr std::string_view kUnix = "unix:";
  constexpr std::string_view kHttp = "http://";
  if (e.substr(0, kUnix.size()) == kUnix || (!e.empty() && (e[0] == '/' || e[0] == '.'))) {
    if (e.substr(0, kUnix.size()) == kUnix) e.remove_prefix(kUnix.size());
    if (e.empty()) return InvalidArgument("API endpoint 'unix:' needs a socket path");
    if (e.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return InvalidArgument("API socket path is too long (" + std::to_string(e.size()) +
                             " bytes; Unix sockets allow at most " +
                             std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + ")");
    }
    is_unix = true;
    unix_path = std::string(e);
    host_header = "localhost";
    return Status::Ok();
  }
  if (e.substr(0, kHttp.size()) == kHttp) {
    e.remove_prefix(kHttp.size());
    if (!e.empty() && e.back() == '/') e.remove_suffix(1);
    const size_t colon = e.rfind(':');
    const bool bracketed = !e.empty() && e.front() == '[';
    if (colon == std::string_view::npos || (bracketed && e.find(']') > colon)) {
      return InvalidArgument("API endpoint " + options.endpoint +
                             " needs a port, e.g. http://127.0.0.1:7070");
    }
    std::string_view h = e.substr(0, colon);
    std::string_view p = e.substr(colon + 1);
    unsigned port_number = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port_number);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || port_number == 0 ||
        port_number > 65535 || h.empty() || e.find('/') != std::string_view::npos) {
      return InvalidArgument("API endpoint " + options.endpoint +
                             " is not http://host:port (e.g. http://127.0.0.1:7070)");
    }
    host_header = std::string(e);
    if (bracketed) h = h.substr(1, h.size() - 2);
    host = std::string(h);
    port = std::string(p);
    return Status::Ok();
  }
  return InvalidArgument("API endpoint '" + options.endpoint +
                         "' must be unix:/path/to/turnoutd.sock, a socket path, or "
                         "http://host:port");
}

Status Client::Impl::Connect(SteadyClock::time_point deadline) {
  auto unavailable = [&](int err) {
    std::string m = "cannot reach turnoutd at " + Describe() + ": " + std::strerror(err);
    if (err == EACCES || err == EPERM) {
      m += " (the socket's permissions allow only its owner)";
    } else {
      m += "; ";
      m += kHint;
    }
    return Unavailable(std::move(m));
  };
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int family = AF_UNIX;
  if (is_unix) {
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, unix_path.data(), unix_path.size());
    addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + unix_path.size() + 1);
  } else {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0 || found == nullptr) {
      return Unavailable("cannot resolve the host of " + Describe() + ": " + gai_strerror(rc));
    }
    std::memcpy(&addr, found->ai_addr, found->ai_addrlen);
    addr_len = found->ai_addrlen;
    family = found->ai_family;
    ::freeaddrinfo(found);
  }
  const int s = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return ErrnoError("cannot create a socket", errno);
  if (::connect(s, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    const int err = errno;
    if (err != EINPROGRESS) {
      ::close(s);
      return unavailable(err == EAGAIN ? ECONNREFUSED : err);
    }
    if (!WaitFor(s, POLLOUT, deadline)) {
      ::close(s);
      return DeadlineExceeded("connecting to turnoutd at " + Describe() + " took longer than " +
                              std::to_string(options.timeout.count()) + " ms");
    }
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    ::getsockopt(s, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
      ::close(s);
      return unavailable(so_error);
    }
  }
  if (!is_unix) {
    int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  fd = s;
  return Status::Ok();
}

bool Client::Impl::KeptConnectionClosed() const {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  // Readable while no request is outstanding: either the server's close (EOF) or bytes that do
  // not belong to any request; both make the connection unusable.
  return true;
}

Attempt Client::Impl::Exchange(std::string_view method, const std::string& request,
                               SteadyClock::time_point deadline,
                               const std::function<bool(std::string_view)>* on_data) {
  Attempt a;
  auto deadline_exceeded = [&] {
    a.status = DeadlineExceeded("no reply from turnoutd at " + Describe() + " within " +
                                std::to_string(options.timeout.count()) + " ms");
    return a;
  };
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!WaitFor(fd, POLLOUT, deadline)) return deadline_exceeded();
      continue;
    }
    const int err = errno;
    a.closed_before_reply = err == EPIPE || err == ECONNRESET;
    a.failed_sending = true;
    a.status =
        Unavailable("sending to turnoutd at " + Describe() + " failed: " + std::strerror(err));
    return a;
  }

  std::string buffer;
  http::ParseLimits limits;
  http::ResponseHead head;
  size_t head_size = 0;
  bool eof = false;
  char chunk[16384];
  auto read_more = [&]() -> bool {  // false: a.status is set
    for (;;) {
      const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n > 0) {
        buffer.append(chunk, static_cast<size_t>(n));
        return true;
      }
      if (n == 0) {
        eof = true;
        return true;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!WaitFor(fd, POLLIN, deadline)) {
          deadline_exceeded();
          return false;
        }
        continue;
      }
      const int err = errno;
      a.closed_before_reply = buffer.empty() && err == ECONNRESET;
      a.status =
          Unavailable("reading from turnoutd at " + Describe() + " failed: " + std::strerror(err));
      return false;
    }
  };
  auto closed_early = [&] {
    a.closed_before_reply = buffer.empty();
    a.status = Unavailable("turnoutd at " + Describe() + " closed the connection before " +
                           (buffer.empty() ? "replying" : "the reply was complete"));
    return a;
  };

  for (;;) {
    const http::ParseResult r = http::ParseResponseHead(buffer, method, limits, &head);
    if (r.state == http::ParseState::kError) {
      a.status = Unavailable("turnoutd at " + Describe() + " sent a malformed reply (" +
                             r.error_reason + ")");
      return a;
    }
    if (r.state == http::ParseState::kComplete) {
      if (head.status >= 100 && head.status < 200) {  // interim (100 Continue): skip it
        buffer.erase(0, r.consumed);
        continue;
      }
      head_size = r.consumed;
      break;
    }
    if (eof) return closed_early();
    if (!read_more()) return a;
  }

  a.reply.status = head.status;
  const http::Header* content_type = head.headers.Find("Content-Type");
  a.reply.content_type = content_type ? std::string(content_type->value) : std::string();
  a.reusable = head.keep_alive;
  switch (head.body) {
    case http::BodyKind::kNone:
      buffer.erase(0, head_size);
      break;
    case http::BodyKind::kContentLength: {
      if (head.content_length > kMaxReplyBodyBytes) {
        a.status = Internal("turnoutd's reply of " + std::to_string(head.content_length) +
                            " bytes is over the client's 64 MiB limit");
        return a;
      }
      const size_t end = head_size + static_cast<size_t>(head.content_length);
      while (buffer.size() < end) {
        if (eof) return closed_early();
        if (!read_more()) return a;
      }
      a.reply.body = buffer.substr(head_size, static_cast<size_t>(head.content_length));
      buffer.erase(0, end);
      break;
    }
    case http::BodyKind::kChunked: {
      http::ChunkedDecoder decoder;
      size_t pos = head_size;
      while (!decoder.done()) {
        if (pos < buffer.size()) {
          const auto step = decoder.Feed(std::string_view(buffer).substr(pos));
          if (step.error) {
            a.status = Unavailable("turnoutd at " + Describe() + " sent a malformed body (" +
                                   step.error_reason + ")");
            return a;
          }
          a.reply.body.append(step.data);
          pos += step.consumed;
          if (a.reply.body.size() > kMaxReplyBodyBytes) {
            a.status = Internal("turnoutd's reply is over the client's 64 MiB limit");
            return a;
          }
          continue;
        }
        if (eof) return closed_early();
        if (!read_more()) return a;
      }
      buffer.erase(0, pos);
      break;
    }
    case http::BodyKind::kUntilClose:
      if (on_data != nullptr) {
        deadline = SteadyClock::time_point::max();
        buffer.erase(0, head_size);
        for (;;) {
          if (!buffer.empty() && !(*on_data)(buffer)) break;
          buffer.clear();
          if (eof) break;
          if (!read_more()) return a;
        }
        buffer.clear();
        a.reusable = false;
        break;
      }
      while (!eof) {
        if (buffer.size() - head_size > kMaxReplyBodyBytes) {
          a.status = Internal("turnoutd's reply is over the client's 64 MiB limit");
          return a;
        }
        if (!read_more()) return a;
      }
      a.reply.body = buffer.substr(head_size);
      buffer.clear();
      a.reusable = false;
      break;
  }
  // Bytes after the reply belong to no request of ours: do not reuse such a connection.
  if (!buffer.empty() || eof) a.reusable = false;
  return a;
}

Status Client::Impl::Check(std::string_view method, std::string_view target) const {
  TURNOUT_RETURN_IF_ERROR(endpoint_status);
  if (!IsToken(method)) return InvalidArgument("invalid HTTP method '" + std::string(method) + "'");
  for (char c : options.token) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return InvalidArgument("the API token may contain only visible ASCII characters");
    }
  }
  if (!IsTarget(target)) {
    return InvalidArgument("invalid request target '" + std::string(target) +
                           "': it must start with '/' and contain no spaces or control bytes");
  }
  return Status::Ok();
}

std::string Client::Impl::BuildRequest(std::string_view method, std::string_view target,
                                       std::string_view body) const {
  std::string request;
  request.reserve(128 + target.size() + body.size());
  request.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
  request.append(host_header).append("\r\n");
  if (!options.token.empty()) {
    request.append("Authorization: Bearer ").append(options.token).append("\r\n");
  }
  // Every request that changes something says it is JSON, body or not (the server refuses a
  // mutating request without it: 415).
  if (!body.empty() || http::IsMutatingMethod(method)) {
    request.append("Content-Type: application/json\r\n");
  }
  if (!body.empty() || (method != "GET" && method != "HEAD")) {
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request.append("\r\n").append(body);
  return request;
}

Client::Client(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

Result<Reply> Client::Call(std::string_view method, std::string_view target,
                           std::string_view body) {
  Impl& impl = *impl_;
  TURNOUT_RETURN_IF_ERROR(impl.Check(method, target));
  const std::string request = impl.BuildRequest(method, target, body);

  const auto deadline = SteadyClock::now() + impl.options.timeout;
  bool reused = impl.fd >= 0;
  if (reused && impl.KeptConnectionClosed()) {
    impl.Disconnect();
    reused = false;
  }
  if (impl.fd < 0) TURNOUT_RETURN_IF_ERROR(impl.Connect(deadline));
  Attempt a = impl.Exchange(method, request, deadline);
  // A request that may have reached the server is sent again only when repeating it is harmless:
  // a daemon stopped mid-handler also closes without a reply, and a deployment must never start
  // twice because of a retry.
  const bool idempotent = method == "GET" || method == "HEAD" || method == "PUT" ||
                          method == "DELETE" || method == "OPTIONS";
  if (!a.status.ok() && a.closed_before_reply && reused && (idempotent || a.failed_sending)) {
    impl.Disconnect();
    TURNOUT_RETURN_IF_ERROR(impl.Connect(deadline));
    a = impl.Exchange(method, request, deadline);
  }
  if (!a.status.ok() || !a.reusable) impl.Disconnect();
  if (!a.status.ok()) return a.status;
  return std::move(a.reply);
}

Result<Reply> Client::Stream(std::string_view target,
                             const std::function<bool(std::string_view)>& on_data) {
  Impl& impl = *impl_;
  TURNOUT_RETURN_IF_ERROR(impl.Check("GET", target));
  const std::string request = impl.BuildRequest("GET", target, "");
  // A connection of its own: the stream ends with the server's close.
  impl.Disconnect();
  const auto deadline = SteadyClock::now() + impl.options.timeout;
  TURNOUT_RETURN_IF_ERROR(impl.Connect(deadline));
  Attempt a = impl.Exchange("GET", request, deadline, &on_data);
  impl.Disconnect();
  if (!a.status.ok()) return a.status;
  // A 2xx reply that was not streamed is data too; any other keeps its body (the error).
  if (a.reply.status / 100 == 2 && !a.reply.body.empty()) {
    on_data(a.reply.body);
    a.reply.body.clear();
  }
  return std::move(a.reply);
}

}  // namespace turnout::api
