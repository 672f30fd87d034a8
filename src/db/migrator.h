// The PostgreSQL migration engine behind `turnout migrate`.
//
// History: every step appends rows to turnout_schema_history (never updated or deleted; a
// trigger refuses both). The state of a version is derived from its latest row:
//   up/applied -> applied          up/running  -> partially applied (interrupted, no-transaction)
//   up/failed  -> pending, or partially applied when a no-transaction migration ran statements
//   down/rolled_back -> pending    down/running or down/failed after statements ran -> partial
//
// Transactions: a migration runs in one transaction together with its `applied` (or
// `rolled_back`) row, so a killed run leaves nothing behind: no row, no change. A failure rolls
// back and then appends a `failed` row with the error and the failing statement. A
// `-- turnout:no-transaction` migration runs statement by statement in autocommit and appends a
// `running` row after each, so a re-run resumes at the first statement not recorded (the
// statement that was running when the process died runs again: write those idempotently, e.g.
// IF NOT EXISTS). Before (re)running CREATE INDEX CONCURRENTLY, an INVALID index of that name
// left by an earlier failed build is dropped.
//
// Locking: one session advisory lock per database, taken by polling pg_try_advisory_lock on a
// dedicated idle connection (a blocking pg_advisory_lock would sit in a transaction that CREATE
// INDEX CONCURRENTLY of the lock holder waits for: a deadlock no one detects). On timeout the
// error names the holder. Each statement runs with lock_timeout and statement_timeout set; a
// statement that fails with lock_not_available (55P03) is retried with backoff: a transactional
// migration is rolled back and retried as a whole (so it never sleeps while holding locks), a
// no-transaction one retries the statement.
//
// Thread-safety: a Migrator is used by one thread at a time; several Migrators (in threads or
// processes) may run against one database at once: the advisory lock serializes them.
// Errors: connection failures are Unavailable, lock wait timeouts DeadlineExceeded, changed
// files and inconsistent states FailedPrecondition, bad flags InvalidArgument. Every message
// says what to do next.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "db/lint.h"
#include "db/migration.h"

namespace turnout::db {

inline constexpr std::string_view kHistoryTable = "turnout_schema_history";
inline constexpr std::string_view kApplicationName = "turnout-migrate";
// The advisory lock keys ("turnout" and "turnoutW" in ASCII). pg_locks shows a key as classid
// (high 32 bits) and objid (low 32 bits). The runner lock is held by a dedicated idle connection;
// the work lock by the connection that runs the statements, so that after a runner is killed a
// new one also waits for the dead runner's server session to finish its last statement.
inline constexpr int64_t kAdvisoryLockKey = 0x007475726e6f7574;
inline constexpr int64_t kWorkLockKey = 0x7475726e6f757457;

enum class Direction { kUp, kDown };
std::string_view DirectionName(Direction d);  // "up" / "down"

struct ProgressEvent {
  enum class Kind {
    kWaitingForLock,  // another runner holds the lock; message names it
    kLockAcquired,
    kMigrationStart,   // statement_total, resume_from set
    kStatementDone,    // statement (1-based), elapsed of that statement
    kRetry,            // lock_timeout hit; message says when the retry comes
    kMigrationDone,    // elapsed of the migration
    kMigrationFailed,  // message holds the error
    kWarning,          // e.g. a whitespace-only change of an applied file
  };
  explicit ProgressEvent(Kind k) : kind(k) {}
  Kind kind;
  int64_t version = 0;
  std::string name;
  Direction direction = Direction::kUp;
  int statement = 0;
  int statement_total = 0;
  int resume_from = 0;
  Clock::Duration elapsed{0};
  std::string message;
};

struct MigratorOptions {
  // libpq conninfo (URL or key=value). Default: "" (libpq's PG* environment variables).
  std::string database;
  // Default: "migrations".
  std::string dir = "migrations";
  // lock_timeout for each statement; 0 disables. Default: 5s.
  Clock::Duration lock_timeout = std::chrono::seconds(5);
  // statement_timeout for each statement; 0 disables. Default: 0 (migrations may be long).
  Clock::Duration statement_timeout{0};
  // How long to wait for another runner's advisory lock. Default: 60s.
  Clock::Duration wait_lock = std::chrono::seconds(60);
  // Retries after a lock_timeout (55P03). Default: 3.
  int lock_retries = 3;
  // First backoff after a lock_timeout, doubled on each retry. Default: 1s.
  Clock::Duration retry_backoff = std::chrono::seconds(1);
  // Poll interval for the advisory lock. Default: 200ms.
  Clock::Duration lock_poll = std::chrono::milliseconds(200);
  // Recorded in history rows; empty means NULL. Default: empty.
  std::string deployment_id;
  std::string backup_id;
  std::string app_version_from;
  std::string app_version_to;
  // Default: SystemClock::Get(). Not owned; must outlive the Migrator.
  const Clock* clock = nullptr;
  // How to wait between lock polls and retries. Default: std::this_thread::sleep_for.
  std::function<void(Clock::Duration)> sleep;
  // Called on the calling thread for each step. Default: none.
  std::function<void(const ProgressEvent&)> on_progress;
};

// One history row.
struct HistoryRow {
  int64_t id = 0;
  int64_t version = 0;
  std::string name;
  Direction direction = Direction::kUp;
  std::string status;  // running | applied | failed | rolled_back
  std::string file_sha256;
  std::string normalized_sha256;
  std::string chain_sha256;
  int statements_done = 0;
  int statements_total = 0;
  std::optional<std::string> error;
  std::optional<std::string> failed_statement;
  std::string started_at;  // as PostgreSQL prints timestamptz
  std::optional<std::string> finished_at;
  std::optional<int64_t> duration_ms;
  std::string run_id;
  std::optional<std::string> deployment_id;
  std::optional<std::string> backup_id;
  std::optional<std::string> app_version_from;
  std::optional<std::string> app_version_to;
};

enum class VersionState { kPending, kApplied, kPartial };
std::string_view VersionStateName(VersionState s);  // "pending" / "applied" / "partial"

enum class ChecksumState {
  kNotApplied,  // nothing to compare
  kMatch,
  kCosmetic,     // only whitespace or comments differ
  kChanged,      // the statements differ: refused
  kMissingFile,  // applied, but no file on disk
};
std::string_view ChecksumStateName(ChecksumState s);

struct VersionStatus {
  int64_t version = 0;
  std::string name;
  bool has_file = false;
  bool has_down = false;
  VersionState state = VersionState::kPending;
  // For kPartial: which direction was interrupted and how far it got.
  Direction partial_direction = Direction::kUp;
  int statements_done = 0;
  int statements_total = 0;
  ChecksumState checksum = ChecksumState::kNotApplied;
  MigrationClass classification = MigrationClass::kExpand;
  bool no_transaction = false;
  std::optional<HistoryRow> last;    // latest history row, if any
  std::string applied_chain_sha256;  // chain hash recorded when applied
  std::string applied_file_sha256;   // file hash recorded when applied
};

struct StatusReport {
  std::vector<VersionStatus> versions;  // by version
  std::optional<int64_t> current;       // highest applied version
  bool history_exists = false;
  // The session of a runner at work right now (see DescribeHolder), if any: a partial migration
  // is then in progress rather than interrupted.
  std::optional<std::string> active_runner;
};

struct PlanStep {
  int64_t version = 0;
  std::string name;
  Direction direction = Direction::kUp;
  MigrationClass classification = MigrationClass::kExpand;
  bool no_transaction = false;
  int statements_total = 0;
  int resume_from = 0;  // statements already done (a resumed no-transaction migration)
};

struct RunResult {
  std::vector<PlanStep> done;
  std::optional<int64_t> current;  // after the run
};

struct VerifyResult {
  std::vector<VersionStatus> versions;
  bool ok = true;                     // no changed or missing applied file, chain intact
  std::vector<std::string> problems;  // one line each, with what to do
  std::vector<std::string> notes;     // cosmetic changes
};

class Migrator {
 public:
  explicit Migrator(MigratorOptions options);

  // Reads history (creates nothing) and the files.
  Result<StatusReport> Status();
  // What `up --to` / `down --to` would run, in order; takes no lock, changes nothing.
  Result<std::vector<PlanStep>> PlanUp(std::optional<int64_t> to);
  Result<std::vector<PlanStep>> PlanDown(int64_t to);
  // Applies pending migrations up to `to` (all when nullopt).
  Result<RunResult> Up(std::optional<int64_t> to);
  // Rolls back applied migrations above `to` (0: all), newest first.
  Result<RunResult> Down(int64_t to);
  // Compares applied files with the disk and the recorded hash chain.
  Result<VerifyResult> Verify();
  // The full history, oldest first (empty when the table does not exist).
  Result<std::vector<HistoryRow>> History();

 private:
  struct Loaded;
  // Files, history (read without the lock) and the derived state.
  Result<Loaded> Load();
  Result<RunResult> Apply(Direction direction, std::optional<int64_t> to);
  Result<std::vector<PlanStep>> ComputeUp(const Loaded& loaded, std::optional<int64_t> to);
  Result<std::vector<PlanStep>> ComputeDown(const Loaded& loaded, int64_t to);
  void Emit(ProgressEvent e) const;

  MigratorOptions options_;
  const Clock* clock_;
};

}  // namespace turnout::db
