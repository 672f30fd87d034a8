// The router's descriptor budget: how many client connections it can take without running out
// of file descriptors for what it must keep doing (the admin API, health checks, upstream
// connections).
//
// At start the router raises its soft RLIMIT_NOFILE to the hard limit (process-wide), then
// splits the limit M:
//   fixed    = kBaseReserve + workers * (kPerWorkerReserve + listen addresses)   (threads, epoll,
//              listeners, the spare descriptor of each acceptor, stdio, state/secret files)
//            + kAdminReserve                                                     (admin API)
//            + instances + kHealthReserve                                        (health checks)
//   pooled   = min(workers * instances * limits.max_idle_per_instance, (M - fixed) / 4)
//              idle upstream connections the workers may keep pooled, all workers together
//   clients  = (M - fixed - pooled) / 2   (a client being served also holds an upstream socket)
// When limits.max_connections is set and smaller, it is used instead (`capped_by_config`); when
// it is larger, the derived number wins (`config_over_budget`).
//
// Thread-safety: pure functions, except RaiseFdLimit (setrlimit, process-wide).

#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace turnout::router {

inline constexpr uint64_t kBaseReserve = 48;
inline constexpr uint64_t kPerWorkerReserve = 6;
inline constexpr uint64_t kAdminReserve = 32;
inline constexpr uint64_t kHealthReserve = 8;

struct FdBudgetInputs {
  uint64_t fd_limit = 0;  // soft RLIMIT_NOFILE
  int workers = 1;
  size_t listeners = 1;
  size_t instances = 0;  // upstream instances configured, all slots
  uint32_t max_idle_per_instance = 0;
  uint32_t max_connections = 0;  // limits.max_connections; 0 = derive only
};

struct FdBudget {
  uint64_t fd_limit = 0;
  uint64_t reserved = 0;         // fixed reserve
  uint64_t pooled_upstream = 0;  // cap on idle pooled upstream connections, all workers
  uint64_t max_client_connections = 0;
  bool capped_by_config = false;    // limits.max_connections was smaller and is used
  bool config_over_budget = false;  // limits.max_connections was larger than the fds allow
};

// FailedPrecondition (saying how many descriptors are needed) when not even one client
// connection fits.
Result<FdBudget> PlanFdBudget(const FdBudgetInputs& in);

struct FdLimit {
  uint64_t soft = 0;  // after raising
  uint64_t hard = 0;
  uint64_t before = 0;  // soft limit found at start
};

// Raises the soft RLIMIT_NOFILE to the hard limit (an unlimited hard limit: to
// /proc/sys/fs/nr_open). Process-wide. IoError when getrlimit fails; a refused raise keeps the
// current soft limit (reported in the result).
Result<FdLimit> RaiseFdLimit();

// "max client connections N (fd limit M)", plus why when limits.max_connections decided.
std::string DescribeFdBudget(const FdBudget& budget);

}  // namespace turnout::router
