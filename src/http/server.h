// http::Server: the one HTTP/1.1 server core of turnout's JSON APIs (turnoutd's API, the
// router's admin API). It owns everything but the endpoints: the listeners (a Unix stream socket
// and/or TCP), the accept loops with a connection cap, one session per connection with
// keep-alive, the request limits (head 431, body 413, idle timeout), the framing rules (411 for a
// chunked body, 100 Continue), the access check of every request (CheckApiRequest: Host, Origin,
// token, Content-Type) and a graceful Stop. The caller supplies one Handler.
//
// Wire rules: requests are parsed with the strict http::ParseRequestHead; bytes that do not form
// a request get a 4xx reply and the connection is closed (400, or the parser's status); a chunked
// body gets 411 and a body over max_body_bytes 413 (both close); a head over max_head_bytes 431
// (close). Then CheckApiRequest with the access policy of the listener the request came in on
// (unless `exempt` says otherwise); a refusal is the reply and the connection stays open. Every
// reply carries Content-Length; a reply to HEAD has no body; a handler status outside 100..599
// is sent as 500; a handler that throws gives 500. The connection stays open unless the client
// says `Connection: close` or the server is stopping.
//
// Threading: one I/O thread of its own (all parsing and socket work, Asio C++20 coroutines, one
// per connection). With handler_threads = 0 the handler runs on that thread (one request at a
// time for the whole server); with N > 0 it runs on a pool of N threads, so a handler that blocks
// holds one pool thread and never the I/O of other connections. Start/Stop/accessors are called
// from one controlling thread (never from a handler).
//
// Example:
//   http::Server server({.name = "API", .unix_path = "/run/x.sock"},
//                       [](const http::ServerRequest& r) {
//                         return http::ServerReply{.status = 200, .body = "{}\n"};
//                       });
//   TURNOUT_RETURN_IF_ERROR(server.Start());

#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/api_support.h"

namespace turnout::http {

// One request as the handler sees it. Owns all of its strings.
struct ServerRequest {
  std::string method;  // "GET"
  std::string target;  // "/v1/history?limit=5" as received
  std::string body;
  std::string peer;  // "unix" or "127.0.0.1:5555"
  // The header values the access check reads (empty when absent).
  ApiCheckedHeaders headers;
};

// What the handler answers. The server adds Content-Length and Connection.
struct ServerReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string extra_headers;  // complete "Name: value\r\n" lines

  // Writes bytes of a streamed body; false once the client is gone (then nothing more is sent).
  using StreamWrite = std::function<bool(std::string_view)>;
  // A streamed body (a server with handler_threads > 0, not for HEAD; else the reply is a 500 and
  // `stream` runs once with `gone` already true): the head goes
  // out with `Connection: close` and no Content-Length, then `body`, then what `stream` writes,
  // as it comes, until `stream` returns; then the connection is closed. `stream` runs on a pool
  // thread (it holds one while it runs), exactly once, even when the head could not be sent. `gone`
  // turns true when the client closed its side of the connection, a write to it failed, or the
  // server stops: a stream that waits for data must watch it and return soon after. At most 4 MiB
  // wait unsent for a slow client; a write beyond that drops the client (returns false). Default:
  // none (the body is all).
  std::function<void(const StreamWrite& write, const std::atomic<bool>& gone)> stream;

  // A JSON reply; appends '\n' to `body` so that terminals print it cleanly.
  static ServerReply Json(int status, std::string body);
  // {"error":"<message>"} with `status`; bytes of `message` that are not UTF-8 become U+FFFD.
  static ServerReply Error(int status, std::string_view message);
};

// Called on the I/O thread (handler_threads = 0) or on a pool thread, possibly several at once
// (then it must be thread-safe). It should not throw; an exception becomes a 500 reply.
using ServerHandler = std::function<ServerReply(const ServerRequest&)>;

class Server {
 public:
  struct Options {
    // Names the server in messages: "<name> socket <path>: ...", "<name> address <a>: ...".
    std::string name = "API";
    // The Unix stream socket to listen on; "" = none. Created with exactly `unix_mode` (see
    // http::ListenOnUnixSocket: a stale file is replaced, a live one is AlreadyExists), removed
    // by Stop when it is still the file this server created.
    std::string unix_path{};
    uint32_t unix_mode = 0600;
    // "host:port" to listen on with TCP; "" = none; port 0 = any free port. The host is an IP
    // address or localhost; with resolve_host_names also a name, resolved once at Start.
    std::string tcp_address{};
    bool resolve_host_names = false;
    // Required (non-empty) when tcp_address is set: TCP peers must send
    // `Authorization: Bearer <token>` or get 401. Unix peers need it only with
    // token_on_unix_socket.
    std::string token{};
    bool token_on_unix_socket = false;
    // More Host names (and so origins) the TCP listener answers to (http::OwnHostsFor).
    std::vector<std::string> allowed_hosts{};
    // Requests for which this returns true skip the access check (e.g. a health endpoint).
    // Called on the I/O thread. Default: none is exempt.
    std::function<bool(const ServerRequest&)> exempt{};
    size_t max_body_bytes = 1 << 20;    // -> 413 over it
    size_t max_head_bytes = 16 * 1024;  // -> 431 over it
    // A connection on which no byte arrives for this long (while no request of it is being
    // handled) is closed.
    std::chrono::milliseconds idle_timeout{60000};
    size_t max_connections = 256;  // further connections are closed at once
    int handler_threads = 0;       // 0: the handler runs on the I/O thread
  };

  // `handler` must stay callable until Stop() returns.
  Server(Options options, ServerHandler handler);
  ~Server();  // Stop()s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listeners and starts the I/O thread (and the pool). Fails with InvalidArgument
  // (no listener, no handler, TCP without a token, a path too long, an address that does not
  // parse), AlreadyExists (a live process owns the socket file) or IoError (bind/listen/chmod
  // refused); on failure nothing is left listening. May be called once.
  Status Start();
  // Closes the listeners and every connection, waits for running handlers to return, joins the
  // threads, and removes the socket file it created. Idempotent.
  void Stop();
  // The bound TCP address with its port resolved ("127.0.0.1:41234") after Start(); "" when
  // there is no TCP listener.
  std::string tcp_address() const;
  // The access policies of the two listeners (CheckApiRequest). Before Start() the TCP one
  // accepts no Host (it knows no address of its own yet).
  const ApiAccess& tcp_access() const;
  const ApiAccess& unix_access() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace turnout::http
