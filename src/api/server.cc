// api::Server: one I/O thread (Asio C++20 coroutines, one per connection) that parses and
// frames, and a thread pool that runs the handler, so a handler that blocks for seconds holds
// one pool thread and never the I/O of other connections.

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <thread>

#include "api/api.h"
#include "api/target.h"
#include "common/host_port.h"
#include "http/api_support.h"
#include "http/parser.h"
#include "http/writer.h"

namespace turnout::api {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using UnixProtocol = asio::local::stream_protocol;
using namespace asio::experimental::awaitable_operators;

Result<tcp::endpoint> ParseTcpAddress(std::string_view address) {
  Result<HostPort> hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status().WithContext("API TCP address");
  boost::system::error_code error;
  asio::ip::address ip;
  if (hp->host == "localhost") {
    ip = asio::ip::address_v4::loopback();
  } else {
    ip = asio::ip::make_address(hp->host, error);
    if (error) {
      return InvalidArgument("API TCP address '" + std::string(address) +
                             "': the host must be an IP address or localhost");
    }
  }
  return tcp::endpoint(ip, hp->port);
}

}  // namespace

struct Server::Impl {
  Impl(Options o, Handler h) : options(std::move(o)), handler(std::move(h)) {}

  Status BindUnix();
  Status BindTcp();
  asio::awaitable<void> AcceptTcp();
  asio::awaitable<void> AcceptUnix();
  template <typename Socket>
  asio::awaitable<void> Session(Socket socket, std::string peer, const http::ApiAccess* access);
  Reply RunHandler(const Request& request);
  void RemoveSocketFile();

  const Options options;
  const Handler handler;
  asio::io_context io{1};
  std::unique_ptr<asio::thread_pool> pool;
  tcp::acceptor tcp_acceptor{io};
  UnixProtocol::acceptor unix_acceptor{io};
  std::string bound_tcp;
  // What each listener's requests must pass (http::CheckApiRequest); set by Start.
  http::ApiAccess tcp_access;
  http::ApiAccess unix_access;
  // The socket file this server created, identified by inode so that Stop() never removes a
  // file another process put at the same path since.
  bool created_socket_file = false;
  http::UnixListener unix_listener;

  // Touched only on the I/O thread.
  std::map<uint64_t, std::function<void()>> closers;  // live connections
  // Accepted connections whose session has not ended yet (counted at accept, so that a burst of
  // connects cannot overshoot max_connections before their sessions start).
  size_t live_connections = 0;
  uint64_t next_connection = 0;
  bool stopping = false;

  std::thread io_thread;
  bool started = false;
};

Status Server::Impl::BindUnix() {
  TURNOUT_ASSIGN_OR_RETURN(unix_listener,
                           http::ListenOnUnixSocket(options.unix_path, options.unix_mode,
                                                    "API socket"));
  created_socket_file = true;
  boost::system::error_code ec;
  if (unix_acceptor.assign(UnixProtocol(), unix_listener.fd, ec)) {
    ::close(unix_listener.fd);
    return IoError("API socket " + options.unix_path + ": " + ec.message());
  }
  return Status::Ok();
}

Status Server::Impl::BindTcp() {
  TURNOUT_ASSIGN_OR_RETURN(tcp::endpoint endpoint, ParseTcpAddress(options.tcp_address));
  boost::system::error_code ec;
  auto fail = [&](std::string_view what) {
    return IoError("API address " + options.tcp_address + ": cannot " + std::string(what) + ": " +
                   ec.message());
  };
  if (tcp_acceptor.open(endpoint.protocol(), ec)) return fail("open a socket");
  if (tcp_acceptor.set_option(asio::socket_base::reuse_address(true), ec)) return fail("configure");
  if (tcp_acceptor.bind(endpoint, ec)) return fail("bind");
  if (tcp_acceptor.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen");
  const tcp::endpoint bound = tcp_acceptor.local_endpoint(ec);
  bound_tcp = FormatHostPort(bound.address().to_string(), bound.port());
  return Status::Ok();
}

void Server::Impl::RemoveSocketFile() {
  if (!created_socket_file) return;
  created_socket_file = false;
  http::RemoveUnixSocketFile(options.unix_path, unix_listener);
}

Reply Server::Impl::RunHandler(const Request& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    return Reply::Error(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return Reply::Error(500, "internal error");
  }
}

template <typename Socket>
asio::awaitable<void> Server::Impl::Session(Socket socket, std::string peer,
                                            const http::ApiAccess* access) {
  Impl* impl = this;
  const uint64_t id = impl->next_connection++;
  struct Unregister {
    Impl* impl;
    uint64_t id;
    ~Unregister() {
      impl->closers.erase(id);
      --impl->live_connections;
    }
  } unregister{impl, id};
  // A connection accepted just before Stop() may start after Stop's close-all ran.
  if (impl->stopping) co_return;
  impl->closers.emplace(id, [&socket] {
    boost::system::error_code ignored;
    socket.close(ignored);
  });

  asio::steady_timer timer(socket.get_executor());
  std::string buffer;
  char chunk[8192];
  auto read_more = [&]() -> asio::awaitable<bool> {
    timer.expires_after(options.idle_timeout);
    auto result = co_await (
        socket.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable)) ||
        timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (result.index() != 0) co_return false;  // idle too long
    auto [ec, n] = std::get<0>(result);
    if (ec) co_return false;
    buffer.append(chunk, n);
    co_return true;
  };
  auto send = [&](const Reply& reply, bool close, std::string_view extra_headers = {},
                  bool head_request = false) -> asio::awaitable<bool> {
    std::string out;
    // A status outside the three-digit range would make the status line unparseable.
    const int status = reply.status >= 100 && reply.status <= 599 ? reply.status : 500;
    http::AppendSimpleResponse(&out, status, reply.content_type, reply.body, close, extra_headers);
    // A reply to HEAD keeps its Content-Length but has no body (RFC 9110 §9.3.2).
    if (head_request) out.resize(out.size() - reply.body.size());
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  };

  http::ParseLimits limits;
  limits.max_head_bytes = options.max_head_bytes;
  http::RequestHead head;
  for (;;) {
    http::ParseResult parsed;
    size_t resume_at = 0;
    for (;;) {
      parsed = http::ParseRequestHead(buffer, limits, &head, resume_at);
      if (parsed.state != http::ParseState::kIncomplete) break;
      resume_at = parsed.resume_at;
      if (buffer.size() > options.max_head_bytes) {
        parsed.state = http::ParseState::kError;
        parsed.error_status = 431;
        parsed.error_reason = "request head too large";
        break;
      }
      if (!co_await read_more()) co_return;
    }
    if (parsed.state == http::ParseState::kError) {
      const int status = parsed.error_status >= 400 ? parsed.error_status : 400;
      co_await send(Reply::Error(status, std::string("bad request: ") + parsed.error_reason), true);
      co_return;
    }
    // The head's views point into `buffer`, which grows below: copy what is needed now.
    Request request;
    request.method = std::string(head.method);
    request.target = std::string(head.target);
    request.peer = peer;
    const auto checked = http::ApiCheckedHeaders::From(head.headers);
    const bool keep_alive = head.keep_alive;
    if (head.body == http::BodyKind::kChunked) {
      co_await send(Reply::Error(411, "send the body with Content-Length"), true);
      co_return;
    }
    const uint64_t length = head.body == http::BodyKind::kContentLength ? head.content_length : 0;
    if (length > options.max_body_bytes) {
      co_await send(Reply::Error(413, "body too large: at most " +
                                          std::to_string(options.max_body_bytes) + " bytes"),
                    true);
      co_return;
    }
    const size_t end = parsed.consumed + static_cast<size_t>(length);
    if (head.expect_continue && buffer.size() < end) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      auto [ec, n] = co_await asio::async_write(socket, asio::buffer(kContinue),
                                                asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
    }
    while (buffer.size() < end) {
      if (!co_await read_more()) co_return;
    }
    request.body = buffer.substr(parsed.consumed, length);
    buffer.erase(0, end);

    Reply reply;
    std::string extra_headers;
    if (Status s = DecodeTarget(request.target, &request); !s.ok()) {
      reply = Reply::Error(400, "bad request: " + s.message());
    } else if (auto refusal = http::CheckApiRequest(*access, checked.For(request.method))) {
      reply = Reply::Error(refusal->status, refusal->message);
      extra_headers = std::move(refusal->extra_headers);
    } else {
      reply = co_await asio::co_spawn(
          impl->pool->get_executor(),
          [impl, &request]() -> asio::awaitable<Reply> { co_return impl->RunHandler(request); },
          asio::use_awaitable);
    }
    const bool close = !keep_alive || impl->stopping;
    if (!co_await send(reply, close, extra_headers, request.method == "HEAD") || close) {
      co_return;
    }
  }
}

asio::awaitable<void> Server::Impl::AcceptTcp() {
  Impl* impl = this;
  asio::steady_timer backoff(impl->io);
  for (;;) {
    auto [ec, socket] =
        co_await impl->tcp_acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (impl->stopping || !impl->tcp_acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: wait a little instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (impl->live_connections >= impl->options.max_connections) continue;  // closes it
    ++impl->live_connections;
    boost::system::error_code ignored;
    const tcp::endpoint remote = socket.remote_endpoint(ignored);
    std::string peer = FormatHostPort(remote.address().to_string(), remote.port());
    asio::co_spawn(impl->io, impl->Session(std::move(socket), std::move(peer), &impl->tcp_access),
                   [](std::exception_ptr) {});
  }
}

asio::awaitable<void> Server::Impl::AcceptUnix() {
  Impl* impl = this;
  asio::steady_timer backoff(impl->io);
  for (;;) {
    auto [ec, socket] =
        co_await impl->unix_acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (impl->stopping || !impl->unix_acceptor.is_open()) co_return;
    if (ec) {
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (impl->live_connections >= impl->options.max_connections) continue;
    ++impl->live_connections;
    asio::co_spawn(impl->io,
                   impl->Session(std::move(socket), std::string("unix"), &impl->unix_access),
                   [](std::exception_ptr) {});
  }
}

Server::Server(Options options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() { Stop(); }

std::string Server::tcp_address() const { return impl_->bound_tcp; }

Status Server::Start() {
  Impl* impl = impl_.get();
  if (impl->started) return FailedPrecondition("the API server was already started");
  const Options& options = impl->options;
  if (options.unix_path.empty() && options.tcp_address.empty()) {
    return InvalidArgument("the API server needs a Unix socket path or a TCP address");
  }
  if (!options.tcp_address.empty() && options.token.empty()) {
    return InvalidArgument("serving the API over TCP (" + options.tcp_address +
                           ") needs a token; set one or serve on the Unix socket only");
  }
  if (!impl->handler) return InvalidArgument("the API server needs a handler");
  auto undo = [impl] {
    boost::system::error_code ignored;
    impl->unix_acceptor.close(ignored);
    impl->tcp_acceptor.close(ignored);
    impl->RemoveSocketFile();
  };
  if (!options.unix_path.empty()) {
    if (Status s = impl->BindUnix(); !s.ok()) {
      undo();
      return s;
    }
  }
  if (!options.tcp_address.empty()) {
    if (Status s = impl->BindTcp(); !s.ok()) {
      undo();
      return s;
    }
  }
  impl->unix_access.unix_socket = true;
  impl->tcp_access.token = options.token;
  if (!impl->bound_tcp.empty()) {
    impl->tcp_access.hosts = http::OwnHostsFor(impl->bound_tcp, options.allowed_hosts);
  }
  impl->pool = std::make_unique<asio::thread_pool>(std::max(1, options.handler_threads));
  if (impl->unix_acceptor.is_open()) {
    asio::co_spawn(impl->io, impl->AcceptUnix(), [](std::exception_ptr) {});
  }
  if (impl->tcp_acceptor.is_open()) {
    asio::co_spawn(impl->io, impl->AcceptTcp(), [](std::exception_ptr) {});
  }
  impl->started = true;
  impl->io_thread = std::thread([impl] {
    for (;;) {
      try {
        impl->io.run();
        return;
      } catch (...) {
        // A completion handler threw (allocation failure); keep serving.
      }
    }
  });
  return Status::Ok();
}

void Server::Stop() {
  Impl* impl = impl_.get();
  if (!impl->io_thread.joinable()) return;
  asio::post(impl->io, [impl] {
    impl->stopping = true;
    boost::system::error_code ignored;
    impl->unix_acceptor.close(ignored);
    impl->tcp_acceptor.close(ignored);
    for (auto& [id, close] : impl->closers) close();
  });
  // The I/O thread runs until every session has ended, and a session waiting for its handler
  // ends only after the handler returned (its co_spawn holds work on the I/O context).
  impl->io_thread.join();
  impl->pool->join();
  impl->RemoveSocketFile();
}

}  // namespace turnout::api
