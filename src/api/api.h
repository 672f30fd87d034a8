// The daemon's API transport: JSON over HTTP/1.1 on a Unix stream socket and, optionally, on TCP
// guarded by a bearer token. A Server hands every request to one Handler (the daemon's router of
// endpoints); a Client makes one request at a time over a kept-alive connection (the CLI).
//
// Wire rules (both directions): every message carries Content-Length; requests with a chunked
// body are refused (411); the connection stays open unless a side says `Connection: close`.
// The server is the one core of turnout's JSON APIs (http::Server, see http/server.h). Status
// codes produced by the transport itself (before the handler): 400 malformed request
// (connection closed), 411 chunked body, 413 body over max_body_bytes, 431 head over
// max_head_bytes; then http::CheckApiRequest: 421 on TCP a Host that is not the server's own,
// 403 an Origin that is not its own (any Origin on the Unix socket), 401 missing/wrong token on
// TCP, 415 a POST/PUT/PATCH/DELETE without Content-Type: application/json; then 400 a target
// that is not a path or has a bad %-escape (connection kept). A reply to HEAD has no body. A
// handler status outside 100..599 is sent as 500.
//
// Example (daemon):
//   api::Server server({.unix_path = ".turnout/turnoutd.sock"}, [&](const api::Request& r) {
//     if (r.path == "/v1/status") return api::Reply::Json(200, StatusJson());
//     return api::Reply::Error(404, "unknown path " + r.path);
//   });
//   TURNOUT_RETURN_IF_ERROR(server.Start());
// Example (CLI):
//   api::Client client({.endpoint = "unix:.turnout/turnoutd.sock"});
//   TURNOUT_ASSIGN_OR_RETURN(api::Reply reply, client.Call("GET", "/v1/status"));

#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace turnout::api {

// One request as the handler sees it. Owns all of its strings.
struct Request {
  std::string method;  // "GET"
  std::string target;  // "/v1/history?limit=5" as received
  std::string path;    // "/v1/history" (percent-decoded)
  // The query's name=value pairs, percent-decoded ('+' is a space), in order; a pair without
  // '=' has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  std::string body;
  std::string peer;  // "unix" or "127.0.0.1:5555"

  // The value of the first query parameter named `name`, or `fallback` when there is none.
  std::string Query(std::string_view name, std::string fallback = "") const;
  // The first query parameter named `name` as a whole number from `min` to `max` (`fallback`
  // when there is none). InvalidArgument (a 400): "query parameter limit: expected a whole
  // number from 1 to 1000, got 'abc'".
  Result<int64_t> QueryNumber(std::string_view name, int64_t fallback, int64_t min,
                              int64_t max) const;
};

// What the handler answers. The transport adds Content-Length and Connection.
struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // A streamed body (http::ServerReply::stream): sent after `body`, as `stream` writes it, until
  // it returns; the connection is then closed. `gone` turns true when the client went away or
  // the server stops. Read it with Client::Stream. Default: none.
  using StreamWrite = std::function<bool(std::string_view)>;
  std::function<void(const StreamWrite& write, const std::atomic<bool>& gone)> stream;

  // A JSON reply; appends '\n' to `body` so that terminals print it cleanly.
  static Reply Json(int status, std::string body);
  // {"error":"<message>"} (JSON-escaped) with `status`.
  static Reply Error(int status, std::string_view message);
  // {"error":"<message>","code":"<code>"} with the HTTP status for the code: InvalidArgument 400,
  // NotFound 404, AlreadyExists/FailedPrecondition/Aborted 409, Unavailable 503,
  // DeadlineExceeded 504, IoError/Internal 500 (OK gives 200 {}). The code is the snake_case
  // name: "invalid_argument", "not_found", "already_exists", "failed_precondition",
  // "unavailable", "deadline_exceeded", "aborted", "io_error", "internal".
  static Reply FromStatus(const Status& s);
};

// The inverse of Reply::FromStatus for clients: a 2xx reply is OK; otherwise the "code" field of
// the JSON body when present, else a code derived from the HTTP status, with the "error" message
// (or the raw body when it is not such JSON).
Status StatusFromReply(const Reply& reply);

// Called on one of the server's handler threads, possibly several at once (one per connection
// in flight): it must be thread-safe. It may block (the pool has `handler_threads` threads; a
// request waits while all are busy). It should not throw; an exception becomes a 500 reply.
using Handler = std::function<Reply(const Request&)>;

// Threading: one I/O thread of its own (all parsing and socket work) plus `handler_threads` pool
// threads that run the handler. Start/Stop/tcp_address are called from one controlling thread
// (not from a handler). Input never crashes the server; it only ever answers with a 4xx.
class Server {
 public:
  struct Options {
    // The Unix stream socket to listen on; "" = none. Created with mode `unix_mode`. A stale
    // socket file (nothing listening) is replaced; a live one makes Start() fail with
    // AlreadyExists ("<path> is in use: another process ..."). A path that does not fit sun_path is
    // InvalidArgument. Default: none.
    std::string unix_path{};
    uint32_t unix_mode = 0600;  // Default: 0600 (owner only: the file mode is the access check)
    // "host:port" to listen on with TCP; "" = none; port 0 = any free port. Default: none.
    std::string tcp_address{};
    // Required (non-empty) when tcp_address is set: TCP peers must send
    // `Authorization: Bearer <token>` (compared in constant time) or get 401. Unix peers need no
    // token. Default: none.
    std::string token{};
    // More Host names (and so origins) the TCP listener answers to besides its bound address
    // and, for a loopback bind, localhost/127.0.0.1/[::1] with its port (http::OwnHostsFor).
    // Default: none.
    std::vector<std::string> allowed_hosts{};
    size_t max_body_bytes = 1 << 20;    // Default: 1 MiB -> 413 over it
    size_t max_head_bytes = 16 * 1024;  // Default: 16 KiB -> 431 over it
    // A connection on which no byte arrives for this long (while no request of it is being
    // handled) is closed.
    std::chrono::milliseconds idle_timeout{60000};  // Default: 60 s
    int handler_threads = 4;       // Default: 4 (handlers may block; at least 1 is used)
    size_t max_connections = 256;  // Default: 256; further connections are closed at once
  };

  // `handler` must stay callable until Stop() returns. Not copyable; the destructor Stop()s.
  Server(Options options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Start, Stop and tcp_address are http::Server's (http/server.h): Start binds the listeners
  // and starts the I/O thread and the handler pool, or fails with InvalidArgument (no listener
  // or handler, TCP without token, path too long, bad address), AlreadyExists (a live daemon
  // owns the socket) or IoError, leaving nothing listening; once only. Stop closes everything,
  // waits for running handlers, joins the threads, removes the socket file it created; it is
  // idempotent and must not be called from a handler. tcp_address: "127.0.0.1:41234" after
  // Start(), "" without a TCP listener.
  Status Start();
  void Stop();
  std::string tcp_address() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Client {
 public:
  struct Options {
    // "unix:/path/to/turnoutd.sock", "/path/x.sock" (also Unix), or "http://127.0.0.1:7070".
    std::string endpoint{};
    std::string token{};  // sent as `Authorization: Bearer <token>` when set. Default: none
    std::chrono::milliseconds timeout{30000};  // Default: 30 s for one whole exchange
  };

  explicit Client(Options options);
  ~Client();
  Client(Client&&) noexcept;  // a moved-from Client may only be destroyed or assigned to
  Client& operator=(Client&&) noexcept;

  // One request. Keeps one connection alive between calls and reconnects transparently once
  // when the kept connection turns out to be closed by the server: always when that is seen
  // before sending; when the close is only seen after the request went out, only for GET, HEAD,
  // PUT, DELETE and OPTIONS (a POST that may have reached a daemon stopping mid-handler is never
  // sent twice; it fails with Unavailable). Errors: InvalidArgument (bad endpoint, method, target
  // or token), Unavailable when nothing listens (the message names the endpoint and says "is
  // turnoutd running? start it with `turnout up`") or the reply is malformed, DeadlineExceeded
  // when the exchange took longer than the timeout. A non-2xx reply is NOT an error: it is
  // returned as a Reply (see StatusFromReply).
  // Thread-safety: one Call at a time per Client (use one Client per thread).
  Result<Reply> Call(std::string_view method, std::string_view target, std::string_view body = "");
  // A GET whose reply may be streamed (Reply::stream): the body is handed to `on_data` piece by
  // piece as it arrives, until the server closes the connection or `on_data` returns false, with
  // no deadline after the reply's head (the timeout bounds the connect and the head). The
  // returned Reply has the status, and the body of a reply that is not 2xx (the error). Errors
  // as for Call.
  Result<Reply> Stream(std::string_view target,
                       const std::function<bool(std::string_view)>& on_data);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace turnout::api
