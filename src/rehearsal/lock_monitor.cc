#include "rehearsal/lock_monitor.h"

#include <utility>

#include "rehearsal/rehearsal.h"

namespace turnout::rehearsal {

std::string TableLocksQuery() {
  return R"sql(
SELECT c.oid::text, n.nspname || '.' || c.relname, l.mode
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation' AND l.granted
  AND l.pid = coalesce($1::int, pg_backend_pid())
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%')sql";
}

Result<std::unique_ptr<LockMonitor>> LockMonitor::Start(const std::string& conninfo, int pid,
                                                        const Clock& clock,
                                                        std::chrono::milliseconds poll) {
  auto conn = db::PgConnection::Connect(conninfo, std::string(kApplicationName) + "-monitor");
  if (!conn.ok()) return conn.status().WithContext("cannot open the lock monitor's session");
  std::unique_ptr<LockMonitor> m(new LockMonitor(std::move(*conn), pid, clock, poll));
  m->thread_ = std::thread([p = m.get()] { p->Loop(); });
  return m;
}

LockMonitor::LockMonitor(db::PgConnection conn, int pid, const Clock& clock,
                         std::chrono::milliseconds poll)
    : conn_(std::move(conn)), pid_(pid), clock_(clock), poll_(poll) {}

LockMonitor::~LockMonitor() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
}

void LockMonitor::BeginWindow() {
  {
    MutexLock lock(mu_);
    seen_.clear();
    active_ = true;
    ++window_;
  }
  cv_.NotifyAll();
}

std::map<std::string, SeenLock> LockMonitor::EndWindow() {
  MutexLock lock(mu_);
  active_ = false;
  ++window_;
  return std::move(seen_);
}

std::string LockMonitor::error() const {
  MutexLock lock(mu_);
  return error_;
}

void LockMonitor::Loop() {
  const std::string query = TableLocksQuery();
  const std::vector<std::optional<std::string>> params = {std::to_string(pid_)};
  MutexLock lock(mu_);
  while (true) {
    while (!stop_ && !active_) cv_.Wait(mu_);
    if (stop_) return;
    uint64_t window = window_;
    lock.Unlock();
    // Stamped before the query: the lock existed no later than the snapshot pg_locks is read
    // from, so the hold time is never underestimated by the query's own latency.
    Clock::TimePoint at = clock_.Now();
    auto rows = conn_.ExecParams(query, params);
    lock.Lock();
    if (!rows.ok()) {
      if (error_.empty()) error_ = rows.status().message();
    } else if (window == window_ && active_) {
      for (size_t i = 0; i < rows->size(); ++i) {
        std::string mode = rows->text(i, 2);
        int rank = LockModeRank(mode);
        SeenLock& s = seen_[rows->text(i, 0)];
        if (rank > s.rank) s = SeenLock{rows->text(i, 1), mode, rank, at};
      }
    }
    if (stop_) return;
    const auto deadline = std::chrono::steady_clock::now() + poll_;
    bool timed_out = false;
    while (!stop_ && window == window_ && !timed_out) timed_out = cv_.WaitUntil(mu_, deadline);
  }
}

}  // namespace turnout::rehearsal
