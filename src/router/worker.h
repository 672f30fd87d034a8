// Worker: one data-plane thread of the router.
//
// A worker owns an io_context (concurrency hint 1) run by its own thread, one SO_REUSEPORT
// acceptor per listen address, every client connection the kernel hands to those acceptors, its
// upstream connection pools and its metric shard (index = worker index). Nothing on the request
// path is shared with other workers except the routing table (read-only) and relaxed atomics.
//
// Ownership: Router owns the workers and the DataPlaneShared they point to; both outlive every
// worker thread (Router joins the threads in Stop()).
// Thread-safety: Listen() and Start() are called by Router before the thread runs; Stop() from
// any thread except the worker's own.

#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "common/throttled_count.h"
#include "router/access_log.h"
#include "router/config.h"
#include "router/forward_headers.h"
#include "router/routing_table.h"

namespace turnout::router {

// What the workers share with the control side.
struct DataPlaneShared {
  const RouterConfig* config = nullptr;
  Clock* clock = nullptr;
  int workers = 1;
  TrustedProxies trusted;
  uint64_t start_ns = 0;            // wall-clock start, part of generated request ids
  AccessLog* access_log = nullptr;  // owned by Router; null when there is no access log
  // The current table. The control side publishes it before bumping `generation` (release); a
  // worker loads `generation` (acquire) per request and takes the table, under `table_mu`, only
  // when the generation moved: the request path itself takes no lock. (A mutex rather than
  // std::atomic<std::shared_ptr>: libstdc++ 12's version unlocks loads with a relaxed store.)
  void PublishTable(std::shared_ptr<const RoutingTable> t) {
    std::lock_guard<std::mutex> lock(table_mu);
    table = std::move(t);
  }
  std::shared_ptr<const RoutingTable> CurrentTable() {
    std::lock_guard<std::mutex> lock(table_mu);
    return table;
  }
  std::mutex table_mu;
  std::shared_ptr<const RoutingTable> table;  // guarded by table_mu
  std::atomic<uint64_t> generation{0};
  std::atomic<int64_t> connections{0};  // open client connections, all workers
  // From the descriptor budget (fd_budget.h), planned at start and again whenever a slot's
  // instances change: a connection over `max_clients` is accepted and reset at once; idle
  // upstream connections beyond `max_pooled` (all workers) are closed instead of pooled.
  std::atomic<int64_t> max_clients{1};
  std::atomic<int64_t> max_pooled{0};
  std::atomic<int64_t> pooled{0};  // idle pooled upstream connections, all workers
  ThrottledCount refused;          // client connections refused (limit or out of descriptors)
  // Until this steady-clock time (ns since its epoch), some worker's accept() recently failed
  // for want of descriptors: accepted connections are then kept only while a descriptor is
  // still free (worker.cc, KeepUnderFdPressure).
  std::atomic<int64_t> fd_pressure_until{0};
};

class Worker {
 public:
  Worker(int index, DataPlaneShared& shared);
  ~Worker();  // Stop()s
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens an acceptor on `endpoint` with SO_REUSEPORT; returns the bound endpoint (port 0
  // resolved). IoError naming the address on failure.
  Result<boost::asio::ip::tcp::endpoint> Listen(const boost::asio::ip::tcp::endpoint& endpoint);
  // Starts the thread (accepting begins).
  Status Start();
  // Closes the acceptors, every client and upstream connection, and joins the thread.
  // Idempotent.
  void Stop();

  struct Impl;  // in worker.cc; public so the connection code there can name it

 private:
  std::unique_ptr<Impl> impl_;
};

// Tests only: the next `count` allocations of a connection's request memory fail as they do
// when the system is out of memory (the connection is then answered 503 and closed).
void FailRequestMemoryForTesting(int count);

}  // namespace turnout::router
