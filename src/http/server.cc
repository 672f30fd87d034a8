#include "http/server.h"

#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/host_port.h"
#include "common/mutex.h"
#include "http/parser.h"
#include "http/writer.h"

namespace turnout::http {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using UnixProtocol = asio::local::stream_protocol;
using namespace asio::experimental::awaitable_operators;

}  // namespace

ServerReply ServerReply::Json(int status, std::string body) {
  ServerReply r;
  r.status = status;
  r.body = std::move(body);
  r.body += '\n';
  return r;
}

ServerReply ServerReply::Error(int status, std::string_view message) {
  using nlohmann::json;
  // Messages may echo a path that is not UTF-8: replaced, not thrown on.
  return Json(status, json{{"error", std::string(message)}}.dump(-1, ' ', false,
                                                                 json::error_handler_t::replace));
}

struct Server::Impl {
  Impl(Options o, ServerHandler h) : options(std::move(o)), handler(std::move(h)) {
    tcp_access.token = options.token;
    unix_access.unix_socket = true;
    if (options.token_on_unix_socket) unix_access.token = options.token;
  }

  Status BindUnix();
  Status BindTcp();
  Result<tcp::endpoint> TcpEndpoint();
  template <typename Acceptor>
  asio::awaitable<void> AcceptLoop(Acceptor& acceptor, const ApiAccess* access);
  template <typename Socket>
  asio::awaitable<void> Session(Socket socket, std::string peer, const ApiAccess* access);
  ServerReply RunHandler(const ServerRequest& request);
  template <typename Socket>
  asio::awaitable<void> Stream(Socket& socket, ServerReply reply);
  void RemoveSocketFile();

  const Options options;
  const ServerHandler handler;
  asio::io_context io{1};
  std::unique_ptr<asio::thread_pool> pool;  // null: handlers run on the I/O thread
  tcp::acceptor tcp_acceptor{io};
  UnixProtocol::acceptor unix_acceptor{io};
  std::string bound_tcp;
  ApiAccess tcp_access;
  ApiAccess unix_access;
  // The socket file this server created, identified by inode so that Stop() never removes a
  // file another process put at the same path since.
  bool created_socket_file = false;
  UnixListener unix_listener;

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
  TURNOUT_ASSIGN_OR_RETURN(unix_listener, ListenOnUnixSocket(options.unix_path, options.unix_mode,
                                                             options.name + " socket"));
  created_socket_file = true;
  boost::system::error_code ec;
  if (unix_acceptor.assign(UnixProtocol(), unix_listener.fd, ec)) {
    ::close(unix_listener.fd);
    return IoError(options.name + " socket " + options.unix_path + ": " + ec.message());
  }
  return Status::Ok();
}

Result<tcp::endpoint> Server::Impl::TcpEndpoint() {
  const std::string& address = options.tcp_address;
  Result<HostPort> hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status().WithContext(options.name + " address");
  if (hp->host == "localhost") return tcp::endpoint(asio::ip::address_v4::loopback(), hp->port);
  boost::system::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(hp->host, ec);
  if (!ec) return tcp::endpoint(ip, hp->port);
  if (!options.resolve_host_names) {
    return InvalidArgument(options.name + " address '" + address +
                           "': the host must be an IP address or localhost");
  }
  tcp::resolver resolver(io);
  auto results = resolver.resolve(hp->host, std::to_string(hp->port), ec);
  if (ec || results.empty()) {
    return InvalidArgument(options.name + " address " + address + ": cannot resolve host '" +
                           hp->host + "'");
  }
  return tcp::endpoint(results.begin()->endpoint().address(), hp->port);
}

Status Server::Impl::BindTcp() {
  TURNOUT_ASSIGN_OR_RETURN(tcp::endpoint endpoint, TcpEndpoint());
  boost::system::error_code ec;
  auto fail = [&](std::string_view what) {
    return IoError(options.name + " address " + options.tcp_address + ": cannot " +
                   std::string(what) + ": " + ec.message());
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
  RemoveUnixSocketFile(options.unix_path, unix_listener);
}

ServerReply Server::Impl::RunHandler(const ServerRequest& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    return ServerReply::Error(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return ServerReply::Error(500, "internal error");
  }
}

template <typename Socket>
asio::awaitable<void> Server::Impl::Session(Socket socket, std::string peer,
                                            const ApiAccess* access) {
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
  // A connection accepted just before Stop() may start after Stop's close-all ran: end it here,
  // or it would hold the I/O thread until its idle timeout.
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
  auto send = [&](const ServerReply& reply, bool close,
                  bool head_request = false) -> asio::awaitable<bool> {
    std::string out;
    // A status outside the three-digit range would make the status line unparseable.
    const int status = reply.status >= 100 && reply.status <= 599 ? reply.status : 500;
    AppendSimpleResponse(&out, status, reply.content_type, reply.body, close, reply.extra_headers);
    // A reply to HEAD keeps its Content-Length but has no body (RFC 9110 §9.3.2).
    if (head_request) out.resize(out.size() - reply.body.size());
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  };

  ParseLimits limits;
  limits.max_head_bytes = options.max_head_bytes;
  RequestHead head;
  for (;;) {
    ParseResult parsed;
    size_t resume_at = 0;
    for (;;) {
      parsed = ParseRequestHead(buffer, limits, &head, resume_at);
      if (parsed.state != ParseState::kIncomplete) break;
      resume_at = parsed.resume_at;
      if (buffer.size() > options.max_head_bytes) {
        parsed.state = ParseState::kError;
        parsed.error_status = 431;
        parsed.error_reason = "request head too large";
        break;
      }
      if (!co_await read_more()) co_return;
    }
    if (parsed.state == ParseState::kError) {
      const int status = parsed.error_status >= 400 ? parsed.error_status : 400;
      co_await send(ServerReply::Error(status, std::string("bad request: ") + parsed.error_reason),
                    true);
      co_return;
    }
    // The head's views point into `buffer`, which grows below: copy what is needed now.
    ServerRequest request;
    request.method = std::string(head.method);
    request.target = std::string(head.target);
    request.peer = peer;
    request.headers = ApiCheckedHeaders::From(head.headers);
    const bool keep_alive = head.keep_alive;
    if (head.body == BodyKind::kChunked) {
      co_await send(ServerReply::Error(411, "send the body with Content-Length"), true);
      co_return;
    }
    const uint64_t length = head.body == BodyKind::kContentLength ? head.content_length : 0;
    if (length > options.max_body_bytes) {
      co_await send(ServerReply::Error(413, "body too large: at most " +
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

    ServerReply reply;
    std::optional<ApiRefusal> refusal;
    if (!options.exempt || !options.exempt(request)) {
      refusal = CheckApiRequest(*access, request.headers.For(request.method));
    }
    if (refusal) {
      reply = ServerReply::Error(refusal->status, refusal->message);
      reply.extra_headers = std::move(refusal->extra_headers);
    } else if (impl->pool) {
      reply = co_await asio::co_spawn(
          impl->pool->get_executor(),
          [impl, &request]() -> asio::awaitable<ServerReply> {
            co_return impl->RunHandler(request);
          },
          asio::use_awaitable);
    } else {
      reply = impl->RunHandler(request);
    }
    if (reply.stream) {
      if (impl->pool && request.method != "HEAD") {
        co_await impl->Stream(socket, std::move(reply));
        co_return;
      }
      // Still run once, finding the client gone, so that it can release what it holds.
      auto run = [stream = std::move(reply.stream)] {
        std::atomic<bool> gone{true};
        try {
          stream([](std::string_view) { return false; }, gone);
        } catch (...) {
        }
      };
      if (impl->pool) {
        asio::post(*impl->pool, std::move(run));
      } else {
        run();
      }
      reply = ServerReply::Error(500, "a streamed reply needs handler threads (and no HEAD)");
    }
    const bool close = !keep_alive || impl->stopping;
    if (!co_await send(reply, close, request.method == "HEAD") || close) co_return;
  }
}

namespace {

// What a streamed reply's producer (a pool thread) hands the session (the I/O thread).
struct StreamState {
  static constexpr size_t kMaxPending = 4 << 20;
  Mutex mu;
  std::string pending TURNOUT_GUARDED_BY(mu);  // written, not yet sent
  bool done TURNOUT_GUARDED_BY(mu) = false;    // the producer returned
  std::atomic<bool> gone{false};
};

}  // namespace

template <typename Socket>
asio::awaitable<void> Server::Impl::Stream(Socket& socket, ServerReply reply) {
  const int status = reply.status >= 100 && reply.status <= 599 ? reply.status : 500;
  std::string head =
      "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status)) + "\r\n";
  if (!reply.content_type.empty()) AppendHeader(&head, "Content-Type", reply.content_type);
  head += "Connection: close\r\n" + reply.extra_headers + "\r\n" + reply.body;
  auto [hec, hn] =
      co_await asio::async_write(socket, asio::buffer(head), asio::as_tuple(asio::use_awaitable));
  auto state = std::make_shared<StreamState>();
  // The stream runs once whatever happens (its end may release what the handler took); with
  // the client already gone it finds `gone` set.
  if (hec) state->gone = true;
  asio::post(*pool, [state, stream = std::move(reply.stream)] {
    auto write = [&state](std::string_view data) {
      if (state->gone) return false;
      MutexLock lock(state->mu);
      if (state->pending.size() + data.size() > StreamState::kMaxPending) {
        state->gone = true;  // a client this slow is dropped
        return false;
      }
      state->pending.append(data);
      return true;
    };
    try {
      stream(write, state->gone);
    } catch (...) {
      // The stream ends here; what it wrote is still sent.
    }
    MutexLock lock(state->mu);
    state->done = true;
  });

  // Sends what the producer wrote, polling every 20 ms, while watching the client's side: its
  // close (or any error) ends the stream. Bytes it sends meanwhile are ignored.
  asio::steady_timer tick(socket.get_executor());
  char sink[1024];
  while (!state->gone) {
    std::string out;
    bool done = false;
    {
      MutexLock lock(state->mu);
      out.swap(state->pending);
      done = state->done;
    }
    if (!out.empty()) {
      auto [ec, n] = co_await asio::async_write(socket, asio::buffer(out),
                                                asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      continue;
    }
    if (done || stopping) break;
    tick.expires_after(std::chrono::milliseconds(20));
    auto result =
        co_await (socket.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable)) ||
                  tick.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (result.index() == 0 && std::get<0>(std::get<0>(result))) break;  // closed or failed
  }
  state->gone = true;
}

template <typename Acceptor>
asio::awaitable<void> Server::Impl::AcceptLoop(Acceptor& acceptor, const ApiAccess* access) {
  Impl* impl = this;
  asio::steady_timer backoff(impl->io);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (impl->stopping || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: wait a little instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (impl->live_connections >= impl->options.max_connections) continue;  // closes it
    ++impl->live_connections;
    std::string peer = "unix";
    if constexpr (std::is_same_v<Acceptor, tcp::acceptor>) {
      boost::system::error_code ignored;
      const tcp::endpoint remote = socket.remote_endpoint(ignored);
      peer = FormatHostPort(remote.address().to_string(), remote.port());
    }
    asio::co_spawn(impl->io, impl->Session(std::move(socket), std::move(peer), access),
                   [](std::exception_ptr) {});
  }
}

Server::Server(Options options, ServerHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() { Stop(); }

std::string Server::tcp_address() const { return impl_->bound_tcp; }
const ApiAccess& Server::tcp_access() const { return impl_->tcp_access; }
const ApiAccess& Server::unix_access() const { return impl_->unix_access; }

Status Server::Start() {
  Impl* impl = impl_.get();
  const Options& options = impl->options;
  if (impl->started)
    return FailedPrecondition("the " + options.name + " server was already started");
  if (options.unix_path.empty() && options.tcp_address.empty()) {
    return InvalidArgument("the " + options.name +
                           " server needs a Unix socket path or a TCP address");
  }
  if (!options.tcp_address.empty() && options.token.empty()) {
    return InvalidArgument("serving the " + options.name + " over TCP (" + options.tcp_address +
                           ") needs a token; set one or serve on a Unix socket only");
  }
  if (!impl->handler) return InvalidArgument("the " + options.name + " server needs a handler");
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
    impl->tcp_access.hosts = OwnHostsFor(impl->bound_tcp, options.allowed_hosts);
  }
  if (options.handler_threads > 0) {
    impl->pool = std::make_unique<asio::thread_pool>(options.handler_threads);
  }
  if (impl->unix_acceptor.is_open()) {
    asio::co_spawn(impl->io, impl->AcceptLoop(impl->unix_acceptor, &impl->unix_access),
                   [](std::exception_ptr) {});
  }
  if (impl->tcp_acceptor.is_open()) {
    asio::co_spawn(impl->io, impl->AcceptLoop(impl->tcp_acceptor, &impl->tcp_access),
                   [](std::exception_ptr) {});
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
  if (impl->pool) impl->pool->join();
  impl->RemoveSocketFile();
}

}  // namespace turnout::http
