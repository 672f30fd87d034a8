#include "state/sqlite_state_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <utility>

#include "state/audit_chain.h"

namespace turnout::state {
namespace {

using audit::FromNanos;
using audit::ToNanos;
using Json = nlohmann::json;

// Forward migrations: entry i takes user_version i to i+1. Never edit a shipped entry; append.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE services (
  name            TEXT PRIMARY KEY,
  config_hash     TEXT NOT NULL DEFAULT '',
  active_slot     TEXT NOT NULL DEFAULT '',
  active_revision INTEGER NOT NULL DEFAULT 0,
  updated_ns      INTEGER NOT NULL
);
CREATE TABLE deployments (
  id            INTEGER PRIMARY KEY,
  service       TEXT NOT NULL REFERENCES services(name),
  revision      INTEGER NOT NULL,
  version       TEXT NOT NULL,
  config_hash   TEXT NOT NULL,
  target_slot   TEXT NOT NULL,
  previous_slot TEXT NOT NULL,
  strategy      TEXT NOT NULL,
  started_by    TEXT NOT NULL,
  state         TEXT NOT NULL,
  reason        TEXT NOT NULL,
  created_ns    INTEGER NOT NULL,
  updated_ns    INTEGER NOT NULL,
  finished_ns   INTEGER,
  UNIQUE (service, revision)
);
-- The per-service lock: at most one non-terminal deployment, enforced by SQLite itself.
CREATE UNIQUE INDEX deployments_one_active ON deployments(service)
  WHERE state NOT IN ('succeeded', 'rolled_back', 'failed');
CREATE TABLE transitions (
  id            INTEGER PRIMARY KEY,
  deployment_id INTEGER NOT NULL REFERENCES deployments(id),
  from_state    TEXT NOT NULL,
  to_state      TEXT NOT NULL,
  reason        TEXT NOT NULL,
  at_ns         INTEGER NOT NULL,
  audit_seq     INTEGER NOT NULL
);
CREATE INDEX transitions_by_deployment ON transitions(deployment_id, id);
CREATE TABLE steps (
  id            INTEGER PRIMARY KEY,
  deployment_id INTEGER NOT NULL REFERENCES deployments(id),
  step          TEXT NOT NULL,
  started_ns    INTEGER NOT NULL,
  finished_ns   INTEGER,
  outcome       TEXT NOT NULL,
  detail        TEXT NOT NULL
);
CREATE INDEX steps_by_deployment ON steps(deployment_id, id);
CREATE TABLE instances (
  id                 INTEGER PRIMARY KEY,
  deployment_id      INTEGER NOT NULL REFERENCES deployments(id),
  service            TEXT NOT NULL,
  slot               TEXT NOT NULL,
  instance_index     INTEGER NOT NULL,
  pid                INTEGER NOT NULL,
  process_start_time INTEGER NOT NULL,
  port               INTEGER NOT NULL,
  version            TEXT NOT NULL,
  state              TEXT NOT NULL,
  updated_ns         INTEGER NOT NULL,
  UNIQUE (deployment_id, slot, instance_index)
);
CREATE TABLE router_policies (
  router     TEXT PRIMARY KEY,
  policy     TEXT NOT NULL,
  updated_ns INTEGER NOT NULL
);
CREATE TABLE settings (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  updated_ns INTEGER NOT NULL
);
CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY,
  time_ns   INTEGER NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  subject   TEXT NOT NULL,
  detail    TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql",
    // 2: the platform's handle of each instance (opaque JSON), so a restarted controller can
    // re-adopt the processes it launched.
    R"sql(
ALTER TABLE instances ADD COLUMN platform_handle TEXT;
)sql",
};

constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

constexpr std::string_view kDeploymentColumns =
    "id, service, revision, version, config_hash, target_slot, previous_slot, strategy, "
    "started_by, state, reason, created_ns, updated_ns, finished_ns";

std::string Dump(const Json& json) {
  // Replace invalid UTF-8 instead of throwing: names come from users and configs.
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::string> NormalizeDetail(std::string_view detail_json) {
  if (detail_json.empty()) return std::string("{}");
  if (!Json::accept(detail_json)) {
    return InvalidArgument("detail is not a JSON document: " +
                           std::string(detail_json.substr(0, 80)));
  }
  return std::string(detail_json);
}

Result<Deployment> ReadDeployment(const sqlite::Statement& stmt) {
  Deployment d;
  d.id = stmt.Int(0);
  d.service = stmt.Text(1);
  d.revision = stmt.Int(2);
  d.version = stmt.Text(3);
  d.config_hash = stmt.Text(4);
  d.target_slot = stmt.Text(5);
  d.previous_slot = stmt.Text(6);
  d.strategy = stmt.Text(7);
  d.started_by = stmt.Text(8);
  std::optional<DeploymentState> state = ParseDeploymentState(stmt.Text(9));
  if (!state.has_value()) {
    return Internal("deployment " + std::to_string(d.id) + " has an unknown state '" +
                    stmt.Text(9) + "'");
  }
  d.state = *state;
  d.reason = stmt.Text(10);
  d.created_at = FromNanos(stmt.Int(11));
  d.updated_at = FromNanos(stmt.Int(12));
  if (std::optional<int64_t> f = stmt.OptionalInt(13)) d.finished_at = FromNanos(*f);
  return d;
}

Result<std::vector<Deployment>> ReadDeployments(sqlite::Statement& stmt) {
  return sqlite::CollectRows<Deployment>(stmt, ReadDeployment);
}

Result<Service> ReadService(const sqlite::Statement& q) {
  return Service{q.Text(0), q.Text(1), q.Text(2), q.Int(3), FromNanos(q.Int(4))};
}

Result<AuditEntry> ReadAuditEntry(const sqlite::Statement& stmt) {
  AuditEntry e;
  e.seq = stmt.Int(0);
  e.time = FromNanos(stmt.Int(1));
  e.actor = stmt.Text(2);
  e.action = stmt.Text(3);
  e.subject = stmt.Text(4);
  e.detail_json = stmt.Text(5);
  e.prev_hash = stmt.Text(6);
  e.hash = stmt.Text(7);
  return e;
}

Result<Transition> ReadTransition(const sqlite::Statement& q) {
  std::optional<DeploymentState> from = ParseDeploymentState(q.Text(2));
  std::optional<DeploymentState> to = ParseDeploymentState(q.Text(3));
  if (!from.has_value() || !to.has_value()) {
    return Internal("transition " + std::to_string(q.Int(0)) + " has an unknown state");
  }
  return Transition{q.Int(0), q.Int(1), *from, *to, q.Text(4), FromNanos(q.Int(5)), q.Int(6)};
}

Result<StepRecord> ReadStep(const sqlite::Statement& q) {
  StepRecord s;
  s.id = q.Int(0);
  s.deployment_id = q.Int(1);
  s.step = q.Text(2);
  s.started_at = FromNanos(q.Int(3));
  if (std::optional<int64_t> f = q.OptionalInt(4)) s.finished_at = FromNanos(*f);
  std::optional<StepOutcome> outcome = ParseStepOutcome(q.Text(5));
  if (!outcome.has_value()) return Internal("step " + std::to_string(s.id) + ": bad outcome");
  s.outcome = *outcome;
  s.detail_json = q.Text(6);
  return s;
}

Result<InstanceRecord> ReadInstance(const sqlite::Statement& q) {
  InstanceRecord r;
  r.id = q.Int(0);
  r.deployment_id = q.Int(1);
  r.service = q.Text(2);
  r.slot = q.Text(3);
  r.instance_index = static_cast<int>(q.Int(4));
  r.pid = q.Int(5);
  r.process_start_time = q.Int(6);
  r.port = static_cast<int>(q.Int(7));
  r.version = q.Text(8);
  std::optional<InstanceState> state = ParseInstanceState(q.Text(9));
  if (!state.has_value()) return Internal("instance " + std::to_string(r.id) + ": bad state");
  r.state = *state;
  r.updated_at = FromNanos(q.Int(10));
  r.platform_handle = q.Text(11);
  return r;
}

std::string Describe(const Deployment& d) {
  return "deployment #" + std::to_string(d.id) + " (revision " + std::to_string(d.revision) +
         ", version " + d.version + ", state " + std::string(DeploymentStateName(d.state)) +
         ", started by " + d.started_by + ")";
}

Status PrepareFiles(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::exists(parent, ec)) {
    fs::create_directories(parent, ec);
    if (ec) return IoError("create directory " + parent.string() + ": " + ec.message());
    if (::chmod(parent.c_str(), 0700) != 0) return ErrnoError("chmod " + parent.string(), errno);
  }
  // Create the file ourselves so that it is never readable by others, even for an instant;
  // SQLite gives its -wal and -shm files the database file's mode.
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("open " + path, errno);
  int rc = ::fchmod(fd, 0600);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError("chmod " + path, err);
  return Status::Ok();
}

Status Configure(sqlite::Database& db) {
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Statement stmt, db.Prepare("PRAGMA journal_mode = WAL"));
  TURNOUT_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row || stmt.Text(0) != "wal") return IoError("cannot switch to WAL mode");
  return db.Exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
}

Status Migrate(sqlite::Database& db) {
  TURNOUT_ASSIGN_OR_RETURN(int64_t version, db.QueryInt("PRAGMA user_version"));
  if (version > kSchemaVersion) {
    return FailedPrecondition("the state database has schema version " + std::to_string(version) +
                              " but this turnout knows only up to " +
                              std::to_string(kSchemaVersion) + "; use a newer turnout");
  }
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db));
    TURNOUT_RETURN_IF_ERROR(
        db.Exec(kMigrations[v]).WithContext("migration " + std::to_string(v + 1)));
    TURNOUT_RETURN_IF_ERROR(db.Exec("PRAGMA user_version = " + std::to_string(v + 1)));
    TURNOUT_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

}  // namespace

int SqliteStateStore::SchemaVersion() { return kSchemaVersion; }

SqliteStateStore::SqliteStateStore(SqliteStateStoreOptions options, sqlite::Database db)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock::Get()),
      head_path_(audit::HeadPath(options_.path)),
      db_(std::move(db)) {}

Result<std::unique_ptr<SqliteStateStore>> SqliteStateStore::Open(SqliteStateStoreOptions options) {
  if (options.path.empty()) return InvalidArgument("state database path is empty");
  TURNOUT_RETURN_IF_ERROR(PrepareFiles(options.path));
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Database db,
                           sqlite::Database::Open(options.path, true, options.busy_timeout_ms));
  TURNOUT_RETURN_IF_ERROR(Configure(db).WithContext(options.path));
  TURNOUT_RETURN_IF_ERROR(Migrate(db).WithContext(options.path));

  std::unique_ptr<SqliteStateStore> store(new SqliteStateStore(std::move(options), std::move(db)));
  // A brand-new log gets its anchor now, so that a writer killed before its first anchor
  // update leaves a lagging anchor rather than none (a missing one is reported as tampering).
  // (No other thread has the store yet; the lock is taken because db_ is always used under it.)
  MutexLock lock(store->mu_);
  TURNOUT_ASSIGN_OR_RETURN(int64_t entries, store->db_.QueryInt("SELECT COUNT(*) FROM audit"));
  if (entries == 0 && audit::ReadHead(store->head_path_).state == audit::HeadState::kMissing) {
    TURNOUT_RETURN_IF_ERROR(audit::WriteHead(store->head_path_, audit::Head{}));
  }
  return store;
}

Status SqliteStateStore::LastAnchorError() {
  MutexLock lock(mu_);
  return anchor_error_;
}

// ---- Audit ---------------------------------------------------------------------------------

Result<AuditEntry> SqliteStateStore::AppendAuditLocked(const AuditEvent& event, WallTime now) {
  if (event.action.empty()) return InvalidArgument("audit action is empty");
  if (event.actor.empty()) return InvalidArgument("audit actor is empty");
  AuditEntry entry;
  TURNOUT_ASSIGN_OR_RETURN(entry.detail_json, NormalizeDetail(event.detail_json));
  entry.actor = event.actor;
  entry.action = event.action;
  entry.subject = event.subject;
  entry.time = now;
  entry.seq = 1;
  entry.prev_hash = std::string(audit::kGenesisHash);
  {
    TURNOUT_ASSIGN_OR_RETURN(sqlite::Statement last,
                             db_.Prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
    TURNOUT_ASSIGN_OR_RETURN(bool row, last.Step());
    if (row) {
      entry.seq = last.Int(0) + 1;
      entry.prev_hash = last.Text(1);
    }
  }
  entry.hash = audit::ComputeHash(entry);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement insert,
      db_.Prepare("INSERT INTO audit (seq, time_ns, actor, action, subject, detail, prev_hash, "
                  "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  insert.Bind(1, entry.seq)
      .Bind(2, ToNanos(entry.time))
      .Bind(3, entry.actor)
      .Bind(4, entry.action)
      .Bind(5, entry.subject)
      .Bind(6, entry.detail_json)
      .Bind(7, entry.prev_hash)
      .Bind(8, entry.hash);
  TURNOUT_RETURN_IF_ERROR(insert.Run().WithContext("append audit entry"));
  return entry;
}

void SqliteStateStore::AnchorLocked(const AuditEntry& last) {
  // Another store on the same file may have anchored a newer entry already; never move back.
  audit::HeadFile current = audit::ReadHead(head_path_);
  if (current.state == audit::HeadState::kOk && current.head.seq >= last.seq) {
    anchor_error_ = Status::Ok();
    return;
  }
  anchor_error_ = audit::WriteHead(head_path_, audit::Head{last.seq, last.hash});
}

Result<int64_t> SqliteStateStore::AppendAudit(const AuditEvent& event) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db_));
  TURNOUT_ASSIGN_OR_RETURN(AuditEntry entry, AppendAuditLocked(event, clock_->WallNow()));
  TURNOUT_RETURN_IF_ERROR(tx.Commit());
  AnchorLocked(entry);
  return entry.seq;
}

Result<std::vector<AuditEntry>> SqliteStateStore::ReadAudit(int64_t after_seq, int limit) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement stmt,
      db_.Prepare("SELECT seq, time_ns, actor, action, subject, detail, prev_hash, hash "
                  "FROM audit WHERE seq > ? ORDER BY seq LIMIT ?"));
  stmt.Bind(1, after_seq).Bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
  return sqlite::CollectRows<AuditEntry>(stmt, ReadAuditEntry);
}

// The setting naming the latest acknowledgement of a broken chain: {"seq","hash","reason"}.
constexpr char kAcknowledgedKey[] = "audit.acknowledged";

Result<AuditReport> SqliteStateStore::VerifyAudit() {
  // The anchor first, then the rows: a writer in another process that commits in between can
  // then only make the anchor look behind (head_lag), never ahead (which would read as
  // truncation).
  audit::HeadFile head = audit::ReadHead(head_path_);
  TURNOUT_ASSIGN_OR_RETURN(std::vector<AuditEntry> entries, ReadAudit(0, 0));
  AuditReport report = audit::Verify(entries, head);
  if (report.ok()) return report;
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> ack, GetSetting(kAcknowledgedKey));
  if (!ack) return report;
  Json a = Json::parse(*ack, nullptr, false);
  if (!a.is_object() || !a.contains("seq") || !a["seq"].is_number_integer() ||
      !a.contains("hash") || !a["hash"].is_string()) {
    return report;  // an unreadable acknowledgement acknowledges nothing
  }
  const int64_t seq = a["seq"].get<int64_t>();
  // Only a break before the acknowledgement is covered: one after it is new.
  if (report.first_bad_seq > seq) return report;
  std::vector<AuditEntry> tail;
  for (const AuditEntry& e : entries) {
    if (e.seq >= seq) tail.push_back(e);
  }
  AuditReport from = audit::VerifyFrom(audit::Head{seq, a["hash"].get<std::string>()}, tail, head);
  if (!from.ok()) return report;
  report.acknowledged_seq = seq;
  report.acknowledged_reason = a.value("reason", "");
  report.head_lag = from.head_lag;
  report.head_seq = from.head_seq;
  return report;
}

Result<AuditReport> SqliteStateStore::VerifyAuditFrom(int64_t after_seq,
                                                      std::string_view after_hash) {
  audit::HeadFile head = audit::ReadHead(head_path_);
  TURNOUT_ASSIGN_OR_RETURN(std::vector<AuditEntry> rows,
                           ReadAudit(after_seq > 0 ? after_seq - 1 : 0, 0));
  return audit::VerifyFrom(audit::Head{after_seq, std::string(after_hash)}, rows, head);
}

Result<int64_t> SqliteStateStore::AcknowledgeAuditBreak(const AuditEvent& event) {
  TURNOUT_ASSIGN_OR_RETURN(AuditReport report, VerifyAudit());
  if (report.ok()) {
    return FailedPrecondition("the audit log verifies (" + report.ToString() +
                              "); there is nothing to acknowledge");
  }
  std::string reason;
  Json detail = Json::parse(event.detail_json, nullptr, false);
  if (detail.is_object()) reason = detail.value("reason", "");
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db_));
  const WallTime now = clock_->WallNow();
  TURNOUT_ASSIGN_OR_RETURN(AuditEntry entry, AppendAuditLocked(event, now));
  Json ack = {{"seq", entry.seq}, {"hash", entry.hash}, {"reason", reason}};
  TURNOUT_RETURN_IF_ERROR(PutSettingLocked(kAcknowledgedKey, ack.dump(), now));
  TURNOUT_RETURN_IF_ERROR(tx.Commit());
  // Re-anchor: the head names the acknowledgement, even when it named a later (lost) entry.
  anchor_error_ = audit::WriteHead(head_path_, audit::Head{entry.seq, entry.hash});
  TURNOUT_RETURN_IF_ERROR(anchor_error_);
  return entry.seq;
}

// ---- Services ------------------------------------------------------------------------------

Status SqliteStateStore::PutService(std::string_view name, std::string_view config_hash) {
  if (name.empty()) return InvalidArgument("service name is empty");
  MutexLock lock(mu_);
  const WallTime now = clock_->WallNow();
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db_));
  std::optional<std::string> old_hash;
  {
    TURNOUT_ASSIGN_OR_RETURN(sqlite::Statement q,
                             db_.Prepare("SELECT config_hash FROM services WHERE name = ?"));
    q.Bind(1, name);
    TURNOUT_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) old_hash = q.Text(0);
  }
  if (old_hash == config_hash) return Status::Ok();
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement up,
      db_.Prepare("INSERT INTO services (name, config_hash, updated_ns) VALUES (?, ?, ?) "
                  "ON CONFLICT(name) DO UPDATE SET config_hash = excluded.config_hash, "
                  "updated_ns = excluded.updated_ns"));
  up.Bind(1, name).Bind(2, config_hash).Bind(3, ToNanos(now));
  TURNOUT_RETURN_IF_ERROR(up.Run());
  Json detail = {{"config_hash", std::string(config_hash)},
                 {"previous_config_hash", old_hash.value_or("")}};
  TURNOUT_ASSIGN_OR_RETURN(
      AuditEntry entry,
      AppendAuditLocked({options_.actor, "service.config", std::string(name), Dump(detail)}, now));
  TURNOUT_RETURN_IF_ERROR(tx.Commit());
  AnchorLocked(entry);
  return Status::Ok();
}

Result<Service> SqliteStateStore::GetService(std::string_view name) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement q,
      db_.Prepare("SELECT name, config_hash, active_slot, active_revision, updated_ns "
                  "FROM services WHERE name = ?"));
  q.Bind(1, name);
  TURNOUT_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return NotFound("no service named '" + std::string(name) + "'");
  return ReadService(q);
}

Result<std::vector<Service>> SqliteStateStore::ListServices() {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement q,
      db_.Prepare("SELECT name, config_hash, active_slot, active_revision, updated_ns "
                  "FROM services ORDER BY name"));
  return sqlite::CollectRows<Service>(q, ReadService);
}

Status SqliteStateStore::SetActive(std::string_view service, std::string_view slot,
                                   int64_t revision, std::string_view reason) {
  MutexLock lock(mu_);
  const WallTime now = clock_->WallNow();
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db_));
  std::string old_slot;
  int64_t old_revision = 0;
  {
    TURNOUT_ASSIGN_OR_RETURN(
        sqlite::Statement q,
        db_.Prepare("SELECT active_slot, active_revision FROM services WHERE name = ?"));
    q.Bind(1, service);
    TURNOUT_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return NotFound("no service named '" + std::string(service) + "'");
    old_slot = q.Text(0);
    old_revision = q.Int(1);
  }
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement up,
      db_.Prepare("UPDATE services SET active_slot = ?, active_revision = ?, updated_ns = ? "
                  "WHERE name = ?"));
  up.Bind(1, slot).Bind(2, revision).Bind(3, ToNanos(now)).Bind(4, service);
  TURNOUT_RETURN_IF_ERROR(up.Run());
  Json detail = {{"slot", std::string(slot)},
                 {"revision", revision},
                 {"previous_slot", old_slot},
                 {"previous_revision", old_revision},
                 {"reason", std::string(reason)}};
  TURNOUT_ASSIGN_OR_RETURN(AuditEntry entry, AppendAuditLocked({options_.actor, "service.switch",
                                                                std::string(service), Dump(detail)},
                                                               now));
  TURNOUT_RETURN_IF_ERROR(tx.Commit());
  AnchorLocked(entry);
  return Status::Ok();
}

// ---- Deployments ---------------------------------------------------------------------------

Result<Deployment> SqliteStateStore::GetDeploymentLocked(int64_t id) {
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement q,
      db_.Prepare("SELECT " + std::string(kDeploymentColumns) + " FROM deployments WHERE id = ?"));
  q.Bind(1, id);
  TURNOUT_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return NotFound("no deployment #" + std::to_string(id));
  return ReadDeployment(q);
}

Result<std::optional<Deployment>> SqliteStateStore::ActiveDeploymentLocked(
    std::string_view service) {
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement q,
      db_.Prepare("SELECT " + std::string(kDeploymentColumns) +
                  " FROM deployments WHERE service = ? AND state NOT IN ('succeeded', "
                  "'rolled_back', 'failed') ORDER BY id LIMIT 1"));
  q.Bind(1, service);
  TURNOUT_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<Deployment>();
  TURNOUT_ASSIGN_OR_RETURN(Deployment d, ReadDeployment(q));
  return std::optional<Deployment>(std::move(d));
}

Result<Deployment> SqliteStateStore::BeginDeployment(const DeploymentSpec& spec) {
  if (spec.service.empty()) return InvalidArgument("deployment has no service");
  if (spec.version.empty()) return InvalidArgument("deployment has no version");
  if (spec.target_slot.empty()) return InvalidArgument("deployment has no target slot");
  if (spec.started_by.empty()) return InvalidArgument("deployment has no started_by");
  MutexLock lock(mu_);
  const WallTime now = clock_->WallNow();
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db_));
  TURNOUT_ASSIGN_OR_RETURN(std::optional<Deployment> running, ActiveDeploymentLocked(spec.service));
  if (running.has_value()) {
    return AlreadyExists("service '" + spec.service + "' already has " + Describe(*running) +
                         " in progress; wait for it, or abort it, before deploying again");
  }
  {
    TURNOUT_ASSIGN_OR_RETURN(sqlite::Statement ins,
                             db_.Prepare("INSERT INTO services (name, updated_ns) VALUES (?, ?) "
                                         "ON CONFLICT(name) DO NOTHING"));
    ins.Bind(1, spec.service).Bind(2, ToNanos(now));
    TURNOUT_RETURN_IF_ERROR(ins.Run());
  }
  int64_t revision = 0;
  {
    TURNOUT_ASSIGN_OR_RETURN(
        sqlite::Statement q,
        db_.Prepare("SELECT COALESCE(MAX(revision), 0) + 1 FROM deployments WHERE service = ?"));
    q.Bind(1, spec.service);
    TURNOUT_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return Internal("no revision row");
    revision = q.Int(0);
  }
  {
    TURNOUT_ASSIGN_OR_RETURN(
        sqlite::Statement ins,
        db_.Prepare("INSERT INTO deployments (service, revision, version, config_hash, "
                    "target_slot, previous_slot, strategy, started_by, state, reason, "
                    "created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    ins.Bind(1, spec.service)
        .Bind(2, revision)
        .Bind(3, spec.version)
        .Bind(4, spec.config_hash)
        .Bind(5, spec.target_slot)
        .Bind(6, spec.previous_slot)
        .Bind(7, spec.strategy)
        .Bind(8, spec.started_by)
        .Bind(9, DeploymentStateName(DeploymentState::kPending))
        .Bind(10, spec.reason)
        .Bind(11, ToNanos(now))
        .Bind(12, ToNanos(now));
    TURNOUT_RETURN_IF_ERROR(ins.Run());
  }
  const int64_t id = db_.LastInsertRowId();
  Json detail = {{"deployment", id},
                 {"revision", revision},
                 {"version", spec.version},
                 {"config_hash", spec.config_hash},
                 {"target_slot", spec.target_slot},
                 {"previous_slot", spec.previous_slot},
                 {"strategy", spec.strategy},
                 {"reason", spec.reason}};
  TURNOUT_ASSIGN_OR_RETURN(
      AuditEntry entry,
      AppendAuditLocked({spec.started_by, "deployment.begin", spec.service, Dump(detail)}, now));
  TURNOUT_ASSIGN_OR_RETURN(Deployment d, GetDeploymentLocked(id));
  TURNOUT_RETURN_IF_ERROR(tx.Commit());
  AnchorLocked(entry);
  return d;
}

Result<Deployment> SqliteStateStore::TransitionLocked(int64_t id,
                                                      std::optional<DeploymentState> from,
                                                      DeploymentState to, std::string_view reason) {
  const WallTime now = clock_->WallNow();
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db_));
  TURNOUT_ASSIGN_OR_RETURN(Deployment d, GetDeploymentLocked(id));
  if (IsTerminal(d.state)) {
    return FailedPrecondition(Describe(d) + " has already finished");
  }
  if (from.has_value() && d.state != *from) {
    return FailedPrecondition(Describe(d) + " is not in state " +
                              std::string(DeploymentStateName(*from)));
  }
  const bool terminal = IsTerminal(to);
  Json detail = {{"deployment", id},
                 {"revision", d.revision},
                 {"version", d.version},
                 {"from", DeploymentStateName(d.state)},
                 {"to", DeploymentStateName(to)},
                 {"reason", std::string(reason)}};
  TURNOUT_ASSIGN_OR_RETURN(
      AuditEntry entry,
      AppendAuditLocked({options_.actor, terminal ? "deployment.finish" : "deployment.transition",
                         d.service, Dump(detail)},
                        now));
  {
    TURNOUT_ASSIGN_OR_RETURN(
        sqlite::Statement up,
        db_.Prepare("UPDATE deployments SET state = ?, reason = ?, updated_ns = ?, "
                    "finished_ns = ? WHERE id = ?"));
    up.Bind(1, DeploymentStateName(to))
        .Bind(2, reason)
        .Bind(3, ToNanos(now))
        .Bind(4, terminal ? std::optional<int64_t>(ToNanos(now)) : std::nullopt)
        .Bind(5, id);
    TURNOUT_RETURN_IF_ERROR(up.Run());
  }
  {
    TURNOUT_ASSIGN_OR_RETURN(
        sqlite::Statement ins,
        db_.Prepare("INSERT INTO transitions (deployment_id, from_state, to_state, reason, "
                    "at_ns, audit_seq) VALUES (?, ?, ?, ?, ?, ?)"));
    ins.Bind(1, id)
        .Bind(2, DeploymentStateName(d.state))
        .Bind(3, DeploymentStateName(to))
        .Bind(4, reason)
        .Bind(5, ToNanos(now))
        .Bind(6, entry.seq);
    TURNOUT_RETURN_IF_ERROR(ins.Run());
  }
  if (to == DeploymentState::kSucceeded) {
    TURNOUT_ASSIGN_OR_RETURN(
        sqlite::Statement up,
        db_.Prepare("UPDATE services SET active_slot = ?, active_revision = ?, config_hash = ?, "
                    "updated_ns = ? WHERE name = ?"));
    up.Bind(1, d.target_slot)
        .Bind(2, d.revision)
        .Bind(3, d.config_hash)
        .Bind(4, ToNanos(now))
        .Bind(5, d.service);
    TURNOUT_RETURN_IF_ERROR(up.Run());
  }
  TURNOUT_ASSIGN_OR_RETURN(Deployment updated, GetDeploymentLocked(id));
  TURNOUT_RETURN_IF_ERROR(tx.Commit());
  AnchorLocked(entry);
  return updated;
}

Result<Deployment> SqliteStateStore::RecordTransition(int64_t id, DeploymentState from,
                                                      DeploymentState to, std::string_view reason) {
  if (from == to) {
    return InvalidArgument("a transition must change the state (both are " +
                           std::string(DeploymentStateName(to)) + ")");
  }
  MutexLock lock(mu_);
  return TransitionLocked(id, from, to, reason);
}

Result<Deployment> SqliteStateStore::FinishDeployment(int64_t id, DeploymentState outcome,
                                                      std::string_view reason) {
  if (!IsTerminal(outcome)) {
    return InvalidArgument(std::string(DeploymentStateName(outcome)) +
                           " is not a final state (succeeded, rolled_back or failed)");
  }
  MutexLock lock(mu_);
  return TransitionLocked(id, std::nullopt, outcome, reason);
}

Result<std::optional<Deployment>> SqliteStateStore::ActiveDeployment(std::string_view service) {
  MutexLock lock(mu_);
  return ActiveDeploymentLocked(service);
}

Result<std::vector<Deployment>> SqliteStateStore::ActiveDeployments() {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement q,
      db_.Prepare("SELECT " + std::string(kDeploymentColumns) +
                  " FROM deployments WHERE state NOT IN ('succeeded', 'rolled_back', 'failed') "
                  "ORDER BY id"));
  return ReadDeployments(q);
}

Result<Deployment> SqliteStateStore::GetDeployment(int64_t id) {
  MutexLock lock(mu_);
  return GetDeploymentLocked(id);
}

Result<Deployment> SqliteStateStore::GetRevision(std::string_view service, int64_t revision) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Statement q,
                           db_.Prepare("SELECT " + std::string(kDeploymentColumns) +
                                       " FROM deployments WHERE service = ? AND revision = ?"));
  q.Bind(1, service).Bind(2, revision);
  TURNOUT_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) {
    return NotFound("service '" + std::string(service) + "' has no revision " +
                    std::to_string(revision));
  }
  return ReadDeployment(q);
}

Result<std::vector<Deployment>> SqliteStateStore::History(std::string_view service, int limit) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Statement q,
                           db_.Prepare("SELECT " + std::string(kDeploymentColumns) +
                                       " FROM deployments WHERE service = ? "
                                       "ORDER BY revision DESC LIMIT ?"));
  q.Bind(1, service).Bind(2, static_cast<int64_t>(limit > 0 ? limit : -1));
  return ReadDeployments(q);
}

Result<std::vector<Transition>> SqliteStateStore::Transitions(int64_t deployment_id) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement q,
      db_.Prepare("SELECT id, deployment_id, from_state, to_state, reason, at_ns, audit_seq "
                  "FROM transitions WHERE deployment_id = ? ORDER BY id"));
  q.Bind(1, deployment_id);
  return sqlite::CollectRows<Transition>(q, ReadTransition);
}

// ---- Steps ---------------------------------------------------------------------------------

Result<int64_t> SqliteStateStore::BeginStep(int64_t deployment_id, std::string_view step,
                                            std::string_view detail_json) {
  return BeginStepAt(deployment_id, step, detail_json, clock_->WallNow());
}

Result<int64_t> SqliteStateStore::BeginStepAt(int64_t deployment_id, std::string_view step,
                                              std::string_view detail_json, WallTime started_at) {
  if (step.empty()) return InvalidArgument("step name is empty");
  TURNOUT_ASSIGN_OR_RETURN(std::string detail, NormalizeDetail(detail_json));
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db_));
  TURNOUT_RETURN_IF_ERROR(GetDeploymentLocked(deployment_id).status());
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement ins,
      db_.Prepare("INSERT INTO steps (deployment_id, step, started_ns, outcome, detail) "
                  "VALUES (?, ?, ?, ?, ?)"));
  ins.Bind(1, deployment_id)
      .Bind(2, step)
      .Bind(3, ToNanos(started_at))
      .Bind(4, StepOutcomeName(StepOutcome::kRunning))
      .Bind(5, detail);
  TURNOUT_RETURN_IF_ERROR(ins.Run());
  const int64_t id = db_.LastInsertRowId();
  TURNOUT_RETURN_IF_ERROR(tx.Commit());
  return id;
}

Status SqliteStateStore::FinishStep(int64_t step_id, StepOutcome outcome,
                                    std::string_view detail_json) {
  return FinishStepAt(step_id, outcome, detail_json, clock_->WallNow());
}

Status SqliteStateStore::FinishStepAt(int64_t step_id, StepOutcome outcome,
                                      std::string_view detail_json, WallTime finished_at) {
  if (outcome == StepOutcome::kRunning) return InvalidArgument("a finished step cannot be running");
  std::optional<std::string> detail;
  if (!detail_json.empty()) {
    TURNOUT_ASSIGN_OR_RETURN(detail, NormalizeDetail(detail_json));
  }
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement up,
      db_.Prepare("UPDATE steps SET finished_ns = ?, outcome = ?, detail = COALESCE(?, detail) "
                  "WHERE id = ?"));
  up.Bind(1, ToNanos(finished_at)).Bind(2, StepOutcomeName(outcome));
  if (detail.has_value()) {
    up.Bind(3, *detail);
  } else {
    up.BindNull(3);
  }
  up.Bind(4, step_id);
  TURNOUT_RETURN_IF_ERROR(up.Run());
  if (db_.Changes() == 0) return NotFound("no step #" + std::to_string(step_id));
  return Status::Ok();
}

Result<std::vector<StepRecord>> SqliteStateStore::Steps(int64_t deployment_id) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement q,
      db_.Prepare("SELECT id, deployment_id, step, started_ns, finished_ns, outcome, detail "
                  "FROM steps WHERE deployment_id = ? ORDER BY started_ns, id"));
  q.Bind(1, deployment_id);
  return sqlite::CollectRows<StepRecord>(q, ReadStep);
}

// ---- Instances -----------------------------------------------------------------------------

Result<int64_t> SqliteStateStore::UpsertInstance(const InstanceRecord& instance) {
  if (instance.slot.empty()) return InvalidArgument("instance has no slot");
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db_));
  TURNOUT_RETURN_IF_ERROR(GetDeploymentLocked(instance.deployment_id).status());
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement up,
      db_.Prepare("INSERT INTO instances (deployment_id, service, slot, instance_index, pid, "
                  "process_start_time, port, version, state, updated_ns, platform_handle) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, '')) "
                  "ON CONFLICT(deployment_id, slot, instance_index) DO UPDATE SET "
                  "service = excluded.service, pid = excluded.pid, "
                  "process_start_time = excluded.process_start_time, port = excluded.port, "
                  "version = excluded.version, state = excluded.state, "
                  "updated_ns = excluded.updated_ns, "
                  "platform_handle = excluded.platform_handle RETURNING id"));
  up.Bind(1, instance.deployment_id)
      .Bind(2, instance.service)
      .Bind(3, instance.slot)
      .Bind(4, static_cast<int64_t>(instance.instance_index))
      .Bind(5, instance.pid)
      .Bind(6, instance.process_start_time)
      .Bind(7, static_cast<int64_t>(instance.port))
      .Bind(8, instance.version)
      .Bind(9, InstanceStateName(instance.state))
      .Bind(10, ToNanos(clock_->WallNow()))
      .Bind(11, instance.platform_handle);
  TURNOUT_ASSIGN_OR_RETURN(bool row, up.Step());
  if (!row) return Internal("instance upsert returned no id");
  const int64_t id = up.Int(0);
  TURNOUT_RETURN_IF_ERROR(up.Run());
  TURNOUT_RETURN_IF_ERROR(tx.Commit());
  return id;
}

Status SqliteStateStore::SetInstanceState(int64_t instance_id, InstanceState state) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement up,
      db_.Prepare("UPDATE instances SET state = ?, updated_ns = ? WHERE id = ?"));
  up.Bind(1, InstanceStateName(state)).Bind(2, ToNanos(clock_->WallNow())).Bind(3, instance_id);
  TURNOUT_RETURN_IF_ERROR(up.Run());
  if (db_.Changes() == 0) return NotFound("no instance #" + std::to_string(instance_id));
  return Status::Ok();
}

Result<std::vector<InstanceRecord>> SqliteStateStore::ListInstances(std::string_view service,
                                                                    bool live_only) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement q,
      db_.Prepare("SELECT id, deployment_id, service, slot, instance_index, pid, "
                  "process_start_time, port, version, state, updated_ns, "
                  "COALESCE(platform_handle, '') FROM instances "
                  "WHERE (?1 = '' OR service = ?1) AND (?2 = 0 OR state IN ('starting', "
                  "'running', 'stopping')) ORDER BY id"));
  q.Bind(1, service).Bind(2, static_cast<int64_t>(live_only ? 1 : 0));
  return sqlite::CollectRows<InstanceRecord>(q, ReadInstance);
}

// ---- Router policy and settings ------------------------------------------------------------

Status SqliteStateStore::SaveRouterPolicy(std::string_view router, std::string_view policy_json) {
  if (router.empty()) return InvalidArgument("router name is empty");
  if (policy_json.empty() || !Json::accept(policy_json)) {
    return InvalidArgument("router policy is not a JSON document");
  }
  MutexLock lock(mu_);
  const WallTime now = clock_->WallNow();
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Transaction tx, sqlite::Transaction::Begin(db_));
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement up,
      db_.Prepare("INSERT INTO router_policies (router, policy, updated_ns) VALUES (?, ?, ?) "
                  "ON CONFLICT(router) DO UPDATE SET policy = excluded.policy, "
                  "updated_ns = excluded.updated_ns"));
  up.Bind(1, router).Bind(2, policy_json).Bind(3, ToNanos(now));
  TURNOUT_RETURN_IF_ERROR(up.Run());
  TURNOUT_ASSIGN_OR_RETURN(
      AuditEntry entry,
      AppendAuditLocked(
          {options_.actor, "router.policy", std::string(router), std::string(policy_json)}, now));
  TURNOUT_RETURN_IF_ERROR(tx.Commit());
  AnchorLocked(entry);
  return Status::Ok();
}

Result<std::optional<std::string>> SqliteStateStore::LoadRouterPolicy(std::string_view router) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Statement q,
                           db_.Prepare("SELECT policy FROM router_policies WHERE router = ?"));
  q.Bind(1, router);
  TURNOUT_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(q.Text(0));
}

Status SqliteStateStore::PutSetting(std::string_view key, std::string_view value) {
  if (key.empty()) return InvalidArgument("setting key is empty");
  MutexLock lock(mu_);
  return PutSettingLocked(key, value, clock_->WallNow());
}

Status SqliteStateStore::PutSettingLocked(std::string_view key, std::string_view value,
                                          WallTime now) {
  TURNOUT_ASSIGN_OR_RETURN(
      sqlite::Statement up,
      db_.Prepare("INSERT INTO settings (key, value, updated_ns) VALUES (?, ?, ?) "
                  "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                  "updated_ns = excluded.updated_ns"));
  up.Bind(1, key).Bind(2, value).Bind(3, ToNanos(now));
  return up.Run();
}

Result<std::optional<std::string>> SqliteStateStore::GetSetting(std::string_view key) {
  MutexLock lock(mu_);
  TURNOUT_ASSIGN_OR_RETURN(sqlite::Statement q,
                           db_.Prepare("SELECT value FROM settings WHERE key = ?"));
  q.Bind(1, key);
  TURNOUT_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(q.Text(0));
}

}  // namespace turnout::state
