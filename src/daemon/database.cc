#include "daemon/database.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "backup/backup.h"
#include "backup/catalog.h"
#include "controller/deployment_spec.h"
#include "db/lint.h"
#include "db/migration.h"
#include "db/migrator.h"
#include "db/pg.h"
#include "platform/command.h"
#include "platform/run.h"
#include "rehearsal/rehearsal.h"

namespace turnout::daemon {
namespace {

using nlohmann::json;
using Kind = controller::PhaseStatus::Kind;

std::string SettingKey(int64_t id, const std::string& what) {
  return "daemon.db." + std::to_string(id) + "." + what;
}

controller::PhaseStatus Done(std::string detail) {
  return controller::PhaseStatus{Kind::kDone, std::move(detail)};
}
controller::PhaseStatus Failed(std::string detail) {
  return controller::PhaseStatus{Kind::kFailed, std::move(detail)};
}

// The migrations of `steps` by their file labels ("0001_add_note"), in order: the one type of
// the steps' "applied" and "reverted" fields (an empty array when there were none).
json Labels(const std::vector<db::PlanStep>& steps) {
  json out = json::array();
  for (const auto& s : steps) out.push_back(db::MigrationLabel(s.version, s.name));
  return out;
}

// The same for people: "0001_add_note, 0002_drop_old_name".
std::string Versions(const std::vector<db::PlanStep>& steps) {
  std::string out;
  for (const auto& label : Labels(steps)) {
    out += (out.empty() ? "" : ", ") + label.get<std::string>();
  }
  return out;
}

// The last non-empty line of a command's output, without trailing blanks (what `status` says).
std::string LastLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  const size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

}  // namespace

Result<std::optional<DatabaseSettings>> DatabaseSettingsFromConfig(
    const service::ServiceConfig& config, const std::string& config_dir,
    const std::string& state_dir) {
  const service::DatabaseConfig& c = config.database;
  if (!c.enabled()) return std::optional<DatabaseSettings>();
  DatabaseSettings ds;
  ds.url = c.url;
  if (!c.url_env.empty()) {
    const char* url = std::getenv(c.url_env.c_str());
    if (url == nullptr || *url == '\0') {
      return FailedPrecondition("database.url_env names " + c.url_env +
                                ", which is not set in turnoutd's environment; set it (or use "
                                "database.url) and start turnoutd again");
    }
    ds.url = url;
  }
  const std::filesystem::path base(config_dir);
  ds.migrations_dir = (base / c.migrations).lexically_normal().string();
  ds.backups_dir =
      c.backups.empty() ? state_dir + "/backups" : (base / c.backups).lexically_normal().string();
  ds.verify_level = c.verify_level;
  ds.directory_format = c.format != "custom";
  ds.jobs = c.jobs;
  ds.lock_timeout = c.lock_timeout;
  ds.rehearse = c.rehearse;
  ds.lock_budget = c.lock_budget;
  if (c.command_tool()) {
    ds.tool_up = c.up;
    ds.tool_status = c.status;
    ds.tool_down = c.down;
    ds.tool_timeout = c.tool_timeout;
  }
  return std::optional<DatabaseSettings>(std::move(ds));
}

DatabasePhases::DatabasePhases(DatabaseSettings settings, state::StateStore& store, Logger log)
    : settings_(std::move(settings)), store_(store), log_(std::move(log)) {}

DatabasePhases::~DatabasePhases() {
  for (auto& [key, job] : jobs_) {
    if (job->thread.joinable()) job->thread.join();
  }
}

int64_t DatabasePhases::Begin(int64_t deployment_id, const std::string& step) {
  Result<int64_t> id = store_.BeginStep(deployment_id, "database:" + step, "{}");
  return id.ok() ? *id : 0;
}

void DatabasePhases::Record(int64_t deployment_id, const std::string& step, bool ok,
                            const std::string& detail, int64_t started) {
  const int64_t id = started != 0 ? started : Begin(deployment_id, step);
  if (id != 0) {
    (void)store_.FinishStep(id, ok ? state::StepOutcome::kOk : state::StepOutcome::kFailed, detail);
  }
  (void)store_.AppendAudit(state::AuditEvent{"turnoutd", "database." + step, "deployment", detail});
  if (log_)
    log_("deployment " + std::to_string(deployment_id) + ": database " + step + " " +
         (ok ? "ok" : "FAILED") + " " + detail);
}

db::MigratorOptions DatabasePhases::MigratorFor(const state::Deployment& d) const {
  db::MigratorOptions mo;
  mo.database = settings_.url;
  mo.dir = settings_.migrations_dir;
  mo.lock_timeout = settings_.lock_timeout;
  mo.deployment_id = std::to_string(d.id);
  return mo;
}

std::optional<std::string> DatabasePhases::Setting(int64_t id, const std::string& what) const {
  Result<std::optional<std::string>> v = store_.GetSetting(SettingKey(id, what));
  return v.ok() ? *v : std::nullopt;
}

std::optional<int64_t> DatabasePhases::VersionSetting(int64_t id, const std::string& what) const {
  std::optional<std::string> v = Setting(id, what);
  if (!v) return std::nullopt;
  return std::atoll(v->c_str());
}

controller::PhaseStatus DatabasePhases::Poll(const controller::PhaseRequest& request) {
  const state::Deployment& d = *request.deployment;
  const std::string key = std::to_string(d.id) + "." + request.phase;
  auto it = jobs_.find(key);
  if (it == jobs_.end()) {
    // A phase that finished before a restart is not run again.
    if (std::optional<std::string> saved = Setting(d.id, request.phase)) {
      json j = json::parse(*saved, nullptr, false);
      if (j.is_object()) {
        return controller::PhaseStatus{j.value("ok", false) ? Kind::kDone : Kind::kFailed,
                                       j.value("detail", std::string())};
      }
    }
    auto job = std::make_unique<Job>();
    Job* raw = job.get();
    const state::Deployment copy = d;
    const std::string phase = request.phase;
    const bool nothing_serves = request.nothing_serves;
    raw->progress = phase == "before_launch"  ? "taking a backup of the database"
                    : phase == "after_retire" ? "applying the contract migrations"
                                              : "rolling the database back";
    raw->thread = std::thread([this, raw, copy, phase, nothing_serves] {
      const bool tool = settings_.command_tool();
      controller::PhaseStatus r =
          phase == "before_launch" ? (tool ? RunToolBeforeLaunch(copy, *raw, nothing_serves)
                                           : RunBeforeLaunch(copy, *raw, nothing_serves))
          : phase == "after_retire"
              ? (tool ? RunToolAfterRetire(copy, *raw) : RunAfterRetire(copy, *raw))
              : (tool ? RunToolRollback(copy, *raw, false) : RunRollback(copy, *raw));
      (void)store_.PutSetting(SettingKey(copy.id, phase),
                              json{{"ok", r.kind == Kind::kDone}, {"detail", r.detail}}.dump());
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->result = std::move(r);
      raw->finished = true;
    });
    it = jobs_.emplace(key, std::move(job)).first;
  }
  Job& job = *it->second;
  std::lock_guard<std::mutex> lock(job.mu);
  if (!job.finished) return controller::PhaseStatus{Kind::kRunning, job.progress};
  if (job.thread.joinable()) job.thread.join();
  return job.result;
}

Result<std::string> DatabasePhases::BackupAndVerify(const state::Deployment& d, Job& job) {
  auto progress = [&job](std::string text) {
    std::lock_guard<std::mutex> lock(job.mu);
    job.progress = std::move(text);
  };
  backup::BackupEnv env;
  env.backups_dir = settings_.backups_dir;
  env.on_progress = [&](const backup::Progress& p) { progress("backup: " + p.message); };
  backup::CreateOptions co;
  co.conninfo = settings_.url;
  co.format =
      settings_.directory_format ? backup::DumpFormat::kDirectory : backup::DumpFormat::kCustom;
  co.jobs = settings_.jobs;
  co.labels = {{"deployment_id", std::to_string(d.id)}, {"version", d.version}};
  const int64_t backup_step = Begin(d.id, "backup");
  Result<backup::Manifest> manifest = backup::CreateBackup(env, co);
  if (!manifest.ok()) {
    Record(d.id, "backup", false, json{{"error", manifest.status().message()}}.dump(), backup_step);
    return FailedPrecondition("backup failed: " + manifest.status().message());
  }
  (void)store_.PutSetting(SettingKey(d.id, "backup"), manifest->id);
  Record(d.id, "backup", true,
         json{{"backup", manifest->id},
              {"size_bytes", manifest->size_bytes},
              {"duration_ms", manifest->duration_ms},
              {"tables", manifest->row_counts.size()}}
             .dump(),
         backup_step);
  progress("verifying backup " + manifest->id + " (level " +
           std::to_string(settings_.verify_level) + ")");
  backup::VerifyOptions vo;
  vo.level = settings_.verify_level;
  vo.conninfo = settings_.url;
  vo.jobs = settings_.jobs;
  const int64_t verify_step = Begin(d.id, "verify");
  Result<backup::VerifyReport> verified = backup::VerifyBackup(env, manifest->id, vo);
  if (!verified.ok() || !verified->ok) {
    const std::string why = !verified.ok()               ? verified.status().message()
                            : verified->problems.empty() ? "verification failed"
                                                         : verified->problems.front();
    Record(d.id, "verify", false, json{{"backup", manifest->id}, {"error", why}}.dump(),
           verify_step);
    return FailedPrecondition("backup " + manifest->id + " did not verify: " + why);
  }
  Record(d.id, "verify", true,
         json{{"backup", manifest->id}, {"level", verified->level_reached}}.dump(), verify_step);
  return manifest->id;
}

Status DatabasePhases::CheckDown(const state::Deployment& d, const std::vector<int64_t>& versions,
                                 const std::string& backup_id, bool serving_breaks, int64_t step,
                                 json* effects) {
  auto fail = [&](const Status& st) {
    Record(d.id, "rollback", false, json{{"error", st.message()}}.dump(), step);
    return st;
  };
  Result<std::vector<db::Migration>> all = db::LoadMigrations(settings_.migrations_dir);
  if (!all.ok()) return fail(all.status());
  Result<db::PgConnection> conn = db::PgConnection::Connect(settings_.url, "turnoutd");
  if (!conn.ok()) return fail(conn.status());
  json drops = json::array();
  json breaking = json::array();
  bool destroys = false;
  std::string lost;  // "items.note (10 values), table audit (3 rows)"
  for (const int64_t version : versions) {
    auto m = std::find_if(all->begin(), all->end(),
                          [version](const db::Migration& x) { return x.version == version; });
    if (m == all->end() || !m->down) continue;
    const std::string label = db::MigrationLabel(m->version, m->name);
    for (const db::LintFinding& f : db::LintMigrationFile(*m->down).findings) {
      if (f.contract) breaking.push_back(label + ": " + f.message);
      if (f.rule != db::kRuleDropTable && f.rule != db::kRuleDropColumn) continue;
      // The data the statement destroys: a table's rows, a column's non-NULL values. -1 when
      // it cannot be counted (counted as a loss: nothing is assumed empty).
      std::string sql = "SELECT count(*) FROM " + conn->QuoteIdentifier(f.table);
      if (!f.column.empty()) sql += " WHERE " + conn->QuoteIdentifier(f.column) + " IS NOT NULL";
      Result<db::PgRows> rows = conn->Exec(sql);
      const int64_t n = rows.ok() && rows->size() == 1 ? std::atoll(rows->text(0, 0).c_str()) : -1;
      json drop = {{"migration", label}, {"table", f.table}, {"rows", n}};
      if (!f.column.empty()) drop["column"] = f.column;
      drops.push_back(drop);
      if (n != 0) {
        destroys = true;
        lost += (lost.empty() ? "" : ", ") +
                (f.column.empty() ? "table " + f.table : f.table + "." + f.column) + " (" +
                (n < 0 ? std::string("uncounted") : std::to_string(n)) +
                (f.column.empty() ? " rows)" : " values)");
      }
    }
  }
  *effects = json{{"drops", drops},
                  {"breaks_serving", serving_breaks ? breaking : json::array()},
                  {"backup", backup_id}};
  const json confirmed = json::parse(Setting(d.id, "confirm").value_or("{}"), nullptr, false);
  const bool data_loss_ok = confirmed.is_object() && confirmed.value("data_loss", false);
  const bool unsupported_ok = confirmed.is_object() && confirmed.value("unsupported_schema", false);
  std::string refused;
  if (destroys && !data_loss_ok) {
    refused =
        "the down migrations would destroy data: " + lost + " (backup " + backup_id + " holds it)" +
        (serving_breaks ? ". Run the rollback again with --confirm-data-loss to go ahead" : "");
  } else if (serving_breaks && !breaking.empty() && !unsupported_ok) {
    refused =
        "no order of the steps keeps every version on a schema it supports: the down "
        "migrations break the version serving now (" +
        breaking.front().get<std::string>() +
        "), and the version rolled back to needs them before it starts; it would serve "
        "on the reverted schema until the switch. Run the rollback again with "
        "--confirm-unsupported-schema to go ahead (backup " +
        backup_id + " was taken)";
  }
  if (refused.empty()) return Status::Ok();
  json detail = *effects;
  detail["refused"] = refused;
  Record(d.id, "rollback", false, detail.dump(), step);
  return FailedPrecondition(refused);
}

controller::PhaseStatus DatabasePhases::RunBeforeLaunch(const state::Deployment& d, Job& job,
                                                        bool nothing_serves) {
  auto progress = [&job](std::string text) {
    std::lock_guard<std::mutex> lock(job.mu);
    job.progress = std::move(text);
  };
  db::MigratorOptions mo = MigratorFor(d);
  mo.app_version_to = d.version;
  db::Migrator before(mo);
  Result<db::StatusReport> status = before.Status();
  if (!status.ok()) return Failed("cannot read the migration state: " + status.status().message());
  (void)store_.PutSetting(SettingKey(d.id, "from_version"),
                          std::to_string(status->current.value_or(0)));

  // A rollback to an earlier revision: the schema goes back to the one that revision served
  // with, by the ladder (expand-only differences stay; else down migrations; else a restore,
  // by hand). No down migration runs before a verified backup holds the data as it is now.
  std::optional<std::string> backup_id;
  if (std::optional<int64_t> target_version = VersionSetting(d.id, "target_version")) {
    const int64_t target = *target_version;
    const int64_t current = status->current.value_or(0);
    if (current > target) {
      std::vector<const db::VersionStatus*> newer;
      for (const auto& v : status->versions) {
        if (v.version > target && v.state == db::VersionState::kApplied) newer.push_back(&v);
      }
      const bool expand_only = std::all_of(newer.begin(), newer.end(), [](const auto* v) {
        return v->classification == db::MigrationClass::kExpand;
      });
      const bool downs =
          std::all_of(newer.begin(), newer.end(), [](const auto* v) { return v->has_down; });
      if (expand_only) {
        Record(
            d.id, "rollback", true,
            json{{"rung", 1}, {"action", "kept expand-only changes"}, {"target", target}}.dump());
      } else if (downs) {
        Result<std::string> taken = BackupAndVerify(d, job);
        if (!taken.ok()) return Failed(taken.status().message());
        backup_id = *taken;
        std::vector<int64_t> versions;
        for (auto it = newer.rbegin(); it != newer.rend(); ++it) versions.push_back((*it)->version);
        json effects;
        const int64_t step = Begin(d.id, "rollback");
        if (Status checked = CheckDown(d, versions, *backup_id, true, step, &effects);
            !checked.ok()) {
          return Failed("rung 2 refused: " + checked.message());
        }
        progress("running down migrations to " + std::to_string(target));
        Result<db::RunResult> down = before.Down(target);
        if (!down.ok()) {
          effects["rung"] = 2;
          effects["error"] = down.status().message();
          Record(d.id, "rollback", false, effects.dump(), step);
          return Failed("rung 2: the down migrations to " + std::to_string(target) +
                        " failed: " + down.status().message() +
                        "; nothing was restored automatically: restore backup " + *backup_id +
                        " (taken just before) with `turnout backup restore " + *backup_id +
                        " --to <url> --confirm-data-loss`");
        }
        effects["rung"] = 2;
        effects["action"] = "down migrations";
        effects["reverted"] = Labels(down->done);
        Record(d.id, "rollback", true, effects.dump(), step);
      } else {
        Record(d.id, "rollback", false,
               json{{"rung", 3}, {"action", "restore needed"}, {"target", target}}.dump());
        return Failed("rung 3: the schema is at " + std::to_string(current) + " and revision " +
                      "needs " + std::to_string(target) +
                      ", with a contract migration that has "
                      "no down file in between; nothing was restored automatically. Restore the "
                      "backup taken before that migration (`turnout backup list`) with `turnout "
                      "backup restore ID --to <url> --confirm-data-loss` (writes made since are "
                      "lost), then roll back again");
      }
    }
  }

  // 1. Backup and verification (already taken when down migrations ran).
  if (!backup_id) {
    Result<std::string> taken = BackupAndVerify(d, job);
    if (!taken.ok()) return Failed(taken.status().message());
    backup_id = *taken;
  }
  backup::BackupEnv env;
  env.backups_dir = settings_.backups_dir;

  // 2. Optionally, a rehearsal of every pending migration on a restore of that backup: a lock
  //    over budget, a rewrite or a broken down file stops here, before anything changed.
  if (settings_.rehearse) {
    progress("rehearsing the pending migrations on a restore of " + *backup_id);
    rehearsal::RehearsalOptions ro;
    ro.backup_id = *backup_id;
    ro.migrations_dir = settings_.migrations_dir;
    ro.server = settings_.url;
    ro.jobs = std::max(1, settings_.jobs);
    ro.lock_budget = settings_.lock_budget;
    ro.on_progress = [&](const std::string&, const std::string& line) {
      progress("rehearsal: " + line);
    };
    const int64_t rehearse_step = Begin(d.id, "rehearse");
    Result<rehearsal::RehearsalReport> report = rehearsal::Rehearse(env, ro);
    if (!report.ok()) {
      Record(d.id, "rehearse", false, json{{"error", report.status().message()}}.dump(),
             rehearse_step);
      return Failed("the rehearsal could not run: " + report.status().message());
    }
    json findings = json::array();
    for (const auto& f : report->findings) {
      findings.push_back(
          {{"kind", f.kind}, {"version", f.version}, {"message", f.message}, {"advice", f.advice}});
    }
    Record(d.id, "rehearse", report->ok(),
           json{{"backup", *backup_id},
                {"total_ms", report->total_ms},
                {"migrations", report->migrations.size()},
                {"findings", findings}}
               .dump(),
           rehearse_step);
    if (!report->ok()) {
      const auto& f = report->findings.front();
      return Failed("the rehearsal found " + std::to_string(report->findings.size()) +
                    " problem(s); first: " + f.message +
                    (f.advice.empty() ? "" : " (" + f.advice + ")") + "; `turnout rehearse " +
                    *backup_id + "` shows them all");
    }
  }

  // 3. The expand migrations: pending ones up to the first contract one. With nothing serving
  //    (recreate) every pending one: no running version needs the old shape.
  mo.backup_id = *backup_id;
  db::Migrator migrator(mo);
  const int64_t expand_step = Begin(d.id, "expand");
  Result<std::vector<db::PlanStep>> plan = migrator.PlanUp(std::nullopt);
  if (!plan.ok()) {
    Record(d.id, "expand", false, json{{"error", plan.status().message()}}.dump(), expand_step);
    return Failed("cannot plan the migrations: " + plan.status().message());
  }
  std::optional<int64_t> last_expand;
  bool contract_seen = false;
  const std::optional<int64_t> ceiling = VersionSetting(d.id, "target_version");
  for (const auto& step : *plan) {
    if (ceiling && step.version > *ceiling) break;  // a rollback stays at its revision's schema
    if (nothing_serves) {
      last_expand = step.version;
    } else if (step.classification == db::MigrationClass::kContract) {
      contract_seen = true;
    } else if (contract_seen) {
      Record(d.id, "expand", false, json{{"error", "expand after contract"}}.dump(), expand_step);
      return Failed("migration " + std::to_string(step.version) + "_" + step.name +
                    " (expand) comes after a contract migration: the new version would start "
                    "without it. Split the release: deploy the expand migrations first, the "
                    "contract ones with a later version");
    } else {
      last_expand = step.version;
    }
  }
  if (!last_expand) {
    Record(d.id, "expand", true, json{{"applied", json::array()}}.dump(), expand_step);
    return Done("backup " + *backup_id + " verified; no expand migration to apply");
  }
  progress("applying expand migrations up to " + std::to_string(*last_expand));
  Result<db::RunResult> run = migrator.Up(*last_expand);
  if (!run.ok()) {
    Record(d.id, "expand", false, json{{"error", run.status().message()}}.dump(), expand_step);
    return Failed("expand migrations failed: " + run.status().message());
  }
  json applied = {{"applied", Labels(run->done)}};
  if (nothing_serves) {
    // Which of them are contract migrations, run now rather than after the retire.
    std::vector<db::PlanStep> contract;
    for (const auto& step : run->done) {
      if (step.classification == db::MigrationClass::kContract) contract.push_back(step);
    }
    applied["contract"] = Labels(contract);
    applied["note"] = "nothing serves (recreate): the contract migrations run before the launch";
  }
  Record(d.id, "expand", true, applied.dump(), expand_step);
  return Done("backup " + *backup_id + " verified; applied " + Versions(run->done));
}

controller::PhaseStatus DatabasePhases::RunAfterRetire(const state::Deployment& d, Job& job) {
  db::MigratorOptions mo = MigratorFor(d);
  mo.app_version_to = d.version;
  mo.backup_id = Setting(d.id, "backup").value_or("");
  db::Migrator migrator(mo);
  const int64_t step = Begin(d.id, "contract");
  // A rollback to an earlier revision stays at that revision's schema.
  const std::optional<int64_t> ceiling = VersionSetting(d.id, "target_version");
  if (ceiling) {
    Result<db::StatusReport> now = migrator.Status();
    if (now.ok() && now->current.value_or(0) >= *ceiling) {
      (void)store_.PutSetting(SettingKey(d.id, "version_after"),
                              std::to_string(now->current.value_or(0)));
      Record(d.id, "contract", true, json{{"applied", json::array()}, {"held_at", *ceiling}}.dump(),
             step);
      return Done("schema kept at " + std::to_string(*ceiling) + " (rollback)");
    }
  }
  Result<db::RunResult> run = migrator.Up(ceiling);
  if (!run.ok()) {
    Record(d.id, "contract", false, json{{"error", run.status().message()}}.dump(), step);
    return Failed("contract migrations failed: " + run.status().message());
  }
  Record(d.id, "contract", true, json{{"applied", Labels(run->done)}}.dump(), step);
  // The schema this revision serves with: what `rollback --to` this revision goes back to.
  (void)store_.PutSetting(SettingKey(d.id, "version_after"),
                          std::to_string(run->current.value_or(0)));
  return Done(run->done.empty() ? "no contract migration" : "applied " + Versions(run->done));
}

controller::PhaseStatus DatabasePhases::RunRollback(const state::Deployment& d, Job& job) {
  db::Migrator migrator(MigratorFor(d));
  Result<db::StatusReport> status = migrator.Status();
  if (!status.ok()) return Failed("cannot read the migration state: " + status.status().message());
  // What this deployment applied and is still applied.
  std::vector<const db::VersionStatus*> applied;
  for (const auto& v : status->versions) {
    if (v.state != db::VersionState::kApplied || !v.last) continue;
    if (v.last->deployment_id == std::to_string(d.id) && v.last->direction == db::Direction::kUp) {
      applied.push_back(&v);
    }
  }
  if (applied.empty()) {
    Record(d.id, "rollback", true, json{{"rung", 1}, {"action", "unchanged"}}.dump());
    return Done("the database was not changed by this deployment");
  }
  const bool expand_only = std::all_of(applied.begin(), applied.end(), [](const auto* v) {
    return v->classification == db::MigrationClass::kExpand;
  });
  if (expand_only) {
    Record(d.id, "rollback", true,
           json{{"rung", 1}, {"action", "kept expand-only changes"}, {"migrations", applied.size()}}
               .dump());
    return Done("rung 1: the expand-only migrations stay; the previous version works with them");
  }
  const int64_t from = VersionSetting(d.id, "from_version").value_or(0);
  const std::string backup_id = Setting(d.id, "backup").value_or("(none)");
  const bool downs =
      std::all_of(applied.begin(), applied.end(), [](const auto* v) { return v->has_down; });
  if (downs) {
    // The writes made under this deployment are in no backup yet: one is taken and verified
    // before a down migration may drop them.
    Result<std::string> taken = BackupAndVerify(d, job);
    if (!taken.ok()) {
      Record(d.id, "rollback", false,
             json{{"rung", 2}, {"error", taken.status().message()}}.dump());
      return Failed("rung 2 not started: " + taken.status().message());
    }
    std::vector<int64_t> versions;
    for (auto it = applied.rbegin(); it != applied.rend(); ++it) versions.push_back((*it)->version);
    json effects;
    const int64_t step = Begin(d.id, "rollback");
    if (Status checked = CheckDown(d, versions, *taken, false, step, &effects); !checked.ok()) {
      return Failed("rung 2 refused: " + checked.message() +
                    "; until then nothing was changed (`turnout migrate down --to " +
                    std::to_string(from) + "` runs them by hand)");
    }
    {
      std::lock_guard<std::mutex> lock(job.mu);
      job.progress = "running down migrations to " + std::to_string(from);
    }
    Result<db::RunResult> run = migrator.Down(from);
    effects["rung"] = 2;
    if (run.ok()) {
      effects["action"] = "down migrations";
      effects["reverted"] = Labels(run->done);
      Record(d.id, "rollback", true, effects.dump(), step);
      return Done("rung 2: reverted " + Versions(run->done) + " with their down migrations");
    }
    effects["error"] = run.status().message();
    Record(d.id, "rollback", false, effects.dump(), step);
  }
  const std::string restore =
      "turnout backup restore " + backup_id + " --to <database URL> --confirm-data-loss";
  Record(d.id, "rollback", false,
         json{{"rung", 3}, {"action", "restore needed"}, {"backup", backup_id}}.dump());
  return Failed("rung 3: the database cannot be rolled back with down migrations" +
                std::string(downs ? " (one failed)" : " (a down file is missing)") +
                "; nothing was restored automatically. To restore the backup taken before "
                "this deployment (writes made since are lost): " +
                restore);
}

// ---- the app's own migration tool (`tool: command`) ----------------------------------------

Result<std::string> DatabasePhases::RunTool(const state::Deployment& d, const std::string& command,
                                            const std::string& to, const std::string& url) {
  Result<std::optional<std::string>> saved =
      store_.GetSetting("controller.spec." + std::to_string(d.id));
  if (!saved.ok() || !*saved) return NotFound("the spec of deployment " + std::to_string(d.id));
  TURNOUT_ASSIGN_OR_RETURN(controller::DeploymentSpec spec, controller::DecodeSpec(**saved));
  if (spec.platform == "container") {
    return FailedPrecondition(
        "database.tool: command runs the tool as a process in the version's working directory; "
        "with containers it is not supported yet: use the SQL migrations (remove tool, up, "
        "status and down) or run the tool yourself before `turnout deploy`");
  }
  TURNOUT_ASSIGN_OR_RETURN(std::vector<std::string> words, platform::SplitCommand(command));
  for (std::string& w : words) {
    for (const auto& [key, value] :
         {std::pair<std::string, std::string>{"{version}", d.version}, {"{to}", to}}) {
      for (size_t at = w.find(key); at != std::string::npos; at = w.find(key, at + value.size())) {
        w.replace(at, key.size(), value);
      }
    }
  }
  platform::RunSpec rs;
  rs.argv = std::move(words);
  rs.working_dir = spec.working_dir;
  rs.env = spec.env;
  rs.env.emplace_back("DATABASE_URL", url.empty() ? settings_.url : url);
  rs.timeout = settings_.tool_timeout;
  TURNOUT_ASSIGN_OR_RETURN(platform::RunResult run, platform::RunCommand(rs));
  if (!run.ok()) {
    return FailedPrecondition("`" + command + "` " + run.Describe() + ": " + run.Tail(5));
  }
  return run.output;
}

Result<json> DatabasePhases::RunToolMeasured(const state::Deployment& d, const std::string& command,
                                             const std::string& to, const std::string& url) {
  TURNOUT_ASSIGN_OR_RETURN(
      db::PgConnection conn,
      db::PgConnection::Connect(url.empty() ? settings_.url : url, "turnoutd"));
  TURNOUT_ASSIGN_OR_RETURN(std::string from, RunTool(d, settings_.tool_status, "", url));
  TURNOUT_ASSIGN_OR_RETURN(backup::SchemaFingerprint before, backup::ReadSchemaFingerprint(conn));
  TURNOUT_ASSIGN_OR_RETURN(std::string output, RunTool(d, command, to, url));
  TURNOUT_ASSIGN_OR_RETURN(backup::SchemaFingerprint after, backup::ReadSchemaFingerprint(conn));
  TURNOUT_ASSIGN_OR_RETURN(std::string now, RunTool(d, settings_.tool_status, "", url));
  const backup::SchemaChange change = backup::ClassifySchemaChange(before.lines, after.lines);
  return json{{"command", command},
              {"from", LastLine(from)},
              {"to", LastLine(now)},
              {"tables", change.tables},
              {"change", !change.changed()         ? "none"
                         : change.is_destructive() ? "destructive"
                                                   : "additive"},
              {"destructive", change.destructive}};
}

controller::PhaseStatus DatabasePhases::RunToolBeforeLaunch(const state::Deployment& d, Job& job,
                                                            bool nothing_serves) {
  auto progress = [&job](std::string text) {
    std::lock_guard<std::mutex> lock(job.mu);
    job.progress = std::move(text);
  };
  Result<std::string> backup_id = BackupAndVerify(d, job);
  if (!backup_id.ok()) return Failed(backup_id.status().message());
  // A rollback to an earlier revision goes back to the version its tool reported.
  if (std::optional<std::string> target = Setting(d.id, "target_version")) {
    return RunToolRollback(d, job, true);
  }
  if (settings_.rehearse) {
    // The tool's up on a restored copy first: what it changes decides when it runs for real
    // (additive: now; destructive: once the old version is retired).
    progress("rehearsing the app's migrations on a restore of " + *backup_id);
    const int64_t rehearse_step = Begin(d.id, "rehearse");
    backup::BackupEnv env;
    env.backups_dir = settings_.backups_dir;
    json rehearsed;
    Status ran = rehearsal::WithRestoredCopy(
        env, *backup_id, settings_.url, settings_.jobs, [&](const std::string& copy) {
          Result<json> r = RunToolMeasured(d, settings_.tool_up, "", copy);
          if (!r.ok()) return r.status();
          rehearsed = *r;
          return Status::Ok();
        });
    if (!ran.ok()) {
      Record(d.id, "rehearse", false, json{{"error", ran.message()}, {"backup", *backup_id}}.dump(),
             rehearse_step);
      return Failed("the rehearsal of the app's migrations failed: " + ran.message());
    }
    rehearsed["backup"] = *backup_id;
    const bool hold = rehearsed["change"] == "destructive" && !nothing_serves;
    rehearsed["runs"] = hold ? "after the old version is retired" : "before the launch";
    Record(d.id, "rehearse", true, rehearsed.dump(), rehearse_step);
    if (hold) {
      (void)store_.PutSetting(SettingKey(d.id, "tool_hold"), "1");
      return Done("backup " + *backup_id +
                  " verified; the app's migrations change the schema "
                  "destructively (" +
                  rehearsed["destructive"][0].get<std::string>() +
                  "): they run once the old version is retired");
    }
  }
  progress("running the app's migrations: " + settings_.tool_up);
  const int64_t step = Begin(d.id, "expand");
  Result<json> run = RunToolMeasured(d, settings_.tool_up, "");
  if (!run.ok()) {
    Record(d.id, "expand", false, json{{"error", run.status().message()}}.dump(), step);
    return Failed("the app's migrations failed: " + run.status().message());
  }
  json detail = *run;
  detail["backup"] = *backup_id;
  (void)store_.PutSetting(SettingKey(d.id, "tool_from"), detail["from"].get<std::string>());
  (void)store_.PutSetting(SettingKey(d.id, "tool_change"), detail["change"].get<std::string>());
  if (detail["change"] == "destructive" && !nothing_serves) {
    // The tool applies everything at once: a destructive change ran while the old version still
    // serves. Said, not hidden: the release should be split (expand first, contract later).
    detail["warning"] =
        "a destructive change ran before the old version was retired; split the release: "
        "expand migrations with this version, the destructive ones with a later one";
  }
  Record(d.id, "expand", true, detail.dump(), step);
  return Done("backup " + *backup_id + " verified; the app's tool went from " +
              detail["from"].get<std::string>() + " to " + detail["to"].get<std::string>() + " (" +
              detail["change"].get<std::string>() + ")");
}

controller::PhaseStatus DatabasePhases::RunToolAfterRetire(const state::Deployment& d, Job& job) {
  const int64_t step = Begin(d.id, "contract");
  if (Setting(d.id, "tool_hold")) {
    // The destructive change the rehearsal found, now that no live version needs the old shape.
    {
      std::lock_guard<std::mutex> lock(job.mu);
      job.progress = "running the app's migrations: " + settings_.tool_up;
    }
    Result<json> run = RunToolMeasured(d, settings_.tool_up, "");
    if (!run.ok()) {
      Record(d.id, "contract", false, json{{"error", run.status().message()}}.dump(), step);
      return Failed("the app's migrations failed: " + run.status().message());
    }
    (void)store_.PutSetting(SettingKey(d.id, "tool_from"), (*run)["from"].get<std::string>());
    (void)store_.PutSetting(SettingKey(d.id, "tool_change"), (*run)["change"].get<std::string>());
    (void)store_.PutSetting(SettingKey(d.id, "version_after"), (*run)["to"].get<std::string>());
    Record(d.id, "contract", true, run->dump(), step);
    return Done("the app's tool went from " + (*run)["from"].get<std::string>() + " to " +
                (*run)["to"].get<std::string>());
  }
  Result<std::string> now = RunTool(d, settings_.tool_status, "");
  if (!now.ok()) {
    Record(d.id, "contract", false, json{{"error", now.status().message()}}.dump(), step);
    return Failed("cannot read the app's schema version: " + now.status().message());
  }
  const std::string version = LastLine(*now);
  // The version this revision serves with: what `rollback --to` it goes back to.
  (void)store_.PutSetting(SettingKey(d.id, "version_after"), version);
  Record(d.id, "contract", true,
         json{{"applied", json::array()},
              {"at", version},
              {"note", "the app's tool applied its migrations before the launch"}}
             .dump(),
         step);
  return Done("the app's tool is at " + version);
}

controller::PhaseStatus DatabasePhases::RunToolRollback(const state::Deployment& d, Job& job,
                                                        bool to_target) {
  // Back to: the earlier revision's version (a redeploy), or where this deployment started.
  const std::optional<std::string> target =
      to_target ? Setting(d.id, "target_version") : std::nullopt;
  const std::string to = target ? *target : Setting(d.id, "tool_from").value_or("");
  const std::string change = target ? "unknown" : Setting(d.id, "tool_change").value_or("none");
  if (change == "redeploy") {
    // A redeploy that failed after its down command ran: the version serving again needs the
    // schema the tool's up gives it, which is a deployment of that version, not a rollback.
    Record(d.id, "rollback", false,
           json{{"rung", 3}, {"action", "schema taken back by this redeploy"}, {"at", to}}.dump());
    return Failed("the app's down command took the schema back to " + to +
                  " before this redeploy failed; deploy the version serving again (`turnout "
                  "deploy VERSION`) to let the tool's up bring the schema forward");
  }
  if (!target && (change == "none" || change == "additive")) {
    Record(d.id, "rollback", true,
           json{{"rung", 1}, {"action", change == "none" ? "unchanged" : "kept additive changes"}}
               .dump());
    return Done("rung 1: the schema stays; the previous version works with it");
  }
  if (to.empty()) {
    Record(d.id, "rollback", true, json{{"rung", 1}, {"action", "unchanged"}}.dump());
    return Done("the app's migrations never ran for this deployment");
  }
  const std::string backup_id = Setting(d.id, "backup").value_or("(none)");
  if (settings_.tool_down.empty()) {
    Record(d.id, "rollback", false,
           json{{"rung", 3}, {"action", "restore needed"}, {"backup", backup_id}}.dump());
    return Failed("rung 3: the app's tool has no `down` command, and the schema changed " +
                  std::string(target ? "since that revision" : "destructively") +
                  "; nothing was restored automatically. To restore the backup (writes made "
                  "since are lost): turnout backup restore " +
                  backup_id + " --to <database URL> --confirm-data-loss");
  }
  if (target) {
    // What `down` destroys cannot be known before it runs: a redeploy runs it only when the
    // rollback was confirmed (the backup just taken holds everything).
    Result<std::string> now = RunTool(d, settings_.tool_status, "");
    if (!now.ok()) return Failed("cannot read the app's schema version: " + now.status().message());
    if (LastLine(*now) == to) {
      Record(d.id, "rollback", true, json{{"rung", 1}, {"action", "unchanged"}, {"at", to}}.dump());
      return Done("the app's schema is already at " + to);
    }
    const json confirmed = json::parse(Setting(d.id, "confirm").value_or("{}"), nullptr, false);
    if (!confirmed.is_object() || !confirmed.value("data_loss", false)) {
      const std::string refused =
          "the app's tool is at " + LastLine(*now) + " and that revision ran at " + to +
          "; its down command may destroy data, which turnout cannot know before it runs "
          "(backup " +
          backup_id +
          " holds it all). Run the rollback again with "
          "--confirm-data-loss to go ahead";
      Record(d.id, "rollback", false,
             json{{"rung", 2}, {"refused", refused}, {"backup", backup_id}}.dump());
      return Failed("rung 2 refused: " + refused);
    }
  }
  // Writes made since the last backup are kept in a new one before `down` runs (a redeploy
  // took it just before; a deployment's own rollback takes it now).
  std::string before_down = backup_id;
  if (!target) {
    Result<std::string> taken = BackupAndVerify(d, job);
    if (!taken.ok()) return Failed("rung 2 not started: " + taken.status().message());
    before_down = *taken;
  }
  {
    std::lock_guard<std::mutex> lock(job.mu);
    job.progress = "running the app's down command to " + to;
  }
  const int64_t step = Begin(d.id, "rollback");
  Result<json> run = RunToolMeasured(d, settings_.tool_down, to);
  if (!run.ok()) {
    Record(d.id, "rollback", false,
           json{{"rung", 2}, {"error", run.status().message()}, {"backup", before_down}}.dump(),
           step);
    return Failed("rung 2: the app's down command failed: " + run.status().message() +
                  "; nothing was restored automatically. To restore backup " + before_down +
                  ": turnout backup restore " + before_down +
                  " --to <database URL> --confirm-data-loss");
  }
  json detail = *run;
  detail["rung"] = 2;
  detail["backup"] = before_down;
  if (target) {
    (void)store_.PutSetting(SettingKey(d.id, "tool_from"), detail["from"].get<std::string>());
    (void)store_.PutSetting(SettingKey(d.id, "tool_change"), "redeploy");
  }
  Record(d.id, "rollback", true, detail.dump(), step);
  return Done("rung 2: the app's tool went back to " + to);
}

}  // namespace turnout::daemon
