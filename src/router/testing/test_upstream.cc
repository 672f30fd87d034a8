#include "router/testing/test_upstream.h"

#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cstring>

#include "common/text.h"
#include "http/parser.h"

namespace turnout::router::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
// One socket type for both listeners (TCP on loopback, or a Unix stream socket).
using Stream = asio::generic::stream_protocol;
using Socket = Stream::socket;
using Acceptor = asio::basic_socket_acceptor<Stream>;
using boost::system::error_code;

void BodyHash::Update(std::string_view bytes) {
  for (unsigned char c : bytes) {
    hash_ ^= c;
    hash_ *= 1099511628211ull;
  }
}

char PatternByte(uint64_t index) {
  // Not periodic at any power of two, so a dropped or repeated block changes the hash.
  return static_cast<char>((index * 131 + index / 251) & 0xff);
}

void FillPattern(uint64_t offset, char* out, size_t size) {
  for (size_t i = 0; i < size; ++i) out[i] = PatternByte(offset + i);
}

uint64_t PatternHash(uint64_t size) {
  BodyHash hash;
  char buf[64 * 1024];
  for (uint64_t done = 0; done < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof buf, size - done));
    FillPattern(done, buf, n);
    hash.Update(std::string_view(buf, n));
    done += n;
  }
  return hash.value();
}

namespace {

bool IContains(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    if (EqualsIgnoreCase(haystack.substr(i, needle.size()), needle)) return true;
  }
  return false;
}

// Lenient head parsing: whatever the router sent is recorded as sent.
void ParseHead(std::string_view head, ReceivedRequest* out) {
  out->raw_head = std::string(head);
  size_t eol = head.find('\n');
  std::string_view line = Trim(head.substr(0, eol));
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 != std::string_view::npos && sp2 > sp1) {
    out->method = std::string(line.substr(0, sp1));
    out->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
    out->version = std::string(line.substr(sp2 + 1));
  } else {
    out->method = std::string(line);
  }
  while (eol != std::string_view::npos) {
    size_t start = eol + 1;
    eol = head.find('\n', start);
    std::string_view field = head.substr(start, eol == std::string_view::npos ? eol : eol - start);
    if (!field.empty() && field.back() == '\r') field.remove_suffix(1);
    if (field.empty()) break;
    size_t colon = field.find(':');
    if (colon == std::string_view::npos) {
      out->headers.emplace_back(std::string(field), "");
    } else {
      out->headers.emplace_back(std::string(field.substr(0, colon)),
                                std::string(Trim(field.substr(colon + 1))));
    }
  }
}

std::string Reason(int status) {
  std::string_view r = http::ReasonPhrase(status);
  return r.empty() ? "Unknown" : std::string(r);
}

}  // namespace

std::string FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) return v;
  }
  return "";
}

int CountHeader(const HeaderList& headers, std::string_view name) {
  int count = 0;
  for (const auto& [n, v] : headers) count += EqualsIgnoreCase(n, name) ? 1 : 0;
  return count;
}

std::string RefusingAddress() {
  Result<std::unique_ptr<TestUpstream>> up = TestUpstream::Start("refusing");
  return up.ok() ? (*up)->address() : "127.0.0.1:1";
}

bool WaitUntil(const std::function<bool()>& predicate, Millis timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    // A short pause between polls keeps the CPU for the threads being waited on.
    std::this_thread::sleep_for(Millis(2));
  }
}

std::string EchoText(const ReceivedRequest& request) {
  std::string text = request.method + " " + request.target + " " + request.version + "\n";
  for (const auto& [n, v] : request.headers) text += n + ": " + v + "\n";
  text += "\n";
  text += request.body;
  return text;
}

struct TestUpstream::Impl {
  asio::io_context io{1};
  Acceptor acceptor{io};
  std::thread thread;
  bool stopped = false;

  // Decrements the open-connection count however a connection coroutine ends (including when
  // the io_context is destroyed with the coroutine suspended).
  struct OpenGuard {
    TestUpstream* self;
    ~OpenGuard() {
      self->open_.fetch_sub(1);
      self->Notify();
    }
  };

  static asio::awaitable<void> Accept(TestUpstream* self);
  static asio::awaitable<void> Serve(TestUpstream* self, Socket socket, uint64_t id);
};

namespace {

// Reads more bytes into `in`; false on EOF or error.
asio::awaitable<bool> ReadMore(Socket& socket, std::string& in) {
  char buf[64 * 1024];
  error_code ec;
  size_t n = co_await socket.async_read_some(asio::buffer(buf),
                                             asio::redirect_error(asio::use_awaitable, ec));
  if (n > 0) in.append(buf, n);
  co_return n > 0;
}

asio::awaitable<bool> WriteAll(Socket& socket, std::string_view data) {
  error_code ec;
  co_await asio::async_write(socket, asio::buffer(data.data(), data.size()),
                             asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

asio::awaitable<void> Wait(Millis how_long) {
  if (how_long.count() <= 0) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(how_long);
  error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

void AddBody(ReceivedRequest* req, BodyHash* hash, std::string_view data) {
  hash->Update(data);
  req->body_bytes += data.size();
  if (req->body.size() < kMaxRecordedBody) {
    req->body.append(data.substr(0, kMaxRecordedBody - req->body.size()));
  }
}

// Reads the body framed by the request's headers from `in` (and the socket). False when the
// connection ended first. Lenient chunked decoding: sizes in hex, extensions skipped.
asio::awaitable<bool> ReadBody(Socket& socket, std::string& in, ReceivedRequest* req) {
  BodyHash hash;
  std::string te = req->Header("Transfer-Encoding");
  if (IContains(te, "chunked")) {
    req->chunked = true;
    for (;;) {
      size_t eol;
      while ((eol = in.find("\r\n")) == std::string::npos) {
        if (!co_await ReadMore(socket, in)) co_return false;
      }
      uint64_t size = std::strtoull(in.substr(0, eol).c_str(), nullptr, 16);
      in.erase(0, eol + 2);
      if (size == 0) {
        // Trailer section up to an empty line.
        for (;;) {
          while ((eol = in.find("\r\n")) == std::string::npos) {
            if (!co_await ReadMore(socket, in)) co_return false;
          }
          in.erase(0, eol + 2);
          if (eol == 0) break;
        }
        break;
      }
      while (size > 0) {
        if (in.empty() && !co_await ReadMore(socket, in)) co_return false;
        size_t take = static_cast<size_t>(std::min<uint64_t>(size, in.size()));
        AddBody(req, &hash, std::string_view(in).substr(0, take));
        in.erase(0, take);
        size -= take;
      }
      while (in.size() < 2) {
        if (!co_await ReadMore(socket, in)) co_return false;
      }
      in.erase(0, 2);
    }
  } else {
    std::string cl = req->Header("Content-Length");
    uint64_t remaining = cl.empty() ? 0 : std::strtoull(cl.c_str(), nullptr, 10);
    while (remaining > 0) {
      if (in.empty() && !co_await ReadMore(socket, in)) co_return false;
      size_t take = static_cast<size_t>(std::min<uint64_t>(remaining, in.size()));
      AddBody(req, &hash, std::string_view(in).substr(0, take));
      in.erase(0, take);
      remaining -= take;
    }
  }
  req->body_hash = hash.value();
  co_return true;
}

void Reset(Socket& socket) {
  error_code ec;
  socket.set_option(asio::socket_base::linger(true, 0), ec);
  socket.close(ec);
}

void CloseCleanly(Socket& socket) {
  error_code ec;
  socket.shutdown(asio::socket_base::shutdown_send, ec);
  socket.close(ec);
}

// Streams `size` pattern bytes, plain or as chunks.
asio::awaitable<bool> SendGenerated(Socket& socket, uint64_t size, bool chunked) {
  std::vector<char> buf(64 * 1024);
  for (uint64_t done = 0; done < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
    FillPattern(done, buf.data(), n);
    if (chunked) {
      char size_line[32];
      std::snprintf(size_line, sizeof size_line, "%zx\r\n", n);
      if (!co_await WriteAll(socket, size_line)) co_return false;
    }
    if (!co_await WriteAll(socket, std::string_view(buf.data(), n))) co_return false;
    if (chunked && !co_await WriteAll(socket, "\r\n")) co_return false;
    done += n;
  }
  if (chunked && !co_await WriteAll(socket, "0\r\n\r\n")) co_return false;
  co_return true;
}

}  // namespace

asio::awaitable<void> TestUpstream::Impl::Accept(TestUpstream* self) {
  uint64_t next_id = 0;
  for (;;) {
    error_code ec;
    Socket socket =
        co_await self->impl_->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !self->impl_->acceptor.is_open()) co_return;
      continue;  // e.g. EMFILE under load: keep serving
    }
    self->accepted_.fetch_add(1);
    self->open_.fetch_add(1);
    self->Notify();
    asio::co_spawn(self->impl_->io, Serve(self, std::move(socket), ++next_id), asio::detached);
  }
}

asio::awaitable<void> TestUpstream::Impl::Serve(TestUpstream* self, Socket socket, uint64_t id) {
  OpenGuard guard{self};
  error_code ec;
  socket.set_option(tcp::no_delay(true), ec);  // fails harmlessly on a Unix socket
  std::string in;
  for (;;) {
    size_t head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      if (!co_await ReadMore(socket, in)) co_return;  // the peer closed: done
    }
    ReceivedRequest req;
    req.connection = id;
    ParseHead(std::string_view(in).substr(0, head_end + 4), &req);
    in.erase(0, head_end + 4);
    const bool client_close =
        IContains(req.Header("Connection"), "close") ||
        (req.version == "HTTP/1.0" && !IContains(req.Header("Connection"), "keep-alive"));

    std::string health_path;
    {
      std::lock_guard lock(self->mu_);
      health_path = self->health_path_;
    }
    if (req.target == health_path || req.target.rfind(health_path + "?", 0) == 0) {
      if (!co_await ReadBody(socket, in, &req)) co_return;
      self->health_checks_.fetch_add(1);
      self->Notify();
      bool healthy = self->healthy_.load();
      std::string body = healthy ? "ready" : "not ready";
      std::string response =
          "HTTP/1.1 " + std::string(healthy ? "200 OK" : "503 Service Unavailable") +
          "\r\nX-Upstream: " + self->name_ + "\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n" + (client_close ? "Connection: close\r\n" : "") + "\r\n" + body;
      if (!co_await WriteAll(socket, response) || client_close) {
        CloseCleanly(socket);
        co_return;
      }
      continue;
    }

    Behavior b = self->Decide(req);
    const bool expect_continue = IContains(req.Header("Expect"), "100-continue");
    if (b.read_body_first) {
      if (expect_continue && !co_await WriteAll(socket, "HTTP/1.1 100 Continue\r\n\r\n")) co_return;
      bool complete = co_await ReadBody(socket, in, &req);
      self->Record(req);
      if (!complete) co_return;
    } else {
      self->Record(req);
    }
    co_await Wait(b.delay);

    using Kind = Behavior::Kind;
    std::string upstream = "X-Upstream: " + self->name_ + "\r\n";
    switch (b.kind) {
      case Kind::kCloseBeforeResponse:
        CloseCleanly(socket);
        co_return;
      case Kind::kReset:
        Reset(socket);
        co_return;
      case Kind::kBrokenHead:
        co_await WriteAll(socket, "HTTP/1.1 200 OK\r\n" + upstream +
                                      "this line is not a header field\r\n\r\nbody");
        CloseCleanly(socket);
        co_return;
      case Kind::kContentLengthAndChunked:
        co_await WriteAll(socket, "HTTP/1.1 200 OK\r\n" + upstream +
                                      "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "5\r\nhello\r\n0\r\n\r\n");
        CloseCleanly(socket);
        co_return;
      case Kind::kBreakMidBody: {
        uint64_t size = b.generated_body_bytes > 0 ? b.generated_body_bytes : b.body.size();
        co_await WriteAll(socket, "HTTP/1.1 200 OK\r\n" + upstream +
                                      "Content-Length: " + std::to_string(size) + "\r\n\r\n");
        if (b.generated_body_bytes > 0) {
          co_await SendGenerated(socket, size / 2, false);
        } else {
          co_await WriteAll(socket, std::string_view(b.body).substr(0, size / 2));
        }
        CloseCleanly(socket);
        co_return;
      }
      case Kind::kHang:
        // Hold the connection open, discarding input, until the peer gives up.
        while (co_await ReadMore(socket, in)) in.clear();
        co_return;
      case Kind::kUpgradeEcho: {
        std::string proto = req.Header("Upgrade");
        if (proto.empty()) proto = "websocket";
        if (!co_await WriteAll(socket,
                               "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade"
                               "\r\nUpgrade: " +
                                   proto + "\r\n" + upstream + "\r\n")) {
          co_return;
        }
        for (;;) {
          if (!in.empty()) {
            if (!co_await WriteAll(socket, in)) co_return;
            in.clear();
          }
          if (!co_await ReadMore(socket, in)) {
            CloseCleanly(socket);
            co_return;
          }
        }
      }
      case Kind::kEcho:
      case Kind::kRespond:
        break;
    }

    const bool close_after = b.connection_close || client_close;
    std::string body = b.kind == Kind::kEcho ? EchoText(req) : b.body;
    const bool generated = b.kind == Kind::kRespond && b.generated_body_bytes > 0;
    const uint64_t body_size = generated ? b.generated_body_bytes : body.size();
    const bool no_body_status =
        (b.status >= 100 && b.status < 200) || b.status == 204 || b.status == 304;
    const bool send_body = !no_body_status && req.method != "HEAD";
    std::string head =
        "HTTP/1.1 " + std::to_string(b.status) + " " + Reason(b.status) + "\r\n" + upstream;
    for (const auto& [n, v] : b.headers) head += n + ": " + v + "\r\n";
    if (!no_body_status) {
      head += b.chunked ? std::string("Transfer-Encoding: chunked\r\n")
                        : "Content-Length: " + std::to_string(body_size) + "\r\n";
    }
    if (close_after) head += "Connection: close\r\n";
    head += "\r\n";
    if (!co_await WriteAll(socket, head)) co_return;
    if (send_body) {
      co_await Wait(b.body_delay);
      bool ok;
      if (generated) {
        ok = co_await SendGenerated(socket, body_size, b.chunked);
      } else if (b.chunked) {
        std::string framed;
        if (!body.empty()) {
          char size_line[32];
          std::snprintf(size_line, sizeof size_line, "%zx\r\n", body.size());
          framed = size_line + body + "\r\n";
        }
        framed += "0\r\n\r\n";
        ok = co_await WriteAll(socket, framed);
      } else {
        ok = co_await WriteAll(socket, body);
      }
      if (!ok) co_return;
    }
    if (!b.read_body_first) {
      // Keep the connection usable: the unread body must be consumed before the next head.
      if (!co_await ReadBody(socket, in, &req)) co_return;
    }
    if (close_after || b.silent_close_after) {
      CloseCleanly(socket);
      co_return;
    }
  }
}

TestUpstream::TestUpstream(std::string name)
    : name_(std::move(name)), impl_(std::make_unique<Impl>()) {}

Result<std::unique_ptr<TestUpstream>> TestUpstream::Start(std::string name) {
  std::unique_ptr<TestUpstream> up(new TestUpstream(std::move(name)));
  error_code ec;
  Stream::endpoint endpoint(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  Acceptor& acceptor = up->impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return IoError("TestUpstream: cannot listen on 127.0.0.1:0: " + ec.message());
  Stream::endpoint bound = acceptor.local_endpoint(ec);
  if (ec || bound.size() < sizeof(sockaddr_in)) {
    return IoError("TestUpstream: cannot read the bound address: " + ec.message());
  }
  up->port_ = ntohs(reinterpret_cast<const sockaddr_in*>(bound.data())->sin_port);
  up->Run();
  return up;
}

Result<std::unique_ptr<TestUpstream>> TestUpstream::StartUnix(std::string name,
                                                              std::string socket_path) {
  std::unique_ptr<TestUpstream> up(new TestUpstream(std::move(name)));
  error_code ec;
  if (socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
    return InvalidArgument("TestUpstream: socket path too long: " + socket_path);
  }
  Stream::endpoint endpoint{asio::local::stream_protocol::endpoint(socket_path)};
  Acceptor& acceptor = up->impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return IoError("TestUpstream: cannot listen on " + socket_path + ": " + ec.message());
  up->unix_path_ = std::move(socket_path);
  up->Run();
  return up;
}

void TestUpstream::Run() {
  asio::co_spawn(impl_->io, Impl::Accept(this), asio::detached);
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

TestUpstream::~TestUpstream() { Stop(); }

void TestUpstream::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
  // Destroying the suspended coroutines closes their sockets (hanging connections included).
  error_code ec;
  impl_->acceptor.close(ec);
  impl_ = std::make_unique<Impl>();
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

std::string TestUpstream::address() const { return "127.0.0.1:" + std::to_string(port_); }

void TestUpstream::SetHandler(Handler handler) {
  std::lock_guard lock(mu_);
  handler_ = std::move(handler);
}

void TestUpstream::SetBehavior(Behavior behavior) {
  SetHandler([behavior](const ReceivedRequest&) { return behavior; });
}

void TestUpstream::SetHealthy(bool healthy) { healthy_.store(healthy); }

void TestUpstream::SetHealthPath(std::string path) {
  std::lock_guard lock(mu_);
  health_path_ = std::move(path);
}

std::vector<ReceivedRequest> TestUpstream::RecordedRequests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

size_t TestUpstream::request_count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

void TestUpstream::ClearRecorded() {
  std::lock_guard lock(mu_);
  requests_.clear();
}

bool TestUpstream::WaitFor(const std::function<bool()>& predicate, Millis timeout) const {
  std::unique_lock lock(mu_);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    lock.unlock();
    bool done = predicate();
    lock.lock();
    if (done) return true;
    // Re-checked at least every 50 ms in case the predicate depends on state outside this
    // upstream (e.g. a router's status).
    auto next = std::min(deadline, std::chrono::steady_clock::now() + Millis(50));
    if (std::chrono::steady_clock::now() >= deadline) return false;
    cv_.wait_until(lock, next);
  }
}

void TestUpstream::Notify() {
  std::lock_guard lock(mu_);
  cv_.notify_all();
}

Behavior TestUpstream::Decide(const ReceivedRequest& request) {
  Handler handler;
  {
    std::lock_guard lock(mu_);
    handler = handler_;
  }
  if (handler) return handler(request);
  Behavior b;
  b.body = "hello from " + name_;
  return b;
}

void TestUpstream::Record(ReceivedRequest request) {
  std::lock_guard lock(mu_);
  requests_.push_back(std::move(request));
  cv_.notify_all();
}

}  // namespace turnout::router::testing
