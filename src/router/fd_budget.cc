#include "router/fd_budget.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace turnout::router {

Result<FdBudget> PlanFdBudget(const FdBudgetInputs& in) {
  const uint64_t workers = static_cast<uint64_t>(std::max(in.workers, 1));
  FdBudget b;
  b.fd_limit = in.fd_limit;
  b.reserved = kBaseReserve + workers * (kPerWorkerReserve + in.listeners) + kAdminReserve +
               in.instances + kHealthReserve;
  const uint64_t needed = b.reserved + 2;
  if (in.fd_limit < needed + 1) {
    return FailedPrecondition("the descriptor limit (" + std::to_string(in.fd_limit) +
                              ") leaves no room for client connections: the router reserves " +
                              std::to_string(b.reserved) +
                              "; raise it (ulimit -n, LimitNOFILE=) to at least " +
                              std::to_string(needed + 64));
  }
  const uint64_t avail = in.fd_limit - b.reserved;
  b.pooled_upstream =
      std::min<uint64_t>(workers * in.instances * in.max_idle_per_instance, avail / 4);
  b.max_client_connections = (avail - b.pooled_upstream) / 2;
  if (in.max_connections > 0) {
    if (in.max_connections <= b.max_client_connections) {
      b.max_client_connections = in.max_connections;
      b.capped_by_config = true;
    } else {
      b.config_over_budget = true;
    }
  }
  return b;
}

Result<FdLimit> RaiseFdLimit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return IoError(std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno));
  }
  FdLimit out;
  out.before = rl.rlim_cur;
  rlim_t target = rl.rlim_max;
  if (target == RLIM_INFINITY) {
    // The kernel refuses more than fs.nr_open descriptors per process.
    uint64_t nr_open = 1 << 20;
    std::ifstream f("/proc/sys/fs/nr_open");
    if (f) f >> nr_open;
    target = static_cast<rlim_t>(nr_open);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
    struct rlimit raised = rl;
    raised.rlim_cur = target;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl.rlim_cur = target;
  }
  out.soft = rl.rlim_cur == RLIM_INFINITY ? static_cast<uint64_t>(target) : rl.rlim_cur;
  out.hard = rl.rlim_max == RLIM_INFINITY ? static_cast<uint64_t>(target) : rl.rlim_max;
  return out;
}

std::string DescribeFdBudget(const FdBudget& b) {
  std::string s = "max client connections " + std::to_string(b.max_client_connections) +
                  " (fd limit " + std::to_string(b.fd_limit) + ")";
  if (b.capped_by_config) s += ", set by limits.max_connections";
  if (b.config_over_budget) {
    s += "; limits.max_connections is higher than the descriptors allow: raise the fd limit to "
         "serve more";
  }
  return s;
}

}  // namespace turnout::router
