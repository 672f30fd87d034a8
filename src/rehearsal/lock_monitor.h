// LockMonitor: watches the table locks one PostgreSQL session holds, from a second session, while
// a statement runs.
//
// A statement's locks are visible only while it runs (autocommit) or until its transaction ends,
// and the session running it cannot look at pg_locks meanwhile; so a thread of our own with its
// own connection polls pg_locks for that session's pid every `poll` during a window
// (BeginWindow..EndWindow) and records, per table, the strongest mode seen and when it was first
// seen at that strength. A lock held for less than one poll interval may be missed: the caller
// complements it with what the session itself reports after the statement (in a transaction).
//
// Only user tables (ordinary, partitioned, materialized views) of the monitored database count;
// catalogs, TOAST, temporary schemas and indexes are left out.
//
// Thread-safety: BeginWindow/EndWindow/error are called from one thread (the one running the
// statements); the polling runs on the monitor's own thread. The destructor stops and joins it.

#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "db/pg.h"

namespace turnout::rehearsal {

struct SeenLock {
  std::string relation;  // schema.table
  std::string mode;
  int rank = 0;  // LockModeRank(mode)
  Clock::TimePoint first_seen;
};

class LockMonitor {
 public:
  // Connects to `conninfo` (the monitored session's database) and starts the polling thread.
  // Fails with Unavailable when the connection cannot be made.
  static Result<std::unique_ptr<LockMonitor>> Start(const std::string& conninfo, int pid,
                                                    const Clock& clock,
                                                    std::chrono::milliseconds poll);
  ~LockMonitor();
  LockMonitor(const LockMonitor&) = delete;
  LockMonitor& operator=(const LockMonitor&) = delete;

  // Starts recording (forgets the previous window).
  void BeginWindow();
  // Stops recording; returns table oid -> the strongest lock seen in the window.
  std::map<std::string, SeenLock> EndWindow();
  // The first polling error ("" when none): the caller reports locks as incomplete.
  std::string error() const;

 private:
  LockMonitor(db::PgConnection conn, int pid, const Clock& clock, std::chrono::milliseconds poll);
  void Loop();

  db::PgConnection conn_;  // used by the polling thread only
  const int pid_;
  const Clock& clock_;
  const std::chrono::milliseconds poll_;

  mutable Mutex mu_;
  CondVar cv_;
  bool stop_ TURNOUT_GUARDED_BY(mu_) = false;
  bool active_ TURNOUT_GUARDED_BY(mu_) = false;
  uint64_t window_ TURNOUT_GUARDED_BY(mu_) = 0;
  std::map<std::string, SeenLock> seen_ TURNOUT_GUARDED_BY(mu_);
  std::string error_ TURNOUT_GUARDED_BY(mu_);
  std::thread thread_;
};

// The query that lists a session's granted table locks (oid, schema.table, mode); $1 = pid, or
// NULL for the session running it.
std::string TableLocksQuery();

}  // namespace turnout::rehearsal
