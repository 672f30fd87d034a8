// Engine: the crash-safe blue/green and canary deployment state machine of one service.
//
//   Pending -> PreChecks -> Launching -> WaitingReady -> SmokeTesting [-> AwaitingApproval]
//           [-> Canary] -> Switching -> Baking -> ScalingDown -> Succeeded
//   rolling: Pending -> PreChecks -> Rolling -> Baking -> ScalingDown -> Succeeded
//   recreate: Pending -> PreChecks -> Draining -> Launching -> WaitingReady -> SmokeTesting
//           [-> AwaitingApproval] -> Switching -> Baking -> ScalingDown -> Succeeded
//   any non-terminal state -> RollingBack -> RolledBack (or Failed when there is nothing to go
//   back to: a first deployment that failed after its switch)
//
// Write-ahead: every transition is recorded with StateStore::RecordTransition BEFORE the action
// it leads to, and every action is idempotent, so re-running the current state's action after a
// crash is safe (Launching skips instances already recorded; Switching reads the router's policy
// and switches only when needed; stopping an ended instance is OK).
//
// Driving: Step() does the next bounded piece of work of the current state (at most one round of
// readiness probes, each bounded by options.probe_timeout; or one pre-deploy command; or the
// smoke checks, each bounded by its own timeout (before them, up to five looks 2 ms apart for the
// router's verdict on the new slot, which it checks at once); plus one wait of at most
// options.probe_wait for an instance to exit, or the stops of a slot) and says what it is
// waiting for. The daemon calls
// it in a loop; tests move a ManualClock between calls. Deadlines (ready_deadline, bake_time,
// scale_down_delay) are measured by the injected Clock from the moment the state was entered.
//
// Crash resume (Resume()): a new Engine over the same store finds the service's active
// deployment, re-adopts the recorded instances (Platform::Adopt with the persisted handles) and
// then applies this rule:
//   - Pending, PreChecks, Draining, Launching, WaitingReady, SmokeTesting: ROLL BACK. Users were
//   never
//     moved, so rolling back is always safe; the readiness deadline was measured by a controller
//     that is gone, and a half-launched set may hold instances of unknown health. Re-running the
//     deploy is one command, and it relaunches cleanly.
//   - AwaitingApproval: keep waiting when every new instance is still running, else roll back
//     (the smoke tests passed; an approval may come hours later).
//   - Switching: make the router match the recorded intent (switch to the new slot) if every new
//     instance is still running, else roll back.
//   - Rolling: continue; what is done is read from the instance rows (old ones stopped, new ones
//     running) and the router's slot, and the new instances are probed again.
//   - Canary: continue at the recorded step with the time it has left (the setting
//     "controller.canary.<id>": step, its start as wall time, its paused time), re-applying the
//     step's weight in the router; an instance that died meanwhile rolls back at the next Step.
//   - Baking: resume the bake with the time left, measured from the recorded transition time
//     (wall clock: monotonic time does not survive a restart) minus the recorded paused time.
//   A paused deployment stays paused ("controller.paused.<id>").
//   - ScalingDown, RollingBack: continue.
//   In Canary and Baking the time no controller watched (since RestartFacts::last_alive) does
//   not count. What was found and decided is recorded once (see Resume()).
// The elapsed time of a resumed state is taken from the transition's recorded wall time.
//
// Canary (spec.strategy "canary", and a stable slot to compare with): the new slot gets
// canary_steps[i].weight_bp of the traffic (sticky per client; the old slot stays the router's
// active slot) one step after the other. A step ends when its duration passed (paused time
// excluded; event "canary_step_passed"), or early on an analysis kPromote or Promote(); after the
// last step comes Switching (100 %, canary cleared). The step index and its start are written
// BEFORE the engine acts on a new step (sets its weight). EngineOptions::analyze is consulted at
// most every spec.analysis_interval in Canary and Baking: kRollback rolls back (in Canary the
// canary is cleared: Switch(old slot)), kWarn emits "warning" once per reason per step, kPromote
// moves a canary on (held while paused; ignored in bake). Gates: Pause/Unpause/Promote in Canary
// and Baking; a pause stops the step/bake timer but never the analysis, so an automatic rollback
// still happens while paused.
//
// Rolling (spec.strategy "rolling", a slot serving before): the serving slot's instances are
// replaced in place, one at a time, never with fewer ready instances in the router than before
// and at most one extra: launch new instance i, wait until ready, add it to the slot, wait until
// the router sees it healthy, remove old instance i from the slot and stop it (its stop signal
// and grace let requests in flight finish); then Baking. The analysis is consulted throughout
// (phase "rolling", step = old instances replaced so far, weight = the new version's share of
// the slot's instances). Rolling back relaunches the replaced old instances from the previous
// deployment's saved spec (in their old instance rows), waits until they are ready, gives the
// slot the old set and stops the new instances, then runs the database ladder (the old version
// supports the expanded schema; the new one would not support the schema taken back); when the
// old version cannot be brought back the deployment ends Failed with the new version serving
// and the ladder does not run. No smoke tests, no pause in Rolling.
//
// Recreate (spec.strategy "recreate", a slot serving before; for changes that cannot be made
// compatible): with downtime, never with a connection error. Draining turns the router's
// maintenance on (UpdatePolicy: every other field kept; page and Retry-After from
// EngineOptions::maintenance), so users get 503 with Retry-After and the page; waits until the
// old slot drained (GetSlotStatus().drained, at most spec.grace by the clock; the stop signal
// and grace still let requests in flight finish), stops the old instances, then runs the
// database phase "before_launch" with nothing_serves (backup, then every pending migration,
// expand and contract: no running version needs the old shape), which the other strategies run
// in PreChecks while the old version serves (expand only). Then as blue/green: Launching,
// WaitingReady, SmokeTesting (through the override header, which maintenance lets through),
// Switching, where maintenance goes off right after the switch (the reason of Baking says how
// long it was on), Baking, ScalingDown (no old slot left to keep warm; "after_retire" finds
// nothing left to apply). The old instances are written down first ("controller.rolling.<id>",
// as for rolling). Rolling back, behind the maintenance page (on again at once): waits until the
// new slot drained, stops the new instances, runs the database ladder with nothing running, then
// relaunches the old instances from the previous deployment's saved spec into the old slot,
// waits until they are ready, gives the old slot their addresses, switches back and turns
// maintenance off. When the ladder fails the old version still comes back, but maintenance
// stays on and the deployment ends Failed (the reason says to fix the database, then `turnout
// maintenance off`). When the old version cannot be brought back: Failed, maintenance stays on
// and the reason says so (nothing can serve; `turnout maintenance off` ends it).
// Maintenance that was already on when Draining began (an operator's, with their page) is left
// on at every end, and the last transition says so, naming its owner
// (EngineOptions::maintenance_owner).
//
// Bake: the new instances are watched for spec.bake_time: an instance that exits,
// spec.bake_failure_threshold failed readiness probes in a row, spec.liveness_failure_threshold
// failed liveness probes in a row (GET spec.liveness_path once per spec.liveness_interval, when
// set), or an analysis rollback switches traffic back (RollingBack, with the reason).
// Verify (spec.verify): at the start of every bake (after any switch: blue/green, canary,
// rolling, recreate) the checks run in order, one per Step, each bounded by its timeout, while
// the instances and the analysis are still watched between them: commands through
// CommandRunner ({url}: the router's base URL, {version}; exit 0 passes), performance checks
// through EngineOptions::verifier, judged against the baseline (verify.h). A failing check rolls
// back like a failing rule, with the reason "verify <name>: <why>". The bake cannot end before
// every check passed (Promote still ends it at once). Crash resume: a bake resumed before every
// check passed runs them all again from the first (the setting "controller.verify.<id>" is
// written once they all passed).
//
// Emergency rollback: RequestRollback() while the old slot is still warm (Canary, Baking,
// Switching, or ScalingDown before any old instance was stopped) switches the router back inside
// the call (the fast path), then Step() stops the new instances. Traffic never goes back to a slot
// whose instances ended: RequestRollback refuses (FailedPrecondition), and an automatic rollback
// after the switch ends in Failed with the new version still serving.
//
// Persistence beyond the StateStore's own records: the settings "controller.spec.<deployment id>"
// (the DeploymentSpec as JSON), "controller.canary.<id>" ({"step","started_at_ms","paused_ms"}:
// the current canary step), "controller.paused.<id>" ({"paused","since_ms","by"}) and
// "controller.bake.<id>" ({"paused_ms"}: the bake's finished pauses), "controller.rolling.<id>"
// ({"old_count","old_deployment"}: written before the first old instance is touched),
// "controller.verify.<id>" ({"passed":true}: every verify check of the bake passed). Platform
// handles live in the instance rows (InstanceRecord::platform_handle, platform::EncodeHandle).
// Timing: every non-terminal state is also a step record "state:<name>" (started when entered,
// finished ok when left, failed when left for RollingBack or Failed); pre-deploy commands are
// steps "pre_deploy:<name>" ({"exit","result","output_tail"}), smoke checks are steps
// "smoke_test:<name>" (default name "<METHOD> <path>" or the command) with what was expected and
// what came back ({"expected","status",...,"mismatch"}); analysis verdicts other than continue
// are steps "analysis:canary:<step>" / "analysis:bake:-1" ({"verdict","reason","weight_bp",
// "step_elapsed_ms","evidence"[,"note"]}); each canary step is a step "canary_step:<i>"
// ({"weight_bp","duration_ms","elapsed_ms","ended","evidence"}); verify checks are steps
// "verify:<name>" (commands: {"kind","command","exit","result","output_tail"[,"failure"]};
// performance: {"kind","mix_hash","requests","concurrency","tolerance","result","baseline"
// (null, or the result with its "revision")[,"note","failure"]}).
//
// No I/O of its own: everything outside the engine is reached through a role, and the mechanisms
// are chosen in the wiring place (turnoutd: daemon.cc): instances through platform::Platform
// (which also allocates their addresses and reports how they ended; the router and the probes
// use only the address in an instance's handle), the router through router::RouterControl,
// HTTP probes and smoke requests through Prober (turnoutd: HttpProber), pre-deploy and smoke
// commands through platform::CommandRunner (turnoutd: LocalCommandRunner), time and the short
// pauses between polls through Clock (Now, SleepFor), records through state::StateStore. Its
// state-machine tests run on doubles of each (engine_state_test.cc) without a process or socket.
//
// Ownership: the engine borrows the store, platform, router, prober, command runner and clock;
// they must outlive it.
// Thread-safety: none; one thread drives one engine. Several engines must not drive the same
// deployment (the store's compare-and-set transitions make the loser fail with
// FailedPrecondition).
// Errors: Step() returns an error Status only when the store, the router or the platform refused
// an operation (the step can be retried: it is idempotent). Failures of the app itself (not
// ready, smoke check failed, crashed, an analysis rollback) are not errors: they move the
// deployment to RollingBack. Resume() fails with Internal when a persisted canary or pause
// setting is not the JSON the engine wrote.

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "controller/deployment_spec.h"
#include "controller/prober.h"
#include "controller/verify.h"
#include "platform/platform.h"
#include "platform/run.h"
#include "router/router_control.h"
#include "state/state_store.h"

namespace turnout::controller {

// A deployment event, for hooks, notifications and the daemon's event stream. `name` is one of
// service::kHookEvents: deploy_started (Begin), pre_checks_passed, ready (every new instance
// answered its readiness probe), smoke_passed, awaiting_approval, switched (traffic moved to the
// new slot), succeeded, rolled_back, failed, aborted (Abort()).
// Canary and bake add: warning (an analysis warning), canary_step_passed, paused, resumed,
// promoted (Promote()).
struct EngineEvent {
  std::string name;
  state::Deployment deployment;  // as recorded after the transition that caused the event
  std::string detail;            // the transition's reason (or what happened, for the gates)
  // The analysis evidence behind the event (JSON text; warning, canary_step_passed, and the
  // rolled_back of an analysis rollback has it in the history). "" = none
  std::string evidence_json;
};

// What EngineOptions::analyze is asked in Canary (every canary step) and Baking.
struct AnalysisRequest {
  const state::Deployment* deployment = nullptr;  // valid during the call only
  std::string phase;                              // "canary" or "bake"
  int step = 0;                                   // canary step index (0-based); -1 in bake
  uint32_t weight_bp = 0;                         // the new slot's weight now (10000 in bake)
  Clock::Duration step_elapsed{};                 // time in this step / bake, pauses excluded
  Clock::Duration step_duration{};                // the configured step duration / bake_time
  // When this step / bake started by the engine's clock, shifted later by the paused time (so
  // that now - step_started == step_elapsed). A new step or bake has a new value: the daemon
  // starts a new comparison window when it changes.
  Clock::TimePoint step_started{};
  std::string stable_slot, new_slot;
};

struct AnalysisVerdict {
  // kContinue: nothing to do. kPromote: canary: go to the next step now (held while paused;
  // ignored in bake, whose time is the minimum watch after the switch). kRollback: roll back
  // (switch back) with `reason`. kWarn: event "warning" (once per distinct reason per step).
  enum class Kind { kContinue, kPromote, kRollback, kWarn };
  Kind kind = Kind::kContinue;
  std::string reason;         // "error_rate 9.8% > 5% for 2m (1,234 requests)"
  std::string evidence_json;  // JSON recorded in the history; "" = none
  // Non-empty: there is not enough data to judge ("canary has 12 requests, needs 100"). The
  // canary step or the bake then does not end by time alone: it holds (saying so) until the
  // data arrives, a person promotes it, or it is aborted. Never a silent pass.
  std::string hold;
};

// The database side of a deployment (EngineOptions::database), polled once per Step() while
// a phase is not finished, so a dump or a migration never blocks the engine:
//   "before_launch": in PreChecks, after the pre-deploy checks, before any instance starts
//                    (recreate: in Draining, once the old version stopped; nothing_serves);
//   "after_retire":  in ScalingDown, once the old slot's instances are stopped;
//   "rollback":      in RollingBack, after traffic is back and the new instances are stopped
//                    (rolling: once the old instances are relaunched and alone in the slot;
//                    recreate: with nothing running, before the old version is relaunched).
struct PhaseRequest {
  const state::Deployment* deployment = nullptr;  // valid during the call only
  std::string phase;
  // No version serves while the phase runs (strategy recreate, in Draining): "before_launch"
  // then applies every pending migration, the contract ones too, since no running version
  // needs the old shape; "after_retire" finds nothing left to apply.
  bool nothing_serves = false;
};
struct PhaseStatus {
  // kRunning: poll again (detail says what it waits for). kFailed: before_launch rolls the
  // deployment back; after_retire ends it Succeeded with the failure in its reason (the app
  // is fine; the contract migration is not applied) and the event "warning"; rollback ends it
  // Failed (the database needs a hand: detail says what to do).
  enum class Kind { kDone, kRunning, kFailed };
  Kind kind = Kind::kDone;
  std::string detail;
};

struct EngineOptions {
  // The router's listen address ("127.0.0.1:8080") that smoke checks are sent to with the
  // override header. Required when a spec has smoke checks.
  std::string router_address;
  std::string override_header = "X-Turnout-Slot";  // Default: X-Turnout-Slot
  // Timeout of one readiness probe or smoke request (real time). Default: 1 s
  std::chrono::milliseconds probe_timeout{1000};
  // The longest a Step() blocks waiting for a new instance to exit between probe rounds (real
  // time; it returns at once when an instance exits). Default: 100 ms
  std::chrono::milliseconds probe_wait{100};
  // Sent with the override header by HTTP smoke checks as `X-Turnout-Secret`. Default: none
  std::string override_secret;
  // Called on the engine's thread after the event's transition was recorded. Must return
  // quickly (queue the work); it is never called with the engine's state half-changed.
  // Default: none
  std::function<void(const EngineEvent&)> on_event;
  // Judges the new version in Canary and Baking, at most every spec.analysis_interval; called on
  // the engine's thread inside Step(), so it must return within a bounded time (queries with
  // timeouts). Every verdict other than kContinue is recorded as the step
  // "analysis:<phase>:<step>" with its evidence. Default: none (time alone decides)
  std::function<AnalysisVerdict(const AnalysisRequest&)> analyze;
  // Measures the performance checks of spec.verify (turnoutd: HttpVerifier). Borrowed; must
  // outlive the engine. Default: none (a performance check then fails, saying so)
  Verifier* verifier = nullptr;
  // The database phases (see PhaseRequest). Default: none (no database steps).
  std::function<PhaseStatus(const PhaseRequest&)> database;
  // What users get while a recreate deployment holds the router in maintenance: the page,
  // Retry-After and content type (`enabled` is ignored), read when maintenance goes on. An error
  // keeps the deployment in Draining (the step returns it). Default: none (the router's
  // defaults: Retry-After 30 s, the built-in page)
  std::function<Result<router::MaintenancePolicy>()> maintenance;
  // Who turned maintenance on and why ("bob: disk swap"), asked when a recreate deployment
  // finds it already on; the deployment then leaves it on, and its last transition says so
  // with this text. Default: none ("turned on by hand")
  std::function<std::string()> maintenance_owner;
};

// What Step() did and what the deployment waits for now.
// What a restarted controller knows of the one before it, for the record Resume() writes.
struct RestartFacts {
  // When the previous controller was last known alive (its heartbeat). nullopt: unknown (the
  // record says so, and the time it was down counts as canary/bake time).
  std::optional<state::WallTime> last_alive;
  // How it ended: "crash" (it died without stopping), "stop" (it stopped cleanly). Default: ""
  // (unknown).
  std::string previous_end;
  std::string actor = "turnoutd";  // the audit actor of the record. Default: turnoutd
};

struct StepReport {
  int64_t deployment_id = 0;
  state::DeploymentState state = state::DeploymentState::kPending;
  bool finished = false;    // a terminal state was reached
  std::string waiting_for;  // "waiting for 2 instances of green to be ready (1/2), 12 s left"
};

class Engine {
 public:
  Engine(state::StateStore& store, platform::Platform& platform, router::RouterControl& router,
         Prober& prober, platform::CommandRunner& commands, const Clock& clock,
         EngineOptions options = {});
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Begins a deployment of spec.version: validates the spec, picks the target slot (the one that
  // is not active), records the deployment (Pending) and its spec. AlreadyExists (from the store,
  // naming the deployment in progress) while the service has one; FailedPrecondition when this
  // engine already drives one.
  Result<state::Deployment> Begin(const DeploymentSpec& spec);

  // Takes over the service's interrupted deployment after a restart (see the rule above).
  // Returns nullopt when the service has none. Records what it found and decided, once: the
  // step "resume" and the audit entry "deployment.resume" ({"deployment","revision","version",
  // "state","previous_end","last_alive_ms","down_ms","new_instances","old_instances","ended",
  // "unwatched_ms","decided"}); the "state:<name>", "canary_step:<i>" and "verify:<name>"
  // records the dead controller left running end "interrupted" at facts.last_alive, and the resumed
  // part of the state gets a new record ({"resumed":true}). In Canary and Baking the time between
  // facts.last_alive and now does not count as step or bake time: nobody watched it.
  Result<std::optional<state::Deployment>> Resume(std::string_view service,
                                                  const RestartFacts& facts = {});
  // One line saying what the last Resume() found and decided ("" when it found nothing).
  const std::string& resume_summary() const { return resume_summary_; }

  // Does the next bounded piece of work. FailedPrecondition when there is no deployment.
  Result<StepReport> Step();

  // Starts rolling back the current deployment (the user's `rollback`/`abort`). Switches traffic
  // back at once when the deployment had switched and the old slot is warm. FailedPrecondition
  // when there is no deployment, it is finished, or the old slot is already being scaled down.
  Status RequestRollback(std::string_view reason);

  // The user's `abort`: RequestRollback, recorded with "aborted by <actor>" and the event
  // "aborted" (then "rolled_back" when it ends). Same preconditions.
  Status Abort(std::string_view actor);

  // Thread-safe (any thread): ends a long wait of the thread that steps the engine, so that a
  // command queued behind it (an abort) is taken at once. Today the one such wait is the image
  // pull of the pre-checks: it ends (within about a second) and the step that ran it does
  // nothing and is done again later. Holds until ClearInterrupt (the stepping thread calls it
  // when it takes the command).
  void Interrupt() { interrupt_ = true; }
  void ClearInterrupt() { interrupt_ = false; }

  // The user's `approve` of a deployment in AwaitingApproval: records the approval (actor in the
  // reason) and moves on to Switching. FailedPrecondition in any other state.
  Status Approve(std::string_view actor);

  // In ScalingDown: stop keeping the old slot warm now instead of after scale_down_delay (the
  // daemon calls it when a new deployment is requested and this one only waits to scale down).
  // The drain wait still applies. Kept in memory only: a restarted engine waits the rest of the
  // delay again. FailedPrecondition in any other state.
  Status ExpediteScaleDown(std::string_view reason);

  // The gates of Canary and Baking. FailedPrecondition in any other state (the message names
  // the states that allow it).
  // Pause: the step / bake timer stops (a paused deployment never advances by time); analysis
  // keeps running and can still roll back. Persisted: a restarted engine stays paused. Event
  // "paused". Pausing a paused deployment is OK and does nothing.
  Status Pause(std::string_view actor);
  // Unpause: the timer runs again from where it stopped. Event "resumed". OK when not paused.
  Status Unpause(std::string_view actor);
  // Promote: canary: the next step now (the last one, or `full`: straight to Switching, 100 %);
  // bake: ends the bake now (-> ScalingDown). A pause stays in force. Event "promoted".
  Status Promote(bool full, std::string_view actor);
  bool paused() const { return paused_; }

  bool has_deployment() const { return deployment_.has_value(); }
  // The deployment this engine drives (valid while has_deployment()).
  const state::Deployment& deployment() const { return *deployment_; }

 private:
  struct Instance {
    int64_t record_id = 0;
    int64_t deployment_id = 0;
    std::string slot;
    int index = 0;
    std::string host;  // the allocated address, recorded (the port) before the launch
    uint16_t port = 0;
    std::string version;
    std::optional<platform::InstanceHandle> handle;  // absent: recorded, never launched
    int probe_failures = 0;                          // in a row (bake)
    // The last readiness probe (by clock_) and its answer, for probe_interval.
    std::optional<Clock::TimePoint> last_probe;
    bool last_ready = false;
    // Liveness during the bake: the last probe (by clock_) and the failures in a row.
    std::optional<Clock::TimePoint> last_live_probe;
    int live_failures = 0;
  };

  Status Transition(state::DeploymentState to, std::string reason);
  Result<StepReport> Report(std::string waiting_for);
  Result<StepReport> BeginRollback(std::string reason);
  Status LoadInstances();
  // The first new instance that is not running, with a description; nullopt when all run.
  // `log_tail` (when given) receives the last lines of that instance's log ("" when unknown).
  Result<std::optional<std::string>> FindExited(std::string* log_tail = nullptr);
  Result<bool> ProbeReady(const Instance& instance);
  // Records (the intent first), launches and records the handle of `inst` (slot, index and port
  // set) with `spec`'s command and version for `deployment_id`. The platform's refusal as text
  // (the row is then `failed`), nullopt when it runs.
  Result<std::optional<std::string>> LaunchOne(const DeploymentSpec& spec, int64_t deployment_id,
                                               Instance* inst);
  // ProbeReady when the instance's probe_interval has passed, else its last answer. Sets
  // `probed` when it probed.
  Result<bool> ProbeReadyIfDue(Instance& instance, bool* probed);
  // Bake: GET spec_.liveness_path on `instance` when liveness_interval passed since its last
  // liveness probe; counts the failures in a row. What failed ("GET /live: 503") when the
  // threshold is reached, else nullopt.
  Result<std::optional<std::string>> WatchLiveness(Instance& instance);
  // Records the transition to RollingBack (the fast switch back when the old slot is warm).
  Status StartRollback(std::string reason);
  // Calls options_.on_event (when set) with the current deployment.
  void Emit(std::string_view name, std::string detail, std::string evidence_json = "");
  Result<StepReport> RunPreDeployCheck(const PreDeployCheck& check);
  // Runs one verify check as the step record "verify:<name>"; why it failed, nullopt when it
  // passed. Command output in the record and the reason has the secrets Redact()ed.
  Result<std::optional<std::string>> RunVerifyCheck(const VerifyCheck& check);
  // The newest succeeded revision's (not this deployment's) performance result with `mix_hash`.
  Result<std::optional<Baseline>> FindBaseline(const std::string& mix_hash);
  // `text` with the values of spec_.env and the override secret replaced by "[redacted]".
  std::string Redact(std::string text) const;
  // Runs one smoke check as a step record; the mismatch when it failed, nullopt when it passed.
  Result<std::optional<std::string>> RunSmokeCheck(const SmokeCheck& check);
  void WaitForExit();
  // A pause of probe_wait by the clock (clock_.SleepFor) while the router drains a slot's
  // requests in flight.
  void WaitForDrain() const;
  // StateStore::SetActive unless the service's active slot and revision are `slot` and
  // `revision` already: one switch decision is one "service.switch" audit entry, however often
  // the step that made it runs (a drain wait, a retry, a resumed engine).
  Status RecordActive(const std::string& slot, int64_t revision, std::string reason);
  Status StopInstance(Instance& instance);
  // Why the old slot cannot take traffic back (an old instance ended), or nullopt when it can.
  Result<std::optional<std::string>> OldSlotNotWarm();
  std::vector<std::string> NewAddresses() const;
  Clock::Duration Elapsed() const { return clock_.Now() - entered_; }

  Result<StepReport> StepPreChecks();
  // PreChecks' first look: the platform's image for the version (Platform::ResolveImage),
  // recorded in spec_ and the saved spec. nullopt when the platform has no images.
  Result<std::optional<StepReport>> ResolveImage();
  // Polls EngineOptions::database for `phase`; nullopt when it is done (or there is no hook),
  // else the report to return (still running) or the failure's detail via *failed.
  std::optional<std::string> PollDatabase(const std::string& phase, bool* failed);
  Result<StepReport> StepLaunching();
  Result<StepReport> StepWaitingReady();
  Result<StepReport> StepSmokeTesting();
  Result<StepReport> StepAwaitingApproval();
  Result<StepReport> StepCanary();
  Result<StepReport> StepRolling();
  // Rolling: records which old instances there are and enters Rolling.
  Result<StepReport> BeginRolling();
  // RollingBack of a rolling update: relaunches the replaced old instances, gives the slot the
  // old set again, stops the new ones.
  Result<StepReport> StepRestoringInPlace();
  // Relaunches (from the previous deployment's saved spec) every old instance 0..old_count-1
  // that is not running in `slot` and waits until each is ready. nullopt when all are; else the
  // report to return (waiting, or Failed was recorded with `failed_suffix` appended).
  Result<std::optional<StepReport>> RestoreOldInstances(const std::string& slot,
                                                        const std::string& failed_suffix);
  // Records the old instances of the slot (count, deployment) before any is touched.
  Status RecordOldInstances();
  bool Recreate() const;  // strategy recreate with a slot serving before
  // Recreate: maintenance on, drain, stop the old slot, database before_launch, -> Launching.
  Result<StepReport> BeginDraining();
  Result<StepReport> StepDraining();
  // RollingBack of a recreate that reached Draining: maintenance on, the new slot drained and
  // stopped, the database ladder, the old version back in its slot, traffic back, maintenance
  // off (kept on when the ladder failed, or when it was an operator's).
  Result<StepReport> StepRecreateRollingBack();
  // Sets the router's maintenance on (with EngineOptions::maintenance) or off, keeping every
  // other field of the policy; nothing when it already is.
  Status SetMaintenance(bool on);
  // How long this deployment has held maintenance on (from its Draining transition, wall time).
  Result<Clock::Duration> MaintenanceHeld();
  // The end of a recreate's maintenance (switched, or rolled back): off, with "; maintenance
  // off after N ms" added to `why`; or, when it was on before the deployment began, left on
  // and `why` says so, naming its owner.
  Status LiftMaintenance(std::string* why);
  // "; maintenance stays on as it was before this deployment (<owner>): ..." (maintenance_kept_).
  std::string KeptMaintenanceNote() const;
  // The slot's addresses while instance `index` is replaced: the old ones still running (without
  // old `index` when `drop_old`) and the new ones up to `index` that were ready.
  std::vector<std::string> RollingAddresses(int index, bool drop_old) const;
  bool Rolling() const;  // a rolling update in place (strategy rolling, a slot serving before)
  static Instance* FindInstance(std::vector<Instance>& list, int index);
  // Platform::AllocateAddress for instance `index` of `slot` with `spec`'s placement, never an
  // address another instance of this deployment or the old slot holds.
  Result<platform::InstanceAddress> AllocateAddress(const DeploymentSpec& spec,
                                                    const std::string& slot, int index);
  // Where the router and the probes reach the instance: its handle's address.
  std::string Address(const Instance& instance) const;
  Result<StepReport> StepSwitching();
  Result<StepReport> StepBaking();

  // Canary and bake.
  // After the smoke tests (or the approval): Canary (step 0 recorded first) with the canary
  // strategy and a stable slot to compare with, else Switching.
  Status LeaveSmokeTests(std::string reason);
  // Records canary step `step` (setting first, then memory) as starting now; `apply` sets its
  // weight in the router at once (else the next StepCanary does).
  Status StartCanaryStep(int step, bool apply);
  Status SaveCanaryProgress();
  // Finishes the current step's record "canary_step:<i>" (ok or failed) with how it ended and
  // the evidence; nothing when there is none running.
  Status FinishCanaryStepRecord(bool ok, const std::string& how, const std::string& evidence);
  // Leaves the current canary step: the next step, or Switching after the last. Emits `event`
  // ("canary_step_passed" or "promoted") with `why` and `evidence`.
  Status AdvanceCanary(std::string_view event, std::string why, std::string evidence);
  // Resets the phase timer (a new canary step or the bake) to now.
  void StartPhase();
  // Time in the current canary step / bake, paused time excluded.
  Clock::Duration PhaseElapsed() const;
  // What the analysis is asked about in the current state (Canary, Rolling, else the bake).
  struct PhaseFacts {
    std::string name;  // "canary", "bake", "rolling"
    int step = -1;
    uint32_t weight_bp = kFullWeightBp;
    Clock::Duration duration{};  // 0: no fixed length (rolling)
  };
  PhaseFacts CurrentPhase() const;
  // Consults options_.analyze when it is set and analysis_interval passed since the last time.
  Result<std::optional<AnalysisVerdict>> ConsultAnalysis();
  // ConsultAnalysis, then records the verdict, emits a warning once per reason, holds a
  // promotion while paused or in bake; returns the verdict only when the caller must act on it
  // (kRollback, or kPromote in Canary).
  Result<std::optional<AnalysisVerdict>> Analyze();
  // The step record "analysis:<phase>:<step>" of a verdict; `note` is added when not empty.
  Status RecordVerdict(const AnalysisVerdict& verdict, std::string_view note);
  // Loads the persisted pause and phase timers of the current deployment (Resume).
  Status LoadGates();
  std::string CanaryLabel() const;  // "canary step 2/3 (25 %)"
  Status RequireGateState(std::string_view what) const;
  Result<StepReport> StepScalingDown();
  Result<StepReport> StepRollingBack();
  // The end of a rollback once users are on the old version again (or never left it): the
  // database ladder, then RolledBack; Failed when the ladder failed. (A recreate that reached
  // Draining ends in StepRecreateRollingBack.)
  Result<StepReport> EndRollback();
  // All traffic back on the previous slot (canary cleared) unless it is there already; after a
  // switch, the previous revision recorded as active again.
  Status SwitchBack();

  state::StateStore& store_;
  platform::Platform& platform_;
  router::RouterControl& router_;
  Prober& prober_;
  platform::CommandRunner& commands_;
  const Clock& clock_;
  const EngineOptions options_;

  std::optional<state::Deployment> deployment_;
  DeploymentSpec spec_;
  int64_t previous_revision_ = 0;       // the revision serving before (0 on a first deployment)
  bool switched_ = false;               // the deployment reached Switching (traffic may have moved)
  size_t verify_next_ = 0;              // the next spec_.verify check to run in Baking
  int64_t state_step_id_ = 0;           // the running "state:<name>" step record (0: none)
  size_t pre_deploy_next_ = 0;          // the next spec_.pre_deploy check to run in PreChecks
  bool image_checked_ = false;          // PreChecks asked the platform for the image
  std::atomic<bool> interrupt_{false};  // Interrupt()
  // The instances this state already stopped (ScalingDown: old; RollingBack: new), so that the
  // Steps that poll a database phase afterwards do not stop them again. Reset on entering.
  bool instances_stopped_ = false;
  // Recreate's RollingBack: the ladder's outcome once it ended ("" done, else the failure), so
  // that the Steps relaunching the old version do not poll it again. Reset on entering.
  std::optional<std::string> ladder_;
  size_t old_stopped_ = 0;
  bool expedite_scale_down_ = false;  // ExpediteScaleDown() was called (not persisted)
  std::string expedite_reason_;
  Clock::TimePoint entered_{};  // when the current state was entered (by clock_)
  bool paused_ = false;         // Pause() in force (persisted)
  std::string paused_by_;
  Clock::TimePoint paused_since_{};  // when the pause took effect (by clock_)
  // The phase timer of the current canary step or of the bake.
  Clock::TimePoint phase_started_{};  // by clock_
  state::WallTime phase_started_wall_{};
  Clock::Duration phase_paused_{};  // finished pauses within the phase
  bool canary_started_ = false;     // reached Canary: part of the traffic may be on the new slot
  bool draining_started_ = false;   // reached Draining: this deployment turned maintenance on
  // Recreate: maintenance was on before Draining (an operator's): it stays on (persisted).
  bool maintenance_kept_ = false;
  std::string maintenance_owner_;
  int canary_step_ = 0;
  bool canary_weight_applied_ = false;  // the router has the current step's weight
  int64_t canary_step_record_ = 0;      // the running "canary_step:<i>" step record (0: none)
  std::optional<Clock::TimePoint> last_analysis_;
  std::string hold_;                 // the latest verdict's hold (insufficient data), "" when none
  std::vector<std::string> warned_;  // warning reasons already emitted in this step / bake
  bool promote_held_recorded_ = false;
  std::string last_evidence_;  // of the last verdict in this step / bake
  // Rolling: the instance index being replaced and the new version's share of the slot.
  int rolling_index_ = 0;
  uint32_t rolling_weight_bp_ = 0;
  int rolling_old_count_ = 0;           // old instance indexes 0..count-1 (persisted)
  int64_t rolling_old_deployment_ = 0;  // whose spec relaunches them on a rollback (persisted)
  std::optional<DeploymentSpec> rolling_old_spec_;
  Clock::TimePoint rolling_item_started_{};  // the current launch or relaunch (ready deadline)
  std::vector<Instance> new_instances_;      // this deployment's, in target_slot
  std::vector<Instance> old_instances_;  // live instances of earlier deployments in previous_slot
  std::string resume_summary_;
};

}  // namespace turnout::controller
