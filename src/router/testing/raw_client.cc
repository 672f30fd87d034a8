#include "router/testing/raw_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "http/parser.h"
#include "router/config.h"

namespace turnout::router::testing {

namespace {

using SteadyClock = std::chrono::steady_clock;

int RemainingMs(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

// Waits for `events` on fd until the deadline; false on timeout.
bool PollFor(int fd, short events, SteadyClock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, RemainingMs(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return true;  // let the following call report the error
  }
}

}  // namespace

std::string_view OutcomeName(RawResponse::Outcome outcome) {
  switch (outcome) {
    case RawResponse::Outcome::kComplete:
      return "complete";
    case RawResponse::Outcome::kClosed:
      return "closed";
    case RawResponse::Outcome::kReset:
      return "reset";
    case RawResponse::Outcome::kTimeout:
      return "timeout";
    case RawResponse::Outcome::kMalformed:
      return "malformed";
  }
  return "?";
}

RawClient::~RawClient() { Close(); }

Status RawClient::Connect(const std::string& address, Millis timeout) {
  Close();
  if (std::string_view path = UnixSocketPathOf(address); !path.empty()) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) return InvalidArgument("socket path too long");
    std::memcpy(addr.sun_path, path.data(), path.size());
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoError("socket", errno);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      int err = errno;
      ::close(fd);
      return Unavailable("connect " + address + ": " + std::strerror(err));
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    fd_ = fd;
    buffer_.clear();
    return Status::Ok();
  }
  Result<HostPort> hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(hp->port);
  if (::inet_pton(AF_INET, hp->host.c_str(), &addr.sin_addr) != 1) {
    return InvalidArgument("RawClient needs an IPv4 literal, got " + address);
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto deadline = SteadyClock::now() + timeout;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      int err = errno;
      ::close(fd);
      return Unavailable("connect " + address + ": " + std::strerror(err));
    }
    if (!PollFor(fd, POLLOUT, deadline)) {
      ::close(fd);
      return DeadlineExceeded("connect " + address + " timed out");
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ::close(fd);
      return Unavailable("connect " + address + ": " + std::strerror(err));
    }
  }
  fd_ = fd;
  buffer_.clear();
  return Status::Ok();
}

void RawClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffer_.clear();
}

void RawClient::Abort() {
  if (fd_ >= 0) {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  Close();
}

void RawClient::ShutdownWrite() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

Status RawClient::Send(std::string_view bytes, Millis timeout) {
  if (fd_ < 0) return FailedPrecondition("RawClient is not connected");
  auto deadline = SteadyClock::now() + timeout;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!PollFor(fd_, POLLOUT, deadline)) return DeadlineExceeded("send timed out");
      continue;
    }
    return ErrnoError("send", errno);
  }
  return Status::Ok();
}

Status RawClient::SendPattern(uint64_t size, Millis timeout) {
  auto deadline = SteadyClock::now() + timeout;
  std::vector<char> buf(64 * 1024);
  for (uint64_t done = 0; done < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
    FillPattern(done, buf.data(), n);
    Millis left(RemainingMs(deadline));
    if (left.count() == 0) return DeadlineExceeded("sending the body timed out");
    TURNOUT_RETURN_IF_ERROR(Send(std::string_view(buf.data(), n), left));
    done += n;
  }
  return Status::Ok();
}

Status RawClient::Trickle(std::string_view bytes, Millis gap, Millis timeout) {
  auto deadline = SteadyClock::now() + timeout;
  for (char c : bytes) {
    TURNOUT_RETURN_IF_ERROR(Send(std::string_view(&c, 1), Millis(RemainingMs(deadline))));
    // The pause is the behaviour under test (a slow client), not a wait for something to settle.
    // poll() on the socket doubles as the pause and notices a close by the peer early.
    auto until = std::min(deadline, SteadyClock::now() + gap);
    pollfd p{fd_, POLLRDHUP, 0};
    int rc = ::poll(&p, 1, RemainingMs(until));
    if (rc > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
      return Unavailable("the peer closed the connection while trickling");
    }
    if (SteadyClock::now() >= deadline) return DeadlineExceeded("trickle timed out");
  }
  return Status::Ok();
}

RawClient::Fill RawClient::FillBuffer(SteadyClock::time_point deadline) {
  if (fd_ < 0) return Fill::kEof;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      buffer_.append(buf, static_cast<size_t>(n));
      return Fill::kData;
    }
    if (n == 0) return Fill::kEof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!PollFor(fd_, POLLIN, deadline)) return Fill::kTimeout;
      continue;
    }
    return Fill::kReset;  // ECONNRESET, ETIMEDOUT...: the connection is gone abruptly
  }
}

RawResponse RawClient::ReadResponse(std::string_view request_method, Millis timeout,
                                    size_t max_kept_body) {
  using Outcome = RawResponse::Outcome;
  RawResponse r;
  auto deadline = SteadyClock::now() + timeout;
  auto fail = [&r](Fill fill, std::string what) {
    r.outcome = fill == Fill::kEof     ? Outcome::kClosed
                : fill == Fill::kReset ? Outcome::kReset
                                       : Outcome::kTimeout;
    r.error = std::move(what);
    return r;
  };

  http::ParseLimits limits;
  limits.max_head_bytes = 1 << 20;
  http::ResponseHead head;
  for (;;) {
    http::ParseResult pr = http::ParseResponseHead(buffer_, request_method, limits, &head);
    if (pr.state == http::ParseState::kComplete) {
      r.status = head.status;
      r.reason = std::string(head.reason);
      for (size_t i = 0; i < head.headers.count; ++i) {
        r.headers.emplace_back(std::string(head.headers.fields[i].name),
                               std::string(head.headers.fields[i].value));
      }
      r.raw_head = buffer_.substr(0, pr.consumed);
      r.keep_alive = head.keep_alive;
      buffer_.erase(0, pr.consumed);
      break;
    }
    if (pr.state == http::ParseState::kError) {
      r.outcome = Outcome::kMalformed;
      r.error = std::string("malformed response head: ") + pr.error_reason;
      return r;
    }
    Fill fill = FillBuffer(deadline);
    if (fill != Fill::kData) return fail(fill, "no complete response head");
  }

  BodyHash hash;
  auto take = [&](std::string_view data) {
    hash.Update(data);
    r.body_bytes += data.size();
    if (r.body.size() < max_kept_body) {
      r.body.append(data.substr(0, max_kept_body - r.body.size()));
    }
    r.body_hash = hash.value();
  };
  r.body_hash = hash.value();
  if (r.status >= 100 && r.status < 200) {
    r.outcome = Outcome::kComplete;
    return r;
  }
  switch (head.body) {
    case http::BodyKind::kNone:
      break;
    case http::BodyKind::kContentLength: {
      uint64_t remaining = head.content_length;
      while (remaining > 0) {
        if (buffer_.empty()) {
          Fill fill = FillBuffer(deadline);
          if (fill != Fill::kData) return fail(fill, "body ended before Content-Length");
        }
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, buffer_.size()));
        take(std::string_view(buffer_).substr(0, n));
        buffer_.erase(0, n);
        remaining -= n;
      }
      break;
    }
    case http::BodyKind::kChunked: {
      http::ChunkedDecoder decoder;
      for (;;) {
        if (buffer_.empty()) {
          Fill fill = FillBuffer(deadline);
          if (fill != Fill::kData) return fail(fill, "chunked body ended early");
        }
        http::ChunkedDecoder::Step step = decoder.Feed(buffer_);
        if (step.error) {
          r.outcome = Outcome::kMalformed;
          r.error = std::string("bad chunked body: ") + step.error_reason;
          return r;
        }
        take(step.data);
        buffer_.erase(0, step.consumed);
        if (step.done) break;
        if (step.consumed == 0 && step.data.empty()) {
          Fill fill = FillBuffer(deadline);
          if (fill != Fill::kData) return fail(fill, "chunked body ended early");
        }
      }
      break;
    }
    case http::BodyKind::kUntilClose: {
      take(buffer_);
      buffer_.clear();
      for (;;) {
        Fill fill = FillBuffer(deadline);
        if (fill == Fill::kEof) break;
        if (fill != Fill::kData) return fail(fill, "body until close did not end cleanly");
        take(buffer_);
        buffer_.clear();
      }
      r.keep_alive = false;
      break;
    }
  }
  r.outcome = Outcome::kComplete;
  return r;
}

RawResponse RawClient::RoundTrip(std::string_view request, std::string_view method,
                                 Millis timeout) {
  Status sent = Send(request, timeout);
  if (!sent.ok()) {
    // The peer may have answered and closed already (e.g. a rejection): read what is there.
    RawResponse r = ReadResponse(method, Millis(std::min<int64_t>(timeout.count(), 1000)));
    if (r.status != 0) return r;
    r.outcome = RawResponse::Outcome::kReset;
    r.error = sent.ToString();
    return r;
  }
  return ReadResponse(method, timeout);
}

Result<std::string> RawClient::ReadSome(size_t min_bytes, Millis timeout) {
  auto deadline = SteadyClock::now() + timeout;
  while (buffer_.size() < min_bytes) {
    Fill fill = FillBuffer(deadline);
    if (fill == Fill::kTimeout) return DeadlineExceeded("ReadSome timed out");
    if (fill != Fill::kData) break;
  }
  std::string out = std::move(buffer_);
  buffer_.clear();
  if (out.empty()) return Unavailable("the connection ended");
  return out;
}

CloseKind RawClient::WaitForClose(Millis timeout) {
  if (!buffer_.empty()) return CloseKind::kData;
  switch (FillBuffer(SteadyClock::now() + timeout)) {
    case Fill::kData:
      return CloseKind::kData;
    case Fill::kEof:
      return CloseKind::kClosed;
    case Fill::kReset:
      return CloseKind::kReset;
    case Fill::kTimeout:
      return CloseKind::kTimeout;
  }
  return CloseKind::kTimeout;
}

std::string GetRequest(std::string_view target, std::string_view extra_headers,
                       std::string_view host) {
  std::string r = "GET ";
  r += target;
  r += " HTTP/1.1\r\nHost: ";
  r += host;
  r += "\r\n";
  r += extra_headers;
  r += "\r\n";
  return r;
}

RawResponse FetchOnce(const std::string& address, std::string_view request, std::string_view method,
                      Millis timeout) {
  RawClient client;
  Status connected = client.Connect(address, timeout);
  if (!connected.ok()) {
    RawResponse r;
    r.outcome = RawResponse::Outcome::kReset;
    r.error = connected.ToString();
    return r;
  }
  return client.RoundTrip(request, method, timeout);
}

std::string LoadResult::Summary() const {
  std::string s = "ok=" + std::to_string(ok) + " non_2xx=" + std::to_string(non_2xx) +
                  " resets=" + std::to_string(resets) + " closed=" + std::to_string(closed) +
                  " timeouts=" + std::to_string(timeouts) +
                  " malformed=" + std::to_string(malformed) +
                  " connect_failures=" + std::to_string(connect_failures) +
                  " elapsed_ms=" + std::to_string(elapsed.count()) + " statuses={";
  for (const auto& [status, n] : by_status) {
    s += std::to_string(status) + ":" + std::to_string(n) + " ";
  }
  s += "} upstreams={";
  for (const auto& [name, n] : by_upstream) s += name + ":" + std::to_string(n) + " ";
  return s + "}";
}

LoadRunner::LoadRunner(LoadOptions options) : options_(std::move(options)) {
  if (!options_.make_request) {
    options_.make_request = [](int, uint64_t) { return GetRequest("/"); };
  }
}

LoadRunner::~LoadRunner() {
  Stop();
  Wait();
}

void LoadRunner::Start() {
  started_ = SteadyClock::now();
  for (int i = 0; i < options_.connections; ++i) {
    threads_.emplace_back([this, i] { Worker(i); });
  }
}

bool LoadRunner::WaitForCompleted(uint64_t count, Millis timeout) const {
  // Polls a counter written by the workers; the load itself is what takes the time.
  auto deadline = SteadyClock::now() + timeout;
  while (completed_.load() < count) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::yield();
    ::poll(nullptr, 0, 1);
  }
  return true;
}

void LoadRunner::Stop() { stop_.store(true); }

LoadResult LoadRunner::Wait() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  std::lock_guard lock(mu_);
  result_.elapsed = std::chrono::duration_cast<Millis>(SteadyClock::now() - started_);
  return result_;
}

void LoadRunner::Worker(int index) {
  using Outcome = RawResponse::Outcome;
  LoadResult local;
  RawClient client;
  auto end = started_ + options_.max_duration;
  while (!stop_.load() && SteadyClock::now() < end) {
    uint64_t number = issued_.fetch_add(1);
    if (number >= options_.max_requests) break;
    if (!client.connected()) {
      if (!client.Connect(options_.address, options_.request_timeout).ok()) {
        ++local.connect_failures;
        completed_.fetch_add(1);
        continue;
      }
    }
    RawResponse r =
        client.RoundTrip(options_.make_request(index, number), "GET", options_.request_timeout);
    switch (r.outcome) {
      case Outcome::kComplete:
        ++local.by_status[r.status];
        if (r.status >= 200 && r.status < 300) {
          ++local.ok;
        } else {
          ++local.non_2xx;
        }
        if (std::string up = r.Header(options_.upstream_header); !up.empty()) {
          ++local.by_upstream[up];
        }
        break;
      case Outcome::kClosed:
        ++local.closed;
        break;
      case Outcome::kReset:
        ++local.resets;
        break;
      case Outcome::kTimeout:
        ++local.timeouts;
        break;
      case Outcome::kMalformed:
        ++local.malformed;
        break;
    }
    if (!r.complete() || !r.keep_alive) client.Close();
    completed_.fetch_add(1);
  }
  std::lock_guard lock(mu_);
  result_.ok += local.ok;
  result_.non_2xx += local.non_2xx;
  result_.resets += local.resets;
  result_.closed += local.closed;
  result_.timeouts += local.timeouts;
  result_.malformed += local.malformed;
  result_.connect_failures += local.connect_failures;
  for (const auto& [k, v] : local.by_status) result_.by_status[k] += v;
  for (const auto& [k, v] : local.by_upstream) result_.by_upstream[k] += v;
}

LoadResult RunLoad(LoadOptions options) {
  LoadRunner runner(std::move(options));
  runner.Start();
  return runner.Wait();
}

}  // namespace turnout::router::testing
