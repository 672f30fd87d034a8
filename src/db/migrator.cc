#include "db/migrator.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <thread>

#include "db/pg.h"

namespace turnout::db {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr std::string_view kCreateHistory = R"sql(
CREATE TABLE turnout_schema_history (
  id bigserial PRIMARY KEY,
  version bigint NOT NULL,
  name text NOT NULL,
  direction text NOT NULL CHECK (direction IN ('up', 'down')),
  status text NOT NULL CHECK (status IN ('running', 'applied', 'failed', 'rolled_back')),
  file_sha256 text NOT NULL,
  normalized_sha256 text NOT NULL,
  chain_sha256 text NOT NULL,
  statements_done integer NOT NULL,
  statements_total integer NOT NULL,
  error text,
  failed_statement text,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  duration_ms bigint,
  run_id text NOT NULL,
  deployment_id text,
  backup_id text,
  app_version_from text,
  app_version_to text,
  db_user text NOT NULL DEFAULT current_user,
  client_addr text DEFAULT host(inet_client_addr())
);
CREATE INDEX turnout_schema_history_version_idx ON turnout_schema_history (version, id);
CREATE FUNCTION turnout_schema_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'turnout_schema_history is append-only: % is not allowed', TG_OP;
END
$fn$;
CREATE TRIGGER turnout_schema_history_append_only
  BEFORE UPDATE OR DELETE OR TRUNCATE ON turnout_schema_history
  FOR EACH STATEMENT EXECUTE FUNCTION turnout_schema_history_append_only();
)sql";

constexpr std::string_view kSelectHistory = R"sql(
SELECT id, version, name, direction, status, file_sha256, normalized_sha256, chain_sha256,
       statements_done, statements_total, error, failed_statement, started_at::text,
       finished_at::text, duration_ms, run_id, deployment_id, backup_id, app_version_from,
       app_version_to
FROM turnout_schema_history ORDER BY id)sql";

constexpr std::string_view kInsertHistory = R"sql(
INSERT INTO turnout_schema_history (version, name, direction, status, file_sha256,
  normalized_sha256, chain_sha256, statements_done, statements_total, error, failed_statement,
  started_at, finished_at, duration_ms, run_id, deployment_id, backup_id, app_version_from,
  app_version_to)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, to_timestamp($12::float8),
  to_timestamp($13::float8), $14, $15, $16, $17, $18, $19))sql";

// Who holds an advisory lock key in this database.
constexpr std::string_view kLockHolder = R"sql(
SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'unix socket'),
       a.backend_start::text, coalesce(a.state, ''), coalesce(a.state_change::text, ''),
       left(coalesce(a.query, ''), 200)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = $1::bigint AND l.objid::bigint = $2::bigint)sql";

std::optional<std::string> OptionalText(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

std::string TimeoutValue(Clock::Duration d) {
  return std::to_string(std::max<int64_t>(0, duration_cast<milliseconds>(d).count())) + "ms";
}

std::string EpochSeconds(Clock::WallTime t) {
  double s = std::chrono::duration<double>(t.time_since_epoch()).count();
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", s);
  return buf;
}

// Statement words after lexing, upper-cased, comments skipped.
std::vector<std::string> LeadingWords(std::string_view sql, size_t n) {
  std::vector<std::string> out;
  auto tokens = LexSql(sql);
  if (!tokens.ok()) return out;
  for (const SqlToken& t : *tokens) {
    if (t.kind == SqlTokenKind::kComment) continue;
    if (out.size() >= n) break;
    out.push_back(t.kind == SqlTokenKind::kWord ? UpperAscii(t.text) : std::string(t.text));
  }
  return out;
}

bool SetsSetting(std::string_view sql, std::string_view setting) {
  auto w = LeadingWords(sql, 3);
  if (w.empty() || w[0] != "SET") return false;
  size_t i = 1;
  if (i < w.size() && (w[i] == "SESSION" || w[i] == "LOCAL")) ++i;
  return i < w.size() && w[i] == setting;
}

bool IsTransactionControl(std::string_view sql) {
  auto w = LeadingWords(sql, 2);
  if (w.empty()) return false;
  if (w[0] == "BEGIN" || w[0] == "COMMIT" || w[0] == "ROLLBACK" || w[0] == "END" ||
      w[0] == "ABORT" || (w[0] == "START" && w.size() > 1 && w[1] == "TRANSACTION")) {
    return true;
  }
  return false;
}

// For CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON ..., the name as written.
std::optional<std::string> ConcurrentIndexName(std::string_view sql) {
  auto lexed = LexSql(sql);
  if (!lexed.ok()) return std::nullopt;
  std::vector<SqlToken> t;
  for (const SqlToken& tok : *lexed) {
    if (tok.kind != SqlTokenKind::kComment) t.push_back(tok);
  }
  auto word = [&](size_t i) {
    return i < t.size() && t[i].kind == SqlTokenKind::kWord ? UpperAscii(t[i].text) : std::string();
  };
  size_t i = 0;
  if (word(i++) != "CREATE") return std::nullopt;
  if (word(i) == "UNIQUE") ++i;
  if (word(i++) != "INDEX") return std::nullopt;
  if (word(i++) != "CONCURRENTLY") return std::nullopt;
  if (word(i) == "IF") i += 3;
  std::string name;
  while (i < t.size() && word(i) != "ON") name += std::string(t[i++].text);
  if (name.empty()) return std::nullopt;
  return name;
}

std::string RunId(const Clock& clock) {
  std::string seed = EpochSeconds(clock.WallNow()) + "/" + std::to_string(getpid()) + "/" +
                     std::to_string(reinterpret_cast<uintptr_t>(&seed));
  return Sha256Hex(seed).substr(0, 16);
}

struct RowInput {
  int64_t version = 0;
  std::string name;
  Direction direction = Direction::kUp;
  std::string status;
  const MigrationFile* file = nullptr;
  std::string chain;
  int done = 0;
  int total = 0;
  std::optional<std::string> error;
  std::optional<std::string> failed_statement;
  Clock::WallTime started;
  std::optional<Clock::WallTime> finished;
  std::optional<int64_t> duration_ms;
};

Result<bool> HistoryExists(PgConnection& conn) {
  TURNOUT_ASSIGN_OR_RETURN(PgRows rows,
                           conn.Exec("SELECT to_regclass('turnout_schema_history') IS NOT NULL"));
  return rows.text(0, 0) == "t";
}

Result<std::vector<HistoryRow>> ReadHistory(PgConnection& conn, bool* exists) {
  TURNOUT_ASSIGN_OR_RETURN(bool present, HistoryExists(conn));
  if (exists != nullptr) *exists = present;
  std::vector<HistoryRow> out;
  if (!present) return out;
  TURNOUT_ASSIGN_OR_RETURN(PgRows rows, conn.Exec(kSelectHistory));
  for (size_t r = 0; r < rows.size(); ++r) {
    HistoryRow h;
    h.id = std::stoll(rows.text(r, 0));
    h.version = std::stoll(rows.text(r, 1));
    h.name = rows.text(r, 2);
    h.direction = rows.text(r, 3) == "down" ? Direction::kDown : Direction::kUp;
    h.status = rows.text(r, 4);
    h.file_sha256 = rows.text(r, 5);
    h.normalized_sha256 = rows.text(r, 6);
    h.chain_sha256 = rows.text(r, 7);
    h.statements_done = std::stoi(rows.text(r, 8));
    h.statements_total = std::stoi(rows.text(r, 9));
    h.error = rows.at(r, 10);
    h.failed_statement = rows.at(r, 11);
    h.started_at = rows.text(r, 12);
    h.finished_at = rows.at(r, 13);
    if (rows.at(r, 14)) h.duration_ms = std::stoll(*rows.at(r, 14));
    h.run_id = rows.text(r, 15);
    h.deployment_id = rows.at(r, 16);
    h.backup_id = rows.at(r, 17);
    h.app_version_from = rows.at(r, 18);
    h.app_version_to = rows.at(r, 19);
    out.push_back(std::move(h));
  }
  return out;
}

// "pid 123 (application_name ..., client ..., connected since ..., ...)", or nullopt when no
// session holds `key`.
std::optional<std::string> DescribeHolder(PgConnection& conn, int64_t key) {
  auto rows = conn.ExecParams(std::string(kLockHolder),
                              {std::to_string(static_cast<uint64_t>(key) >> 32),
                               std::to_string(static_cast<uint64_t>(key) & 0xffffffffu)});
  if (!rows.ok() || rows->empty()) return std::nullopt;
  return "pid " + rows->text(0, 0) + " (application_name '" + rows->text(0, 1) + "', client " +
         rows->text(0, 2) + ", connected since " + rows->text(0, 3) + ", " +
         (rows->text(0, 4).empty() ? std::string("state unknown")
                                   : rows->text(0, 4) + " since " + rows->text(0, 5)) +
         (rows->text(0, 6).empty() ? std::string() : ", last query: " + rows->text(0, 6)) + ")";
}

}  // namespace

std::string_view DirectionName(Direction d) { return d == Direction::kUp ? "up" : "down"; }

std::string_view VersionStateName(VersionState s) {
  switch (s) {
    case VersionState::kPending:
      return "pending";
    case VersionState::kApplied:
      return "applied";
    case VersionState::kPartial:
      return "partial";
  }
  return "unknown";
}

std::string_view ChecksumStateName(ChecksumState s) {
  switch (s) {
    case ChecksumState::kNotApplied:
      return "not-applied";
    case ChecksumState::kMatch:
      return "ok";
    case ChecksumState::kCosmetic:
      return "whitespace-or-comments-changed";
    case ChecksumState::kChanged:
      return "changed";
    case ChecksumState::kMissingFile:
      return "missing-file";
  }
  return "unknown";
}

// Files, history and the state derived from both.
struct Migrator::Loaded {
  std::vector<Migration> files;
  std::vector<HistoryRow> history;
  StatusReport status;
  std::map<int64_t, const Migration*> by_version;
  std::map<int64_t, const VersionStatus*> state_by_version;
};

namespace {

// Derives each version's state from its latest history row.
StatusReport Derive(const std::vector<Migration>& files, const std::vector<HistoryRow>& history,
                    bool history_exists) {
  std::map<int64_t, const HistoryRow*> last, last_applied;
  for (const HistoryRow& h : history) {
    last[h.version] = &h;
    if (h.direction == Direction::kUp && h.status == "applied") last_applied[h.version] = &h;
  }
  std::map<int64_t, VersionStatus> out;
  for (const Migration& m : files) {
    VersionStatus& v = out[m.version];
    v.version = m.version;
    v.name = m.name;
    v.has_file = true;
    v.has_down = m.down.has_value();
    v.statements_total = static_cast<int>(m.up.statements.size());
    v.classification = LintMigration(m).classification;
    v.no_transaction = m.up.no_transaction;
  }
  for (const auto& [version, row] : last) {
    VersionState state = VersionState::kPending;
    if (row->direction == Direction::kUp) {
      if (row->status == "applied") {
        state = VersionState::kApplied;
      } else if (row->status == "running" ||
                 (row->status == "failed" && row->statements_done > 0)) {
        state = VersionState::kPartial;
      }
    } else {
      if (row->status == "running" || (row->status == "failed" && row->statements_done > 0)) {
        state = VersionState::kPartial;
      } else if (row->status == "failed") {
        state = VersionState::kApplied;
      }
    }
    auto it = out.find(version);
    if (it == out.end()) {
      if (state == VersionState::kPending) continue;  // rolled back and its files removed
      VersionStatus& v = out[version];
      v.version = version;
      v.name = row->name;
      it = out.find(version);
    }
    VersionStatus& v = it->second;
    v.state = state;
    v.last = *row;
    if (state == VersionState::kPartial) {
      v.partial_direction = row->direction;
      v.statements_done = row->statements_done;
      v.statements_total = row->statements_total;
    }
    if (state == VersionState::kPending) continue;
    // Which recorded hash the up file on disk must still match.
    const HistoryRow* ref = nullptr;
    if (state == VersionState::kPartial && row->direction == Direction::kUp) {
      ref = row;
    } else if (auto a = last_applied.find(version); a != last_applied.end()) {
      ref = a->second;
    }
    if (ref != nullptr && ref->status == "applied") {
      v.applied_chain_sha256 = ref->chain_sha256;
      v.applied_file_sha256 = ref->file_sha256;
    }
    if (!v.has_file) {
      v.checksum = ChecksumState::kMissingFile;
    } else if (ref != nullptr) {
      const Migration* m = nullptr;
      for (const Migration& f : files) {
        if (f.version == version) m = &f;
      }
      if (m->up.sha256 == ref->file_sha256) {
        v.checksum = ChecksumState::kMatch;
      } else if (m->up.normalized_sha256 == ref->normalized_sha256) {
        v.checksum = ChecksumState::kCosmetic;
      } else {
        v.checksum = ChecksumState::kChanged;
      }
    }
  }
  StatusReport report;
  report.history_exists = history_exists;
  for (auto& [version, v] : out) {
    if (v.state == VersionState::kApplied) report.current = version;
    report.versions.push_back(std::move(v));
  }
  return report;
}

std::string VersionLabel(int64_t version, const std::string& name) {
  return MigrationLabel(version, name);
}

}  // namespace

// Out of the anonymous namespace because Migrator::Loaded is private.
static void Index(std::vector<Migration>& files, std::map<int64_t, const Migration*>& by_version) {
  for (const Migration& m : files) by_version[m.version] = &m;
}

Migrator::Migrator(MigratorOptions options) : options_(std::move(options)) {
  clock_ = options_.clock != nullptr ? options_.clock : &SystemClock::Get();
  if (!options_.sleep) {
    options_.sleep = [](Clock::Duration d) { std::this_thread::sleep_for(d); };
  }
}

void Migrator::Emit(ProgressEvent e) const {
  if (options_.on_progress) options_.on_progress(e);
}

Result<Migrator::Loaded> Migrator::Load() {
  Loaded loaded;
  TURNOUT_ASSIGN_OR_RETURN(loaded.files, LoadMigrations(options_.dir));
  TURNOUT_ASSIGN_OR_RETURN(PgConnection conn,
                           PgConnection::Connect(options_.database, std::string(kApplicationName)));
  bool exists = false;
  TURNOUT_ASSIGN_OR_RETURN(loaded.history, ReadHistory(conn, &exists));
  loaded.status = Derive(loaded.files, loaded.history, exists);
  // A partial migration is either in progress (its runner's work session holds the work lock)
  // or interrupted; the report tells which.
  loaded.status.active_runner = DescribeHolder(conn, kWorkLockKey);
  for (const Migration& m : loaded.files) loaded.by_version[m.version] = &m;
  return loaded;
}

namespace {

Status CheckNoTransactionControl(const Migration& m, const MigrationFile& f) {
  for (size_t i = 0; i < f.statements.size(); ++i) {
    if (IsTransactionControl(f.statements[i].text)) {
      return FailedPrecondition(
          f.path + ":" + std::to_string(f.statements[i].line) +
          ": transaction control (BEGIN/COMMIT/ROLLBACK) in a migration; remove it: turnout runs "
          "each migration in one transaction, or statement by statement with "
          "`-- turnout:no-transaction`");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<PlanStep>> Migrator::ComputeUp(const Loaded& loaded, std::optional<int64_t> to) {
  const StatusReport& st = loaded.status;
  if (to && st.current && *to < *st.current) {
    return InvalidArgument("--to " + std::to_string(*to) + " is below the current version " +
                           std::to_string(*st.current) +
                           "; to go back, use `turnout migrate down --to " + std::to_string(*to) +
                           "`");
  }
  std::vector<PlanStep> steps;
  for (const VersionStatus& v : st.versions) {
    const std::string label = VersionLabel(v.version, v.name);
    if (v.state == VersionState::kPartial && v.partial_direction == Direction::kDown) {
      return FailedPrecondition("migration " + label + " is partly rolled back (" +
                                std::to_string(v.statements_done) + " of " +
                                std::to_string(v.statements_total) +
                                " down statements ran); finish it first with `turnout migrate "
                                "down --to " +
                                std::to_string(v.version - 1) + "`");
    }
    if (v.state != VersionState::kPending && v.checksum == ChecksumState::kMissingFile) {
      return FailedPrecondition("migration " + label +
                                " is applied but its file is missing from the migrations "
                                "directory; restore it (see `turnout migrate verify`)");
    }
    if (v.state == VersionState::kPartial && v.checksum == ChecksumState::kChanged) {
      // Never fully applied, so there is no applied schema to protect; the usual fix of a
      // failed statement is an edit of that statement.
      ProgressEvent e{ProgressEvent::Kind::kWarning};
      e.version = v.version;
      e.name = v.name;
      e.message = "migration " + label + " changed since its partial run; statements 1.." +
                  std::to_string(v.statements_done) + " are not run again";
      Emit(e);
    } else if (v.state != VersionState::kPending && v.checksum == ChecksumState::kChanged) {
      return FailedPrecondition(
          "migration " + label +
          " was applied but its file changed on disk since (SHA-256 differs, and not only in "
          "whitespace or "
          "comments); restore the file as applied (e.g. from version control) and put the new "
          "change in a new migration");
    }
    if (v.state != VersionState::kPending && v.checksum == ChecksumState::kCosmetic) {
      ProgressEvent e{ProgressEvent::Kind::kWarning};
      e.version = v.version;
      e.name = v.name;
      e.message = "migration " + label +
                  " changed on disk in whitespace or comments only since it was applied";
      Emit(e);
    }
    if (v.state == VersionState::kPending && v.has_file && (!to || v.version <= *to)) {
      if (st.current && v.version < *st.current) {
        return FailedPrecondition("migration " + label + " is pending but the newer version " +
                                  std::to_string(*st.current) +
                                  " is applied already; give it a version above " +
                                  std::to_string(*st.current) + " (rename the files)");
      }
    }
    bool wanted = (v.state == VersionState::kPending && v.has_file) ||
                  (v.state == VersionState::kPartial && v.partial_direction == Direction::kUp);
    if (!wanted || (to && v.version > *to)) continue;
    const Migration* m = loaded.by_version.at(v.version);
    TURNOUT_RETURN_IF_ERROR(CheckNoTransactionControl(*m, m->up));
    PlanStep s;
    s.version = v.version;
    s.name = v.name;
    s.direction = Direction::kUp;
    s.classification = v.classification;
    s.no_transaction = m->up.no_transaction;
    s.statements_total = static_cast<int>(m->up.statements.size());
    s.resume_from = v.state == VersionState::kPartial ? v.statements_done : 0;
    steps.push_back(s);
  }
  return steps;
}

Result<std::vector<PlanStep>> Migrator::ComputeDown(const Loaded& loaded, int64_t to) {
  std::vector<PlanStep> steps;
  const auto& versions = loaded.status.versions;
  for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
    const VersionStatus& v = *it;
    if (v.version <= to || v.state == VersionState::kPending) continue;
    const std::string label = VersionLabel(v.version, v.name);
    if (v.state == VersionState::kPartial && v.partial_direction == Direction::kUp) {
      return FailedPrecondition("migration " + label + " is partly applied (" +
                                std::to_string(v.statements_done) + " of " +
                                std::to_string(v.statements_total) +
                                " statements ran); finish it with `turnout migrate up --to " +
                                std::to_string(v.version) + "` before rolling back");
    }
    auto m = loaded.by_version.find(v.version);
    if (m == loaded.by_version.end()) {
      return FailedPrecondition("migration " + label +
                                " is applied but its files are missing; restore them to roll it "
                                "back");
    }
    if (!m->second->down) {
      return FailedPrecondition("migration " + label + " has no down file; write " +
                                VersionLabel(v.version, v.name) +
                                ".down.sql to roll it back, or restore a backup");
    }
    const MigrationFile& down = *m->second->down;
    TURNOUT_RETURN_IF_ERROR(CheckNoTransactionControl(*m->second, down));
    PlanStep s;
    s.version = v.version;
    s.name = v.name;
    s.direction = Direction::kDown;
    s.classification = v.classification;
    s.no_transaction = down.no_transaction;
    s.statements_total = static_cast<int>(down.statements.size());
    s.resume_from = v.state == VersionState::kPartial ? v.statements_done : 0;
    steps.push_back(s);
  }
  return steps;
}

namespace {

// Everything one run needs: the two connections, the loaded state, the chain map.
class Run {
 public:
  Run(const MigratorOptions& options, const Clock& clock, std::function<void(ProgressEvent)> emit)
      : options_(options), clock_(clock), emit_(std::move(emit)), run_id_(RunId(clock)) {}

  PgConnection& work() { return work_; }

  Status Connect() {
    TURNOUT_ASSIGN_OR_RETURN(
        lock_, PgConnection::Connect(options_.database, std::string(kApplicationName)));
    TURNOUT_ASSIGN_OR_RETURN(
        work_, PgConnection::Connect(options_.database, std::string(kApplicationName)));
    return Status::Ok();
  }

  // Polls both advisory locks until options_.wait_lock passes.
  Status AcquireLocks() {
    Clock::TimePoint deadline = clock_.Now() + options_.wait_lock;
    TURNOUT_RETURN_IF_ERROR(Poll(lock_, kAdvisoryLockKey, deadline, "another migration runner"));
    TURNOUT_RETURN_IF_ERROR(Poll(work_, kWorkLockKey, deadline,
                                 "the server session of an earlier runner that stopped (its last "
                                 "statement is still running)"));
    ProgressEvent e{ProgressEvent::Kind::kLockAcquired};
    emit_(e);
    return Status::Ok();
  }

  void ReleaseLocks() {
    // Closing the sessions would release them too; unlocking keeps pooled sessions clean.
    if (lock_.connected()) (void)lock_.Exec("SELECT pg_advisory_unlock_all()");
    if (work_.connected()) (void)work_.Exec("SELECT pg_advisory_unlock_all()");
  }

  Status EnsureHistoryTable() {
    TURNOUT_ASSIGN_OR_RETURN(bool exists, HistoryExists(work_));
    if (exists) return Status::Ok();
    TURNOUT_RETURN_IF_ERROR(work_.Exec("BEGIN").status());
    auto created = work_.Exec(kCreateHistory);
    if (!created.ok()) {
      (void)work_.Exec("ROLLBACK");
      return created.status().WithContext("cannot create turnout_schema_history");
    }
    return work_.Exec("COMMIT").status();
  }

  Status Insert(const RowInput& r) {
    std::vector<std::optional<std::string>> p = {
        std::to_string(r.version),
        r.name,
        std::string(DirectionName(r.direction)),
        r.status,
        r.file->sha256,
        r.file->normalized_sha256,
        r.chain,
        std::to_string(r.done),
        std::to_string(r.total),
        r.error,
        r.failed_statement,
        EpochSeconds(r.started),
        r.finished ? std::optional<std::string>(EpochSeconds(*r.finished)) : std::nullopt,
        r.duration_ms ? std::optional<std::string>(std::to_string(*r.duration_ms)) : std::nullopt,
        run_id_,
        OptionalText(options_.deployment_id),
        OptionalText(options_.backup_id),
        OptionalText(options_.app_version_from),
        OptionalText(options_.app_version_to),
    };
    return work_.ExecParams(std::string(kInsertHistory), p)
        .status()
        .WithContext("cannot append to turnout_schema_history");
  }

  // Runs one step. `chain` is the chain hash to record.
  Status Execute(const PlanStep& step, const MigrationFile& file, const std::string& chain) {
    ProgressEvent start{ProgressEvent::Kind::kMigrationStart};
    start.version = step.version;
    start.name = step.name;
    start.direction = step.direction;
    start.statement_total = step.statements_total;
    start.resume_from = step.resume_from;
    emit_(start);
    return file.no_transaction ? ExecuteStatements(step, file, chain)
                               : ExecuteTransaction(step, file, chain);
  }

 private:
  Status Poll(PgConnection& conn, int64_t key, Clock::TimePoint deadline,
              std::string_view holder_kind) {
    bool reported = false;
    std::string sql = "SELECT pg_try_advisory_lock(" + std::to_string(key) + ")";
    while (true) {
      TURNOUT_ASSIGN_OR_RETURN(PgRows rows, conn.Exec(sql));
      if (rows.text(0, 0) == "t") return Status::Ok();
      Clock::TimePoint now = clock_.Now();
      if (!reported || now >= deadline) {
        std::string holder =
            DescribeHolder(conn, key).value_or("a session that released it a moment ago");
        if (now >= deadline) {
          return DeadlineExceeded(
              "waited " + std::to_string(duration_cast<milliseconds>(options_.wait_lock).count()) +
              "ms for the migration lock, held by " + std::string(holder_kind) + ": " + holder +
              ". Wait for it to finish (or raise --wait-lock); if that process is gone, end its "
              "session with SELECT pg_terminate_backend(<pid>)");
        }
        ProgressEvent e{ProgressEvent::Kind::kWaitingForLock};
        e.message =
            "waiting for the migration lock, held by " + std::string(holder_kind) + ": " + holder;
        emit_(e);
        reported = true;
      }
      options_.sleep(std::min<Clock::Duration>(options_.lock_poll, deadline - now));
    }
  }

  // SET (LOCAL) the timeouts before statement i, unless the file set its own earlier.
  Status SetTimeouts(const MigrationFile& file, size_t i, bool local) {
    if (timeouts_file_ != &file) {
      // Where the file first sets each timeout itself (SIZE_MAX: never), computed once per file.
      timeouts_file_ = &file;
      own_lock_at_ = own_statement_at_ = SIZE_MAX;
      for (size_t k = file.statements.size(); k-- > 0;) {
        if (SetsSetting(file.statements[k].text, "LOCK_TIMEOUT")) own_lock_at_ = k;
        if (SetsSetting(file.statements[k].text, "STATEMENT_TIMEOUT")) own_statement_at_ = k;
      }
    }
    std::string scope = local ? "SET LOCAL " : "SET ";
    std::string sql;
    if (own_lock_at_ >= i) {
      sql += scope + "lock_timeout = '" + TimeoutValue(options_.lock_timeout) + "';";
    }
    if (own_statement_at_ >= i) {
      sql += scope + "statement_timeout = '" + TimeoutValue(options_.statement_timeout) + "';";
    }
    if (sql.empty()) return Status::Ok();
    return work_.Exec(sql).status();
  }

  bool ShouldRetry(int attempt) const { return attempt < options_.lock_retries; }
  Clock::Duration Backoff(int attempt) const { return options_.retry_backoff * (1 << attempt); }

  void EmitRetry(const PlanStep& step, int statement, int attempt, const std::string& error) {
    ProgressEvent e{ProgressEvent::Kind::kRetry};
    e.version = step.version;
    e.name = step.name;
    e.direction = step.direction;
    e.statement = statement;
    e.statement_total = step.statements_total;
    e.message = error + "; retry " + std::to_string(attempt + 1) + " of " +
                std::to_string(options_.lock_retries) + " in " +
                std::to_string(duration_cast<milliseconds>(Backoff(attempt)).count()) + "ms";
    emit_(e);
  }

  void EmitStatement(const PlanStep& step, int statement, Clock::Duration elapsed) {
    ProgressEvent e{ProgressEvent::Kind::kStatementDone};
    e.version = step.version;
    e.name = step.name;
    e.direction = step.direction;
    e.statement = statement;
    e.statement_total = step.statements_total;
    e.elapsed = elapsed;
    emit_(e);
  }

  RowInput Row(const PlanStep& step, const MigrationFile& file, const std::string& chain,
               std::string status, int done, Clock::WallTime started) const {
    RowInput r;
    r.version = step.version;
    r.name = step.name;
    r.direction = step.direction;
    r.status = std::move(status);
    r.file = &file;
    r.chain = chain;
    r.done = done;
    r.total = step.statements_total;
    r.started = started;
    return r;
  }

  // Stamps the end of a step on a row.
  void Finished(RowInput& r, Clock::TimePoint t0) const {
    r.finished = clock_.WallNow();
    r.duration_ms = duration_cast<milliseconds>(clock_.Now() - t0).count();
  }

  Status Finish(const PlanStep& step, const MigrationFile& file, const std::string& chain,
                Clock::WallTime started, Clock::TimePoint t0) {
    RowInput r =
        Row(step, file, chain, step.direction == Direction::kUp ? "applied" : "rolled_back",
            step.statements_total, started);
    Finished(r, t0);
    return Insert(r);
  }

  Status Fail(const PlanStep& step, const MigrationFile& file, const std::string& chain,
              Clock::WallTime started, Clock::TimePoint t0, int done, int failed_index,
              const Status& error) {
    RowInput r = Row(step, file, chain, "failed", done, started);
    r.error = error.message();
    if (failed_index >= 0) r.failed_statement = file.statements[failed_index].text;
    Finished(r, t0);
    Status recorded = work_.connected() ? Insert(r) : FailedPrecondition("not connected");
    std::string where = failed_index >= 0
                            ? file.path + ":" + std::to_string(file.statements[failed_index].line) +
                                  " (statement " + std::to_string(failed_index + 1) + " of " +
                                  std::to_string(step.statements_total) + ")"
                            : file.path;
    std::string next =
        file.no_transaction
            ? "statements 1.." + std::to_string(done) +
                  " stay applied; fix the cause and run the same command again to resume at "
                  "statement " +
                  std::to_string(done + 1)
            : "the migration was rolled back, the database is unchanged; fix the cause and run "
              "the same command again";
    // Two causes with a known remedy.
    if (error.message().find("SQLSTATE 25001") != std::string::npos) {
      next +=
          " (this statement cannot run inside a transaction: put it in its own migration "
          "with `-- turnout:no-transaction`)";
    } else if (error.message().find("SQLSTATE 57014") != std::string::npos) {
      next +=
          " (the statement ran into statement_timeout: raise --statement-timeout, or split "
          "the work)";
    }
    ProgressEvent e{ProgressEvent::Kind::kMigrationFailed};
    e.version = step.version;
    e.name = step.name;
    e.direction = step.direction;
    e.statement = failed_index + 1;
    e.statement_total = step.statements_total;
    e.message = error.message();
    emit_(e);
    std::string message = "migration " + VersionLabel(step.version, step.name) + " " +
                          std::string(DirectionName(step.direction)) + " failed at " + where +
                          ": " + error.message() + "; " + next;
    if (!recorded.ok())
      message += " (the failure could not be recorded: " + recorded.message() + ")";
    return Status(
        error.code() == StatusCode::kUnavailable ? StatusCode::kUnavailable : StatusCode::kAborted,
        message);
  }

  Status ExecuteTransaction(const PlanStep& step, const MigrationFile& file,
                            const std::string& chain) {
    for (int attempt = 0;; ++attempt) {
      Clock::WallTime started = clock_.WallNow();
      Clock::TimePoint t0 = clock_.Now();
      Status error;
      int failed_index = -1;
      error = work_.Exec("BEGIN").status();
      for (size_t i = 0; error.ok() && i < file.statements.size(); ++i) {
        Clock::TimePoint s0 = clock_.Now();
        error = SetTimeouts(file, i, /*local=*/true);
        if (error.ok()) error = work_.Exec(file.statements[i].text).status();
        if (!error.ok()) {
          failed_index = static_cast<int>(i);
          break;
        }
        EmitStatement(step, static_cast<int>(i) + 1, clock_.Now() - s0);
      }
      if (error.ok()) error = Finish(step, file, chain, started, t0);
      if (error.ok()) {
        error = work_.Exec("COMMIT").status();
        if (error.ok()) return Status::Ok();
      }
      std::string sqlstate = work_.last_sqlstate();
      (void)work_.Exec("ROLLBACK");
      if (sqlstate == kSqlStateLockNotAvailable && ShouldRetry(attempt)) {
        EmitRetry(step, failed_index + 1, attempt, error.message());
        options_.sleep(Backoff(attempt));
        continue;
      }
      return Fail(step, file, chain, started, t0, 0, failed_index, error);
    }
  }

  Status DropInvalidIndex(const std::string& name) {
    TURNOUT_ASSIGN_OR_RETURN(
        PgRows rows,
        work_.ExecParams("SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid "
                         "= i.indexrelid WHERE c.oid = to_regclass($1) AND NOT i.indisvalid",
                         {name}));
    if (rows.empty()) return Status::Ok();
    std::string index = rows.text(0, 0);
    TURNOUT_RETURN_IF_ERROR(work_.Exec("DROP INDEX CONCURRENTLY IF EXISTS " + index).status());
    ProgressEvent e{ProgressEvent::Kind::kWarning};
    e.message = "dropped the INVALID index " + index + " left by an interrupted or failed build";
    emit_(e);
    return Status::Ok();
  }

  Status ExecuteStatements(const PlanStep& step, const MigrationFile& file,
                           const std::string& chain) {
    Clock::WallTime started = clock_.WallNow();
    Clock::TimePoint t0 = clock_.Now();
    auto progress = [&](int done) {
      return Insert(Row(step, file, chain, "running", done, started));
    };
    TURNOUT_RETURN_IF_ERROR(progress(step.resume_from));
    for (size_t i = step.resume_from; i < file.statements.size(); ++i) {
      const std::string& sql = file.statements[i].text;
      std::optional<std::string> index = ConcurrentIndexName(sql);
      Status error;
      for (int attempt = 0;; ++attempt) {
        Clock::TimePoint s0 = clock_.Now();
        error = index ? DropInvalidIndex(*index) : Status::Ok();
        if (error.ok()) error = SetTimeouts(file, i, /*local=*/false);
        if (error.ok()) error = work_.Exec(sql).status();
        if (error.ok()) {
          EmitStatement(step, static_cast<int>(i) + 1, clock_.Now() - s0);
          break;
        }
        if (work_.last_sqlstate() == kSqlStateLockNotAvailable && ShouldRetry(attempt)) {
          EmitRetry(step, static_cast<int>(i) + 1, attempt, error.message());
          options_.sleep(Backoff(attempt));
          continue;
        }
        break;
      }
      if (!error.ok()) {
        // A failed concurrent build leaves an INVALID index that would keep slowing writes.
        if (index) (void)DropInvalidIndex(*index);
        return Fail(step, file, chain, started, t0, static_cast<int>(i), static_cast<int>(i),
                    error);
      }
      if (i + 1 < file.statements.size())
        TURNOUT_RETURN_IF_ERROR(progress(static_cast<int>(i) + 1));
    }
    (void)work_.Exec("RESET lock_timeout");
    (void)work_.Exec("RESET statement_timeout");
    return Finish(step, file, chain, started, t0);
  }

  const MigratorOptions& options_;
  const Clock& clock_;
  std::function<void(ProgressEvent)> emit_;
  std::string run_id_;
  PgConnection lock_;
  PgConnection work_;
  const MigrationFile* timeouts_file_ = nullptr;
  size_t own_lock_at_ = SIZE_MAX;
  size_t own_statement_at_ = SIZE_MAX;
};

}  // namespace

Result<StatusReport> Migrator::Status() {
  TURNOUT_ASSIGN_OR_RETURN(Loaded loaded, Load());
  return std::move(loaded.status);
}

Result<std::vector<HistoryRow>> Migrator::History() {
  TURNOUT_ASSIGN_OR_RETURN(PgConnection conn,
                           PgConnection::Connect(options_.database, std::string(kApplicationName)));
  return ReadHistory(conn, nullptr);
}

Result<std::vector<PlanStep>> Migrator::PlanUp(std::optional<int64_t> to) {
  TURNOUT_ASSIGN_OR_RETURN(Loaded loaded, Load());
  return ComputeUp(loaded, to);
}

Result<std::vector<PlanStep>> Migrator::PlanDown(int64_t to) {
  TURNOUT_ASSIGN_OR_RETURN(Loaded loaded, Load());
  return ComputeDown(loaded, to);
}

namespace {

// The chain hash of the highest applied version below `version` ("" when none).
std::string PreviousChain(const std::map<int64_t, std::string>& chains, int64_t version) {
  auto it = chains.lower_bound(version);
  if (it == chains.begin()) return std::string();
  return std::prev(it)->second;
}

}  // namespace

Result<RunResult> Migrator::Up(std::optional<int64_t> to) { return Apply(Direction::kUp, to); }

Result<RunResult> Migrator::Down(int64_t to) { return Apply(Direction::kDown, to); }

Result<RunResult> Migrator::Apply(Direction direction, std::optional<int64_t> to) {
  // Files are read before taking the lock so that a bad file fails fast without waiting.
  Loaded loaded;
  TURNOUT_ASSIGN_OR_RETURN(loaded.files, LoadMigrations(options_.dir));
  Index(loaded.files, loaded.by_version);
  Run run(options_, *clock_, [this](ProgressEvent e) { Emit(std::move(e)); });
  TURNOUT_RETURN_IF_ERROR(run.Connect());
  TURNOUT_RETURN_IF_ERROR(run.AcquireLocks());
  struct Unlock {
    Run& run;
    ~Unlock() { run.ReleaseLocks(); }
  } unlock{run};
  TURNOUT_RETURN_IF_ERROR(run.EnsureHistoryTable());
  TURNOUT_ASSIGN_OR_RETURN(loaded.history, ReadHistory(run.work(), nullptr));
  loaded.status = Derive(loaded.files, loaded.history, true);
  std::vector<PlanStep> steps;
  if (direction == Direction::kUp) {
    TURNOUT_ASSIGN_OR_RETURN(steps, ComputeUp(loaded, to));
  } else {
    TURNOUT_ASSIGN_OR_RETURN(steps, ComputeDown(loaded, to.value_or(0)));
  }
  std::map<int64_t, std::string> chains;
  std::optional<int64_t> current;
  for (const VersionStatus& v : loaded.status.versions) {
    if (v.state == VersionState::kApplied) {
      chains[v.version] = v.applied_chain_sha256;
      current = v.version;
    }
  }
  RunResult result;
  for (const PlanStep& step : steps) {
    const Migration& m = *loaded.by_version.at(step.version);
    std::string previous = PreviousChain(chains, step.version);
    if (step.direction == Direction::kUp) {
      std::string chain = ChainSha256(previous, m.up.sha256);
      TURNOUT_RETURN_IF_ERROR(run.Execute(step, m.up, chain));
      chains[step.version] = chain;
    } else {
      TURNOUT_RETURN_IF_ERROR(run.Execute(step, *m.down, previous));
      chains.erase(step.version);
    }
    ProgressEvent e{ProgressEvent::Kind::kMigrationDone};
    e.version = step.version;
    e.name = step.name;
    e.direction = step.direction;
    e.statement_total = step.statements_total;
    Emit(e);
    result.done.push_back(step);
  }
  if (!chains.empty()) result.current = chains.rbegin()->first;
  return result;
}

Result<VerifyResult> Migrator::Verify() {
  TURNOUT_ASSIGN_OR_RETURN(Loaded loaded, Load());
  VerifyResult out;
  std::string chain;
  for (const VersionStatus& v : loaded.status.versions) {
    out.versions.push_back(v);
    if (v.state == VersionState::kPending) continue;
    const std::string label = VersionLabel(v.version, v.name);
    switch (v.checksum) {
      case ChecksumState::kChanged:
        out.ok = false;
        out.problems.push_back(label +
                               ": the file changed since it was applied; restore it from version "
                               "control and put the change in a new migration");
        break;
      case ChecksumState::kMissingFile:
        out.ok = false;
        out.problems.push_back(label + ": applied, but the file is missing; restore it");
        break;
      case ChecksumState::kCosmetic:
        out.notes.push_back(label +
                            ": changed in whitespace or comments only since it was applied");
        break;
      default:
        break;
    }
    if (v.state == VersionState::kPartial) {
      out.ok = false;
      out.problems.push_back(
          label + ": partly " +
          (v.partial_direction == Direction::kUp ? "applied" : "rolled back") + " (" +
          std::to_string(v.statements_done) + " of " + std::to_string(v.statements_total) +
          " statements); run the same `turnout migrate " +
          std::string(DirectionName(v.partial_direction)) + "` again to finish it");
      continue;
    }
    // The chain is over the recorded hashes: it checks the history, the files are checked above.
    chain = ChainSha256(chain, v.applied_file_sha256);
    if (chain != v.applied_chain_sha256) {
      out.ok = false;
      out.problems.push_back(label +
                             ": the recorded hash chain does not match the applied sequence "
                             "(history rows or versions were changed outside turnout); inspect "
                             "turnout_schema_history");
    }
  }
  return out;
}

}  // namespace turnout::db
