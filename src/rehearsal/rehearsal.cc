#include "rehearsal/rehearsal.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <utility>

#include "backup/catalog.h"
#include "backup/conninfo.h"
#include "backup/manifest.h"
#include "common/file_util.h"
#include "db/lint.h"
#include "db/migration.h"
#include "db/pg.h"
#include "db/sql_splitter.h"
#include "rehearsal/lock_monitor.h"

namespace turnout::rehearsal {
namespace {

namespace fs = std::filesystem;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr std::array<std::string_view, 8> kLockModes = {
    "AccessShareLock", "RowShareLock",          "RowExclusiveLock", "ShareUpdateExclusiveLock",
    "ShareLock",       "ShareRowExclusiveLock", "ExclusiveLock",    "AccessExclusiveLock"};
constexpr int kShareRank = 5;            // from here on, writes to the table wait
constexpr int kAccessExclusiveRank = 8;  // reads wait as well

int64_t Ms(Clock::Duration d) { return duration_cast<milliseconds>(d).count(); }

std::string ScratchName() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kScratchPrefix);
  uint64_t v = gen();
  for (int i = 0; i < 12; ++i, v >>= 4) out += kHex[v & 15];
  return out;
}

// The scratch database: created on the admin session's server, dropped (WITH (FORCE), so a
// session left behind by a failure does not keep it) unless it is to be kept.
class Scratch {
 public:
  Scratch(db::PgConnection admin, std::string name, bool keep)
      : admin_(std::move(admin)), name_(std::move(name)), keep_(keep) {}
  ~Scratch() { (void)Drop(); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  Status Create(const std::string& encoding) {
    std::string sql = "CREATE DATABASE " + admin_.QuoteIdentifier(name_) + " TEMPLATE template0";
    if (!encoding.empty()) sql += " ENCODING " + admin_.QuoteLiteral(encoding);
    auto r = admin_.Exec(sql);
    if (!r.ok()) {
      return r.status().WithContext("cannot create the scratch database " + name_ +
                                    " (the role needs CREATEDB on the server given by --url)");
    }
    created_ = true;
    return Status::Ok();
  }
  Status Drop() {
    if (!created_ || keep_) return Status::Ok();
    created_ = false;
    auto r =
        admin_.Exec("DROP DATABASE IF EXISTS " + admin_.QuoteIdentifier(name_) + " WITH (FORCE)");
    if (!r.ok()) {
      return r.status().WithContext("cannot drop the scratch database " + name_ +
                                    ": drop it by hand (DROP DATABASE ... WITH (FORCE))");
    }
    return Status::Ok();
  }
  const std::string& name() const { return name_; }

 private:
  db::PgConnection admin_;
  std::string name_;
  bool keep_;
  bool created_ = false;
};

struct TableFile {
  std::string name;
  std::string filenode;
};

// oid -> (schema.table, relfilenode) of every user table, as `conn` sees it (in its transaction).
Result<std::map<std::string, TableFile>> ReadTableFiles(db::PgConnection& conn) {
  auto rows = conn.Exec(R"sql(
SELECT c.oid::text, n.nspname || '.' || c.relname, c.relfilenode::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%')sql");
  if (!rows.ok()) return rows.status().WithContext("cannot read pg_class");
  std::map<std::string, TableFile> out;
  for (size_t i = 0; i < rows->size(); ++i) {
    out[rows->text(i, 0)] = TableFile{rows->text(i, 1), rows->text(i, 2)};
  }
  return out;
}

// oid -> strongest lock the session running the query holds (its transaction's locks so far).
Result<std::map<std::string, SeenLock>> ReadOwnLocks(db::PgConnection& conn) {
  auto rows = conn.ExecParams(TableLocksQuery(), {std::nullopt});
  if (!rows.ok()) return rows.status().WithContext("cannot read pg_locks");
  std::map<std::string, SeenLock> out;
  for (size_t i = 0; i < rows->size(); ++i) {
    std::string mode = rows->text(i, 2);
    int rank = LockModeRank(mode);
    SeenLock& s = out[rows->text(i, 0)];
    if (rank > s.rank) s = SeenLock{rows->text(i, 1), mode, rank, {}};
  }
  return out;
}

// Runs the statements of one migration file on `conn` the way `turnout migrate` does: one
// transaction unless the file says `-- turnout:no-transaction`. With `measure`, fills
// `statements` with each statement's duration, locks and rewrites; `existing` are the tables
// that existed before the migration (locks on and rewrites of tables it creates do not count).
class FileRunner {
 public:
  FileRunner(db::PgConnection& conn, const Clock& clock, LockMonitor* monitor)
      : conn_(conn), clock_(clock), monitor_(monitor) {}

  FileRun Run(const db::MigrationFile& file, std::vector<StatementRun>* statements) {
    FileRun run;
    run.ran = true;
    Clock::TimePoint start = clock_.Now();
    bool tx = !file.no_transaction;
    auto fail = [&](int index, const std::string& error) {
      if (tx) (void)conn_.Exec("ROLLBACK");
      run.ok = false;
      run.failed_statement = index;
      run.error = error;
      run.duration_ms = Ms(clock_.Now() - start);
      return run;
    };
    std::map<std::string, TableFile> existing;
    if (statements != nullptr) {
      auto files = ReadTableFiles(conn_);
      if (!files.ok()) return fail(0, files.status().message());
      existing = std::move(*files);
    }
    if (tx) {
      auto begin = conn_.Exec("BEGIN");
      if (!begin.ok()) return fail(0, begin.status().message());
    }
    // Locks a transaction holds already: a later statement is charged only for what it adds.
    std::map<std::string, int> held;
    // Per recorded lock: when it was first seen (its hold ends at COMMIT in a transaction).
    std::vector<Clock::TimePoint> first_seen;
    int index = 0;
    for (const db::SqlStatement& st : file.statements) {
      ++index;
      if (statements == nullptr) {
        auto r = conn_.Exec(st.text);
        if (!r.ok()) return fail(index, r.status().message());
        continue;
      }
      StatementRun sr;
      sr.index = index;
      sr.line = st.line;
      sr.text = st.text;
      auto before = ReadTableFiles(conn_);
      if (!before.ok()) return fail(index, before.status().message());
      if (monitor_ != nullptr) monitor_->BeginWindow();
      Clock::TimePoint t0 = clock_.Now();
      auto r = conn_.Exec(st.text);
      Clock::TimePoint t1 = clock_.Now();
      std::map<std::string, SeenLock> seen;
      if (monitor_ != nullptr) seen = monitor_->EndWindow();
      sr.duration_ms = Ms(t1 - t0);
      if (!r.ok()) {
        sr.error = r.status().message();
        statements->push_back(std::move(sr));
        return fail(index, r.status().message());
      }
      std::map<std::string, SeenLock> own;
      if (tx) {
        auto o = ReadOwnLocks(conn_);
        if (!o.ok()) return fail(index, o.status().message());
        own = std::move(*o);
      }
      auto after = ReadTableFiles(conn_);
      if (!after.ok()) return fail(index, after.status().message());

      std::set<std::string> oids;
      for (const auto& [oid, s] : seen) oids.insert(oid);
      for (const auto& [oid, s] : own) oids.insert(oid);
      for (const std::string& oid : oids) {
        if (!existing.count(oid)) continue;
        auto si = seen.find(oid);
        auto oi = own.find(oid);
        const SeenLock& strongest =
            (oi != own.end() && (si == seen.end() || oi->second.rank > si->second.rank))
                ? oi->second
                : si->second;
        if (strongest.rank <= held[oid]) continue;
        if (tx) held[oid] = strongest.rank;  // in autocommit it ended with the statement
        LockHeld lock;
        lock.relation = strongest.relation;
        lock.mode = strongest.mode;
        lock.observed = si != seen.end() && si->second.rank == strongest.rank;
        lock.blocks_writes = strongest.rank >= kShareRank;
        lock.blocks_reads = strongest.rank >= kAccessExclusiveRank;
        lock.until_commit = tx;
        Clock::TimePoint first = lock.observed ? std::max(si->second.first_seen, t0) : t0;
        lock.held_ms = Ms(t1 - first);
        sr.locks.push_back(lock);
        first_seen.push_back(first);
      }
      for (const auto& [oid, f] : *after) {
        auto b = before->find(oid);
        if (existing.count(oid) && b != before->end() && b->second.filenode != f.filenode) {
          sr.rewritten.push_back(f.name);
        }
      }
      statements->push_back(std::move(sr));
    }
    if (tx) {
      auto commit = conn_.Exec("COMMIT");
      if (!commit.ok()) return fail(index, "COMMIT: " + commit.status().message());
      if (statements != nullptr) {
        // Every lock of the transaction was held until now.
        Clock::TimePoint end = clock_.Now();
        size_t k = 0;
        for (StatementRun& sr : *statements) {
          for (LockHeld& l : sr.locks) l.held_ms = Ms(end - first_seen[k++]);
        }
      }
    }
    run.ok = true;
    run.duration_ms = Ms(clock_.Now() - start);
    return run;
  }

 private:
  db::PgConnection& conn_;
  const Clock& clock_;
  LockMonitor* monitor_;
};

std::string LintAdvice(const db::LintReport& lint, int statement) {
  std::string out;
  for (const db::LintFinding& f : lint.findings) {
    if (f.statement != statement || f.alternative.empty()) continue;
    if (!out.empty()) out += " ";
    out += f.alternative;
  }
  return out;
}

void AddStatementFindings(const MigrationRun& m, const db::LintReport& lint, int64_t budget_ms,
                          std::vector<Finding>* findings) {
  for (const StatementRun& st : m.statements) {
    std::string upper = db::UpperAscii(st.text.substr(0, 64));
    std::string lint_advice = LintAdvice(lint, st.index);
    for (const LockHeld& l : st.locks) {
      if (!l.blocks_writes || l.held_ms <= budget_ms) continue;
      Finding f;
      f.kind = "lock-budget";
      f.version = m.version;
      f.statement = st.index;
      f.message = l.mode + " on " + l.relation + " held " + FormatMs(l.held_ms) +
                  (l.until_commit ? " (until the migration's COMMIT)" : "") + ": " +
                  (l.blocks_reads ? "every read and write" : "every write") + " of " + l.relation +
                  " waits that long; the budget is " + FormatMs(budget_ms);
      if (l.until_commit && st.duration_ms <= budget_ms) {
        f.advice = "the statement itself takes " + FormatMs(st.duration_ms) +
                   ", but its lock is kept until the transaction ends: move the slow statements "
                   "that follow it into a migration of their own";
      } else if (!lint_advice.empty()) {
        f.advice = lint_advice;
      } else if (upper.starts_with("CREATE INDEX") || upper.starts_with("CREATE UNIQUE INDEX")) {
        f.advice =
            "use CREATE INDEX CONCURRENTLY (in a migration with `-- turnout:no-transaction`)";
      } else if (l.blocks_reads) {
        f.advice =
            "split the change so that no single step holds ACCESS EXCLUSIVE for long: add "
            "constraints NOT VALID and VALIDATE them later, backfill in batches, change types "
            "through a new column";
      } else {
        f.advice =
            "do the work in smaller batches, or with a CONCURRENTLY variant where there "
            "is one";
      }
      findings->push_back(std::move(f));
    }
    if (!st.rewritten.empty()) {
      Finding f;
      f.kind = "rewrite";
      f.version = m.version;
      f.statement = st.index;
      std::string tables;
      for (const std::string& t : st.rewritten) tables += (tables.empty() ? "" : ", ") + t;
      f.message = "rewrote " + tables + " (new relfilenode) in " + FormatMs(st.duration_ms) +
                  ", under ACCESS EXCLUSIVE the whole time; a bigger table takes longer";
      f.advice = !lint_advice.empty()
                     ? lint_advice
                     : "avoid the rewrite: add a column without a volatile default and backfill "
                       "it in batches; change a type through a new column kept in sync";
      findings->push_back(std::move(f));
    }
  }
}

std::vector<std::string> Diff(const backup::SchemaFingerprint& expected,
                              const backup::SchemaFingerprint& actual) {
  return backup::DiffSchemaLines(expected.lines, actual.lines);
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += "\n  " + l;
  return out;
}

}  // namespace

int LockModeRank(std::string_view mode) {
  for (size_t i = 0; i < kLockModes.size(); ++i) {
    if (kLockModes[i] == mode) return static_cast<int>(i) + 1;
  }
  return 0;
}

namespace {

// Creates `scratch` with the backup's encoding and restores the backup into it: the scratch
// database's conninfo and the restore's report (counts and fingerprint compared).
Result<std::pair<std::string, backup::RestoreReport>> RestoreIntoScratch(
    const backup::BackupEnv& env, const backup::Manifest& manifest, const std::string& server,
    int jobs, Scratch& scratch) {
  TURNOUT_RETURN_IF_ERROR(scratch.Create(manifest.encoding));
  TURNOUT_ASSIGN_OR_RETURN(std::string scratch_info, backup::WithDatabase(server, scratch.name()));
  backup::RestoreOptions ro;
  ro.target = scratch_info;
  ro.confirm_data_loss = true;  // a database created a moment ago: nothing to lose
  ro.jobs = jobs;
  ro.no_owner = true;
  auto restored = backup::RestoreBackup(env, manifest.id, ro);
  if (!restored.ok()) {
    return restored.status().WithContext("the rehearsal could not restore backup " + manifest.id);
  }
  return std::pair<std::string, backup::RestoreReport>(std::move(scratch_info),
                                                       std::move(*restored));
}

}  // namespace

Status WithRestoredCopy(const backup::BackupEnv& env, const std::string& backup_id,
                        const std::string& server, int jobs,
                        const std::function<Status(const std::string& conninfo)>& work) {
  TURNOUT_ASSIGN_OR_RETURN(backup::BackupInfo info, backup::FindBackup(env, backup_id));
  if (!info.manifest) {
    return FailedPrecondition("backup " + info.id + " cannot be rehearsed on: " + info.problem);
  }
  if (!info.verify || !info.verify->ok) {
    return FailedPrecondition("backup " + info.id +
                              " has no passed verification: verify it before rehearsing on it");
  }
  auto admin = db::PgConnection::Connect(server, std::string(kApplicationName));
  if (!admin.ok()) return admin.status();
  Scratch scratch(std::move(*admin), ScratchName(), false);
  auto restored = RestoreIntoScratch(env, *info.manifest, server, std::max(1, jobs), scratch);
  if (!restored.ok()) return restored.status();
  if (!restored->second.mismatches.empty() || !restored->second.fingerprint_matches) {
    return FailedPrecondition("backup " + info.id +
                              " does not restore to what was dumped: verify it at level 3 and "
                              "take a new one");
  }
  Status worked = work(restored->first);
  TURNOUT_RETURN_IF_ERROR(worked);
  return scratch.Drop();
}

Result<RehearsalReport> Rehearse(const backup::BackupEnv& env, const RehearsalOptions& options) {
  if (options.jobs < 1) return InvalidArgument("jobs must be at least 1");
  if (options.verify_level < 0 || options.verify_level > 3) {
    return InvalidArgument("the verify level must be 0 (use the recorded one) or 1..3");
  }
  const Clock& clock = options.clock != nullptr ? *options.clock : SystemClock::Get();
  auto progress = [&](const std::string& phase, const std::string& message) {
    if (options.on_progress) options.on_progress(phase, message);
  };
  Clock::TimePoint start = clock.Now();
  RehearsalReport report;
  report.migrations_dir = options.migrations_dir;
  report.lock_budget_ms = options.lock_budget.count();

  // The migrations first: a typo in the directory should not cost a restore.
  TURNOUT_ASSIGN_OR_RETURN(std::vector<db::Migration> all,
                           db::LoadMigrations(options.migrations_dir));

  // 1. The backup, verified.
  Clock::TimePoint t = clock.Now();
  TURNOUT_ASSIGN_OR_RETURN(backup::BackupInfo info, backup::FindBackup(env, options.backup_id));
  if (!info.manifest) {
    return FailedPrecondition("backup " + info.id + " cannot be rehearsed on: " + info.problem);
  }
  const backup::Manifest& manifest = *info.manifest;
  report.backup_id = manifest.id;
  report.backup_created_at = manifest.created_at;
  report.from_version = manifest.migration_version;
  if (options.verify_level > 0) {
    progress("verify", "verifying backup " + manifest.id + " at level " +
                           std::to_string(options.verify_level));
    backup::VerifyOptions vo;
    vo.level = options.verify_level;
    vo.conninfo = options.server;
    vo.jobs = options.jobs;
    TURNOUT_ASSIGN_OR_RETURN(backup::VerifyReport v, backup::VerifyBackup(env, manifest.id, vo));
    if (!v.ok) {
      return FailedPrecondition("backup " + manifest.id + " failed verification at level " +
                                std::to_string(v.level_reached + 1) + ":" + JoinLines(v.problems) +
                                "\n" + v.next_step);
    }
  } else if (!info.verify) {
    return FailedPrecondition("backup " + manifest.id +
                              " was never verified: run `turnout backup verify " + manifest.id +
                              " --level 2` first (or rehearse with --verify 2)");
  } else if (!info.verify->ok || info.verify->level_reached < 1) {
    return FailedPrecondition(
        "backup " + manifest.id + " failed its last verification (level " +
        std::to_string(info.verify->level_reached) + " of " +
        std::to_string(info.verify->level_requested) +
        " reached):" + JoinLines(info.verify->problems) +
        "\ndo not rehearse on (or restore) it: take a new backup and verify it");
  }
  report.phase_ms["verify"] = Ms(clock.Now() - t);

  // 2. The scratch database, restored.
  t = clock.Now();
  auto admin = db::PgConnection::Connect(options.server, std::string(kApplicationName));
  if (!admin.ok()) {
    return Unavailable(admin.status().message() +
                       "\n(check --url, $TURNOUT_DATABASE_URL/$DATABASE_URL or the PG* variables)");
  }
  Scratch scratch(std::move(*admin), ScratchName(), options.keep_scratch);
  report.scratch_database = scratch.name();
  report.scratch_kept = options.keep_scratch;
  progress("restore", "restoring backup " + manifest.id + " into " + scratch.name());
  auto restored = RestoreIntoScratch(env, manifest, options.server, options.jobs, scratch);
  if (!restored.ok()) return restored.status();
  const std::string& scratch_info = restored->first;
  for (const std::string& m : restored->second.mismatches) {
    report.findings.push_back(
        {"restore-mismatch", 0, 0, "restored " + m,
         "the backup does not restore to what was dumped: verify it at level 3 and take a new "
         "one"});
  }
  if (!restored->second.fingerprint_matches) {
    report.findings.push_back(
        {"restore-mismatch", 0, 0,
         "the restored schema differs from the manifest's:" +
             JoinLines(restored->second.schema_diff),
         "the backup does not restore to what was dumped: verify it at level 3 and take a new "
         "one"});
  }
  report.phase_ms["restore"] = Ms(clock.Now() - t);

  // 3. The pending migrations, measured.
  auto conn = db::PgConnection::Connect(scratch_info, std::string(kApplicationName));
  if (!conn.ok()) return conn.status().WithContext("cannot connect to the scratch database");
  if (options.statement_timeout.count() > 0) {
    TURNOUT_RETURN_IF_ERROR(
        conn->Exec("SET statement_timeout = " + std::to_string(options.statement_timeout.count()))
            .status());
  }
  TURNOUT_ASSIGN_OR_RETURN(backup::SchemaFingerprint fp_start,
                           backup::ReadSchemaFingerprint(*conn));
  report.fingerprint_start = fp_start.sha256;
  report.fingerprint_after_up = fp_start.sha256;
  report.to_version = report.from_version;
  std::vector<const db::Migration*> pending;
  for (const db::Migration& m : all) {
    if (!manifest.migration_version || m.version > *manifest.migration_version) {
      pending.push_back(&m);
    }
  }
  TURNOUT_ASSIGN_OR_RETURN(
      std::unique_ptr<LockMonitor> monitor,
      LockMonitor::Start(scratch_info, conn->backend_pid(), clock, options.lock_poll));
  FileRunner measured(*conn, clock, monitor.get());
  FileRunner plain(*conn, clock, nullptr);
  // fp[i] = the schema before pending[i]'s up; fp[i + 1] = after it.
  std::vector<backup::SchemaFingerprint> fp = {fp_start};
  t = clock.Now();
  for (const db::Migration* m : pending) {
    MigrationRun run;
    run.version = m->version;
    run.name = db::MigrationLabel(m->version, m->name);
    run.up_sha256 = m->up.sha256;
    run.no_transaction = m->up.no_transaction;
    run.has_down = m->down.has_value();
    progress("up", run.name + ": " + std::to_string(m->up.statements.size()) + " statements");
    run.up = measured.Run(m->up, &run.statements);
    AddStatementFindings(run, db::LintMigration(*m), report.lock_budget_ms, &report.findings);
    if (!monitor->error().empty()) {
      run.up.error = "lock monitor: " + monitor->error();  // locks may be incomplete
    }
    bool ok = run.up.ok;
    if (!ok) {
      report.findings.push_back(
          {"up-failed", m->version, run.up.failed_statement,
           run.name + " failed on the restored data at statement " +
               std::to_string(run.up.failed_statement) + ": " + run.up.error,
           "fix the migration before it runs in production (it would fail the same way there" +
               std::string(m->up.no_transaction ? ", leaving the statements before it applied)"
                                                : "; the transaction would roll back)")});
    }
    report.migrations.push_back(std::move(run));
    if (!ok) break;
    TURNOUT_ASSIGN_OR_RETURN(backup::SchemaFingerprint after, backup::ReadSchemaFingerprint(*conn));
    fp.push_back(std::move(after));
    report.to_version = m->version;
    report.fingerprint_after_up = fp.back().sha256;
  }
  report.phase_ms["up"] = Ms(clock.Now() - t);
  monitor.reset();

  // 4. Down to the backup's version, then up again.
  bool all_up = report.migrations.size() == pending.size() &&
                std::all_of(report.migrations.begin(), report.migrations.end(),
                            [](const MigrationRun& r) { return r.up.ok; });
  if (all_up) {
    t = clock.Now();
    size_t rolled_back_from = report.migrations.size();
    for (size_t i = report.migrations.size(); i-- > 0;) {
      MigrationRun& run = report.migrations[i];
      const db::Migration& m = *pending[i];
      if (!m.down) {
        report.findings.push_back(
            {"down-missing", m.version, 0,
             run.name + " has no down file: it cannot be rolled back" +
                 (i > 0 ? " (the versions below it were not rolled back either)" : ""),
             "write " + run.name +
                 ".down.sql that undoes the up file, or accept that only a "
                 "restore of the backup can undo it"});
        break;
      }
      progress("down", run.name);
      run.down = plain.Run(*m.down, nullptr);
      if (!run.down.ok) {
        report.findings.push_back(
            {"down-failed", m.version, run.down.failed_statement,
             run.name + ".down.sql failed at statement " +
                 std::to_string(run.down.failed_statement) + ": " + run.down.error,
             "fix the down file: it must run on the schema the up file leaves"});
        break;
      }
      rolled_back_from = i;
      TURNOUT_ASSIGN_OR_RETURN(backup::SchemaFingerprint now, backup::ReadSchemaFingerprint(*conn));
      if (now.sha256 != fp[i].sha256) {
        run.down.schema_diff = Diff(fp[i], now);
        report.findings.push_back(
            {"down-mismatch", m.version, 0,
             "after " + run.name + ".down.sql the schema differs from the one before its up (" +
                 (i == 0 ? "the backup's" : report.migrations[i - 1].name) +
                 "):" + JoinLines(run.down.schema_diff),
             "make the down file undo exactly what the up file does (- lines are missing, + "
             "lines are left over)"});
        break;
      }
    }
    report.phase_ms["down"] = Ms(clock.Now() - t);

    t = clock.Now();
    for (size_t i = rolled_back_from; i < report.migrations.size(); ++i) {
      MigrationRun& run = report.migrations[i];
      progress("reup", run.name);
      run.reup = plain.Run(pending[i]->up, nullptr);
      if (!run.reup.ok) {
        report.findings.push_back(
            {"reup-failed", run.version, run.reup.failed_statement,
             run.name + " failed when applied again after its down: " + run.reup.error,
             "the down file leaves something behind that the up file trips over: make it undo "
             "the up file completely"});
        break;
      }
      TURNOUT_ASSIGN_OR_RETURN(backup::SchemaFingerprint now, backup::ReadSchemaFingerprint(*conn));
      if (now.sha256 != fp[i + 1].sha256) {
        run.reup.schema_diff = Diff(fp[i + 1], now);
        report.findings.push_back(
            {"reup-mismatch", run.version, 0,
             "after down and up again the schema of " + run.name +
                 " differs from the first up:" + JoinLines(run.reup.schema_diff),
             "make the down file undo exactly what the up file does"});
        break;
      }
    }
    report.phase_ms["reup"] = Ms(clock.Now() - t);
  }

  // 5. Clean up and record.
  t = clock.Now();
  conn = db::PgConnection();
  if (!options.keep_scratch) progress("drop", "dropping " + scratch.name());
  TURNOUT_RETURN_IF_ERROR(scratch.Drop());
  report.phase_ms["drop"] = Ms(clock.Now() - t);
  report.total_ms = Ms(clock.Now() - start);
  report.rehearsed_at = backup::FormatRfc3339(
      duration_cast<milliseconds>(clock.WallNow().time_since_epoch()).count());
  if (options.record) {
    Status st = WriteFileAtomically((fs::path(info.path) / kRehearsalFile).string(),
                                    ReportToJson(report), 0600);
    if (!st.ok()) return st.WithContext("cannot record the rehearsal");
  }
  return report;
}

}  // namespace turnout::rehearsal
