// DatabasePhases: the PostgreSQL side of a deployment (turnout.yaml's `database:` section).
//
// The engine polls three phases (controller::EngineOptions::database); each runs as a job on a
// thread of its own, so the engine's Step() never waits on a dump or a migration, and a
// rollback or an abort is taken at once:
//   before_launch (in PreChecks, before any instance starts):
//     1. a backup (pg_dump from an exported snapshot, with its manifest), then its verification
//        at the configured level (2 = a full decode by default; 3 = a restore into a scratch
//        database compared with the manifest);
//     2. the expand migrations: the pending migrations up to the first contract one. An expand
//        migration after a contract one is refused (the new version would start without it):
//        the release must be split. With PhaseRequest::nothing_serves (strategy recreate, the
//        old version stopped): every pending migration, the contract ones too, listed under
//        "contract" in the step's detail; a destructive change of the app's own tool that a
//        rehearsal finds is not held back either.
//   after_retire (in ScalingDown, once the old slot is stopped, so no live version needs the
//   old shape): the remaining (contract) migrations (none left after a recreate).
//   rollback (in RollingBack, after traffic is back on the old version and the new version's
//   instances are stopped; a recreate's with nothing running), the ladder:
//     1. nothing applied by this deployment, or only expand migrations: the database stays (the
//        old version works with an expanded schema);
//     2. otherwise: the down migrations of what this deployment applied, after a fresh verified
//        backup (it holds the writes made under the new version), and only when they destroy
//        no data or the rollback was confirmed (CheckDown);
//     3. when that is impossible (no down file, a down migration fails): nothing automatic. The
//        phase fails with the restore command to run by hand, which names the backup and makes
//        the operator confirm the loss of the writes made since.
// A redeploy of an earlier revision (its schema in the setting "target_version") goes back by
// the same ladder in before_launch: a verified backup first, then CheckDown (data loss, and the
// serving version broken by the down files), then the down migrations, before any instance of
// the earlier revision starts.
// Each phase is recorded as steps "database:<what>" of the deployment (with the backup id,
// the migrations applied and the rung taken) and in the audit log; its outcome is kept in the
// setting "daemon.db.<deployment id>.<phase>", so a restarted daemon does not redo a finished
// phase. A phase interrupted by a crash runs again: backups are cheap to retake, and migrations
// are transactional (or resume statement by statement), so a rerun continues where it stopped.
//
// Thread-safety: Poll() is called from the engine's thread; the jobs use their own connections.

#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "controller/engine.h"
#include "db/migrator.h"
#include "service/service_config.h"
#include "state/state_store.h"

namespace turnout::daemon {

struct DatabaseSettings {
  std::string url;                               // libpq conninfo or URL; "" = no database section
  std::string migrations_dir;                    // absolute
  std::string backups_dir;                       // absolute
  int verify_level = 2;                          // 1..3
  bool directory_format = true;                  // pg_dump -Fd (else -Fc)
  int jobs = 1;                                  // pg_dump / pg_restore -j
  std::chrono::milliseconds lock_timeout{5000};  // per migration statement
  bool rehearse = false;                         // rehearse before applying (turnout rehearse)
  std::chrono::milliseconds lock_budget{1000};   // the rehearsal's lock budget
  // `tool: command`: the app's own migration tool, through these command templates ({version}:
  // the deployment's version; {to}: a version `status` printed). Empty `up`: turnout's own
  // migrations (migrations_dir).
  std::string tool_up;
  std::string tool_status;
  std::string tool_down;  // "" = none
  std::chrono::milliseconds tool_timeout{600000};
  bool command_tool() const { return !tool_up.empty(); }
};

// The settings of `config`'s `database:` section: migrations and backups resolved against
// `config_dir` (backups default to `<state_dir>/backups`), the URL read from the environment
// variable `url_env` names. nullopt without the section; FailedPrecondition (saying what to
// set) when url_env names an unset variable. turnoutd calls it for each deployment, so what a
// deployment does is what turnout.yaml says at the time it begins.
Result<std::optional<DatabaseSettings>> DatabaseSettingsFromConfig(
    const service::ServiceConfig& config, const std::string& config_dir,
    const std::string& state_dir);

class DatabasePhases {
 public:
  using Logger = std::function<void(const std::string&)>;
  // `store` must outlive the object.
  DatabasePhases(DatabaseSettings settings, state::StateStore& store, Logger log);
  ~DatabasePhases();  // waits for a running job (each is bounded by its own timeouts)
  DatabasePhases(const DatabasePhases&) = delete;
  DatabasePhases& operator=(const DatabasePhases&) = delete;

  controller::PhaseStatus Poll(const controller::PhaseRequest& request);

 private:
  struct Job {
    std::thread thread;
    std::mutex mu;
    bool finished = false;
    controller::PhaseStatus result;
    std::string progress;
  };

  // `nothing_serves` (recreate): every pending migration runs, the contract ones too.
  controller::PhaseStatus RunBeforeLaunch(const state::Deployment& d, Job& job,
                                          bool nothing_serves);
  controller::PhaseStatus RunAfterRetire(const state::Deployment& d, Job& job);
  controller::PhaseStatus RunRollback(const state::Deployment& d, Job& job);
  // The same phases with the app's own tool (settings_.command_tool()).
  // `nothing_serves` (recreate): a destructive change the rehearsal finds is not held back.
  controller::PhaseStatus RunToolBeforeLaunch(const state::Deployment& d, Job& job,
                                              bool nothing_serves);
  controller::PhaseStatus RunToolAfterRetire(const state::Deployment& d, Job& job);
  // `to_target`: a redeploy's before_launch, back to the earlier revision's version; else the
  // rollback phase, back to where this deployment started.
  controller::PhaseStatus RunToolRollback(const state::Deployment& d, Job& job, bool to_target);
  // Runs the tool's command `command` (a template) for `d` in the environment of d's version:
  // its spec's working directory and environment, plus DATABASE_URL; {version} and {to}
  // replaced. Its output on success; FailedPrecondition with how it ended and its last lines.
  // `url`: the database instead of the configured one (a rehearsal's restored copy).
  Result<std::string> RunTool(const state::Deployment& d, const std::string& command,
                              const std::string& to, const std::string& url = "");
  // Runs `command` between two schema fingerprints; the change it made, as the step detail
  // {"command", "from", "to", "tables", "change": none|additive|destructive, "destructive"}.
  Result<nlohmann::json> RunToolMeasured(const state::Deployment& d, const std::string& command,
                                         const std::string& to, const std::string& url = "");
  // A backup of the database (with its manifest), verified at the configured level, recorded
  // as the steps database:backup and database:verify; its id. The error says what failed.
  Result<std::string> BackupAndVerify(const state::Deployment& d, Job& job);
  // Before the down migrations of `versions` (newest first) run: what they drop, with row
  // counts, and which of them break the version serving now. Refused (FailedPrecondition,
  // recorded as database:rollback with that evidence) when they destroy data and the rollback
  // was not started with confirm_data_loss, or when they break the serving version (no order
  // of the steps keeps every version on a schema it supports) without
  // confirm_unsupported_schema. `serving_breaks` is false for the ladder of a deployment's own
  // rollback: the version serving then is the one the down migrations go back to.
  // `step` is the database:rollback step begun for the down migrations.
  Status CheckDown(const state::Deployment& d, const std::vector<int64_t>& versions,
                   const std::string& backup_id, bool serving_breaks, int64_t step,
                   nlohmann::json* effects);
  // The step "database:<step>" of a deployment, recorded as running from now (when the work
  // starts, so that its duration is the work's); its id, 0 when the store could not record it.
  int64_t Begin(int64_t deployment_id, const std::string& step);
  // Finishes the step begun as `started` (0: begun and finished now, for a decision that takes
  // no time), with its audit entry and log line.
  void Record(int64_t deployment_id, const std::string& step, bool ok, const std::string& detail,
              int64_t started = 0);
  // The migrator's options for deployment `d` (database, directory, lock timeout, its id).
  db::MigratorOptions MigratorFor(const state::Deployment& d) const;
  // The setting "daemon.db.<id>.<what>", as text or as a schema version; nullopt when unset.
  std::optional<std::string> Setting(int64_t id, const std::string& what) const;
  std::optional<int64_t> VersionSetting(int64_t id, const std::string& what) const;

  const DatabaseSettings settings_;
  state::StateStore& store_;
  Logger log_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;  // "<id>.<phase>"; engine thread only
};

}  // namespace turnout::daemon
