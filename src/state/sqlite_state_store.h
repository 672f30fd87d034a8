// SqliteStateStore: the StateStore on one SQLite database file (plus the audit head anchor
// beside it). The schema and the durability rules are in docs/state.md.
//
// Files: `<path>` (mode 0600; SQLite's -wal and -shm files inherit that mode) and
// `<path>.audit-head`. A missing parent directory is created with mode 0700; an existing one is
// left as it is (it may be shared, e.g. a test's temp dir).
//
// Durability: journal_mode=WAL with synchronous=FULL, so the WAL is fsynced at every commit and a
// method that returned OK survives power loss, not only a process crash (NORMAL would risk losing
// the last commits on power loss: a controller that acted on a transition it then forgets could
// not recover correctly). The audit head anchor is rewritten after each commit that appended
// audit entries; a writer killed between the two leaves the anchor one step behind, which
// VerifyAudit reports as head_lag, not as an error.
//
// Schema versioning: PRAGMA user_version is the number of migrations applied; Open applies the
// missing ones, each in its own transaction, and refuses (FailedPrecondition) a database written
// by a newer turnout.
//
// Thread-safety: all methods may be called from any thread; calls on one store are serialized by
// a mutex around its single connection. Several stores (threads or processes) may open the same
// file: writes take SQLite's write lock with BEGIN IMMEDIATE and wait up to busy_timeout_ms.
// Errors: see state_store.h; a lock held longer than busy_timeout_ms gives Unavailable.

#pragma once

#include <memory>
#include <string>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"
#include "state/sqlite.h"
#include "state/state_store.h"

namespace turnout::state {

struct SqliteStateStoreOptions {
  std::string path;  // the database file
  // Default: nullptr, meaning SystemClock::Get(). Not owned; must outlive the store.
  const Clock* clock = nullptr;
  // The audit actor of transitions, service switches and policy saves (BeginDeployment uses
  // the spec's started_by). Default: "turnoutd".
  std::string actor = "turnoutd";
  // How long a write waits for another connection's write lock. Default: 5000.
  int busy_timeout_ms = 5000;
};

class SqliteStateStore final : public StateStore {
 public:
  // Opens or creates the database, applies migrations and, for an empty audit log without an
  // anchor, writes the initial anchor. IoError when the files cannot be created, Internal for a
  // file that is not a turnout state database, FailedPrecondition for a newer schema.
  static Result<std::unique_ptr<SqliteStateStore>> Open(SqliteStateStoreOptions options);

  // The schema version this build writes (the number of migrations).
  static int SchemaVersion();

  // The last failure to rewrite the head anchor after a committed append (OK when the latest
  // attempt succeeded). Such a failure does not fail the write, which is already durable; the
  // next append retries the anchor.
  Status LastAnchorError();

  Status PutService(std::string_view name, std::string_view config_hash) override;
  Result<Service> GetService(std::string_view name) override;
  Result<std::vector<Service>> ListServices() override;
  Status SetActive(std::string_view service, std::string_view slot, int64_t revision,
                   std::string_view reason) override;

  Result<Deployment> BeginDeployment(const DeploymentSpec& spec) override;
  Result<Deployment> RecordTransition(int64_t id, DeploymentState from, DeploymentState to,
                                      std::string_view reason) override;
  Result<Deployment> FinishDeployment(int64_t id, DeploymentState outcome,
                                      std::string_view reason) override;

  Result<std::optional<Deployment>> ActiveDeployment(std::string_view service) override;
  Result<std::vector<Deployment>> ActiveDeployments() override;
  Result<Deployment> GetDeployment(int64_t id) override;
  Result<Deployment> GetRevision(std::string_view service, int64_t revision) override;
  Result<std::vector<Deployment>> History(std::string_view service, int limit) override;
  Result<std::vector<Transition>> Transitions(int64_t deployment_id) override;

  Result<int64_t> BeginStep(int64_t deployment_id, std::string_view step,
                            std::string_view detail_json) override;
  Result<int64_t> BeginStepAt(int64_t deployment_id, std::string_view step,
                              std::string_view detail_json, WallTime started_at) override;
  Status FinishStep(int64_t step_id, StepOutcome outcome, std::string_view detail_json) override;
  Status FinishStepAt(int64_t step_id, StepOutcome outcome, std::string_view detail_json,
                      WallTime finished_at) override;
  Result<std::vector<StepRecord>> Steps(int64_t deployment_id) override;

  Result<int64_t> UpsertInstance(const InstanceRecord& instance) override;
  Status SetInstanceState(int64_t instance_id, InstanceState state) override;
  Result<std::vector<InstanceRecord>> ListInstances(std::string_view service,
                                                    bool live_only) override;

  Status SaveRouterPolicy(std::string_view router, std::string_view policy_json) override;
  Result<std::optional<std::string>> LoadRouterPolicy(std::string_view router) override;

  Status PutSetting(std::string_view key, std::string_view value) override;
  Result<std::optional<std::string>> GetSetting(std::string_view key) override;

  Result<int64_t> AppendAudit(const AuditEvent& event) override;
  Result<std::vector<AuditEntry>> ReadAudit(int64_t after_seq, int limit) override;
  Result<AuditReport> VerifyAudit() override;
  Result<AuditReport> VerifyAuditFrom(int64_t after_seq, std::string_view after_hash) override;
  Result<int64_t> AcknowledgeAuditBreak(const AuditEvent& event) override;

 private:
  SqliteStateStore(SqliteStateStoreOptions options, sqlite::Database db);

  // All *Locked methods run with mu_ held, inside the caller's transaction where they write.
  Result<AuditEntry> AppendAuditLocked(const AuditEvent& event, WallTime now) TURNOUT_REQUIRES(mu_);
  void AnchorLocked(const AuditEntry& last) TURNOUT_REQUIRES(mu_);
  Status PutSettingLocked(std::string_view key, std::string_view value, WallTime now)
      TURNOUT_REQUIRES(mu_);
  Result<Deployment> GetDeploymentLocked(int64_t id) TURNOUT_REQUIRES(mu_);
  Result<std::optional<Deployment>> ActiveDeploymentLocked(std::string_view service)
      TURNOUT_REQUIRES(mu_);
  Result<Deployment> TransitionLocked(int64_t id, std::optional<DeploymentState> from,
                                      DeploymentState to, std::string_view reason)
      TURNOUT_REQUIRES(mu_);

  SqliteStateStoreOptions options_;
  const Clock* clock_;
  std::string head_path_;
  Mutex mu_;
  sqlite::Database db_ TURNOUT_GUARDED_BY(mu_);
  Status anchor_error_ TURNOUT_GUARDED_BY(mu_);
};

}  // namespace turnout::state
