// Migration rehearsal: the pending migrations run against a restored copy of production before
// they run against production itself.
//
// Rehearse():
//   1. Refuses a backup that was never verified or whose last verify failed (or verifies it first
//      at `verify_level`); the restore then checks every file's hash again (verify level 1), so a
//      backup damaged since its verification is refused before anything is restored.
//   2. Creates a scratch database turnout_rehearsal_<random> on the server of `server` and
//      restores the backup into it through the backup module (pg_restore, -j for directory
//      dumps), comparing row counts and the schema fingerprint with the manifest.
//   3. Applies the pending migrations (versions above the manifest's migration_version) statement
//      by statement, as `turnout migrate` runs them (one transaction per migration unless
//      `-- turnout:no-transaction`), measuring for each statement its duration, the table locks
//      it took (a second session polls pg_locks for the migrating session every `lock_poll`; in a
//      transaction the session's own pg_locks rows after each statement catch locks too brief for
//      the poll) with how long each is held until it is released (statement end in autocommit,
//      COMMIT in a transactional migration), and the tables it rewrote (pg_class.relfilenode of
//      every user table compared before and after the statement).
//   4. Runs the down migrations newest first back to the backup's version, comparing the schema
//      fingerprint after each with the one before its up; then the up migrations again, comparing
//      with the fingerprints after the first up.
//   5. Drops the scratch database (unless `keep_scratch`), also when something failed, and
//      records the report as rehearsal.json in the backup's directory.
//
// Flags (each makes the rehearsal fail, each with what to do): a write-blocking lock (SHARE,
// SHARE ROW EXCLUSIVE, EXCLUSIVE, ACCESS EXCLUSIVE) held longer than `lock_budget`; a table
// rewrite; a failing up migration; a missing or failing down file; a schema after down (or after
// the second up) that differs from the one it must equal; a restore that does not match the
// manifest.
//
// Limits: the scratch database has no concurrent traffic, so the times are those of the work
// itself; in production a lock is also waited for (behind long transactions) and every query
// on the table queues behind it. No history rows are written in the scratch database.
//
// Thread-safety: Rehearse() may run in several threads at once (each has its own scratch
// database and connections). It starts one polling thread of its own while migrations run.
// Errors: a Status when the rehearsal could not run (unknown, unverified or damaged backup,
// unreachable server, no right to create a database, a restore that failed); what the rehearsal
// found in the migrations is in the report's flags.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backup/backup.h"
#include "common/clock.h"
#include "common/status.h"

namespace turnout::rehearsal {

inline constexpr std::string_view kRehearsalFile = "rehearsal.json";
inline constexpr std::string_view kScratchPrefix = "turnout_rehearsal_";
inline constexpr std::string_view kApplicationName = "turnout-rehearse";

struct RehearsalOptions {
  // The backup to rehearse on: an id or "latest". Default: "latest".
  std::string backup_id = "latest";
  // The migrations directory. Default: "migrations".
  std::string migrations_dir = "migrations";
  // Any database on the server where the scratch database is created (the role needs
  // CREATEDB); "" = libpq's PG* variables. Default: "".
  std::string server;
  // pg_restore -j for directory-format dumps. Default: 2.
  int jobs = 2;
  // A write-blocking lock held longer than this is flagged. Default: 1 s (see docs/rehearsal.md).
  std::chrono::milliseconds lock_budget{1000};
  // Keep the scratch database for inspection instead of dropping it. Default: false.
  bool keep_scratch = false;
  // Write rehearsal.json into the backup's directory. Default: true.
  bool record = true;
  // 0: rely on the backup's recorded verification (it must have passed). 1-3: run that verify
  // level first (recorded as `turnout backup verify` would). Default: 0.
  int verify_level = 0;
  // How often the lock monitor polls pg_locks. Default: 5 ms.
  std::chrono::milliseconds lock_poll{5};
  // statement_timeout of each migration statement; 0 = none. Default: 0.
  std::chrono::milliseconds statement_timeout{0};
  // Default: nullptr = SystemClock. Not owned.
  const Clock* clock = nullptr;
  // Called on the calling thread at each step: phase ("verify", "restore", "up", "down",
  // "reup", "drop") and a human line. Default: none.
  std::function<void(const std::string& phase, const std::string& message)> on_progress;
};

// One table lock a statement took (or strengthened).
struct LockHeld {
  std::string relation;  // schema.table
  std::string mode;      // as pg_locks names it: "AccessExclusiveLock", "ShareLock", ...
  // From the first time the monitor saw it (the statement's start when it never did) until it
  // was released: the statement's end in autocommit, the COMMIT in a transactional migration.
  int64_t held_ms = 0;
  bool until_commit = false;
  bool observed = false;  // seen by the monitor while the statement ran (not only afterwards)
  bool blocks_writes = false;
  bool blocks_reads = false;
};

struct StatementRun {
  int index = 0;  // 1-based in the file
  int line = 0;
  std::string text;
  int64_t duration_ms = 0;
  std::vector<LockHeld> locks;
  std::vector<std::string> rewritten;  // tables with a new relfilenode (rewrite or TRUNCATE)
  std::string error;                   // when it failed
};

// The outcome of running one file (up or down).
struct FileRun {
  bool ran = false;
  bool ok = false;
  std::string error;
  int failed_statement = 0;
  int64_t duration_ms = 0;
  // The schema afterwards differs from the one expected: "- line" / "+ line".
  std::vector<std::string> schema_diff;
};

struct MigrationRun {
  int64_t version = 0;
  std::string name;  // "0004_add_flag"
  std::string up_sha256;
  bool no_transaction = false;
  bool has_down = false;
  FileRun up;
  std::vector<StatementRun> statements;  // of the first up
  FileRun down;
  FileRun reup;
};

struct Finding {
  // "lock-budget", "rewrite", "up-failed", "down-missing", "down-failed", "down-mismatch",
  // "reup-failed", "reup-mismatch", "restore-mismatch".
  std::string kind;
  int64_t version = 0;  // 0 for the restore
  int statement = 0;    // 1-based; 0 for the whole migration
  std::string message;
  std::string advice;  // what to do
};

struct RehearsalReport {
  std::string backup_id;
  std::string backup_created_at;
  std::string rehearsed_at;  // RFC 3339 UTC
  std::string migrations_dir;
  std::string scratch_database;
  bool scratch_kept = false;
  std::optional<int64_t> from_version;  // the backup's
  std::optional<int64_t> to_version;    // after the pending migrations
  int64_t lock_budget_ms = 0;
  std::string fingerprint_start;     // the restored schema (= the manifest's when it matches)
  std::string fingerprint_after_up;  // what production will have after the migrations
  std::vector<MigrationRun> migrations;
  std::vector<Finding> findings;
  std::map<std::string, int64_t> phase_ms;  // verify, restore, up, down, reup, drop
  int64_t total_ms = 0;
  bool ok() const { return findings.empty(); }
};

// Runs a rehearsal (see the top of this file). `env` names the backups directory, the client
// programs and their timeout; its on_progress receives the restore's progress.
// For migrations turnout does not run itself (`database.tool: command`): backup `backup_id`
// (its last verification must have passed) restored into a scratch database on `server`, the
// restore checked against the manifest, then `work` given the scratch database's conninfo. The
// scratch database is dropped afterwards, also when `work` failed; `work`'s status is returned.
Status WithRestoredCopy(const backup::BackupEnv& env, const std::string& backup_id,
                        const std::string& server, int jobs,
                        const std::function<Status(const std::string& conninfo)>& work);

Result<RehearsalReport> Rehearse(const backup::BackupEnv& env, const RehearsalOptions& options);

// The report as one JSON document (also the content of rehearsal.json).
std::string ReportToJson(const RehearsalReport& report);
// The report for people: a table per migration, the findings with what to do, the totals.
std::string FormatReport(const RehearsalReport& report);

// "850 ms", "1.25 s", "12.5 s": durations in reports.
std::string FormatMs(int64_t ms);

// Table lock modes from the weakest (AccessShareLock = 1) to the strongest
// (AccessExclusiveLock = 8); 0 for a name that is not a table lock mode.
int LockModeRank(std::string_view mode);

}  // namespace turnout::rehearsal
