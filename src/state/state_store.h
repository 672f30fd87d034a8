// StateStore: everything the deployment controller must not forget across a crash.
//
// The controller writes a state change here *before* it acts on it, so that a restarted
// controller (after kill -9 at any point) knows what it was doing: which deployment is in flight
// and in which state, which steps ran, which app processes it launched (to re-adopt them), the
// routing policy to restore, and the audit trail of who did what.
//
// Locking: there is no lock row. "One deployment at a time per service" IS the non-terminal
// deployment row: BeginDeployment refuses while one exists (AlreadyExists, naming it). A crash
// leaves that row in its last recorded state, so the restarted controller finds it with
// ActiveDeployment() and resumes or rolls it back; nothing is ever stale because nothing needs
// to expire.
//
// Durability: every method that writes is durable (on disk, surviving power loss) before it
// returns OK. Every write is one transaction: a crash leaves it complete or absent, never half.
// Writes that change a deployment or a service also append an audit entry in that same
// transaction.
//
// Thread-safety: implementations are safe to call from several threads at once; several store
// objects (in threads or processes) may share one database.
// Errors: NotFound for unknown ids/names, AlreadyExists for the per-service lock,
// FailedPrecondition for a stale compare-and-set (RecordTransition's `from`) or a finished
// deployment, InvalidArgument for malformed input (e.g. detail that is not JSON), IoError when
// the disk refuses, Internal for a corrupt database.

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace turnout::state {

using WallTime = Clock::WallTime;

// The deployment state machine's states (the controller owns the arrows; the store only refuses
// to leave a terminal state).
enum class DeploymentState {
  kPending,
  kPreChecks,
  kLaunching,
  kWaitingReady,
  kSmokeTesting,
  kAwaitingApproval,  // smoke tests passed; waits for `turnout approve` (manual_approval)
  kCanary,            // canary strategy: a share of traffic on the new slot, step by step
  kRolling,           // rolling strategy: the active slot's instances replaced one at a time
  kDraining,  // recreate strategy: maintenance on, the old slot drains and stops, database phases
  kSwitching,
  kBaking,
  kScalingDown,
  kSucceeded,  // terminal
  kRollingBack,
  kRolledBack,  // terminal
  kFailed,      // terminal
};

// "pending", "pre_checks", "launching", "waiting_ready", "smoke_testing", "awaiting_approval",
// "canary", "rolling", "draining", "switching", "baking",
// "scaling_down", "succeeded", "rolling_back", "rolled_back", "failed" (the stored form).
std::string_view DeploymentStateName(DeploymentState state);
std::optional<DeploymentState> ParseDeploymentState(std::string_view name);
// Succeeded, RolledBack and Failed: the deployment no longer holds its service's lock.
bool IsTerminal(DeploymentState state);

struct Service {
  std::string name;
  // Hash of the service definition the active revision runs with ("" before the first success).
  std::string config_hash;
  // The slot receiving traffic ("" before the first switch) and the revision running in it
  // (0 before the first success).
  std::string active_slot;
  int64_t active_revision = 0;
  WallTime updated_at{};
};

// What the caller says about a new deployment; the store adds id, revision, state and times.
struct DeploymentSpec {
  std::string service;
  std::string version;
  std::string config_hash;
  std::string target_slot;    // the slot the new version goes to
  std::string previous_slot;  // the slot serving before ("" on a first deployment)
  // Default: "blue_green". Free text for the store ("blue_green", "canary", "rollback").
  std::string strategy = "blue_green";
  // Who or what started it: "user@host pid 1234", or "api". Also the audit actor.
  std::string started_by;
  std::string reason;  // why (e.g. "rollback to revision 3"); may be empty
};

// A deployment is a revision: revision numbers count 1, 2, 3... per service.
struct Deployment {
  int64_t id = 0;  // unique across services
  std::string service;
  int64_t revision = 0;
  std::string version;
  std::string config_hash;
  std::string target_slot;
  std::string previous_slot;
  std::string strategy;
  std::string started_by;
  DeploymentState state = DeploymentState::kPending;
  std::string reason;  // the reason of the latest transition (the failure, for a failed one)
  WallTime created_at{};
  WallTime updated_at{};
  std::optional<WallTime> finished_at;  // set when it reached a terminal state
};

struct Transition {
  int64_t id = 0;  // increases in commit order
  int64_t deployment_id = 0;
  DeploymentState from = DeploymentState::kPending;
  DeploymentState to = DeploymentState::kPending;
  std::string reason;
  WallTime at{};
  int64_t audit_seq = 0;  // the audit entry written in the same transaction
};

// kInterrupted: the controller running the step died (kill -9, power loss); a restarted one
// finishes it so, at the time the dead one was last alive, and goes on with a new record.
enum class StepOutcome { kRunning, kOk, kFailed, kSkipped, kInterrupted };
// "running", "ok", "failed", "skipped", "interrupted"
std::string_view StepOutcomeName(StepOutcome outcome);
std::optional<StepOutcome> ParseStepOutcome(std::string_view name);

// One step of a deployment (a health wait, a smoke test, a hook...), with its timing.
struct StepRecord {
  int64_t id = 0;
  int64_t deployment_id = 0;
  std::string step;  // e.g. "smoke_test:GET /health"
  WallTime started_at{};
  std::optional<WallTime> finished_at;
  StepOutcome outcome = StepOutcome::kRunning;
  std::string detail_json = "{}";  // a JSON document
};

enum class InstanceState { kStarting, kRunning, kStopping, kStopped, kFailed };
// "starting", "running", "stopping", "stopped", "failed"
std::string_view InstanceStateName(InstanceState state);
std::optional<InstanceState> ParseInstanceState(std::string_view name);

// An app process the platform launched. Identity for UpsertInstance is
// (deployment_id, slot, instance_index): a restarted instance updates its row.
struct InstanceRecord {
  int64_t id = 0;  // assigned by the store
  int64_t deployment_id = 0;
  std::string service;
  std::string slot;
  int instance_index = 0;
  int64_t pid = 0;
  // The process start time as the platform read it (Linux: /proc/<pid>/stat field 22, clock
  // ticks since boot). Opaque to the store; with the pid it tells a live process from a reused
  // pid on re-adoption. 0 when unknown.
  int64_t process_start_time = 0;
  int port = 0;
  std::string version;
  InstanceState state = InstanceState::kStarting;
  // How the platform finds the process again (platform::EncodeHandle's JSON), for re-adoption
  // after a restart. Opaque to the store, which keeps it as given; "" = none (not launched yet,
  // or a launch that failed). UpsertInstance replaces it, like every other field.
  std::string platform_handle;
  WallTime updated_at{};  // set by the store
};

// ---- Audit log ----------------------------------------------------------------------------

// What the caller appends.
struct AuditEvent {
  std::string actor;               // "alice@host pid 1234", "api", "turnoutd"
  std::string action;              // "deployment.begin", "service.switch", "router.policy"...
  std::string subject;             // what it is about, usually the service name
  std::string detail_json = "{}";  // a JSON document
};

// An entry as stored. hash = SHA-256 over the canonical encoding of
// seq, time, actor, action, subject, detail and prev_hash (see docs/state.md); prev_hash of the
// first entry is 64 zeros.
struct AuditEntry {
  int64_t seq = 0;  // 1, 2, 3... without gaps
  WallTime time{};
  std::string actor;
  std::string action;
  std::string subject;
  std::string detail_json;
  std::string prev_hash;  // lowercase hex
  std::string hash;       // lowercase hex
};

enum class AuditProblemKind {
  kNone,
  kModified,     // an entry's content no longer matches its hash, or a link was re-forged
  kDeleted,      // entries are missing (a gap in seq, or later entries renumbered down)
  kInserted,     // an entry that is not part of the chain sits between chained entries
  kReordered,    // entries hold each other's positions
  kTruncated,    // the head anchor names an entry the table no longer has
  kHeadMissing,  // the table has entries but the head anchor file is gone
  kHeadCorrupt,  // the head anchor file cannot be read or fails its own checksum
};
std::string_view AuditProblemKindName(AuditProblemKind kind);  // "modified", "deleted"...

struct AuditReport {
  bool ok() const { return kind == AuditProblemKind::kNone; }
  int64_t entries = 0;   // rows in the table
  int64_t last_seq = 0;  // highest seq in the table
  int64_t head_seq = 0;  // what the anchor file says (0 when missing/corrupt)
  // Entries committed after the anchor was last written: > 0 only when a writer died between
  // its commit and the anchor update (or another writer is doing that right now). Not an error.
  int64_t head_lag = 0;
  AuditProblemKind kind = AuditProblemKind::kNone;
  int64_t first_bad_seq = 0;  // the first entry (by seq) involved; 0 when none or not by entry
  std::string message;        // human explanation, empty when ok
  std::string last_hash;      // the hash of entry last_seq (where the next check starts)
  // A broken chain that an operator acknowledged (AcknowledgeAuditBreak): the seq of the
  // acknowledgement entry, when the break lies at or before it and every entry from it on
  // verifies. 0 otherwise. The break stays reported (kind, message); trusted() is true.
  int64_t acknowledged_seq = 0;
  std::string acknowledged_reason;
  // The chain may be relied on: intact, or broken only where an operator acknowledged it.
  bool trusted() const { return ok() || acknowledged_seq != 0; }

  // "audit log OK: 42 entries, head 42" or "audit log BROKEN at entry 7: modified: ...".
  std::string ToString() const;
};

// ---- The interface --------------------------------------------------------------------------

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Services. PutService creates the service or updates its config hash (audited when it
  // changes). SetActive records which slot/revision serves traffic now (audited as
  // "service.switch"); call it right after a switch took effect.
  virtual Status PutService(std::string_view name, std::string_view config_hash) = 0;
  virtual Result<Service> GetService(std::string_view name) = 0;
  virtual Result<std::vector<Service>> ListServices() = 0;
  virtual Status SetActive(std::string_view service, std::string_view slot, int64_t revision,
                           std::string_view reason) = 0;

  // Starts a deployment in state Pending with the next revision number of its service (creating
  // the service row if needed) and audits "deployment.begin" with spec.started_by as actor.
  // Fails with AlreadyExists naming the deployment in progress (id, revision, version, state,
  // who started it) when the service has a non-terminal one.
  virtual Result<Deployment> BeginDeployment(const DeploymentSpec& spec) = 0;

  // Moves deployment `id` from `from` to `to` as one transaction with its transition row and
  // its audit entry ("deployment.transition"). Compare-and-set: FailedPrecondition when the
  // deployment is not in `from` (someone else moved it) or is already terminal. A terminal `to`
  // finishes the deployment (as FinishDeployment does). Returns the updated deployment.
  virtual Result<Deployment> RecordTransition(int64_t id, DeploymentState from, DeploymentState to,
                                              std::string_view reason) = 0;

  // Moves deployment `id` from whatever state it is in to the terminal `outcome`
  // (InvalidArgument when not terminal) and releases the service's lock. On Succeeded the
  // service's active slot, revision and config hash become the deployment's.
  virtual Result<Deployment> FinishDeployment(int64_t id, DeploymentState outcome,
                                              std::string_view reason) = 0;

  // Queries.
  virtual Result<std::optional<Deployment>> ActiveDeployment(std::string_view service) = 0;
  // All non-terminal deployments, oldest first: what a restarted controller must resume.
  virtual Result<std::vector<Deployment>> ActiveDeployments() = 0;
  virtual Result<Deployment> GetDeployment(int64_t id) = 0;
  virtual Result<Deployment> GetRevision(std::string_view service, int64_t revision) = 0;
  // Newest first, at most `limit` (limit <= 0: all).
  virtual Result<std::vector<Deployment>> History(std::string_view service, int limit) = 0;
  // In commit order.
  virtual Result<std::vector<Transition>> Transitions(int64_t deployment_id) = 0;

  // Steps: BeginStep records a running step and returns its id; FinishStep sets its outcome,
  // finish time and (when not empty) replaces its detail.
  virtual Result<int64_t> BeginStep(int64_t deployment_id, std::string_view step,
                                    std::string_view detail_json) = 0;
  // BeginStep with the start time given: work that ran elsewhere and is recorded when it ended
  // (a hook delivery) starts when it started.
  virtual Result<int64_t> BeginStepAt(int64_t deployment_id, std::string_view step,
                                      std::string_view detail_json, WallTime started_at) = 0;
  virtual Status FinishStep(int64_t step_id, StepOutcome outcome, std::string_view detail_json) = 0;
  // FinishStep with the finish time given (a step interrupted by a crash ends when its
  // controller was last alive, not when the next one found it).
  virtual Status FinishStepAt(int64_t step_id, StepOutcome outcome, std::string_view detail_json,
                              WallTime finished_at) = 0;
  virtual Result<std::vector<StepRecord>> Steps(int64_t deployment_id) = 0;  // in start order

  // Instances. UpsertInstance inserts or updates by (deployment_id, slot, instance_index) and
  // returns the row id; an update replaces every field, platform_handle included.
  virtual Result<int64_t> UpsertInstance(const InstanceRecord& instance) = 0;
  virtual Status SetInstanceState(int64_t instance_id, InstanceState state) = 0;
  // Instances of a service (all services when empty); only Starting/Running/Stopping ones when
  // `live_only` - the ones a restarted daemon tries to re-adopt.
  virtual Result<std::vector<InstanceRecord>> ListInstances(std::string_view service,
                                                            bool live_only) = 0;

  // The routing policy (a JSON document) of a router, by name, for an embedded router to
  // restore at start. Saving audits "router.policy". Load gives nullopt when never saved.
  virtual Status SaveRouterPolicy(std::string_view router, std::string_view policy_json) = 0;
  virtual Result<std::optional<std::string>> LoadRouterPolicy(std::string_view router) = 0;

  // Small settings (not audited). Get gives nullopt for an unknown key.
  virtual Status PutSetting(std::string_view key, std::string_view value) = 0;
  virtual Result<std::optional<std::string>> GetSetting(std::string_view key) = 0;

  // Audit. AppendAudit returns the new entry's seq. ReadAudit returns entries with
  // seq > after_seq in order, at most `limit` (limit <= 0: all).
  virtual Result<int64_t> AppendAudit(const AuditEvent& event) = 0;
  virtual Result<std::vector<AuditEntry>> ReadAudit(int64_t after_seq, int limit) = 0;
  // Checks the whole chain and the head anchor. An Ok Result carries the verdict (report.ok());
  // an error Status means the check itself could not run (e.g. the database cannot be read).
  virtual Result<AuditReport> VerifyAudit() = 0;
  // The incremental check: only the entries from (after_seq, its hash `after_hash`) on, and the
  // head anchor (audit::VerifyFrom). after_seq 0 checks from the start. The report's last_seq
  // and last_hash are where the next call may start when it is ok().
  virtual Result<AuditReport> VerifyAuditFrom(int64_t after_seq, std::string_view after_hash) = 0;
  // An operator's acknowledgement of a broken chain: appends `event` (its detail should say
  // why and what was broken) as the new trust anchor, rewrites the head anchor to it (even when
  // the old anchor named a later entry) and remembers it, so that VerifyAudit reports the
  // break before it as acknowledged. Returns the entry's seq. FailedPrecondition when the
  // chain verifies (there is nothing to acknowledge).
  virtual Result<int64_t> AcknowledgeAuditBreak(const AuditEvent& event) = 0;
};

}  // namespace turnout::state
