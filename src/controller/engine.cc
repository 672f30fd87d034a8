#include "controller/engine.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>

#include "common/host_port.h"
#include "controller/json_path.h"
#include "controller/verify.h"
#include "platform/command.h"
#include "platform/log_tail.h"
#include "platform/run.h"

namespace turnout::controller {
namespace {

using state::DeploymentState;

constexpr std::string_view kSpecKeyPrefix = "controller.spec.";
constexpr std::string_view kStateStepPrefix = "state:";
constexpr std::string_view kCanaryStepPrefix = "canary_step:";

std::string SpecKey(int64_t deployment_id) {
  return std::string(kSpecKeyPrefix) + std::to_string(deployment_id);
}

// The gates' persisted state (see engine.h): the current canary step and its timer, the pause,
// and the paused time of the bake.
constexpr std::string_view kCanaryKeyPrefix = "controller.canary.";
constexpr std::string_view kPausedKeyPrefix = "controller.paused.";
constexpr std::string_view kBakeKeyPrefix = "controller.bake.";
constexpr std::string_view kRollingKeyPrefix = "controller.rolling.";
// {"owner"}: a recreate found maintenance on (an operator's) and leaves it on.
constexpr std::string_view kMaintenanceKeyPrefix = "controller.maintenance.";
// Written once every verify check of the bake passed: a resumed bake without it verifies again.
constexpr std::string_view kVerifyKeyPrefix = "controller.verify.";
constexpr std::string_view kVerifyStepPrefix = "verify:";

std::string KeyFor(std::string_view prefix, int64_t deployment_id) {
  return std::string(prefix) + std::to_string(deployment_id);
}

int64_t WallMs(Clock::WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Clock::WallTime FromWallMs(int64_t ms) {
  return Clock::WallTime(
      std::chrono::duration_cast<Clock::Duration>(std::chrono::milliseconds(ms)));
}

int64_t Ms(Clock::Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// 500 -> "5 %", 250 -> "2.5 %", 1 -> "0.01 %".
std::string Percent(uint32_t bp) {
  std::string out = std::to_string(bp / 100);
  if (bp % 100 != 0) {
    std::string frac = std::to_string(100 + bp % 100).substr(1);
    if (frac.back() == '0') frac.pop_back();
    out += "." + frac;
  }
  return out + " %";
}

std::string_view VerdictKindName(AnalysisVerdict::Kind k) {
  switch (k) {
    case AnalysisVerdict::Kind::kContinue:
      return "continue";
    case AnalysisVerdict::Kind::kPromote:
      return "promote";
    case AnalysisVerdict::Kind::kRollback:
      return "rollback";
    case AnalysisVerdict::Kind::kWarn:
      return "warn";
  }
  return "unknown";
}

// A persisted setting as a JSON object; nullopt when absent or not an object (never throws).
Result<std::optional<nlohmann::json>> LoadJsonSetting(state::StateStore& store,
                                                      const std::string& key) {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> text, store.GetSetting(key));
  if (!text) return std::optional<nlohmann::json>();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Internal("setting " + key + " is not a JSON object: " + *text);
  }
  return std::optional<nlohmann::json>(std::move(j));
}

// A field of a persisted setting, or `fallback` when it is missing or of another type.
template <typename T>
T Field(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end()) return fallback;
  if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->template get<bool>() : fallback;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return it->is_string() ? it->template get<std::string>() : fallback;
  } else {
    return it->is_number_integer() ? it->template get<T>() : fallback;
  }
}

// States a pause holds (or carries through: a canary promoted while paused bakes paused).
bool Pausable(DeploymentState s) {
  return s == DeploymentState::kCanary || s == DeploymentState::kSwitching ||
         s == DeploymentState::kBaking;
}

bool PreSwitch(DeploymentState s) {
  return s == DeploymentState::kPending || s == DeploymentState::kPreChecks ||
         s == DeploymentState::kDraining || s == DeploymentState::kLaunching ||
         s == DeploymentState::kWaitingReady || s == DeploymentState::kSmokeTesting;
}

std::string Seconds(Clock::Duration d) {
  auto s = std::chrono::ceil<std::chrono::seconds>(std::max(d, Clock::Duration::zero()));
  return std::to_string(s.count()) + " s";
}

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// A command template split into words, each with the placeholders replaced.
Result<std::vector<std::string>> ExpandWords(
    std::string_view command, const std::vector<std::pair<std::string_view, std::string>>& values) {
  TURNOUT_ASSIGN_OR_RETURN(std::vector<std::string> words, platform::SplitCommand(command));
  for (auto& w : words) {
    for (const auto& [placeholder, value] : values)
      w = ReplaceAll(std::move(w), placeholder, value);
  }
  return words;
}

// The last lines of a command's output, for reasons and step details.
constexpr size_t kTailLines = 5;

// "; last lines of its log: a | b | c": why an instance that ended early did (its log usually
// says: "Address already in use", a missing setting). At most 10 lines and 2 KB, on one line,
// with the values of the instance's environment hidden (they may hold secrets). "" when the
// log is unknown or empty.
std::string LogTailClause(const std::string& log_tail,
                          const std::vector<std::pair<std::string, std::string>>& env) {
  if (log_tail.empty()) return "";
  std::vector<std::string> values;
  for (const auto& [name, value] : env) values.push_back(value);
  std::string tail = platform::HideValues(log_tail, values);
  if (tail.empty()) return "";
  for (size_t at = tail.find('\n'); at != std::string::npos; at = tail.find('\n', at)) {
    tail.replace(at, 1, " | ");
  }
  return "; last lines of its log: " + tail;
}

std::string JsonText(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "exited with code 3", or "... : last output lines" when it printed something.
std::string DescribeRun(const platform::RunResult& r) {
  std::string tail = r.Tail(kTailLines);
  return tail.empty() ? r.Describe() : r.Describe() + ": " + tail;
}

// Runs a pre-deploy or smoke-check command (placeholders replaced in every word) in the spec's
// working directory and environment. Fills `detail` and returns how it failed, or nullopt when
// it exited 0. An error only when the spawn itself failed on our side (IoError: retry the step).
Result<std::optional<std::string>> RunCheckCommand(
    platform::CommandRunner& commands, std::string_view command,
    const std::vector<std::pair<std::string_view, std::string>>& values, const DeploymentSpec& spec,
    Millis timeout, nlohmann::json* detail) {
  Result<std::vector<std::string>> argv = ExpandWords(command, values);
  if (!argv.ok()) {
    (*detail)["error"] = argv.status().ToString();
    return std::optional<std::string>("has a bad command: " + argv.status().message());
  }
  (*detail)["command"] = *argv;
  platform::RunSpec run;
  run.argv = std::move(*argv);
  run.working_dir = spec.working_dir;
  run.env = spec.env;
  run.timeout = timeout;
  Result<platform::RunResult> r = commands.Run(run);
  if (!r.ok()) {
    (*detail)["error"] = r.status().ToString();
    if (r.status().code() == StatusCode::kIoError) return r.status();
    return std::optional<std::string>("could not run: " + r.status().message());
  }
  (*detail)["exit"] = r->exit_code ? nlohmann::json(*r->exit_code) : nlohmann::json();
  (*detail)["result"] = r->Describe();
  (*detail)["output_tail"] = r->Tail(kTailLines);
  if (r->ok()) return std::optional<std::string>();
  return std::optional<std::string>(DescribeRun(*r));
}

// The body expectations of an HTTP smoke check ({version} replaced): what does not match, or
// nullopt. Records what was expected in `detail`.
std::optional<std::string> CompareBody(const SmokeCheck& check, const std::string& body,
                                       const std::string& version, nlohmann::json* detail) {
  if (!check.expect_body_contains.empty()) {
    const std::string want = ReplaceAll(check.expect_body_contains, "{version}", version);
    (*detail)["expected_body_contains"] = want;
    if (body.find(want) == std::string::npos) {
      return "the body does not contain '" + want + "'";
    }
  }
  if (check.expect_json.empty()) return std::nullopt;
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return "the body is not JSON";
  for (const auto& [path, expected_template] : check.expect_json) {
    const std::string want = ReplaceAll(expected_template, "{version}", version);
    (*detail)["expected_json"][path] = want;
    std::optional<nlohmann::json> value = LookupJsonPath(doc, path);
    if (!value) return "JSON " + path + ": missing, expected '" + want + "'";
    const std::string got = JsonValueText(*value);
    if (got != want) return "JSON " + path + ": expected '" + want + "', got '" + got + "'";
  }
  return std::nullopt;
}

}  // namespace

Engine::Engine(state::StateStore& store, platform::Platform& platform,
               router::RouterControl& router, Prober& prober, platform::CommandRunner& commands,
               const Clock& clock, EngineOptions options)
    : store_(store),
      platform_(platform),
      router_(router),
      prober_(prober),
      commands_(commands),
      clock_(clock),
      options_(std::move(options)) {}

Result<state::Deployment> Engine::Begin(const DeploymentSpec& spec) {
  if (deployment_ && !state::IsTerminal(deployment_->state)) {
    return FailedPrecondition("this engine already drives deployment " +
                              std::to_string(deployment_->id));
  }
  TURNOUT_RETURN_IF_ERROR(ValidateDeploymentSpec(spec));
  if (!spec.smoke_checks.empty() && options_.router_address.empty()) {
    return InvalidArgument("smoke checks need EngineOptions::router_address");
  }
  std::string active;
  Result<state::Service> service = store_.GetService(spec.service);
  if (service.ok()) {
    active = service->active_slot;
  } else if (service.status().code() != StatusCode::kNotFound) {
    return service.status();
  }
  state::DeploymentSpec record;
  record.service = spec.service;
  record.version = spec.version;
  record.config_hash = spec.config_hash;
  record.previous_slot = active;
  // Rolling replaces the serving slot's instances in place; a first deployment has none.
  const bool in_place = spec.strategy == "rolling" && !active.empty();
  record.target_slot =
      in_place ? active : (active == spec.slots[0] ? spec.slots[1] : spec.slots[0]);
  record.strategy = spec.strategy;
  record.started_by = spec.started_by;
  record.reason = spec.reason;
  TURNOUT_ASSIGN_OR_RETURN(state::Deployment d, store_.BeginDeployment(record));
  // A crash before the spec is saved leaves a Pending deployment without spec: Resume rolls it
  // back (nothing was launched).
  TURNOUT_RETURN_IF_ERROR(store_.PutSetting(SpecKey(d.id), EncodeSpec(spec)));
  spec_ = spec;
  deployment_ = d;
  switched_ = false;
  state_step_id_ = 0;
  entered_ = clock_.Now();
  previous_revision_ = service.ok() ? service->active_revision : 0;
  pre_deploy_next_ = 0;
  image_checked_ = false;
  expedite_scale_down_ = false;
  paused_ = false;
  paused_by_.clear();
  canary_started_ = false;
  draining_started_ = false;
  maintenance_kept_ = false;
  maintenance_owner_.clear();
  canary_step_ = 0;
  canary_weight_applied_ = false;
  last_analysis_.reset();
  rolling_old_count_ = 0;
  rolling_old_deployment_ = 0;
  rolling_old_spec_.reset();
  StartPhase();
  new_instances_.clear();
  old_instances_.clear();
  TURNOUT_RETURN_IF_ERROR(LoadInstances());
  Emit("deploy_started", d.reason);
  return d;
}

Result<std::optional<state::Deployment>> Engine::Resume(std::string_view service,
                                                        const RestartFacts& facts) {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<state::Deployment> active,
                           store_.ActiveDeployment(service));
  resume_summary_.clear();
  if (!active) return std::optional<state::Deployment>();
  deployment_ = *active;
  pre_deploy_next_ = 0;
  rolling_old_count_ = 0;
  rolling_old_deployment_ = 0;
  rolling_old_spec_.reset();
  image_checked_ = false;
  expedite_scale_down_ = false;
  new_instances_.clear();
  old_instances_.clear();
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> spec_json,
                           store_.GetSetting(SpecKey(active->id)));
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::Transition> transitions,
                           store_.Transitions(active->id));
  switched_ = std::any_of(transitions.begin(), transitions.end(),
                          [](const auto& t) { return t.to == DeploymentState::kSwitching; });
  canary_started_ = std::any_of(transitions.begin(), transitions.end(),
                                [](const auto& t) { return t.to == DeploymentState::kCanary; });
  draining_started_ = std::any_of(transitions.begin(), transitions.end(),
                                  [](const auto& t) { return t.to == DeploymentState::kDraining; });
  maintenance_kept_ = false;  // LoadGates reads it back for a recreate
  maintenance_owner_.clear();
  state_step_id_ = 0;
  canary_step_record_ = 0;
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::StepRecord> steps, store_.Steps(active->id));
  // The records the dead controller was running end as interrupted, when it was last alive:
  // they must not read as if they had run to the end. The resumed engine starts new ones.
  const state::WallTime wall_now = clock_.WallNow();
  for (const auto& step : steps) {
    if (step.outcome != state::StepOutcome::kRunning) continue;
    if (!step.step.starts_with(kStateStepPrefix) && !step.step.starts_with(kCanaryStepPrefix) &&
        !step.step.starts_with(kVerifyStepPrefix)) {
      continue;
    }
    // It ran at least until it was last seen alive, or until the step began if that was later.
    const state::WallTime at =
        facts.last_alive ? std::min(wall_now, std::max(*facts.last_alive, step.started_at))
                         : wall_now;
    TURNOUT_RETURN_IF_ERROR(store_.FinishStepAt(step.id, state::StepOutcome::kInterrupted, "", at));
  }
  // The time the current state was entered, carried over the restart by wall time.
  state::WallTime since = active->created_at;
  if (!transitions.empty()) since = transitions.back().at;
  entered_ = clock_.Now() - std::max(Clock::Duration::zero(), wall_now - since);

  // The revision serving before: the newest succeeded one older than this deployment.
  previous_revision_ = 0;
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::Deployment> history, store_.History(service, 0));
  for (const auto& d : history) {
    if (d.revision < active->revision && d.state == DeploymentState::kSucceeded) {
      previous_revision_ = d.revision;
      break;
    }
  }

  const DeploymentState found = active->state;
  const std::string found_name(state::DeploymentStateName(found));
  nlohmann::json record = {
      {"deployment", active->id},
      {"revision", active->revision},
      {"version", active->version},
      {"state", found_name},
      {"previous_end", facts.previous_end.empty() ? std::string("unknown") : facts.previous_end}};
  std::string down_text = "turnoutd's last sign of life is unknown";
  if (facts.last_alive) {
    const Clock::Duration down = std::max(Clock::Duration::zero(), wall_now - *facts.last_alive);
    record["last_alive_ms"] = WallMs(*facts.last_alive);
    record["down_ms"] = Ms(down);
    down_text = "turnoutd was down " + Seconds(down);
  }
  std::string decided;
  if (!spec_json) {
    // Crashed between BeginDeployment and saving the spec: nothing was launched.
    spec_ = DeploymentSpec{};
    spec_.service = std::string(service);
    decided = "roll back: interrupted before the deployment started";
  } else {
    TURNOUT_ASSIGN_OR_RETURN(spec_, DecodeSpec(*spec_json));
    TURNOUT_RETURN_IF_ERROR(LoadGates());
    TURNOUT_RETURN_IF_ERROR(LoadInstances());
    // Re-adopt, and note what ended while no controller watched.
    std::vector<std::string> ended;
    int new_running = 0, old_running = 0;
    for (auto* list : {&new_instances_, &old_instances_}) {
      for (auto& i : *list) {
        if (!i.handle) continue;
        TURNOUT_ASSIGN_OR_RETURN(platform::InstanceStatus st, platform_.Adopt(*i.handle));
        if (st.running()) {
          ++(list == &new_instances_ ? new_running : old_running);
        } else if (list == &new_instances_) {
          ended.push_back(i.slot + "-" + std::to_string(i.index) + " (" + st.ToString() + ")");
        }
      }
    }
    record["new_instances"] = {{"recorded", new_instances_.size()}, {"running", new_running}};
    record["old_instances"] = {{"recorded", old_instances_.size()}, {"running", old_running}};
    if (!ended.empty()) record["ended"] = ended;
    // The time nobody watched does not count as canary or bake time.
    if ((found == DeploymentState::kBaking || found == DeploymentState::kCanary) && !paused_ &&
        facts.last_alive) {
      const Clock::Duration unwatched = wall_now - std::max(*facts.last_alive, phase_started_wall_);
      if (unwatched > Clock::Duration::zero()) {
        phase_paused_ += unwatched;
        TURNOUT_RETURN_IF_ERROR(
            found == DeploymentState::kCanary
                ? SaveCanaryProgress()
                : store_.PutSetting(KeyFor(kBakeKeyPrefix, active->id),
                                    nlohmann::json({{"paused_ms", Ms(phase_paused_)}}).dump()));
        record["unwatched_ms"] = Ms(unwatched);
      }
    }
    auto joined = [](const std::vector<std::string>& v) {
      std::string out;
      for (const auto& x : v) out += (out.empty() ? "" : ", ") + x;
      return out;
    };
    const bool watching = found == DeploymentState::kAwaitingApproval ||
                          found == DeploymentState::kSwitching ||
                          found == DeploymentState::kCanary || found == DeploymentState::kBaking;
    if (PreSwitch(found)) {
      decided = "roll back: interrupted in " + found_name +
                ", before the switch (an interrupted deployment is resumed only after its "
                "switch)";
    } else if (watching && !ended.empty()) {
      decided = "roll back: " + joined(ended) + " ended while turnoutd was down";
    } else if (found == DeploymentState::kAwaitingApproval) {
      decided = "keep waiting for approval";
    } else if (found == DeploymentState::kSwitching) {
      decided = "finish the switch to " + active->target_slot;
    } else if (found == DeploymentState::kCanary) {
      const CanaryStep& step = spec_.canary_steps[static_cast<size_t>(canary_step_)];
      decided =
          "resume " + CanaryLabel() + " with " + Seconds(step.duration - PhaseElapsed()) + " left";
    } else if (found == DeploymentState::kBaking) {
      decided = "resume the bake with " + Seconds(spec_.bake_time - PhaseElapsed()) + " left";
    } else if (found == DeploymentState::kRolling) {
      decided = "continue the rolling update";
    } else if (found == DeploymentState::kScalingDown) {
      decided = "continue scaling down " + active->previous_slot;
    } else {
      decided = "finish the rollback";
    }
    if (record.contains("unwatched_ms") && decided.starts_with("resume")) {
      decided += " (the time turnoutd was down does not count)";
    }
    if (paused_) decided += "; it stays paused";
  }
  record["decided"] = decided;
  resume_summary_ = "deployment " + std::to_string(active->id) + " (revision " +
                    std::to_string(active->revision) + ", " + active->version + ") was " +
                    found_name + "; " + down_text + "; decided: " + decided;
  TURNOUT_ASSIGN_OR_RETURN(int64_t resume_step,
                           store_.BeginStep(active->id, "resume", JsonText(record)));
  TURNOUT_RETURN_IF_ERROR(store_.FinishStep(resume_step, state::StepOutcome::kOk, ""));
  TURNOUT_RETURN_IF_ERROR(
      store_.AppendAudit({facts.actor, "deployment.resume", std::string(service), JsonText(record)})
          .status());

  if (!spec_json) {
    TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kRollingBack,
                                       "controller restarted before the deployment started"));
    return deployment_;
  }
  if (PreSwitch(found)) {
    TURNOUT_RETURN_IF_ERROR(Transition(
        DeploymentState::kRollingBack,
        "controller restarted during " + found_name +
            ": rolled back (an interrupted deployment is resumed only after its switch)"));
    return deployment_;
  }
  // The resumed part of the state (and of the canary step) is a record of its own.
  TURNOUT_ASSIGN_OR_RETURN(state_step_id_,
                           store_.BeginStep(active->id, std::string(kStateStepPrefix) + found_name,
                                            JsonText({{"resumed", true}})));
  if (found == DeploymentState::kCanary) {
    const CanaryStep& step = spec_.canary_steps[static_cast<size_t>(canary_step_)];
    TURNOUT_ASSIGN_OR_RETURN(
        canary_step_record_,
        store_.BeginStep(active->id, std::string(kCanaryStepPrefix) + std::to_string(canary_step_),
                         JsonText({{"weight_bp", step.weight_bp},
                                   {"duration_ms", step.duration.count()},
                                   {"resumed", true}})));
  }
  return deployment_;
}

Status Engine::LoadInstances() {
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::InstanceRecord> records,
                           store_.ListInstances(deployment_->service, false));
  for (const auto& r : records) {
    const bool mine = r.deployment_id == deployment_->id;
    const bool old =
        !mine && !deployment_->previous_slot.empty() && r.slot == deployment_->previous_slot &&
        (r.state == state::InstanceState::kStarting || r.state == state::InstanceState::kRunning ||
         r.state == state::InstanceState::kStopping);
    if (!mine && !old) continue;
    Instance i;
    i.record_id = r.id;
    i.deployment_id = r.deployment_id;
    i.slot = r.slot;
    i.index = r.instance_index;
    i.host = spec_.host;
    i.port = static_cast<uint16_t>(r.port);
    i.version = r.version;
    if (!r.platform_handle.empty()) {
      TURNOUT_ASSIGN_OR_RETURN(platform::InstanceHandle handle,
                               platform::DecodeHandle(r.platform_handle));
      i.handle = std::move(handle);
    }
    (mine ? new_instances_ : old_instances_).push_back(std::move(i));
  }
  std::sort(new_instances_.begin(), new_instances_.end(),
            [](const Instance& a, const Instance& b) { return a.index < b.index; });
  return Status::Ok();
}

Status Engine::Transition(DeploymentState to, std::string reason) {
  TURNOUT_ASSIGN_OR_RETURN(
      state::Deployment d,
      store_.RecordTransition(deployment_->id, deployment_->state, to, reason));
  const DeploymentState left = deployment_->state;
  deployment_ = std::move(d);
  entered_ = clock_.Now();
  instances_stopped_ = false;
  ladder_.reset();
  old_stopped_ = 0;
  if (to == DeploymentState::kSwitching) switched_ = true;
  if (to == DeploymentState::kCanary) canary_started_ = true;
  if (to == DeploymentState::kDraining) draining_started_ = true;
  if (left == DeploymentState::kCanary) {
    // Left by a rollback or a full promotion (a step that passed finished its record already).
    TURNOUT_RETURN_IF_ERROR(FinishCanaryStepRecord(to != DeploymentState::kRollingBack,
                                                   deployment_->reason, last_evidence_));
  }
  if (to == DeploymentState::kBaking || to == DeploymentState::kRolling) StartPhase();
  if (to == DeploymentState::kBaking) verify_next_ = 0;
  if (paused_ && !Pausable(to)) {
    // A pause holds the canary and the bake; past them (or on the way back) it means nothing.
    TURNOUT_RETURN_IF_ERROR(store_.PutSetting(KeyFor(kPausedKeyPrefix, deployment_->id),
                                              nlohmann::json({{"paused", false}}).dump()));
    paused_ = false;
    paused_by_.clear();
  }
  // Each state is also a step record, for its timing in the history. The transition above is
  // what recovery relies on; a crash between it and these writes only loses a step's timing.
  if (state_step_id_ != 0) {
    const bool failed = to == DeploymentState::kFailed || (to == DeploymentState::kRollingBack &&
                                                           left != DeploymentState::kRollingBack);
    TURNOUT_RETURN_IF_ERROR(store_.FinishStep(
        state_step_id_, failed ? state::StepOutcome::kFailed : state::StepOutcome::kOk, ""));
    state_step_id_ = 0;
  }
  if (!state::IsTerminal(to)) {
    TURNOUT_ASSIGN_OR_RETURN(
        state_step_id_,
        store_.BeginStep(
            deployment_->id,
            std::string(kStateStepPrefix) + std::string(state::DeploymentStateName(to)), "{}"));
  }
  const std::string& why = deployment_->reason;
  if (left == DeploymentState::kPreChecks &&
      (to == DeploymentState::kLaunching || to == DeploymentState::kRolling ||
       to == DeploymentState::kDraining)) {
    Emit("pre_checks_passed", why);
  } else if (left == DeploymentState::kWaitingReady && to == DeploymentState::kSmokeTesting) {
    Emit("ready", why);
  } else if (left == DeploymentState::kSmokeTesting &&
             (to == DeploymentState::kSwitching || to == DeploymentState::kAwaitingApproval ||
              to == DeploymentState::kCanary)) {
    Emit("smoke_passed", why);
    if (to == DeploymentState::kAwaitingApproval) Emit("awaiting_approval", why);
  } else if (left == DeploymentState::kSwitching && to == DeploymentState::kBaking) {
    Emit("switched", why);
  } else if (to == DeploymentState::kSucceeded) {
    Emit("succeeded", why);
  } else if (to == DeploymentState::kRolledBack) {
    Emit("rolled_back", why);
  } else if (to == DeploymentState::kFailed) {
    Emit("failed", why);
  }
  return Status::Ok();
}

void Engine::Emit(std::string_view name, std::string detail, std::string evidence_json) {
  if (!options_.on_event) return;
  EngineEvent event;
  event.name = std::string(name);
  event.deployment = *deployment_;
  event.detail = std::move(detail);
  event.evidence_json = std::move(evidence_json);
  options_.on_event(event);
}

Result<StepReport> Engine::Report(std::string waiting_for) {
  StepReport r;
  r.deployment_id = deployment_->id;
  r.state = deployment_->state;
  r.finished = state::IsTerminal(deployment_->state);
  r.waiting_for = std::move(waiting_for);
  return r;
}

Result<StepReport> Engine::BeginRollback(std::string reason) {
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kRollingBack, std::move(reason)));
  // Recreate: no warm slot to go back to; the maintenance page comes back in this same Step.
  if (Recreate()) return StepRecreateRollingBack();
  return Report("");
}

std::vector<std::string> Engine::NewAddresses() const {
  std::vector<std::string> out;
  for (const auto& i : new_instances_) out.push_back(Address(i));
  return out;
}

Result<std::optional<std::string>> Engine::FindExited(std::string* log_tail) {
  for (const auto& i : new_instances_) {
    if (!i.handle)
      return std::optional<std::string>("instance " + std::to_string(i.index) +
                                        " was never launched");
    TURNOUT_ASSIGN_OR_RETURN(platform::InstanceStatus s, platform_.Inspect(*i.handle));
    if (!s.running()) {
      if (log_tail != nullptr) *log_tail = platform_.LogTail(*i.handle, 10, 2048);
      const std::string who = i.handle->pid != 0 ? "pid " + std::to_string(i.handle->pid)
                                                 : i.handle->kind + " " + i.handle->id;
      return std::optional<std::string>("instance " + i.slot + "-" + std::to_string(i.index) +
                                        " (" + who + ") " + s.ToString());
    }
  }
  return std::optional<std::string>();
}

Result<bool> Engine::ProbeReady(const Instance& instance) {
  ProbeRequest req;
  req.address = Address(instance);
  req.path = spec_.readiness_path;
  req.timeout = options_.probe_timeout;
  Result<ProbeResponse> r = prober_.Probe(req);
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kInvalidArgument) return r.status();
    return false;
  }
  return r->status >= 200 && r->status < 300;
}

Result<bool> Engine::ProbeReadyIfDue(Instance& instance, bool* probed) {
  *probed = false;
  const Clock::TimePoint now = clock_.Now();
  if (spec_.probe_interval.count() > 0 && instance.last_probe &&
      now - *instance.last_probe < spec_.probe_interval) {
    return instance.last_ready;
  }
  TURNOUT_ASSIGN_OR_RETURN(bool ok, ProbeReady(instance));
  *probed = true;
  instance.last_probe = now;
  instance.last_ready = ok;
  return ok;
}

Result<std::optional<std::string>> Engine::WatchLiveness(Instance& instance) {
  if (spec_.liveness_path.empty()) return std::optional<std::string>();
  const Clock::TimePoint now = clock_.Now();
  if (instance.last_live_probe && now - *instance.last_live_probe < spec_.liveness_interval) {
    return std::optional<std::string>();
  }
  instance.last_live_probe = now;
  ProbeRequest req;
  req.address = Address(instance);
  req.path = spec_.liveness_path;
  req.timeout = spec_.liveness_timeout;
  Result<ProbeResponse> r = prober_.Probe(req);
  if (!r.ok() && r.status().code() == StatusCode::kInvalidArgument) return r.status();
  if (r.ok() && r->status >= 200 && r->status < 300) {
    instance.live_failures = 0;
    return std::optional<std::string>();
  }
  ++instance.live_failures;
  if (instance.live_failures < spec_.liveness_failure_threshold) {
    return std::optional<std::string>();
  }
  const std::string answer = r.ok() ? std::to_string(r->status) : r.status().message();
  return std::optional<std::string>("GET " + spec_.liveness_path + ": " + answer);
}

Status Engine::RecordActive(const std::string& slot, int64_t revision, std::string reason) {
  TURNOUT_ASSIGN_OR_RETURN(state::Service service, store_.GetService(deployment_->service));
  if (service.active_slot == slot && service.active_revision == revision) {
    return Status::Ok();  // on record already: a repeated step or a resumed engine
  }
  return store_.SetActive(deployment_->service, slot, revision, reason);
}

void Engine::WaitForDrain() const { clock_.SleepFor(options_.probe_wait); }

void Engine::WaitForExit() {
  // Bounded: returns when the first new instance exits or after probe_wait, whichever is first.
  for (const auto& i : new_instances_) {
    if (i.handle) {
      (void)platform_.Wait(*i.handle, options_.probe_wait);
      return;
    }
  }
}

Result<std::optional<std::string>> Engine::OldSlotNotWarm() {
  const std::string& old_slot = deployment_->previous_slot;
  if (old_instances_.empty()) {
    return std::optional<std::string>("no instance of " + old_slot + " is left running");
  }
  for (const auto& i : old_instances_) {
    if (!i.handle) continue;
    TURNOUT_ASSIGN_OR_RETURN(platform::InstanceStatus s, platform_.Inspect(*i.handle));
    if (!s.running()) {
      return std::optional<std::string>("old instance " + old_slot + "-" + std::to_string(i.index) +
                                        " " + s.ToString());
    }
  }
  return std::optional<std::string>();
}

Status Engine::StopInstance(Instance& instance) {
  TURNOUT_RETURN_IF_ERROR(
      store_.SetInstanceState(instance.record_id, state::InstanceState::kStopping));
  if (instance.handle) TURNOUT_RETURN_IF_ERROR(platform_.Stop(*instance.handle));
  return store_.SetInstanceState(instance.record_id, state::InstanceState::kStopped);
}

Result<StepReport> Engine::Step() {
  if (!deployment_) return FailedPrecondition("no deployment to drive");
  switch (deployment_->state) {
    case DeploymentState::kPending:
      TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kPreChecks, "started"));
      return Report("");
    case DeploymentState::kPreChecks:
      return StepPreChecks();
    case DeploymentState::kLaunching:
      return StepLaunching();
    case DeploymentState::kWaitingReady:
      return StepWaitingReady();
    case DeploymentState::kSmokeTesting:
      return StepSmokeTesting();
    case DeploymentState::kAwaitingApproval:
      return StepAwaitingApproval();
    case DeploymentState::kCanary:
      return StepCanary();
    case DeploymentState::kRolling:
      return StepRolling();
    case DeploymentState::kDraining:
      return StepDraining();
    case DeploymentState::kSwitching:
      return StepSwitching();
    case DeploymentState::kBaking:
      return StepBaking();
    case DeploymentState::kScalingDown:
      return StepScalingDown();
    case DeploymentState::kRollingBack:
      return StepRollingBack();
    case DeploymentState::kSucceeded:
    case DeploymentState::kRolledBack:
    case DeploymentState::kFailed:
      return Report("");
  }
  return Internal("unknown deployment state");
}

Result<StepReport> Engine::StepPreChecks() {
  // The router must know both slots, and the target slot must not be serving users.
  TURNOUT_ASSIGN_OR_RETURN(router::RoutingPolicy policy, router_.GetPolicy());
  for (const auto& slot : spec_.slots) {
    Result<router::SlotStatus> s = router_.GetSlotStatus(slot);
    if (!s.ok()) {
      if (s.status().code() == StatusCode::kNotFound) {
        return BeginRollback("pre-check failed: the router has no slot '" + slot + "'");
      }
      return s.status();
    }
  }
  if (!deployment_->previous_slot.empty() && !Rolling() &&
      policy.active == deployment_->target_slot) {
    return BeginRollback("pre-check failed: the router sends traffic to target slot '" +
                         deployment_->target_slot + "', not to the recorded active slot");
  }
  // The image before the commands: a missing image, a denied pull or an unreachable engine
  // fails the deployment before anything runs or launches.
  if (!image_checked_) {
    TURNOUT_ASSIGN_OR_RETURN(std::optional<StepReport> resolved, ResolveImage());
    if (resolved) return *resolved;
  }
  // One pre-deploy command per Step, so that a Step stays bounded by one check's timeout.
  if (pre_deploy_next_ < spec_.pre_deploy.size()) {
    return RunPreDeployCheck(spec_.pre_deploy[pre_deploy_next_]);
  }
  // Recreate: the database phases run once the old version is stopped (Draining).
  if (Recreate()) return BeginDraining();
  // The database before anything launches: backup, verification, expand migrations.
  bool db_failed = false;
  if (std::optional<std::string> db = PollDatabase("before_launch", &db_failed)) {
    if (db_failed) return BeginRollback("database: " + *db);
    return Report("database: " + *db);
  }
  if (Rolling()) return BeginRolling();
  TURNOUT_RETURN_IF_ERROR(Transition(
      DeploymentState::kLaunching,
      spec_.pre_deploy.empty()
          ? std::string("pre-checks passed")
          : "pre-checks passed (" + std::to_string(spec_.pre_deploy.size()) + " pre-deploy)"));
  return Report("");
}

std::optional<std::string> Engine::PollDatabase(const std::string& phase, bool* failed) {
  *failed = false;
  if (!options_.database) return std::nullopt;
  // Recreate: the old version is stopped in Draining before the phases run, and a rollback
  // runs the ladder with nothing running: no version serves during them.
  const bool nothing_serves = Recreate() && draining_started_ && phase != "after_retire";
  PhaseStatus s = options_.database(PhaseRequest{&*deployment_, phase, nothing_serves});
  if (s.kind == PhaseStatus::Kind::kDone) return std::nullopt;
  if (s.kind == PhaseStatus::Kind::kFailed) {
    *failed = true;
    return s.detail;
  }
  // The phase runs on the hook's own thread; wait a little (bounded, like WaitForExit) so that
  // a caller stepping in a loop does not spin.
  clock_.SleepFor(options_.probe_wait);
  return s.detail;
}

Result<std::optional<StepReport>> Engine::ResolveImage() {
  image_checked_ = true;
  // Recorded before a crash, or a redeploy of an earlier revision: run exactly that image.
  if (!spec_.image.empty()) return std::optional<StepReport>();
  const Clock::TimePoint t0 = clock_.Now();
  Result<std::string> image = platform_.ResolveImage(spec_.version, &interrupt_);
  if (!image.ok() && interrupt_) {
    // A command waits (an abort): it is taken next; the image is resolved again after it.
    image_checked_ = false;
    TURNOUT_ASSIGN_OR_RETURN(StepReport r, Report("the image pull was interrupted by a command"));
    return std::optional<StepReport>(r);
  }
  if (image.ok() && image->empty()) return std::optional<StepReport>();  // no images
  nlohmann::json detail;
  detail["took_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock_.Now() - t0).count();
  if (image.ok()) {
    detail["image"] = *image;
  } else {
    detail["error"] = image.status().message();
  }
  TURNOUT_ASSIGN_OR_RETURN(int64_t step_id,
                           store_.BeginStep(deployment_->id, "resolve_image", "{}"));
  TURNOUT_RETURN_IF_ERROR(
      store_.FinishStep(step_id, image.ok() ? state::StepOutcome::kOk : state::StepOutcome::kFailed,
                        JsonText(detail)));
  if (!image.ok()) {
    TURNOUT_ASSIGN_OR_RETURN(StepReport r,
                             BeginRollback("pre-check failed: " + image.status().message()));
    return std::optional<StepReport>(r);
  }
  spec_.image = *image;
  TURNOUT_RETURN_IF_ERROR(store_.PutSetting(SpecKey(deployment_->id), EncodeSpec(spec_)));
  TURNOUT_ASSIGN_OR_RETURN(StepReport r, Report(""));
  return std::optional<StepReport>(r);
}

Result<StepReport> Engine::RunPreDeployCheck(const PreDeployCheck& check) {
  TURNOUT_ASSIGN_OR_RETURN(int64_t step_id,
                           store_.BeginStep(deployment_->id, "pre_deploy:" + check.name, "{}"));
  nlohmann::json detail;
  Result<std::optional<std::string>> failed = RunCheckCommand(
      commands_, check.command, {{"{version}", spec_.version}}, spec_, check.timeout, &detail);
  TURNOUT_RETURN_IF_ERROR(store_.FinishStep(
      step_id, failed.ok() && !*failed ? state::StepOutcome::kOk : state::StepOutcome::kFailed,
      JsonText(detail)));
  if (!failed.ok()) return failed.status();
  if (*failed) return BeginRollback("pre-deploy check '" + check.name + "' " + **failed);
  ++pre_deploy_next_;
  return Report("pre-deploy check '" + check.name + "' passed (" +
                std::to_string(pre_deploy_next_) + "/" + std::to_string(spec_.pre_deploy.size()) +
                ")");
}

Result<StepReport> Engine::StepLaunching() {
  const std::string& slot = deployment_->target_slot;
  for (int index = 0; index < spec_.replicas; ++index) {
    auto it = std::find_if(new_instances_.begin(), new_instances_.end(),
                           [&](const Instance& i) { return i.index == index; });
    if (it != new_instances_.end() && it->handle) continue;  // launched before a crash: keep
    Instance inst;
    if (it != new_instances_.end()) {
      inst = *it;
    } else {
      TURNOUT_ASSIGN_OR_RETURN(platform::InstanceAddress address,
                               AllocateAddress(spec_, slot, index));
      inst.host = address.host;
      inst.port = address.port;
    }
    inst.slot = slot;
    inst.index = index;
    TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> failed,
                             LaunchOne(spec_, deployment_->id, &inst));
    if (it != new_instances_.end()) {
      *it = inst;
    } else {
      new_instances_.push_back(inst);
    }
    if (failed) {
      return BeginRollback("launching instance " + std::to_string(index) + " failed: " + *failed);
    }
  }
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kWaitingReady,
                                     std::to_string(spec_.replicas) + " instance(s) of " +
                                         spec_.version + " launched in " + slot));
  return Report("");
}

Result<std::optional<std::string>> Engine::LaunchOne(const DeploymentSpec& spec,
                                                     int64_t deployment_id, Instance* inst) {
  inst->version = spec.version;
  // The intent first (starting, pid 0): a crash after the launch still leaves the port and the
  // slot on record.
  state::InstanceRecord rec;
  rec.deployment_id = deployment_id;
  rec.service = spec.service;
  rec.slot = inst->slot;
  rec.instance_index = inst->index;
  rec.port = inst->port;
  rec.version = spec.version;
  rec.state = state::InstanceState::kStarting;
  TURNOUT_ASSIGN_OR_RETURN(inst->record_id, store_.UpsertInstance(rec));

  platform::InstanceSpec instance_spec = InstanceSpecFor(spec, inst->slot, inst->index, inst->port);
  if (!inst->host.empty()) instance_spec.host = inst->host;
  Result<platform::InstanceHandle> handle = platform_.Launch(instance_spec);
  if (!handle.ok()) {
    TURNOUT_RETURN_IF_ERROR(
        store_.SetInstanceState(inst->record_id, state::InstanceState::kFailed));
    return std::optional<std::string>(handle.status().ToString());
  }
  // Handle, pid and state in one write: a crash leaves the row either still "starting" without
  // a handle or running with everything re-adoption needs.
  rec.platform_handle = platform::EncodeHandle(*handle);
  rec.pid = handle->pid;
  rec.process_start_time = static_cast<int64_t>(handle->start_time_ticks);
  rec.state = state::InstanceState::kRunning;
  TURNOUT_RETURN_IF_ERROR(store_.UpsertInstance(rec).status());
  inst->handle = *handle;
  return std::optional<std::string>();
}

Result<StepReport> Engine::StepWaitingReady() {
  std::string log_tail;
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> exited, FindExited(&log_tail));
  if (exited) {
    return BeginRollback(*exited + " before becoming ready" + LogTailClause(log_tail, spec_.env));
  }
  int ready = 0;
  for (auto& i : new_instances_) {
    bool probed = false;
    TURNOUT_ASSIGN_OR_RETURN(bool ok, ProbeReadyIfDue(i, &probed));
    if (ok) ++ready;
  }
  const int total = static_cast<int>(new_instances_.size());
  if (ready == total) {
    TURNOUT_RETURN_IF_ERROR(
        Transition(DeploymentState::kSmokeTesting, std::to_string(total) + " instance(s) ready"));
    return Report("");
  }
  const Clock::Duration left = spec_.ready_deadline - Elapsed();
  if (left <= Clock::Duration::zero()) {
    return BeginRollback("not ready within " + Seconds(spec_.ready_deadline) + " (" +
                         std::to_string(ready) + "/" + std::to_string(total) + " ready)");
  }
  WaitForExit();
  return Report("waiting for " + std::to_string(total) + " instance(s) of " +
                deployment_->target_slot + " to be ready (" + std::to_string(ready) + "/" +
                std::to_string(total) + "), " + Seconds(left) + " left");
}

Result<StepReport> Engine::StepSmokeTesting() {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> exited, FindExited());
  if (exited) return BeginRollback(*exited + " during smoke tests");
  // The new slot gets its instances now: it receives no user traffic before the switch, and the
  // smoke checks must go through the router to exercise the real path.
  const std::string& slot = deployment_->target_slot;
  TURNOUT_RETURN_IF_ERROR(router_.SetSlotInstances(slot, NewAddresses()).status());
  auto all_healthy = [](const router::SlotStatus& status) {
    return std::all_of(status.instances.begin(), status.instances.end(),
                       [](const auto& i) { return i.healthy && !i.ejected; });
  };
  TURNOUT_ASSIGN_OR_RETURN(router::SlotStatus status, router_.GetSlotStatus(slot));
  bool healthy = all_healthy(status);
  // The router checks an instance it did not have at once (router/health.h): its verdict comes
  // within milliseconds, so look again a few times before waiting a whole probe_wait.
  constexpr int kQuickLooks = 5;
  constexpr auto kQuickLook = std::chrono::milliseconds(2);
  for (int look = 0; !healthy && look < kQuickLooks && kQuickLook < options_.probe_wait; ++look) {
    clock_.SleepFor(kQuickLook);
    TURNOUT_ASSIGN_OR_RETURN(status, router_.GetSlotStatus(slot));
    healthy = all_healthy(status);
  }
  if (!healthy) {
    const Clock::Duration left = spec_.ready_deadline - Elapsed();
    if (left <= Clock::Duration::zero()) {
      return BeginRollback("the router did not see " + slot + " healthy within " +
                           Seconds(spec_.ready_deadline));
    }
    WaitForExit();
    return Report("waiting for the router to see " + slot + " healthy, " + Seconds(left) + " left");
  }
  for (const auto& check : spec_.smoke_checks) {
    TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> failed, RunSmokeCheck(check));
    if (failed) return BeginRollback(*failed);
  }
  const std::string passed = std::to_string(spec_.smoke_checks.size()) + " smoke test(s) passed";
  if (spec_.manual_approval) {
    TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kAwaitingApproval, passed));
    return Report("waiting for approval: run `turnout approve`");
  }
  TURNOUT_RETURN_IF_ERROR(LeaveSmokeTests(passed));
  return Report("");
}

Result<std::optional<std::string>> Engine::RunSmokeCheck(const SmokeCheck& check) {
  const bool http = check.kind == SmokeCheck::Kind::kHttp;
  const std::string label = !check.name.empty() ? check.name
                            : http              ? check.method + " " + check.path
                                                : check.command;
  TURNOUT_ASSIGN_OR_RETURN(int64_t step_id,
                           store_.BeginStep(deployment_->id, "smoke_test:" + label, "{}"));
  nlohmann::json detail;
  Result<std::optional<std::string>> mismatch = std::optional<std::string>();
  if (!http) {
    mismatch = RunCheckCommand(commands_, check.command,
                               {{"{url}", "http://" + options_.router_address},
                                {"{slot}", deployment_->target_slot},
                                {"{version}", spec_.version}},
                               spec_, check.timeout, &detail);
  } else {
    ProbeRequest req;
    req.address = options_.router_address;
    req.method = check.method;
    req.path = check.path;
    req.headers.emplace_back(options_.override_header, deployment_->target_slot);
    if (!options_.override_secret.empty()) {
      req.headers.emplace_back("X-Turnout-Secret", options_.override_secret);
    }
    for (const auto& h : check.headers) req.headers.push_back(h);
    req.body = check.body;
    req.timeout = check.timeout;
    Result<ProbeResponse> r = prober_.Probe(req);
    detail["expected"] = check.expected_status;
    detail["status"] = r.ok() ? r->status : 0;
    const std::string expected = "expected " + std::to_string(check.expected_status) + ", got ";
    if (!r.ok()) {
      mismatch = std::optional<std::string>(expected + r.status().ToString());
    } else if (r->status != check.expected_status) {
      mismatch = std::optional<std::string>(expected + std::to_string(r->status));
    } else {
      mismatch = CompareBody(check, r->body, spec_.version, &detail);
    }
    if (r.ok() && *mismatch) {
      // What came back, so that the history shows why without a rerun.
      constexpr size_t kBodyExcerpt = 512;
      detail["body"] = r->body.substr(0, kBodyExcerpt);
    }
  }
  const bool passed = mismatch.ok() && !*mismatch;
  if (mismatch.ok() && *mismatch) detail["mismatch"] = **mismatch;
  TURNOUT_RETURN_IF_ERROR(store_.FinishStep(
      step_id, passed ? state::StepOutcome::kOk : state::StepOutcome::kFailed, JsonText(detail)));
  if (!mismatch.ok()) return mismatch.status();
  if (*mismatch) return std::optional<std::string>("smoke test " + label + ": " + **mismatch);
  return std::optional<std::string>();
}

std::string Engine::Redact(std::string text) const {
  std::vector<std::string_view> secrets;
  // Short values ("1", "on") are no secrets, and replacing them would garble the text.
  constexpr size_t kShortest = 4;
  for (const auto& [name, value] : spec_.env) {
    if (value.size() >= kShortest) secrets.push_back(value);
  }
  if (options_.override_secret.size() >= kShortest) secrets.push_back(options_.override_secret);
  for (std::string_view secret : secrets) text = ReplaceAll(text, secret, "[redacted]");
  return text;
}

Result<std::optional<Baseline>> Engine::FindBaseline(const std::string& mix_hash) {
  constexpr int kLookBack = 100;  // revisions
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::Deployment> history,
                           store_.History(deployment_->service, kLookBack));
  for (const state::Deployment& d : history) {  // newest first
    if (d.id == deployment_->id || d.state != DeploymentState::kSucceeded) continue;
    TURNOUT_ASSIGN_OR_RETURN(std::vector<state::StepRecord> steps, store_.Steps(d.id));
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
      if (!it->step.starts_with(kVerifyStepPrefix) || it->outcome != state::StepOutcome::kOk) {
        continue;
      }
      const nlohmann::json detail = nlohmann::json::parse(it->detail_json, nullptr, false);
      if (!detail.is_object() || Field(detail, "mix_hash", std::string()) != mix_hash) continue;
      std::optional<PerformanceResult> result =
          PerformanceFromJson(detail.value("result", nlohmann::json()));
      if (result) return std::optional<Baseline>(Baseline{d.revision, *result});
    }
  }
  return std::optional<Baseline>();
}

Result<std::optional<std::string>> Engine::RunVerifyCheck(const VerifyCheck& check) {
  TURNOUT_ASSIGN_OR_RETURN(
      int64_t step_id,
      store_.BeginStep(deployment_->id, std::string(kVerifyStepPrefix) + check.name, "{}"));
  nlohmann::json detail;
  Result<std::optional<std::string>> failed = std::optional<std::string>();
  if (check.kind == VerifyCheck::Kind::kCommand) {
    detail["kind"] = "command";
    failed = RunCheckCommand(
        commands_, check.command,
        {{"{url}", "http://" + options_.router_address}, {"{version}", spec_.version}}, spec_,
        check.timeout, &detail);
    // The output is the app's: it may echo its environment. Nothing of it is printed by us.
    if (detail.contains("output_tail") && detail["output_tail"].is_string()) {
      detail["output_tail"] = Redact(detail["output_tail"].get<std::string>());
    }
    if (failed.ok() && *failed) failed = std::optional<std::string>(Redact(**failed));
  } else {
    const std::string mix = MixHash(check);
    detail["kind"] = "performance";
    detail["mix_hash"] = mix;
    detail["requests"] = check.requests;
    detail["concurrency"] = check.concurrency;
    detail["tolerance"] = {{"p50", check.tolerance_p50},
                           {"p95", check.tolerance_p95},
                           {"p99", check.tolerance_p99},
                           {"min_ms", check.tolerance_min.count()}};
    if (options_.verifier == nullptr) {
      failed = std::optional<std::string>("no performance verifier is wired into the engine");
    } else {
      PerformanceRequest req;
      req.address = options_.router_address;
      req.paths = check.paths;
      req.requests = check.requests;
      req.concurrency = check.concurrency;
      req.timeout = check.timeout;
      Result<PerformanceResult> measured = options_.verifier->MeasurePerformance(req);
      Result<std::optional<Baseline>> baseline = FindBaseline(mix);
      if (!baseline.ok()) {
        failed = baseline.status();
      } else if (!measured.ok()) {
        detail["error"] = measured.status().ToString();
        failed = std::optional<std::string>("not measured: " + measured.status().message());
      } else {
        detail["result"] = PerformanceToJson(*measured);
        if (*baseline) {
          nlohmann::json b = PerformanceToJson((*baseline)->result);
          b["revision"] = (*baseline)->revision;
          detail["baseline"] = b;
        } else {
          detail["baseline"] = nullptr;
        }
        failed = JudgePerformance(check, *measured, *baseline);
        if (!*failed && !*baseline) detail["note"] = "no baseline: recorded";
      }
    }
  }
  const bool passed = failed.ok() && !*failed;
  if (failed.ok() && *failed) detail["failure"] = **failed;
  TURNOUT_RETURN_IF_ERROR(store_.FinishStep(
      step_id, passed ? state::StepOutcome::kOk : state::StepOutcome::kFailed, JsonText(detail)));
  return failed;
}

Result<StepReport> Engine::StepSwitching() {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> exited, FindExited());
  if (exited) return BeginRollback(*exited + " before the switch");
  const std::string& slot = deployment_->target_slot;
  TURNOUT_RETURN_IF_ERROR(router_.SetSlotInstances(slot, NewAddresses()).status());
  TURNOUT_ASSIGN_OR_RETURN(router::RoutingPolicy policy, router_.GetPolicy());
  if (policy.active != slot || policy.canary) {
    TURNOUT_RETURN_IF_ERROR(router_.Switch(slot).status());
  }
  TURNOUT_RETURN_IF_ERROR(
      RecordActive(slot, deployment_->revision, "switched to " + deployment_->version));
  std::string why = "traffic on " + slot;
  if (Recreate()) {
    // Users reach the new version from now on: the downtime ends with the switch (unless the
    // maintenance was an operator's before the deployment).
    TURNOUT_RETURN_IF_ERROR(LiftMaintenance(&why));
  }
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kBaking, std::move(why)));
  return Report("");
}

Result<StepReport> Engine::StepBaking() {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> exited, FindExited());
  if (exited) return BeginRollback(*exited + " during bake");
  for (auto& i : new_instances_) {
    // Liveness first: a live check that fails switches back at once, whatever readiness says.
    TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> dead, WatchLiveness(i));
    if (dead) {
      return BeginRollback("instance " + i.slot + "-" + std::to_string(i.index) + " failed " +
                           std::to_string(i.live_failures) +
                           " liveness probes in a row during bake (" + *dead + ")");
    }
    bool probed = false;
    TURNOUT_ASSIGN_OR_RETURN(bool ok, ProbeReadyIfDue(i, &probed));
    if (!probed) continue;  // only a fresh probe counts towards the threshold
    i.probe_failures = ok ? 0 : i.probe_failures + 1;
    if (i.probe_failures >= spec_.bake_failure_threshold) {
      return BeginRollback("instance " + i.slot + "-" + std::to_string(i.index) + " failed " +
                           std::to_string(i.probe_failures) + " readiness probes during bake");
    }
  }
  TURNOUT_ASSIGN_OR_RETURN(std::optional<AnalysisVerdict> verdict, Analyze());
  if (verdict && verdict->kind == AnalysisVerdict::Kind::kRollback) {
    return BeginRollback("analysis during bake: " + verdict->reason);
  }
  if (verify_next_ < spec_.verify.size()) {
    // One check per Step (each bounded by its own timeout), so that the instances and the
    // analysis are watched between checks.
    const VerifyCheck& check = spec_.verify[verify_next_];
    TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> failed, RunVerifyCheck(check));
    if (failed) return BeginRollback("verify " + check.name + ": " + *failed);
    ++verify_next_;
    if (verify_next_ == spec_.verify.size()) {
      TURNOUT_RETURN_IF_ERROR(store_.PutSetting(KeyFor(kVerifyKeyPrefix, deployment_->id),
                                                nlohmann::json({{"passed", true}}).dump()));
    }
    return Report("verify check '" + check.name + "' passed (" + std::to_string(verify_next_) +
                  "/" + std::to_string(spec_.verify.size()) + ")");
  }
  const Clock::Duration left = spec_.bake_time - PhaseElapsed();
  if (!paused_ && left <= Clock::Duration::zero() && !hold_.empty()) {
    WaitForExit();
    return Report("holding the bake: insufficient data (" + hold_ +
                  "); `turnout promote` ends it anyway, `turnout abort` rolls back");
  }
  if (!paused_ && left <= Clock::Duration::zero()) {
    TURNOUT_RETURN_IF_ERROR(
        Transition(DeploymentState::kScalingDown, "baked " + Seconds(spec_.bake_time)));
    return Report("");
  }
  WaitForExit();
  std::string what = "baking " + deployment_->version + " on " + deployment_->target_slot + ", " +
                     Seconds(left) + " left";
  if (paused_) what = "paused by " + paused_by_ + " (run `turnout resume`): " + what;
  return Report(std::move(what));
}

Result<StepReport> Engine::StepCanary() {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> exited, FindExited());
  if (exited) return BeginRollback(*exited + " during the canary");
  const CanaryStep& step = spec_.canary_steps[static_cast<size_t>(canary_step_)];
  if (!canary_weight_applied_) {
    // Idempotent: the router keeps the canary's seed (and so every client's side) when the slot
    // is already the canary; a resumed engine re-applies the recorded step's weight.
    TURNOUT_RETURN_IF_ERROR(
        router_.SetCanaryWeight(deployment_->target_slot, step.weight_bp).status());
    canary_weight_applied_ = true;
  }
  TURNOUT_ASSIGN_OR_RETURN(std::optional<AnalysisVerdict> verdict, Analyze());
  if (verdict && verdict->kind == AnalysisVerdict::Kind::kRollback) {
    return BeginRollback("analysis at " + CanaryLabel() + ": " + verdict->reason);
  }
  if (verdict && verdict->kind == AnalysisVerdict::Kind::kPromote) {
    TURNOUT_RETURN_IF_ERROR(AdvanceCanary("canary_step_passed",
                                          CanaryLabel() + " passed early: " + verdict->reason,
                                          verdict->evidence_json));
    return Report("");
  }
  const Clock::Duration left = step.duration - PhaseElapsed();
  if (!paused_ && left <= Clock::Duration::zero() && !hold_.empty()) {
    WaitForExit();
    return Report("holding " + CanaryLabel() + ": insufficient data (" + hold_ +
                  "); `turnout promote` passes it anyway, `turnout abort` rolls back");
  }
  if (!paused_ && left <= Clock::Duration::zero()) {
    TURNOUT_RETURN_IF_ERROR(AdvanceCanary("canary_step_passed",
                                          CanaryLabel() + " passed after " + Seconds(step.duration),
                                          last_evidence_));
    return Report("");
  }
  WaitForExit();
  std::string what =
      CanaryLabel() + " of traffic on " + deployment_->target_slot + ", " + Seconds(left) + " left";
  if (paused_) what = "paused by " + paused_by_ + " (run `turnout resume`): " + what;
  return Report(std::move(what));
}

bool Engine::Rolling() const {
  return spec_.strategy == "rolling" && !deployment_->previous_slot.empty() &&
         deployment_->target_slot == deployment_->previous_slot;
}

Engine::Instance* Engine::FindInstance(std::vector<Instance>& list, int index) {
  for (auto& i : list) {
    if (i.index == index) return &i;
  }
  return nullptr;
}

Result<platform::InstanceAddress> Engine::AllocateAddress(const DeploymentSpec& spec,
                                                          const std::string& slot, int index) {
  platform::AddressRequest request;
  request.service = spec.service;
  request.slot = slot;
  request.slot_index = slot == spec.slots[0] ? 0 : 1;
  request.instance = index;
  request.replicas = spec.replicas;
  request.host = spec.host;
  request.first_port = spec.base_port;
  for (const auto* list : {&new_instances_, &old_instances_}) {
    for (const auto& o : *list) {
      if (o.handle || o.port != 0) request.in_use.push_back(Address(o));
    }
  }
  return platform_.AllocateAddress(request);
}

std::string Engine::Address(const Instance& instance) const {
  // A launched instance is reached where its platform says; one only recorded (never launched)
  // holds the address it was allocated.
  if (instance.handle) return instance.handle->address;
  return FormatHostPort(instance.host.empty() ? spec_.host : instance.host, instance.port);
}

Status Engine::RecordOldInstances() {
  // Which old instances there are, and whose spec relaunches them on a rollback: written before
  // the first one is touched (they leave the instance list as they stop).
  rolling_old_count_ = 0;
  rolling_old_deployment_ = 0;
  for (const auto& i : old_instances_) {
    rolling_old_count_ = std::max(rolling_old_count_, i.index + 1);
    rolling_old_deployment_ = std::max(rolling_old_deployment_, i.deployment_id);
  }
  nlohmann::json j = {{"old_count", rolling_old_count_},
                      {"old_deployment", rolling_old_deployment_}};
  return store_.PutSetting(KeyFor(kRollingKeyPrefix, deployment_->id), j.dump());
}

Result<StepReport> Engine::BeginRolling() {
  TURNOUT_RETURN_IF_ERROR(RecordOldInstances());
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kRolling,
                                     "pre-checks passed; replacing " +
                                         std::to_string(rolling_old_count_) + " instance(s) of " +
                                         deployment_->target_slot + " one at a time"));
  rolling_item_started_ = clock_.Now();
  return Report("");
}

std::vector<std::string> Engine::RollingAddresses(int index, bool drop_old) const {
  std::vector<std::string> out;
  for (const auto& o : old_instances_) {
    if (!(drop_old && o.index == index)) out.push_back(Address(o));
  }
  for (const auto& n : new_instances_) {
    if (n.index <= index && n.handle && n.last_ready) out.push_back(Address(n));
  }
  return out;
}

Result<StepReport> Engine::StepRolling() {
  const std::string& slot = deployment_->target_slot;
  for (const auto& n : new_instances_) {
    if (!n.handle) continue;  // recorded before a crash, launched below
    TURNOUT_ASSIGN_OR_RETURN(platform::InstanceStatus st, platform_.Inspect(*n.handle));
    if (!st.running()) {
      return BeginRollback("instance " + slot + "-" + std::to_string(n.index) + " of " +
                           deployment_->version + " " + st.ToString() +
                           " during the rolling update");
    }
  }
  // What the analysis is told: how many old instances were replaced (the index being replaced
  // now) and the share of the slot's instances that run the new version.
  rolling_index_ = std::max(0, rolling_old_count_ - static_cast<int>(old_instances_.size()));
  {
    size_t fresh_in_slot = 0;
    for (const auto& n : new_instances_) fresh_in_slot += n.handle && n.last_ready ? 1 : 0;
    rolling_weight_bp_ = static_cast<uint32_t>(
        kFullWeightBp * fresh_in_slot / std::max<size_t>(1, fresh_in_slot + old_instances_.size()));
  }
  TURNOUT_ASSIGN_OR_RETURN(std::optional<AnalysisVerdict> verdict, Analyze());
  if (verdict && verdict->kind == AnalysisVerdict::Kind::kRollback) {
    return BeginRollback("analysis during the rolling update: " + verdict->reason);
  }
  const int replicas = spec_.replicas;
  const int total = std::max(replicas, rolling_old_count_);
  const std::string ready_left = [&] {
    return Seconds(spec_.ready_deadline - (clock_.Now() - rolling_item_started_));
  }();
  // A scale keeps the serving instances it still needs (the same definition): instance i is
  // kept when there is no new one of that index and the old one runs the same version.
  auto kept = [&](int i) {
    const Instance* old = FindInstance(old_instances_, i);
    return spec_.keep_instances && i < replicas && FindInstance(new_instances_, i) == nullptr &&
           old != nullptr && old->handle && old->version == spec_.version;
  };
  for (int i = 0; i < total; ++i) {
    if (kept(i)) continue;
    Instance* fresh = i < replicas ? FindInstance(new_instances_, i) : nullptr;
    if (i < replicas && (fresh == nullptr || !fresh->handle)) {
      Instance inst = fresh ? *fresh : Instance{};
      inst.slot = slot;
      inst.index = i;
      if (inst.port == 0) {
        TURNOUT_ASSIGN_OR_RETURN(platform::InstanceAddress address,
                                 AllocateAddress(spec_, slot, i));
        inst.host = address.host;
        inst.port = address.port;
      }
      TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> failed,
                               LaunchOne(spec_, deployment_->id, &inst));
      if (fresh) {
        *fresh = inst;
      } else {
        new_instances_.push_back(inst);
      }
      if (failed) {
        return BeginRollback("launching instance " + std::to_string(i) + " failed: " + *failed);
      }
      rolling_item_started_ = clock_.Now();
      return Report("launched " + slot + "-" + std::to_string(i) + " of " + deployment_->version +
                    "; waiting for it to be ready");
    }
    if (i < replicas && !fresh->last_ready) {
      bool probed = false;
      TURNOUT_ASSIGN_OR_RETURN(bool ok, ProbeReadyIfDue(*fresh, &probed));
      if (!ok) {
        if (clock_.Now() - rolling_item_started_ >= spec_.ready_deadline) {
          return BeginRollback("instance " + slot + "-" + std::to_string(i) + " of " +
                               deployment_->version + " not ready within " +
                               Seconds(spec_.ready_deadline));
        }
        WaitForExit();
        return Report("waiting for " + slot + "-" + std::to_string(i) + " of " +
                      deployment_->version + " to be ready, " + ready_left + " left");
      }
    }
    if (i < replicas) {
      // The new instance joins the slot beside the old ones; the old one leaves only once the
      // router sees the new one healthy (never one ready instance fewer).
      TURNOUT_ASSIGN_OR_RETURN(router::SlotStatus status, router_.GetSlotStatus(slot));
      auto in_router = std::find_if(status.instances.begin(), status.instances.end(),
                                    [&](const auto& s) { return s.address == Address(*fresh); });
      if (in_router == status.instances.end()) {
        TURNOUT_RETURN_IF_ERROR(
            router_.SetSlotInstances(slot, RollingAddresses(i, /*drop_old=*/false)).status());
        return Report("added " + slot + "-" + std::to_string(i) + " of " + deployment_->version +
                      " to the router");
      }
      if (!in_router->healthy || in_router->ejected) {
        if (clock_.Now() - rolling_item_started_ >= spec_.ready_deadline) {
          return BeginRollback("the router did not see " + slot + "-" + std::to_string(i) +
                               " healthy within " + Seconds(spec_.ready_deadline));
        }
        WaitForExit();
        return Report("waiting for the router to see " + slot + "-" + std::to_string(i) +
                      " healthy, " + ready_left + " left");
      }
    }
    if (Instance* old = FindInstance(old_instances_, i)) {
      // Out of the router first: new requests go elsewhere, and the stop signal and grace let
      // the ones in flight finish.
      TURNOUT_RETURN_IF_ERROR(
          router_.SetSlotInstances(slot, RollingAddresses(i, /*drop_old=*/true)).status());
      TURNOUT_RETURN_IF_ERROR(StopInstance(*old));
      const int replaced = old->index;
      old_instances_.erase(old_instances_.begin() + (old - old_instances_.data()));
      rolling_item_started_ = clock_.Now();
      return Report("replaced " + slot + "-" + std::to_string(replaced) + " with " +
                    deployment_->version);
    }
  }
  rolling_weight_bp_ = kFullWeightBp;
  TURNOUT_RETURN_IF_ERROR(RecordActive(slot, deployment_->revision,
                                       "rolled " + deployment_->version + " out in " + slot));
  TURNOUT_RETURN_IF_ERROR(
      Transition(DeploymentState::kBaking, std::to_string(replicas) + " instance(s) of " +
                                               deployment_->version + " serving in " + slot));
  return Report("");
}

Result<std::optional<StepReport>> Engine::RestoreOldInstances(const std::string& slot,
                                                              const std::string& failed_suffix) {
  using Out = std::optional<StepReport>;
  auto fail = [&](std::string why) -> Result<Out> {
    TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kFailed, why + failed_suffix));
    TURNOUT_ASSIGN_OR_RETURN(StepReport r, Report(""));
    return Out(r);
  };
  auto wait = [&](std::string what) -> Result<Out> {
    TURNOUT_ASSIGN_OR_RETURN(StepReport r, Report(std::move(what)));
    return Out(r);
  };
  if (rolling_old_count_ > 0 && !rolling_old_spec_) {
    TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> json,
                             store_.GetSetting(SpecKey(rolling_old_deployment_)));
    if (!json) {
      return fail("cannot restore " + slot + ": the previous deployment's spec is not on record");
    }
    TURNOUT_ASSIGN_OR_RETURN(DeploymentSpec old_spec, DecodeSpec(*json));
    rolling_old_spec_ = std::move(old_spec);
  }
  for (int j = 0; j < rolling_old_count_; ++j) {
    Instance* old = FindInstance(old_instances_, j);
    if (old == nullptr || !old->handle) {
      Instance inst = old ? *old : Instance{};
      inst.slot = slot;
      inst.index = j;
      TURNOUT_ASSIGN_OR_RETURN(platform::InstanceAddress address,
                               AllocateAddress(*rolling_old_spec_, slot, j));
      inst.host = address.host;
      inst.port = address.port;
      TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> failed,
                               LaunchOne(*rolling_old_spec_, rolling_old_deployment_, &inst));
      inst.deployment_id = rolling_old_deployment_;
      if (old) {
        *old = inst;
      } else {
        old_instances_.push_back(inst);
      }
      if (failed) {
        return fail("cannot restore " + slot + "-" + std::to_string(j) + ": " + *failed);
      }
      rolling_item_started_ = clock_.Now();
      return wait("relaunched " + slot + "-" + std::to_string(j) + " of " +
                  rolling_old_spec_->version);
    }
    bool probed = false;
    TURNOUT_ASSIGN_OR_RETURN(bool ok, ProbeReadyIfDue(*old, &probed));
    if (!ok) {
      if (clock_.Now() - rolling_item_started_ >= rolling_old_spec_->ready_deadline) {
        return fail("cannot restore " + slot + "-" + std::to_string(j) + ": not ready within " +
                    Seconds(rolling_old_spec_->ready_deadline));
      }
      WaitForExit();
      return wait("waiting for the restored " + slot + "-" + std::to_string(j) + " to be ready");
    }
  }
  return Out();
}

Result<StepReport> Engine::StepRestoringInPlace() {
  const std::string& slot = deployment_->target_slot;
  if (!instances_stopped_) {
    // Relaunch every old instance that was already replaced, from the previous deployment's
    // spec, and wait until each is ready; only then does the slot go back to the old set.
    TURNOUT_ASSIGN_OR_RETURN(
        std::optional<StepReport> restoring,
        RestoreOldInstances(slot, "; " + deployment_->version + " keeps serving"));
    if (restoring) return *restoring;
    if (rolling_old_count_ > 0) {
      std::vector<std::string> addresses;
      for (const auto& o : old_instances_) addresses.push_back(Address(o));
      TURNOUT_RETURN_IF_ERROR(router_.SetSlotInstances(slot, addresses).status());
      TURNOUT_RETURN_IF_ERROR(
          RecordActive(slot, previous_revision_, "rolled back from " + deployment_->version));
    }
    for (auto& i : new_instances_) TURNOUT_RETURN_IF_ERROR(StopInstance(i));
    instances_stopped_ = true;
  }
  // The old version alone serves, on the schema it served on before plus this deployment's
  // expand migrations, and nothing of the new version runs: the database ladder. Before this
  // point the new instances would serve on a schema taken back under them.
  return EndRollback();
}

std::string Engine::CanaryLabel() const {
  return "canary step " + std::to_string(canary_step_ + 1) + "/" +
         std::to_string(spec_.canary_steps.size()) + " (" +
         Percent(spec_.canary_steps[static_cast<size_t>(canary_step_)].weight_bp) + ")";
}

Status Engine::LeaveSmokeTests(std::string reason) {
  if (spec_.strategy != "canary") return Transition(DeploymentState::kSwitching, std::move(reason));
  if (deployment_->previous_slot.empty()) {
    return Transition(DeploymentState::kSwitching,
                      reason + "; first deployment: no stable version to run a canary beside");
  }
  // The step is on record before the state says Canary: a resumed engine always finds it.
  TURNOUT_RETURN_IF_ERROR(StartCanaryStep(0, /*apply=*/false));
  return Transition(DeploymentState::kCanary, reason + "; " + CanaryLabel());
}

void Engine::StartPhase() {
  phase_started_ = clock_.Now();
  phase_started_wall_ = clock_.WallNow();
  phase_paused_ = Clock::Duration::zero();
  warned_.clear();
  promote_held_recorded_ = false;
  last_evidence_.clear();
  hold_.clear();
}

Clock::Duration Engine::PhaseElapsed() const {
  const Clock::TimePoint now = clock_.Now();
  Clock::Duration d = now - phase_started_ - phase_paused_;
  if (paused_) d -= now - std::max(paused_since_, phase_started_);
  return std::max(d, Clock::Duration::zero());
}

Status Engine::StartCanaryStep(int step, bool apply) {
  const int previous = canary_step_;
  canary_step_ = step;
  StartPhase();
  Status saved = SaveCanaryProgress();
  if (!saved.ok()) {
    canary_step_ = previous;
    return saved;
  }
  canary_weight_applied_ = false;
  const CanaryStep& spec_step = spec_.canary_steps[static_cast<size_t>(step)];
  TURNOUT_ASSIGN_OR_RETURN(
      canary_step_record_,
      store_.BeginStep(deployment_->id, std::string(kCanaryStepPrefix) + std::to_string(step),
                       JsonText({{"weight_bp", spec_step.weight_bp},
                                 {"duration_ms", spec_step.duration.count()}})));
  if (apply) {
    TURNOUT_RETURN_IF_ERROR(
        router_
            .SetCanaryWeight(deployment_->target_slot,
                             spec_.canary_steps[static_cast<size_t>(step)].weight_bp)
            .status());
    canary_weight_applied_ = true;
  }
  return Status::Ok();
}

Status Engine::SaveCanaryProgress() {
  nlohmann::json j = {{"step", canary_step_},
                      {"started_at_ms", WallMs(phase_started_wall_)},
                      {"paused_ms", Ms(phase_paused_)}};
  return store_.PutSetting(KeyFor(kCanaryKeyPrefix, deployment_->id), j.dump());
}

Status Engine::FinishCanaryStepRecord(bool ok, const std::string& how,
                                      const std::string& evidence) {
  if (canary_step_record_ == 0) return Status::Ok();
  const CanaryStep& step = spec_.canary_steps[static_cast<size_t>(canary_step_)];
  nlohmann::json detail = {{"weight_bp", step.weight_bp},
                           {"duration_ms", step.duration.count()},
                           {"elapsed_ms", Ms(PhaseElapsed())},
                           {"ended", how}};
  if (!evidence.empty()) {
    nlohmann::json e = nlohmann::json::parse(evidence, nullptr, /*allow_exceptions=*/false);
    detail["evidence"] = e.is_discarded() ? nlohmann::json(evidence) : e;
  }
  TURNOUT_RETURN_IF_ERROR(store_.FinishStep(
      canary_step_record_, ok ? state::StepOutcome::kOk : state::StepOutcome::kFailed,
      JsonText(detail)));
  canary_step_record_ = 0;
  return Status::Ok();
}

Status Engine::AdvanceCanary(std::string_view event, std::string why, std::string evidence) {
  // The step's record carries how it ended and the evidence of the last verdict.
  TURNOUT_RETURN_IF_ERROR(FinishCanaryStepRecord(true, why, evidence));
  const size_t next = static_cast<size_t>(canary_step_) + 1;
  if (next < spec_.canary_steps.size()) {
    TURNOUT_RETURN_IF_ERROR(StartCanaryStep(static_cast<int>(next), /*apply=*/true));
    Emit(event, why + "; now " + CanaryLabel(), std::move(evidence));
    return Status::Ok();
  }
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kSwitching, why + "; switching to 100 %"));
  Emit(event, deployment_->reason, std::move(evidence));
  return Status::Ok();
}

Engine::PhaseFacts Engine::CurrentPhase() const {
  PhaseFacts f;
  if (deployment_->state == DeploymentState::kCanary) {
    const CanaryStep& step = spec_.canary_steps[static_cast<size_t>(canary_step_)];
    f.name = "canary";
    f.step = canary_step_;
    f.weight_bp = step.weight_bp;
    f.duration = step.duration;
  } else if (deployment_->state == DeploymentState::kRolling) {
    f.name = "rolling";
    f.step = rolling_index_;
    f.weight_bp = rolling_weight_bp_;
  } else {
    f.name = "bake";
    f.duration = spec_.bake_time;
  }
  return f;
}

Result<std::optional<AnalysisVerdict>> Engine::ConsultAnalysis() {
  if (!options_.analyze) return std::optional<AnalysisVerdict>();
  const Clock::TimePoint now = clock_.Now();
  if (last_analysis_ && now - *last_analysis_ < spec_.analysis_interval) {
    return std::optional<AnalysisVerdict>();
  }
  last_analysis_ = now;
  const PhaseFacts phase = CurrentPhase();
  AnalysisRequest req;
  req.deployment = &*deployment_;
  req.phase = phase.name;
  req.step = phase.step;
  req.weight_bp = phase.weight_bp;
  req.step_elapsed = PhaseElapsed();
  req.step_duration = phase.duration;
  req.step_started = now - req.step_elapsed;
  req.stable_slot = deployment_->previous_slot;
  req.new_slot = deployment_->target_slot;
  AnalysisVerdict v = options_.analyze(req);
  if (!v.evidence_json.empty()) last_evidence_ = v.evidence_json;
  // A first deployment has no users to protect and nothing to compare with: it is not held.
  hold_ = deployment_->previous_slot.empty() ? std::string() : v.hold;
  return std::optional<AnalysisVerdict>(std::move(v));
}

Result<std::optional<AnalysisVerdict>> Engine::Analyze() {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<AnalysisVerdict> verdict, ConsultAnalysis());
  if (!verdict) return verdict;
  const bool canary = deployment_->state == DeploymentState::kCanary;
  switch (verdict->kind) {
    case AnalysisVerdict::Kind::kContinue:
      return std::optional<AnalysisVerdict>();
    case AnalysisVerdict::Kind::kRollback:
      TURNOUT_RETURN_IF_ERROR(RecordVerdict(*verdict, ""));
      return verdict;
    case AnalysisVerdict::Kind::kWarn:
      if (std::find(warned_.begin(), warned_.end(), verdict->reason) == warned_.end()) {
        warned_.push_back(verdict->reason);
        TURNOUT_RETURN_IF_ERROR(RecordVerdict(*verdict, ""));
        Emit("warning", verdict->reason, verdict->evidence_json);
      }
      return std::optional<AnalysisVerdict>();
    case AnalysisVerdict::Kind::kPromote:
      if (canary && !paused_) {
        TURNOUT_RETURN_IF_ERROR(RecordVerdict(*verdict, ""));
        return verdict;
      }
      // The bake time is the least watch after the switch, a rolling update goes at the pace of
      // readiness, and a pause is a person's hold. Recorded once, not every interval.
      if (!promote_held_recorded_) {
        promote_held_recorded_ = true;
        TURNOUT_RETURN_IF_ERROR(RecordVerdict(
            *verdict, canary ? "held: paused" : "ignored: only a canary step ends early"));
      }
      return std::optional<AnalysisVerdict>();
  }
  return std::optional<AnalysisVerdict>();
}

Status Engine::RecordVerdict(const AnalysisVerdict& verdict, std::string_view note) {
  const PhaseFacts phase = CurrentPhase();
  const std::string name = "analysis:" + phase.name + ":" + std::to_string(phase.step);
  nlohmann::json detail = {{"verdict", VerdictKindName(verdict.kind)},
                           {"reason", verdict.reason},
                           {"weight_bp", phase.weight_bp},
                           {"step_elapsed_ms", Ms(PhaseElapsed())}};
  if (!note.empty()) detail["note"] = std::string(note);
  if (!verdict.evidence_json.empty()) {
    nlohmann::json evidence =
        nlohmann::json::parse(verdict.evidence_json, nullptr, /*allow_exceptions=*/false);
    detail["evidence"] = evidence.is_discarded() ? nlohmann::json(verdict.evidence_json) : evidence;
  }
  TURNOUT_ASSIGN_OR_RETURN(int64_t step_id, store_.BeginStep(deployment_->id, name, "{}"));
  return store_.FinishStep(step_id,
                           verdict.kind == AnalysisVerdict::Kind::kRollback
                               ? state::StepOutcome::kFailed
                               : state::StepOutcome::kOk,
                           JsonText(detail));
}

Status Engine::LoadGates() {
  const int64_t id = deployment_->id;
  const Clock::TimePoint now = clock_.Now();
  const state::WallTime wall_now = clock_.WallNow();
  // Wall time carried over the restart, mapped onto this engine's monotonic clock.
  auto to_local = [&](state::WallTime t) {
    return now - std::max(Clock::Duration::zero(), wall_now - t);
  };
  paused_ = false;
  paused_by_.clear();
  TURNOUT_ASSIGN_OR_RETURN(std::optional<nlohmann::json> paused,
                           LoadJsonSetting(store_, KeyFor(kPausedKeyPrefix, id)));
  if (paused && Field(*paused, "paused", false) && Pausable(deployment_->state)) {
    paused_ = true;
    paused_by_ = Field(*paused, "by", std::string());
    paused_since_ = to_local(FromWallMs(Field<int64_t>(*paused, "since_ms", WallMs(wall_now))));
  }
  StartPhase();
  canary_step_ = 0;
  canary_weight_applied_ = false;
  last_analysis_.reset();
  if (deployment_->state == DeploymentState::kCanary) {
    phase_started_ = entered_;
    phase_started_wall_ = wall_now - (now - entered_);
    TURNOUT_ASSIGN_OR_RETURN(std::optional<nlohmann::json> progress,
                             LoadJsonSetting(store_, KeyFor(kCanaryKeyPrefix, id)));
    if (progress) {
      const int64_t step = Field<int64_t>(*progress, "step", 0);
      if (step < 0 || static_cast<size_t>(step) >= spec_.canary_steps.size()) {
        return Internal("setting " + KeyFor(kCanaryKeyPrefix, id) + " names step " +
                        std::to_string(step) + " of " + std::to_string(spec_.canary_steps.size()));
      }
      canary_step_ = static_cast<int>(step);
      phase_started_wall_ =
          FromWallMs(Field<int64_t>(*progress, "started_at_ms", WallMs(phase_started_wall_)));
      phase_started_ = to_local(phase_started_wall_);
      phase_paused_ = std::chrono::milliseconds(Field<int64_t>(*progress, "paused_ms", 0));
    }
  }
  if (Rolling() || Recreate()) {
    TURNOUT_ASSIGN_OR_RETURN(std::optional<nlohmann::json> rolling,
                             LoadJsonSetting(store_, KeyFor(kRollingKeyPrefix, id)));
    if (rolling) {
      rolling_old_count_ = static_cast<int>(Field<int64_t>(*rolling, "old_count", 0));
      rolling_old_deployment_ = Field<int64_t>(*rolling, "old_deployment", 0);
    }
    rolling_item_started_ = now;
    if (deployment_->state == DeploymentState::kRolling) phase_started_ = entered_;
    TURNOUT_ASSIGN_OR_RETURN(std::optional<nlohmann::json> kept,
                             LoadJsonSetting(store_, KeyFor(kMaintenanceKeyPrefix, id)));
    maintenance_kept_ = kept.has_value();
    maintenance_owner_ = kept ? Field(*kept, "owner", std::string()) : std::string();
  }
  if (deployment_->state == DeploymentState::kBaking) {
    phase_started_ = entered_;
    phase_started_wall_ = wall_now - (now - entered_);
    TURNOUT_ASSIGN_OR_RETURN(std::optional<nlohmann::json> bake,
                             LoadJsonSetting(store_, KeyFor(kBakeKeyPrefix, id)));
    if (bake) phase_paused_ = std::chrono::milliseconds(Field<int64_t>(*bake, "paused_ms", 0));
    // A verification a crash interrupted is run again from its first check: a check's result
    // is only worth something when it ran to its end against what serves now.
    TURNOUT_ASSIGN_OR_RETURN(std::optional<nlohmann::json> verified,
                             LoadJsonSetting(store_, KeyFor(kVerifyKeyPrefix, id)));
    verify_next_ = verified && Field(*verified, "passed", false) ? spec_.verify.size() : 0;
  }
  return Status::Ok();
}

Status Engine::RequireGateState(std::string_view what) const {
  if (!deployment_) return FailedPrecondition("no deployment to " + std::string(what));
  const DeploymentState s = deployment_->state;
  if (s == DeploymentState::kCanary || s == DeploymentState::kBaking) return Status::Ok();
  return FailedPrecondition("deployment " + std::to_string(deployment_->id) + " is " +
                            std::string(state::DeploymentStateName(s)) + "; " + std::string(what) +
                            " is possible in canary and baking only");
}

Result<StepReport> Engine::StepScalingDown() {
  const std::string& old_slot = deployment_->previous_slot;
  // A scale in place kept the serving instances it needed and stopped the others in Rolling:
  // nothing old is left to stop.
  if (Rolling() && spec_.keep_instances) old_instances_.clear();
  const Clock::Duration left =
      expedite_scale_down_ ? Clock::Duration::zero() : spec_.scale_down_delay - Elapsed();
  if (!old_instances_.empty() && left > Clock::Duration::zero()) {
    return Report("keeping " + old_slot + " warm for rollback, scale-down in " + Seconds(left));
  }
  if (!old_instances_.empty() && !instances_stopped_) {
    TURNOUT_ASSIGN_OR_RETURN(router::SlotStatus status, router_.GetSlotStatus(old_slot));
    if (!status.drained) {
      WaitForDrain();
      return Report("waiting for " + old_slot + " to drain (" + std::to_string(status.in_flight) +
                    " request(s) in flight)");
    }
    // The router keeps the old slot's (now dead) addresses: it refuses an empty list, the slot
    // gets no traffic, and the next deployment to it replaces them.
    for (auto& i : old_instances_) TURNOUT_RETURN_IF_ERROR(StopInstance(i));
    old_stopped_ = old_instances_.size();
    instances_stopped_ = true;
  }
  // No live version needs the old schema any more: the contract migrations.
  bool db_failed = false;
  std::optional<std::string> db = PollDatabase("after_retire", &db_failed);
  if (db && !db_failed) return Report("database: " + *db);
  std::string reason = old_stopped_ == 0 ? std::string("deployed")
                                         : "deployed; " + std::to_string(old_stopped_) +
                                               " old instance(s) in " + old_slot + " stopped";
  if (expedite_scale_down_ && old_stopped_ != 0) {
    reason += " early (" + expedite_reason_ + ")";
  }
  if (Recreate() && maintenance_kept_) reason += KeptMaintenanceNote();
  if (db_failed) {
    // The app is deployed and fine; only the schema is not contracted yet.
    reason += "; database: " + *db;
    Emit("warning", "database: " + *db);
  }
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kSucceeded, std::move(reason)));
  old_instances_.clear();
  return Report("");
}

Result<StepReport> Engine::StepRollingBack() {
  if (Rolling()) return StepRestoringInPlace();
  if (Recreate()) return StepRecreateRollingBack();
  const std::string& slot = deployment_->target_slot;
  const std::string& old_slot = deployment_->previous_slot;
  bool back = false;
  // A canary that never switched left the old slot active: going back only clears the canary.
  const bool moved = switched_ || canary_started_;
  if (moved) {
    if (old_slot.empty()) {
      // A first deployment has nothing to go back to; leave the router as it is.
    } else {
      // Switching back to a slot whose instances are gone would turn a degraded version into
      // an outage: then the new version keeps serving and the deployment fails.
      if (switched_) {
        TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> cold, OldSlotNotWarm());
        if (cold) {
          TURNOUT_RETURN_IF_ERROR(Transition(
              DeploymentState::kFailed,
              "cannot switch back: " + *cold + "; " + deployment_->version + " keeps serving"));
          return Report("");
        }
      }
      TURNOUT_RETURN_IF_ERROR(SwitchBack());
      back = true;
      TURNOUT_ASSIGN_OR_RETURN(router::SlotStatus status, router_.GetSlotStatus(slot));
      if (!status.drained) {
        WaitForDrain();
        return Report("waiting for " + slot + " to drain before stopping it (" +
                      std::to_string(status.in_flight) + " request(s) in flight)");
      }
    }
  }
  // The new slot's addresses stay in the router (it refuses an empty list); the slot gets no
  // traffic and the next deployment to it replaces them.
  if ((!moved || back) && !instances_stopped_) {
    for (auto& i : new_instances_) TURNOUT_RETURN_IF_ERROR(StopInstance(i));
    instances_stopped_ = true;
  }
  if (moved && !back) {
    TURNOUT_RETURN_IF_ERROR(Transition(
        DeploymentState::kFailed,
        "no previous version to switch back to; " + deployment_->version + " keeps serving"));
    return Report("");
  }
  return EndRollback();
}

Status Engine::SwitchBack() {
  const std::string& old_slot = deployment_->previous_slot;
  TURNOUT_ASSIGN_OR_RETURN(router::RoutingPolicy policy, router_.GetPolicy());
  if (policy.active != old_slot || policy.canary) {
    TURNOUT_RETURN_IF_ERROR(router_.Switch(old_slot).status());
  }
  if (!switched_) return Status::Ok();
  return RecordActive(old_slot, previous_revision_, "rolled back from " + deployment_->version);
}

Result<StepReport> Engine::EndRollback() {
  // Users are on the old version again: the database ladder.
  std::string why = deployment_->reason.empty() ? std::string("rolled back") : deployment_->reason;
  bool db_failed = false;
  if (std::optional<std::string> db = PollDatabase("rollback", &db_failed)) {
    if (!db_failed) return Report("database: " + *db);
    why += "; database: " + *db;
    TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kFailed, std::move(why)));
    return Report("");
  }
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kRolledBack, std::move(why)));
  return Report("");
}

bool Engine::Recreate() const {
  return spec_.strategy == "recreate" && !deployment_->previous_slot.empty() &&
         deployment_->target_slot != deployment_->previous_slot;
}

Status Engine::SetMaintenance(bool on) {
  TURNOUT_ASSIGN_OR_RETURN(router::RoutingPolicy policy, router_.GetPolicy());
  if (policy.maintenance.enabled == on) return Status::Ok();
  router::MaintenancePolicy m;
  if (on && options_.maintenance) {
    TURNOUT_ASSIGN_OR_RETURN(m, options_.maintenance());
  }
  m.enabled = on;
  return router_.SetMaintenance(m).status();
}

Result<Clock::Duration> Engine::MaintenanceHeld() {
  TURNOUT_ASSIGN_OR_RETURN(std::vector<state::Transition> transitions,
                           store_.Transitions(deployment_->id));
  for (auto t = transitions.rbegin(); t != transitions.rend(); ++t) {
    if (t->to == DeploymentState::kDraining) {
      return std::max(Clock::Duration::zero(), clock_.WallNow() - t->at);
    }
  }
  return Clock::Duration::zero();
}

Result<StepReport> Engine::BeginDraining() {
  TURNOUT_RETURN_IF_ERROR(RecordOldInstances());
  // Maintenance that is already on is someone else's (deployments are refused while it is
  // changed by hand): written down before Draining, so that every end of this deployment, after
  // a restart too, leaves it on with its page.
  TURNOUT_ASSIGN_OR_RETURN(router::RoutingPolicy policy, router_.GetPolicy());
  maintenance_kept_ = policy.maintenance.enabled;
  maintenance_owner_.clear();
  if (maintenance_kept_) {
    maintenance_owner_ = options_.maintenance_owner ? options_.maintenance_owner() : "";
    if (maintenance_owner_.empty()) maintenance_owner_ = "turned on by hand";
    TURNOUT_RETURN_IF_ERROR(
        store_.PutSetting(KeyFor(kMaintenanceKeyPrefix, deployment_->id),
                          nlohmann::json({{"owner", maintenance_owner_}}).dump()));
  }
  TURNOUT_RETURN_IF_ERROR(Transition(
      DeploymentState::kDraining,
      std::string(maintenance_kept_ ? "pre-checks passed; maintenance already on ("
                                    : "pre-checks passed; maintenance on") +
          (maintenance_kept_ ? maintenance_owner_ + ")" : std::string()) + ", stopping " +
          std::to_string(old_instances_.size()) + " instance(s) of " + deployment_->previous_slot));
  return Report("");
}

std::string Engine::KeptMaintenanceNote() const {
  return "; maintenance stays on as it was before this deployment (" + maintenance_owner_ +
         "): `turnout maintenance off` ends it";
}

Status Engine::LiftMaintenance(std::string* why) {
  if (maintenance_kept_) {
    *why += KeptMaintenanceNote();
    return Status::Ok();
  }
  TURNOUT_RETURN_IF_ERROR(SetMaintenance(false));
  TURNOUT_ASSIGN_OR_RETURN(Clock::Duration held, MaintenanceHeld());
  *why += "; maintenance off after " + std::to_string(Ms(held)) + " ms";
  return Status::Ok();
}

Result<StepReport> Engine::StepDraining() {
  const std::string& old_slot = deployment_->previous_slot;
  // Users get the maintenance page (never a connection error) before anything old stops.
  TURNOUT_RETURN_IF_ERROR(SetMaintenance(true));
  if (!old_instances_.empty()) {
    TURNOUT_ASSIGN_OR_RETURN(router::SlotStatus status, router_.GetSlotStatus(old_slot));
    const Clock::Duration left = spec_.grace - Elapsed();
    if (!status.drained && left > Clock::Duration::zero()) {
      WaitForDrain();
      return Report("maintenance on; waiting for " + old_slot + " to drain (" +
                    std::to_string(status.in_flight) + " request(s) in flight), " + Seconds(left) +
                    " left");
    }
    // Past the bound, the stop signal and grace still let the requests in flight finish.
    for (auto& i : old_instances_) TURNOUT_RETURN_IF_ERROR(StopInstance(i));
    old_instances_.clear();
  }
  // The old version is gone: backup and migrations, which need not be compatible with it.
  bool db_failed = false;
  if (std::optional<std::string> db = PollDatabase("before_launch", &db_failed)) {
    if (db_failed) return BeginRollback("database: " + *db);
    return Report("maintenance on; database: " + *db);
  }
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kLaunching,
                                     "maintenance on; " + std::to_string(rolling_old_count_) +
                                         " instance(s) of " + old_slot + " stopped"));
  return Report("");
}

Result<StepReport> Engine::StepRecreateRollingBack() {
  const std::string& slot = deployment_->target_slot;
  const std::string& old_slot = deployment_->previous_slot;
  if (!draining_started_) {
    // Failed before Draining: the old version still serves, maintenance untouched.
    for (auto& i : new_instances_) TURNOUT_RETURN_IF_ERROR(StopInstance(i));
    return EndRollback();
  }
  // Every migration ran in Draining with nothing serving: the old version may not work on the
  // schema the new one runs on, nor the new one on the schema the ladder takes back. So, behind
  // the maintenance page, the new version stops, then the schema goes back, then the old
  // version comes back: no version ever runs on a schema it does not support.
  if (!instances_stopped_) {
    TURNOUT_RETURN_IF_ERROR(SetMaintenance(true));
    TURNOUT_ASSIGN_OR_RETURN(router::SlotStatus status, router_.GetSlotStatus(slot));
    if (!status.drained) {
      WaitForDrain();
      return Report("maintenance on; waiting for " + slot + " to drain before stopping it (" +
                    std::to_string(status.in_flight) + " request(s) in flight)");
    }
    for (auto& i : new_instances_) TURNOUT_RETURN_IF_ERROR(StopInstance(i));
    instances_stopped_ = true;
  }
  if (!ladder_) {
    bool failed = false;
    const std::optional<std::string> db = PollDatabase("rollback", &failed);
    if (db && !failed) return Report("maintenance on; database: " + *db);
    ladder_ = failed ? *db : std::string();
  }
  const bool db_failed = !ladder_->empty();
  // The ladder failed: the old version comes back all the same (the operator may judge the
  // schema good enough for it), behind the maintenance page, which stays on.
  const std::string db_note = db_failed ? "; database: " + *ladder_ : std::string();
  const std::string stays_on =
      maintenance_kept_
          ? KeptMaintenanceNote()
          : "; maintenance stays on: " +
                std::string(db_failed ? "fix the database, then run `turnout maintenance off`"
                                      : "no version can serve; deploy a fixed version, or run "
                                        "`turnout maintenance off`");
  if (rolling_old_count_ > 0) {
    TURNOUT_ASSIGN_OR_RETURN(std::optional<StepReport> restoring,
                             RestoreOldInstances(old_slot, db_note + stays_on));
    if (restoring) return *restoring;
    std::vector<std::string> addresses;
    for (const auto& o : old_instances_) addresses.push_back(Address(o));
    TURNOUT_RETURN_IF_ERROR(router_.SetSlotInstances(old_slot, addresses).status());
  }
  TURNOUT_RETURN_IF_ERROR(SwitchBack());
  std::string why = deployment_->reason.empty() ? std::string("rolled back") : deployment_->reason;
  if (db_failed) {
    TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kFailed, why + db_note + stays_on));
    return Report("");
  }
  TURNOUT_RETURN_IF_ERROR(LiftMaintenance(&why));
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kRolledBack, std::move(why)));
  return Report("");
}

Result<StepReport> Engine::StepAwaitingApproval() {
  TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> exited, FindExited());
  if (exited) return BeginRollback(*exited + " while awaiting approval");
  WaitForExit();
  return Report("waiting for approval: run `turnout approve`");
}

Status Engine::Approve(std::string_view actor) {
  if (!deployment_) return FailedPrecondition("no deployment to approve");
  if (deployment_->state != DeploymentState::kAwaitingApproval) {
    return FailedPrecondition("deployment " + std::to_string(deployment_->id) + " is " +
                              std::string(state::DeploymentStateName(deployment_->state)) +
                              ", not awaiting approval");
  }
  return LeaveSmokeTests("approved by " + std::string(actor));
}

Status Engine::Abort(std::string_view actor) {
  if (deployment_ && deployment_->state == DeploymentState::kRollingBack) return Status::Ok();
  TURNOUT_RETURN_IF_ERROR(StartRollback("aborted by " + std::string(actor)));
  Emit("aborted", deployment_->reason);
  return Status::Ok();
}

Status Engine::ExpediteScaleDown(std::string_view reason) {
  if (!deployment_) return FailedPrecondition("no deployment");
  if (deployment_->state != DeploymentState::kScalingDown) {
    return FailedPrecondition("deployment " + std::to_string(deployment_->id) + " is " +
                              std::string(state::DeploymentStateName(deployment_->state)) +
                              ", not scaling down");
  }
  expedite_scale_down_ = true;
  expedite_reason_ = std::string(reason);
  return Status::Ok();
}

Status Engine::Pause(std::string_view actor) {
  TURNOUT_RETURN_IF_ERROR(RequireGateState("pause"));
  if (paused_) return Status::Ok();
  const state::WallTime wall_now = clock_.WallNow();
  nlohmann::json j = {{"paused", true}, {"since_ms", WallMs(wall_now)}, {"by", std::string(actor)}};
  TURNOUT_RETURN_IF_ERROR(store_.PutSetting(KeyFor(kPausedKeyPrefix, deployment_->id), j.dump()));
  paused_ = true;
  paused_by_ = std::string(actor);
  paused_since_ = clock_.Now();
  Emit("paused", "paused by " + std::string(actor) + " during " +
                     (deployment_->state == DeploymentState::kCanary ? CanaryLabel()
                                                                     : std::string("the bake")));
  return Status::Ok();
}

Status Engine::Unpause(std::string_view actor) {
  TURNOUT_RETURN_IF_ERROR(RequireGateState("resume"));
  if (!paused_) return Status::Ok();
  const Clock::TimePoint now = clock_.Now();
  const Clock::Duration pause = now - std::max(paused_since_, phase_started_);
  // The phase's paused time first: a crash before the pause is cleared counts this pause twice,
  // which only makes the step last longer, never shorter.
  phase_paused_ += pause;
  Status saved = deployment_->state == DeploymentState::kCanary
                     ? SaveCanaryProgress()
                     : store_.PutSetting(KeyFor(kBakeKeyPrefix, deployment_->id),
                                         nlohmann::json({{"paused_ms", Ms(phase_paused_)}}).dump());
  if (saved.ok()) {
    saved = store_.PutSetting(KeyFor(kPausedKeyPrefix, deployment_->id),
                              nlohmann::json({{"paused", false}}).dump());
  }
  if (!saved.ok()) {
    phase_paused_ -= pause;
    return saved;
  }
  paused_ = false;
  paused_by_.clear();
  Emit("resumed", "resumed by " + std::string(actor) + " after " + Seconds(pause));
  return Status::Ok();
}

Status Engine::Promote(bool full, std::string_view actor) {
  TURNOUT_RETURN_IF_ERROR(RequireGateState("promote"));
  const std::string by = "promoted by " + std::string(actor);
  if (deployment_->state == DeploymentState::kBaking) {
    TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kScalingDown,
                                       by + ": bake ended after " + Seconds(PhaseElapsed())));
    Emit("promoted", deployment_->reason);
    return Status::Ok();
  }
  if (full) {
    TURNOUT_RETURN_IF_ERROR(
        Transition(DeploymentState::kSwitching, by + " at " + CanaryLabel() + " to 100 %"));
    Emit("promoted", deployment_->reason);
    return Status::Ok();
  }
  return AdvanceCanary("promoted", by + " at " + CanaryLabel(), "");
}

Status Engine::RequestRollback(std::string_view reason) {
  return StartRollback("rollback requested: " + std::string(reason));
}

Status Engine::StartRollback(std::string reason) {
  if (!deployment_) return FailedPrecondition("no deployment to roll back");
  const DeploymentState s = deployment_->state;
  if (state::IsTerminal(s)) return FailedPrecondition("deployment already finished");
  if (s == DeploymentState::kRollingBack) return Status::Ok();
  if (s == DeploymentState::kScalingDown) {
    TURNOUT_ASSIGN_OR_RETURN(std::vector<state::InstanceRecord> records,
                             store_.ListInstances(deployment_->service, false));
    for (const auto& old : old_instances_) {
      for (const auto& r : records) {
        if (r.id == old.record_id && r.state != state::InstanceState::kRunning) {
          return FailedPrecondition("the old slot is already being scaled down");
        }
      }
    }
  }
  // Recreate stopped the old slot on purpose: its rollback relaunches it (Step()).
  if (switched_ && !deployment_->previous_slot.empty() && !Recreate()) {
    TURNOUT_ASSIGN_OR_RETURN(std::optional<std::string> cold, OldSlotNotWarm());
    if (cold) return FailedPrecondition("cannot switch back: " + *cold);
  }
  TURNOUT_RETURN_IF_ERROR(Transition(DeploymentState::kRollingBack, std::move(reason)));
  if ((switched_ || canary_started_) && !deployment_->previous_slot.empty() && !Recreate()) {
    // Fast path: the old slot is warm (in Canary it still serves most users), so users go back
    // now; Step() cleans up.
    TURNOUT_RETURN_IF_ERROR(router_.Switch(deployment_->previous_slot).status());
  }
  return Status::Ok();
}

}  // namespace turnout::controller
