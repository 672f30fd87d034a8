// Daemon: turnoutd, the wiring place. One daemon runs one service (one turnout.yaml): it owns
// the state store (SQLite in the state directory), the platform (local processes), the router
// (a `turnout router` process it launches, supervises and re-attaches to: daemon/router_process.h;
// or a standalone one it only drives, `router.external`), both through the admin API, the
// controller engine with its thread, the supervisor of the serving instances, the hooks, and the
// API that the `turnout` CLI talks to (a Unix socket in the state directory, optionally TCP +
// token).
//
// Threads:
//   - the controller thread owns the Engine: it runs Step() in a loop while a deployment is in
//     progress, and the commands that change a deployment (deploy, rollback, approve, abort,
//     switch) as tasks queued by the API threads, between two steps. A Step is bounded (probes
//     of at most ~1 s, waits of 20 ms), so a command waits at most that long;
//   - the API server's handler threads answer reads (status, history, audit, logs) straight from
//     the store and the router, which are thread-safe, and queue commands;
//   - none of the router's: it is a process of its own, and outlives turnoutd.
//
// Start-up (also after kill -9): the state directory is created (0700); instances recorded as
// live are re-adopted by pid + start time (a reused pid is never taken for ours); the router
// process is attached to when it still runs (it served traffic meanwhile), else launched with
// the running instances in their slots and its persisted policy, so traffic flows from its
// first request; the engine resumes the interrupted deployment by the rule in
// controller/engine.h; the supervisor watches the serving instances; then the API opens.
// Stop (SIGTERM): the API closes, the controller finishes its current step. App instances and
// the router process keep running, and a deployment in progress resumes at the next start.

#pragma once

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "api/api.h"
#include "common/clock.h"
#include "common/status.h"
#include "daemon/wiring.h"

namespace turnout::daemon {

struct DaemonOptions {
  std::string config_path;  // turnout.yaml; required
  // The API's Unix socket. Default: "" -> <state_dir>/turnoutd.sock
  std::string socket_path;
  // "host:port" for the API over TCP as well; needs `api_token`. Default: "" (Unix only)
  std::string api_tcp_address;
  std::string api_token;  // Default: "" (required with api_tcp_address)
  // Where the daemon's log lines go. Not owned; must outlive the daemon. Default: std::cerr
  std::ostream* log = nullptr;
  // Wait between two Step() calls with nothing to do but wait (the bound of a command's wait).
  // Default: 20 ms
  std::chrono::milliseconds step_wait{20};
};

class Daemon {
 public:
  // Reads and validates turnout.yaml; nothing is started or written yet. InvalidArgument with
  // every problem of the file, IoError when it cannot be read.
  static Result<std::unique_ptr<Daemon>> Create(DaemonOptions options);
  ~Daemon();  // Stop()s
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts everything (see above). AlreadyExists when another daemon serves this state
  // directory; IoError when a listener cannot be bound; Unavailable when the router process
  // cannot be started. On failure nothing of turnoutd keeps running (a router process that was
  // started or attached to keeps serving).
  Status Start();
  // Idempotent. App instances and the router process keep running.
  void Stop();

  // Answers one API request (the server calls it; tests may too). Endpoints: docs/daemon.md.
  api::Reply Handle(const api::Request& request);

  const StatePaths& paths() const;
  std::string socket_path() const;
  std::string api_tcp_address() const;  // bound, "" without TCP
  // The router's public listen addresses (port 0 resolved).
  std::vector<std::string> listen_addresses() const;

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace turnout::daemon
