// AdminServer: the router's admin HTTP API, served from any RouterControl.
//
// Endpoints (all JSON; errors are {"error":"..."}; full reference in docs/router.md):
//   GET  /v1/status                     RouterStatus
//   GET  /v1/policy                     the policy (PolicyToJson; the override secret is hidden)
//   PUT  /v1/policy                     body: policy JSON -> {"generation":N,"policy":{...}}
//   POST /v1/switch                     {"slot":"green"} -> active=green, canary cleared
//   POST /v1/weight                     {"slot":"green","weight":25.0} -> canary green at 25 %
//   GET  /v1/slots/{name}               SlotStatus
//   PUT  /v1/slots/{name}/instances     {"instances":["127.0.0.1:9001"]} -> {"generation":N}
//   GET  /v1/metrics?window=60          per-slot window metrics (window=0: totals since start)
//   GET  /metrics                       Prometheus text from `prometheus_text`
//   GET  /healthz                       200 "ok" (never needs the token)
// Status codes: 400 bad input (the old policy keeps serving), 401 missing/wrong token, 404 unknown
// slot or path, 405 wrong method (with Allow), 409 a precondition the router refuses, 411 a body
// without Content-Length, 413 body over max_body_bytes, 431 head too large, 500 otherwise.
//
// Requests are parsed with the strict http::ParseRequestHead; keep-alive is supported; any bytes
// that do not form a request get a 4xx reply and the connection is closed. Input never crashes
// the server.
//
// Threading: one thread of its own running its own io_context (C++20 coroutines, one per
// connection). RouterControl calls are made from that thread, one request at a time per
// connection; `control` must be thread-safe and outlive the server. Start/Stop/address may be
// called from any one controlling thread.

#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "router/router_control.h"

namespace turnout::router {

class AdminServer {
 public:
  struct Options {
    // host:port (port 0 = any free port), or unix:/path for a Unix stream socket created with
    // mode 0600 (a stale file is replaced, a live one refused; removed by Stop). Default above.
    std::string address = "127.0.0.1:9901";
    // When set, every endpoint but /healthz needs `Authorization: Bearer <token>`. Default: none.
    std::string token;
    size_t max_body_bytes = 1 << 20;    // Default: 1 MiB -> 413 over it
    size_t max_head_bytes = 16 * 1024;  // Default: 16 KiB -> 431 over it
    // A connection on which no byte arrives for this long is closed (the admin API listens on
    // loopback or behind a token, and at most 256 connections are served at once).
    std::chrono::milliseconds idle_timeout{30000};  // Default: 30 s
  };

  // A reply as the server sends it; exposed so that callers can serve the same API over another
  // transport, and used by tests.
  struct Reply {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::string extra_headers;  // complete "Name: value\r\n" lines
  };

  // `prometheus_text` produces the /metrics body; it is called on the server thread.
  AdminServer(Options options, RouterControl& control,
              std::function<std::string()> prometheus_text);
  ~AdminServer();  // Stop()s
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds the address and starts serving. Fails with InvalidArgument when the address does not
  // parse, AlreadyExists when a live process owns the socket file, IoError when it cannot be
  // bound; may be called once.
  Status Start();
  // Closes the listener and every connection, joins the thread. Idempotent.
  void Stop();
  // The bound address ("127.0.0.1:41234", "unix:/run/x.sock") after Start(), else the
  // configured one.
  std::string address() const;

  // Answers one request (method, target with query, Authorization header value, body).
  Reply Handle(std::string_view method, std::string_view target, std::string_view authorization,
               std::string_view body);

 private:
  struct Impl;
  Options options_;
  RouterControl& control_;
  std::function<std::string()> prometheus_text_;
  std::unique_ptr<Impl> impl_;
  std::string bound_address_;
  std::thread thread_;
};

}  // namespace turnout::router
