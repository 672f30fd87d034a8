// Verified PostgreSQL backups: create, list, verify, restore, prune.
//
// Layout under the backups directory (Default: ./.turnout/backups):
//   <id>/dump/...          pg_dump -Fd output (directory format), or
//   <id>/dump.pgdump       pg_dump -Fc output (custom format)
//   <id>/schema.txt        canonical schema lines (catalog.h); hashed like the dump files
//   <id>/manifest.json     written last and atomically: without it the backup is incomplete
//   <id>/verify.json       the outcome of the last verify
//   <id>/.in-progress      exists (and is flock'ed) only while `create` runs
//
// Create: a libpq session opens BEGIN ISOLATION LEVEL REPEATABLE READ and exports its snapshot;
// pg_dump --snapshot=<it> dumps exactly that state while the session counts every table's rows
// and reads the schema fingerprint in the same snapshot. The session's transaction stays open
// until pg_dump ends (the snapshot exists only while it does).
//
// Verify levels: 1 = SHA-256 and size of every file against the manifest, and no extra files;
// 2 = level 1 + a full decode (`pg_restore -f /dev/null` reads every data block); 3 = level 2 +
// a restore into a scratch database (created and always dropped again) whose exact row counts
// and schema fingerprint must equal the manifest's.
//
// External programs (pg_dump, pg_restore) run through platform::RunCommand; they are taken from
// `pg_bin_dir` when set, else from PATH.
//
// Thread-safety: the functions are reentrant. Two `create`s never share an id. `prune` skips
// backups whose create is still running (their .in-progress lock is held).
// Errors: a Status for what kept the operation from running (no database, a missing backup, a
// failing pg_dump); the problems verify finds in a backup are in its VerifyReport, not a Status.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backup/manifest.h"
#include "common/clock.h"
#include "common/status.h"

namespace turnout::backup {

inline constexpr std::string_view kDefaultBackupsDir = ".turnout/backups";

// A step of a long operation, for live progress output.
struct Progress {
  std::string phase;    // "snapshot", "dump", "counts", "hash", "decode", "restore", ...
  std::string message;  // human text for this step
  uint64_t bytes = 0;   // bytes written so far in this phase (dump), else 0
};

struct BackupEnv {
  std::string backups_dir{kDefaultBackupsDir};  // Default: .turnout/backups
  std::string pg_bin_dir;                       // where pg_dump/pg_restore are. Default: "" (PATH)
  std::chrono::milliseconds command_timeout{std::chrono::hours(24)};  // per pg_dump/pg_restore
  const Clock* clock = nullptr;  // Default: nullptr = SystemClock
  // Called from the calling thread (and, during the dump, from it alone) at each step and about
  // once a second while pg_dump runs. Default: none.
  std::function<void(const Progress&)> on_progress;
};

struct CreateOptions {
  std::string conninfo;  // URL or key=value; "" = libpq's PG* variables
  DumpFormat format = DumpFormat::kDirectory;
  int jobs = 1;                               // pg_dump -j (directory format only). Default: 1
  std::optional<int> compress;                // pg_dump -Z 0..9. Default: pg_dump's own
  std::map<std::string, std::string> labels;  // recorded in the manifest. Default: none
  // How long pg_dump and the counting session wait for a table lock (they conflict only with
  // ACCESS EXCLUSIVE, e.g. a migration's ALTER TABLE) before the backup fails. 0 = no limit.
  // Default: 0.
  std::chrono::milliseconds lock_timeout{0};
};

// Creates one backup and returns its manifest. On failure the partial directory is removed.
Result<Manifest> CreateBackup(const BackupEnv& env, const CreateOptions& options);

struct BackupInfo {
  std::string id;
  std::string path;                    // the backup's directory
  std::optional<Manifest> manifest;    // set when complete
  std::optional<VerifyRecord> verify;  // the last verify, when there was one
  bool in_progress = false;            // a create is running now
  std::string problem;                 // why it is not complete/readable ("" when fine)
  uint64_t disk_bytes = 0;             // what the directory holds now
  int verified_level() const { return verify ? verify->level_reached : 0; }
};

// Every backup directory, oldest first (ids sort by time).
Result<std::vector<BackupInfo>> ListBackups(const BackupEnv& env);
// One backup by id; "latest" is the newest complete one.
Result<BackupInfo> FindBackup(const BackupEnv& env, const std::string& id);

struct VerifyOptions {
  int level = 3;  // 1..3. Default: 3
  // The server on which level 3 creates its scratch database (CREATE DATABASE needs the right
  // to create databases there). Default: "" (libpq's PG* variables).
  std::string conninfo;
  int jobs = 1;  // pg_restore -j for a directory-format restore. Default: 1
};

struct VerifyReport {
  std::string id;
  int level_requested = 0;
  int level_reached = 0;
  bool ok = false;
  std::vector<std::string> problems;  // what is wrong, one item each
  std::string next_step;              // what to do about it ("" when ok)
  std::map<int, int64_t> level_duration_ms;
  std::string scratch_database;  // level 3: the database used (and dropped)
};

// Runs the levels in order and stops at the first that fails; records <id>/verify.json.
Result<VerifyReport> VerifyBackup(const BackupEnv& env, const std::string& id,
                                  const VerifyOptions& options);

struct RestoreOptions {
  std::string target;  // URL or conninfo of the database to overwrite (it must exist)
  bool confirm_data_loss = false;
  int jobs = 1;           // directory format: pg_restore -j. Default: 1
  bool no_owner = false;  // pg_restore --no-owner. Default: keep the dump's owners
  // lock_timeout of the restoring sessions: an application still using the target's tables
  // makes the restore fail (and, in one transaction, change nothing) instead of queueing
  // behind it with every later query queued behind the restore. 0 = no limit. Default: 60 s.
  std::chrono::milliseconds lock_timeout{std::chrono::seconds(60)};
};

struct TableDelta {
  std::string table;
  std::optional<int64_t> backup_rows;  // nullopt: the table is not in the backup
  std::optional<int64_t> target_rows;  // nullopt: the table is not in the target
};

struct RestoreReport {
  std::string id;
  std::string backup_created_at;  // the snapshot's time: every write after it is lost
  bool refused = false;           // no confirmation: nothing was changed
  bool restored = false;
  std::string method;  // how pg_restore ran, and why
  // Tables whose row counts differ between the target now and the backup (before the restore).
  std::vector<TableDelta> deltas;
  int64_t rows_lost_at_least = 0;        // sum of (target - backup) where the target has more
  int64_t rows_back_at_least = 0;        // sum of (backup - target) where the target has fewer
  std::vector<std::string> kept_tables;  // only in the target: pg_restore leaves them alone
  // After the restore: tables whose count differs from the manifest ("" items when all equal).
  std::vector<std::string> mismatches;
  bool fingerprint_matches = false;
  std::vector<std::string> schema_diff;  // when the fingerprint differs
};

// Without confirm_data_loss: reads the target's counts, fills deltas and returns refused=true
// (nothing changed). With it: verifies level 1, restores, and compares the row counts.
Result<RestoreReport> RestoreBackup(const BackupEnv& env, const std::string& id,
                                    const RestoreOptions& options);

struct PruneOptions {
  int keep = 0;                // the newest N complete backups stay
  bool keep_verified = false;  // also keep every backup verified at `verified_level`
  bool dry_run = false;
  int verified_level = 3;  // what counts as verified. Default: 3 (restore-tested)
  // An incomplete backup with a file written less than this long ago is kept: a pg_dump whose
  // turnout was killed goes on writing (it runs in its own session). Default: 1 h.
  std::chrono::milliseconds incomplete_grace{std::chrono::hours(1)};
};

struct PruneReport {
  std::vector<std::string> deleted;                       // (or would be, with dry_run)
  std::vector<std::pair<std::string, std::string>> kept;  // id, why
};

// Deletes complete backups beyond the newest `keep`, never the newest verified one, and
// incomplete ones whose create is no longer running and that nothing wrote to for
// `incomplete_grace`.
Result<PruneReport> PruneBackups(const BackupEnv& env, const PruneOptions& options);

}  // namespace turnout::backup
