// AdminServer: the router's admin HTTP API, served from any RouterControl.
//
// Endpoints (all JSON; errors are {"error":"..."}; full reference in docs/router.md):
//   GET  /v1/status                     RouterStatus
//   GET  /v1/policy                     the policy (PolicyToJson; the override secret is hidden)
//   PUT  /v1/policy                     body: policy JSON -> {"generation":N,"policy":{...}}
//        ?if_generation=N                 only while the generation is still N (GET /v1/status),
//                                         else 409 {"error":...,"current_generation":M}
//   POST /v1/switch                     {"slot":"green"} -> active=green, canary cleared
//   POST /v1/weight                     {"slot":"green","weight":25.0} -> canary green at 25 %
//   GET  /v1/slots/{name}               SlotStatus
//   PUT  /v1/slots/{name}/instances     {"instances":["127.0.0.1:9001"]} -> {"generation":N}
//   GET  /v1/metrics?window=60          per-slot window metrics (window=0: totals since start)
//   GET  /metrics                       Prometheus text from `prometheus_text`
//   GET  /healthz                       200 "ok" (never needs the token; no other check either)
// Every other request first passes http::CheckApiRequest: on TCP a Host that is not the admin's
// own (OwnHostsFor: the bound address, the loopback names for a loopback bind, allowed_hosts)
// gets 421; an Origin that is not the admin's own 403 (on the Unix socket any Origin); a missing
// or wrong token 401; a POST/PUT/PATCH/DELETE without Content-Type: application/json 415.
// Then: 400 bad input (the old policy keeps serving), 404 unknown slot or path, 405 wrong method
// (with Allow), 409 a precondition the router refuses, 411 a body without Content-Length, 413
// body over max_body_bytes, 431 head too large, 500 otherwise.
//
// The transport is the one core of turnout's JSON APIs (http::Server, see http/server.h): requests
// are parsed with the strict http::ParseRequestHead; keep-alive is supported; any bytes that do
// not form a request get a 4xx reply and the connection is closed. A reply to HEAD has no body.
// Input never crashes the server. At most 256 connections are served at once.
//
// Threading: the core's one I/O thread (C++20 coroutines, one per connection) also runs the
// endpoints: RouterControl calls are made from that thread, one request at a time; `control`
// must be thread-safe and outlive the server. Start/Stop/address may be called from any one
// controlling thread.

#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/api_support.h"
#include "http/server.h"
#include "router/router_control.h"

namespace turnout::router {

class AdminServer {
 public:
  struct Options {
    // host:port (port 0 = any free port), or unix:/path for a Unix stream socket created with
    // mode 0600 (a stale file is replaced, a live one refused; removed by Stop). Default above.
    std::string address = "127.0.0.1:9901";
    // Every endpoint but /healthz needs `Authorization: Bearer <token>`. Required on TCP: Start()
    // refuses a TCP address without one (InvalidArgument). Default: none.
    std::string token;
    // More Host names (and so origins) the TCP listener answers to, e.g. "router.internal" or
    // "10.0.0.5:9901" (see http::OwnHostsFor). Default: none.
    std::vector<std::string> allowed_hosts;
    size_t max_body_bytes = 1 << 20;    // Default: 1 MiB -> 413 over it
    size_t max_head_bytes = 16 * 1024;  // Default: 16 KiB -> 431 over it
    // A connection on which no byte arrives for this long is closed (the admin API listens on
    // loopback or behind a token, and at most 256 connections are served at once).
    std::chrono::milliseconds idle_timeout{30000};  // Default: 30 s
  };

  // A reply as the server sends it; exposed so that callers can serve the same API over another
  // transport, and used by tests.
  using Reply = http::ServerReply;

  // `prometheus_text` produces the /metrics body; it is called on the server thread.
  AdminServer(Options options, RouterControl& control,
              std::function<std::string()> prometheus_text);
  ~AdminServer();  // Stop()s
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds the address and starts serving. Fails with InvalidArgument when the address does not
  // parse or is TCP without a token, AlreadyExists when a live process owns the socket file,
  // IoError when it cannot be bound; may be called once.
  Status Start();
  // Closes the listener and every connection, joins the thread. Idempotent.
  void Stop();
  // The bound address ("127.0.0.1:41234", "unix:/run/x.sock") after Start(), else the
  // configured one.
  std::string address() const;

  // Every endpoint the admin API serves: the method and the path ("{name}" stands for a slot
  // name; /v1/metrics also takes ?window=). The list of the header comment, for programs (tests
  // walk it; a path here that Handle does not serve is a bug).
  struct Endpoint {
    std::string_view method;
    std::string_view path;
  };
  static const std::vector<Endpoint>& Endpoints();

  // One request as received: the target with its query, the body, and the header values the
  // checks read (empty when absent).
  struct Request {
    std::string_view method;
    std::string_view target;
    std::string_view body;
    std::string_view authorization;
    std::string_view content_type;
    std::string_view origin;
    std::string_view host;
  };
  // Answers one request, checks included (before Start() a TCP server accepts no Host).
  Reply Handle(const Request& request);

 private:
  // Answers one request that passed the checks (the endpoints above).
  Reply Answer(std::string_view method, std::string_view target, std::string_view body);

  Options options_;
  RouterControl& control_;
  std::function<std::string()> prometheus_text_;
  std::string bound_address_;
  http::ApiAccess access_;              // set by Start()
  std::unique_ptr<http::Server> core_;  // the transport, from Start()
};

}  // namespace turnout::router
