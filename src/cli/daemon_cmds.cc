#include "cli/daemon_cmds.h"

#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "api/api.h"
#include "cli/access_logs.h"
#include "cli/args.h"
#include "cli/daemon_output.h"
#include "common/duration.h"
#include "common/secret.h"
#include "common/text.h"
#include "daemon/wiring.h"
#include "router/access_log.h"
#include "service/service_config.h"

extern char** environ;

namespace turnout::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Millis = std::chrono::milliseconds;

struct Context {
  std::string command;  // "deploy"
  Args args;
  std::string endpoint;
  std::string token;
  std::string config_path;  // absolute, "" when not found
  bool json = false;
  bool tty = false;
};

int Usage(const std::string& command, const std::string& message) {
  std::cerr << "turnout " << command << ": " << message << "\nrun `turnout " << command
            << " --help` for usage\n";
  return kExitUsage;
}

int Fail(const Context& c, const std::string& message) {
  std::cerr << "turnout " << c.command << ": " << message << "\n";
  return kExitFailed;
}

// The actor recorded in history and the audit log: user@host and the CLI's pid.
std::string Actor() {
  std::string user = EnvOr("USER", EnvOr("LOGNAME", ""));
  if (user.empty()) {
    const passwd* pw = ::getpwuid(::getuid());
    user = pw != nullptr ? pw->pw_name : "uid" + std::to_string(::getuid());
  }
  char host[HOST_NAME_MAX + 1] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return user + "@" + (host[0] ? host : "localhost") + " pid " + std::to_string(::getpid());
}

std::string Str(const json& j, const char* key, std::string fallback = "") {
  return JsonText(j, key, std::move(fallback));
}

// Wall times from the daemon ("2026-11-22T08:01:02.123Z") as milliseconds since the epoch.
int64_t ParseTimeMs(const std::string& t) {
  struct tm tm {};
  int ms = 0;
  if (sscanf(t.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &ms) < 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

// ---- talking to turnoutd ---------------------------------------------------------------------

std::vector<FlagSpec> CommonFlags(std::vector<FlagSpec> extra) {
  std::vector<FlagSpec> flags = {
      {"config", "FILE", "the service's turnout.yaml (default $TURNOUT_CONFIG or turnout.yaml)"},
      {"socket", "PATH", "turnoutd's API socket (default: in the config's state_dir)"},
      {"endpoint", "URL", "turnoutd's API over TCP, e.g. http://10.0.0.5:7070"},
      {"token", "TOKEN", "bearer token for --endpoint (default $TURNOUT_TOKEN)"},
      {"json", "", "print JSON for scripts instead of text"},
  };
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

Status Locate(Context& c) {
  c.token = c.args.Get("token", EnvOr("TURNOUT_TOKEN", ""));
  std::string config = c.args.Get("config", EnvOr("TURNOUT_CONFIG", "turnout.yaml"));
  std::error_code ec;
  if (fs::exists(config, ec)) c.config_path = fs::absolute(config, ec).string();
  if (c.args.Has("endpoint")) {
    c.endpoint = c.args.Get("endpoint");
    return Status::Ok();
  }
  if (c.args.Has("socket")) {
    c.endpoint = "unix:" + c.args.Get("socket");
    return Status::Ok();
  }
  if (std::string env = EnvOr("TURNOUT_SOCKET", ""); !env.empty()) {
    c.endpoint = "unix:" + env;
    return Status::Ok();
  }
  if (c.config_path.empty()) {
    return NotFound("no " + config +
                    " here; run in the service's directory, pass --config FILE, or write one "
                    "with `turnout init`");
  }
  TURNOUT_ASSIGN_OR_RETURN(service::ServiceConfig sc, service::LoadServiceConfig(c.config_path));
  c.endpoint =
      "unix:" + daemon::PathsFor(sc, fs::path(c.config_path).parent_path().string()).socket;
  return Status::Ok();
}

struct Call {
  int exit = kExitOk;  // non-zero: already reported
  json body;
};

// One API exchange; reports failures itself (exit 3 unreachable, 1 refused).
Call Exchange(const Context& c, const std::string& method, const std::string& target,
              const json& body = nullptr, Millis timeout = Millis(90000)) {
  api::Client client({c.endpoint, c.token, timeout});
  Result<api::Reply> reply = client.Call(method, target, body.is_null() ? "" : body.dump());
  Call out;
  if (!reply.ok()) {
    std::cerr << "turnout " << c.command << ": " << reply.status().message() << "\n";
    out.exit =
        reply.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitUnreachable;
    return out;
  }
  out.body = json::parse(reply->body, nullptr, false);
  if (reply->status < 200 || reply->status > 299) {
    const Status s = api::StatusFromReply(*reply);
    if (c.json) {
      std::cout << reply->body;
    }
    std::cerr << "turnout " << c.command << ": " << s.message() << "\n";
    out.exit = kExitFailed;
    return out;
  }
  if (out.body.is_discarded()) {
    std::cerr << "turnout " << c.command << ": turnoutd sent a reply that is not JSON\n";
    out.exit = kExitFailed;
  }
  return out;
}

// ---- deployment progress -------------------------------------------------------------------

bool SuccessState(const std::string& s) { return s == "succeeded" || s == "scaling_down"; }
bool FailureState(const std::string& s) { return s == "rolled_back" || s == "failed"; }

// Follows a deployment until traffic is on the new version and the bake passed (scaling_down
// or succeeded: exit 0) or it ended otherwise (exit 1). On a terminal the current step is one
// line rewritten in place; elsewhere only finished steps are printed.
// The decisions inside a state worth a line of their own: each canary step with how it ended,
// each database phase, and each verify check with its result.
std::string StepLine(const json& s) {
  const std::string name = Str(s, "step");
  const json& d = s["detail"];
  const double ms = s.contains("duration_ms") ? s["duration_ms"].get<double>() : 0;
  if (name == "resume" && d.is_object()) return "      " + FormatResumeStep(s);
  if (Str(s, "outcome") == "interrupted") {
    return "      " + name + " interrupted after " + FormatMillis(ms) + " (turnoutd stopped)";
  }
  if (name.rfind("canary_step:", 0) == 0) {
    const int step = std::atoi(name.c_str() + 12) + 1;
    std::string line = "      canary step " + std::to_string(step) + ": " + Str(s, "outcome") +
                       " after " + FormatMillis(ms);
    if (d.is_object() && !Str(d, "ended").empty()) line += " (" + Str(d, "ended") + ")";
    return line;
  }
  if (name.rfind("verify:", 0) == 0) {
    const std::string what = FormatVerifyStep(s);
    return "      verify " + name.substr(7) + ": " + Str(s, "outcome") + " in " + FormatMillis(ms) +
           (what.empty() ? "" : " (" + what + ")");
  }
  if (name.rfind("database:", 0) == 0) {
    std::string line =
        "      database " + name.substr(9) + ": " + Str(s, "outcome") + " in " + FormatMillis(ms);
    if (d.is_object()) {
      for (const char* key : {"backup", "applied", "reverted", "action", "error"}) {
        std::string value;
        if (d.contains(key) && d[key].is_array()) {  // migrations by label; none: not shown
          for (const auto& m : d[key]) {
            value +=
                (value.empty() ? "" : ", ") + (m.is_string() ? m.get<std::string>() : m.dump());
          }
        } else {
          value = Str(d, key);
        }
        if (!value.empty()) line += ", " + std::string(key) + " " + value;
      }
    }
    return line;
  }
  return "";
}

bool Answers(const Context& c);

// turnoutd stopped answering while a deployment was followed (it died, or was restarted): waits
// up to kDaemonBackWait for a turnoutd to answer again, so the follower shows the restart and
// what it resumed. False when none came back.
constexpr Millis kDaemonBackWait{120000};
bool WaitForDaemonBack(const Context& c) {
  if (!c.json) {
    std::cout << "  turnoutd stopped answering; waiting for it to come back (`turnout up`)\n"
              << std::flush;
  }
  const auto deadline = std::chrono::steady_clock::now() + kDaemonBackWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Answers(c)) return true;
    std::this_thread::sleep_for(Millis(500));
  }
  return false;
}

int FollowDeployment(const Context& c, int64_t id) {
  size_t printed = 0;            // transitions already shown
  std::vector<bool> step_shown;  // by index in the deployment's steps (start order)
  std::string live_line;
  for (;;) {
    Call call = Exchange(c, "GET", "/v1/deployments/" + std::to_string(id));
    if (call.exit == kExitUnreachable && WaitForDaemonBack(c)) continue;
    if (call.exit != kExitOk) return call.exit;
    const json& j = call.body;
    const json& d = j["deployment"];
    const std::string state = Str(d, "state");
    const json& ts = j["transitions"];
    if (!c.json) {
      if (c.tty && !live_line.empty()) std::cout << "\r\033[K" << std::flush;
      const json& steps = j["steps"];
      step_shown.resize(steps.size(), false);
      for (size_t k = 0; k < steps.size(); ++k) {
        if (step_shown[k] || !steps[k].contains("finished_at")) continue;
        step_shown[k] = true;
        const std::string line = StepLine(steps[k]);
        if (!line.empty()) std::cout << line << "\n";
      }
      // Transition k enters a state; transition k + 1 ends it.
      while (printed + 1 < ts.size()) {
        const json& entered = ts[printed];
        const json& left = ts[printed + 1];
        const double ms =
            static_cast<double>(ParseTimeMs(Str(left, "at")) - ParseTimeMs(Str(entered, "at")));
        const std::string next = Str(left, "to");
        const bool bad = next == "rolling_back" || next == "failed";
        std::string line =
            FormatStateLine(Str(entered, "to"), ms, bad ? "FAILED: " + Str(left, "reason") : "ok");
        line.pop_back();  // the newline; a restart's share of the state's time follows
        // The wall time of a state a restart interrupted includes the time turnoutd was down.
        for (const auto& step : steps) {
          const json& rd = step["detail"];
          if (Str(step, "step") == "resume" && rd.is_object() && rd.contains("down_ms") &&
              Str(rd, "state") == Str(entered, "to")) {
            line += " (of which turnoutd was down " +
                    FormatMillis(static_cast<double>(rd["down_ms"].get<int64_t>())) + ")";
          }
        }
        std::cout << line << "\n";
        ++printed;
      }
      if (!state.empty() && !SuccessState(state) && !FailureState(state)) {
        std::string wait = Str(j, "waiting_for");
        if (!Str(j, "error").empty()) wait = "retrying: " + Str(j, "error");
        live_line = "  " + state + (wait.empty() ? "" : "  " + wait);
        if (c.tty) std::cout << live_line << std::flush;
      } else {
        live_line.clear();
      }
    }
    if (SuccessState(state) || FailureState(state)) {
      if (c.tty && !live_line.empty()) std::cout << "\r\033[K";
      if (c.json) {
        std::cout << j.dump(2) << "\n";
      } else if (SuccessState(state)) {
        std::cout << "deployed " << Str(d, "version") << " on " << Str(d, "target_slot")
                  << " (revision " << Str(d, "revision") << ")";
        if (state == "scaling_down" && !Str(d, "previous_slot").empty()) {
          std::cout << "; " << Str(d, "previous_slot")
                    << " stays warm for an instant `turnout rollback` until it is scaled down";
        }
        std::cout << "\n";
      } else {
        std::cout << "deployment " << id << " of " << Str(d, "version") << " " << state << ": "
                  << Str(d, "reason") << "\n";
        if (Str(d, "previous_slot").empty()) {
          std::cout << "nothing was serving before; users see no version yet\n";
        } else {
          std::cout << "users stay on " << Str(d, "previous_slot") << "; see `turnout history "
                    << Str(d, "revision") << "` and `turnout logs " << Str(d, "target_slot")
                    << "`\n";
        }
      }
      return SuccessState(state) ? kExitOk : kExitFailed;
    }
    std::this_thread::sleep_for(Millis(200));
  }
}

// ---- the commands --------------------------------------------------------------------------

int RunDeploy(Context& c) {
  if (c.args.positional().size() != 1) return Usage(c.command, "expected exactly one VERSION");
  const std::string version = c.args.positional()[0];
  json body = {{"version", version}, {"actor", Actor()}, {"reason", c.args.Get("reason")}};
  Call call = Exchange(c, "POST", "/v1/deploy", body);
  if (call.exit != kExitOk) return call.exit;
  const json& d = call.body["deployment"];
  const int64_t id = d.value("id", int64_t{0});
  if (!c.args.Has("wait")) {
    if (c.json) {
      std::cout << call.body.dump(2) << "\n";
    } else {
      std::cout << "deployment " << id << " started: " << version << " -> " << Str(d, "target_slot")
                << " (revision " << Str(d, "revision")
                << "); follow it with `turnout status` or `turnout events --follow`\n";
    }
    return kExitOk;
  }
  if (!c.json) {
    std::cout << "deploying " << version << " to " << Str(d, "target_slot") << " (deployment " << id
              << ", revision " << Str(d, "revision") << ")\n";
  }
  return FollowDeployment(c, id);
}

// `turnout restart`, `scale N`, `set env`: POST `path` with `body` (actor added), then say what
// started, or follow it with --wait like a deploy.
int RunRedefine(Context& c, const std::string& path, json body, const std::string& what) {
  body["actor"] = Actor();
  body["reason"] = c.args.Get("reason");
  Call call = Exchange(c, "POST", path, body);
  if (call.exit != kExitOk) return call.exit;
  const json& d = call.body["deployment"];
  const int64_t id = d.value("id", int64_t{0});
  if (c.json && !c.args.Has("wait")) {
    std::cout << call.body.dump(2) << "\n";
    return kExitOk;
  }
  if (!c.json) {
    const bool in_place = Str(d, "strategy") == "rolling";
    std::cout << what << " of " << Str(d, "version") << ": deployment " << id << ", revision "
              << Str(d, "revision") << ", "
              << (in_place ? "instances replaced one at a time in " + Str(d, "target_slot")
                           : Str(d, "strategy") + " into " + Str(d, "target_slot"))
              << "\n";
    if (!c.args.Has("wait")) {
      std::cout << "follow it with `turnout status` or `turnout events --follow`\n";
      return kExitOk;
    }
  }
  return FollowDeployment(c, id);
}

int RunRestart(Context& c) {
  if (!c.args.positional().empty()) return Usage(c.command, "unexpected argument");
  return RunRedefine(c, "/v1/restart", json::object(), "restart");
}

int RunScale(Context& c) {
  if (c.args.positional().size() != 1) return Usage(c.command, "expected one N (1 to 64)");
  Result<int64_t> n = ParseWholeNumber(c.args.positional()[0], 1, 64);
  if (!n.ok()) return Usage(c.command, "N: " + n.status().message());
  return RunRedefine(c, "/v1/scale", json{{"replicas", *n}},
                     "scale to " + std::to_string(*n) + " instance(s)");
}

int RunSetEnv(Context& c) {
  const auto& pos = c.args.positional();
  if (pos.empty() || pos[0] != "env") return Usage(c.command, "expected `set env K=V...`");
  json set = json::object();
  for (size_t i = 1; i < pos.size(); ++i) {
    const size_t eq = pos[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      // Only the part before any '=' is shown: the rest may be a secret.
      return Usage(c.command, "expected NAME=VALUE, got '" + pos[i].substr(0, eq) + "...'");
    }
    set[pos[i].substr(0, eq)] = pos[i].substr(eq + 1);
  }
  const std::vector<std::string> unset = c.args.GetAll("unset");
  if (set.empty() && unset.empty()) return Usage(c.command, "expected NAME=VALUE or --unset NAME");
  std::vector<std::string> names;
  for (const auto& [name, value] : set.items()) names.push_back(name);
  std::string what = "env change (";
  for (size_t i = 0; i < names.size(); ++i) what += (i ? ", set " : "set ") + names[i];
  for (size_t i = 0; i < unset.size(); ++i) {
    what += (i || !names.empty() ? ", unset " : "unset ") + unset[i];
  }
  return RunRedefine(c, "/v1/env", json{{"set", set}, {"unset", unset}}, what + ")");
}

// `turnout secrets list | rotate NAME | drop-previous NAME`.
int RunSecrets(Context& c) {
  const auto& pos = c.args.positional();
  const std::string verb = pos.empty() ? "" : pos[0];
  if (verb == "list") {
    if (pos.size() != 1) return Usage(c.command, "`secrets list` takes no argument");
    Call call = Exchange(c, "GET", "/v1/secrets");
    if (call.exit != kExitOk) return call.exit;
    if (c.json) {
      std::cout << call.body.dump(2) << "\n";
    } else {
      std::cout << FormatSecretList(call.body["secrets"]);
    }
    return kExitOk;
  }
  if (verb != "rotate" && verb != "drop-previous") {
    return Usage(c.command,
                 "expected `secrets list`, `secrets rotate NAME` or "
                 "`secrets drop-previous NAME`");
  }
  if (pos.size() != 2 || !IsUserEnvName(pos[1])) {
    return Usage(c.command, "expected `secrets " + verb + " NAME` with the secret's name");
  }
  const std::string& name = pos[1];
  if (verb == "drop-previous") {
    return RunRedefine(c, "/v1/secrets/drop-previous", json{{"name", name}},
                       "drop " + name + "_PREVIOUS");
  }
  json body = {{"name", name}};
  if (c.args.Has("value-from-file") && c.args.Has("generate")) {
    return Usage(c.command, "give --value-from-file or --generate, not both");
  }
  if (c.args.Has("value-from-file")) {
    // Read here, as the user running the command: the file must be as private as turnoutd's.
    Result<std::string> value = ReadSecretFile(c.args.Get("value-from-file"));
    if (!value.ok()) {
      std::cerr << "turnout " << c.command << ": --value-from-file: " << value.status().message()
                << "\n";
      return kExitUsage;
    }
    body["value"] = *value;
  }
  if (c.args.Has("overlap")) {
    Result<Millis> overlap = ParseDuration(c.args.Get("overlap"));
    if (!overlap.ok()) return Usage(c.command, "--overlap: " + overlap.status().message());
    body["overlap_ms"] = overlap->count();
  }
  return RunRedefine(c, "/v1/secrets/rotate", body, "rotation of " + name);
}

int RunStatus(Context& c) {
  Call call = Exchange(c, "GET", "/v1/status");
  if (call.exit != kExitOk) return call.exit;
  const json& s = call.body;
  if (c.json) {
    std::cout << s.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << FormatDaemonStatus(s);
  return kExitOk;
}

int RunSimplePost(Context& c, const std::string& path, json body) {
  body["actor"] = Actor();
  Call call = Exchange(c, "POST", path, body);
  if (call.exit != kExitOk) return call.exit;
  if (c.json) {
    std::cout << call.body.dump(2) << "\n";
    return kExitOk;
  }
  const json& d = call.body.contains("deployment") ? call.body["deployment"] : json::object();
  if (path == "/v1/approve") {
    std::cout << "approved deployment " << Str(d, "id") << " (" << Str(d, "version")
              << "); switching traffic to " << Str(d, "target_slot") << "\n";
  } else if (path == "/v1/abort") {
    std::cout << "aborting deployment " << Str(d, "id") << " (" << Str(d, "version")
              << "): " << Str(d, "state") << "\n";
  } else if (path == "/v1/pause" || path == "/v1/resume" || path == "/v1/promote") {
    std::cout << "deployment " << Str(d, "id") << " (" << Str(d, "version")
              << "): " << Str(d, "state")
              << (call.body.value("paused", false) ? ", paused (analysis keeps watching)" : "")
              << "\n";
  } else if (path == "/v1/switch") {
    std::cout << "traffic switched to " << Str(call.body, "slot") << " ("
              << Str(call.body, "version") << ", revision " << Str(call.body, "revision") << ") in "
              << FormatMillis(call.body.value("took_ms", 0.0)) << "\n";
  }
  return kExitOk;
}

int RunMaintenance(Context& c) {
  const auto& pos = c.args.positional();
  if (pos.size() != 1 || (pos[0] != "on" && pos[0] != "off")) {
    return Usage(c.command, "expected `on` or `off`");
  }
  const bool on = pos[0] == "on";
  json body = {{"actor", Actor()}, {"enabled", on}};
  if (c.args.Has("reason")) body["reason"] = c.args.Get("reason");
  Call call = Exchange(c, "POST", "/v1/maintenance", body);
  if (call.exit != kExitOk) return call.exit;
  if (c.json) {
    std::cout << call.body.dump(2) << "\n";
  } else if (on) {
    std::cout << "maintenance on: users get 503 with Retry-After "
              << Str(call.body, "retry_after_s") << " s and the maintenance page ("
              << Str(call.body, "page_bytes") << " bytes); `turnout maintenance off` ends it\n";
  } else {
    std::cout << "maintenance off: traffic is routed again\n";
  }
  return kExitOk;
}

int RunRollback(Context& c) {
  json body = {{"actor", Actor()}};
  if (c.args.Has("to")) {
    char* end = nullptr;
    const std::string to = c.args.Get("to");
    const long long n = std::strtoll(to.c_str(), &end, 10);
    if (to.empty() || *end != '\0' || n < 1) {
      return Usage(c.command, "--to needs a revision number from `turnout history`");
    }
    body["to_revision"] = n;
  }
  if (c.args.Has("confirm-data-loss")) body["confirm_data_loss"] = true;
  if (c.args.Has("confirm-unsupported-schema")) body["confirm_unsupported_schema"] = true;
  if (!c.args.positional().empty()) return Usage(c.command, "unexpected argument");
  Call call = Exchange(c, "POST", "/v1/rollback", body);
  if (call.exit != kExitOk) return call.exit;
  const json& d = call.body["deployment"];
  const int64_t id = d.value("id", int64_t{0});
  if (Str(call.body, "action") == "rollback") {
    if (!c.json) {
      if (call.body.value("switched_back", false)) {
        std::cout << "traffic switched back to " << Str(d, "previous_slot") << " in "
                  << FormatMillis(call.body.value("took_ms", 0.0)) << "; stopping "
                  << Str(d, "version") << " on " << Str(d, "target_slot") << "\n";
      } else {
        std::cout << "rolling back deployment " << id << " (" << Str(d, "version")
                  << "); users were never moved to it\n";
      }
    }
  } else if (!c.json) {
    std::cout << "redeploying revision " << Str(call.body, "rollback_to") << " ("
              << Str(d, "version") << ") to " << Str(d, "target_slot") << " (deployment " << id
              << ")\n";
  }
  if (!c.args.Has("wait")) {
    if (c.json) std::cout << call.body.dump(2) << "\n";
    return kExitOk;
  }
  if (Str(call.body, "action") == "rollback") {
    // Wait for the rolled-back deployment to finish cleaning up.
    for (;;) {
      Call s = Exchange(c, "GET", "/v1/deployments/" + std::to_string(id));
      if (s.exit != kExitOk) return s.exit;
      const std::string state = Str(s.body["deployment"], "state");
      if (state == "rolled_back" || state == "failed") {
        if (c.json) {
          std::cout << s.body.dump(2) << "\n";
        } else {
          std::cout << "deployment " << id << " " << state << ": "
                    << Str(s.body["deployment"], "reason") << "\n";
        }
        return state == "rolled_back" ? kExitOk : kExitFailed;
      }
      std::this_thread::sleep_for(Millis(200));
    }
  }
  return FollowDeployment(c, id);
}

int RunPrune(Context& c) {
  if (!c.args.positional().empty()) return Usage(c.command, "unexpected argument");
  Call call = Exchange(c, "POST", "/v1/prune",
                       json{{"actor", Actor()}, {"dry_run", c.args.Has("dry-run")}});
  if (call.exit != kExitOk) return call.exit;
  if (c.json) {
    std::cout << call.body.dump(2) << "\n";
  } else {
    std::cout << FormatPrune(call.body);
  }
  for (const auto& container : call.body.value("containers", json::array())) {
    if (container.contains("error")) return kExitFailed;
  }
  return kExitOk;
}

int RunHistory(Context& c) {
  if (!c.args.positional().empty()) {
    const std::string rev = c.args.positional()[0];
    Call call = Exchange(c, "GET", "/v1/deployments/rev" + rev);
    if (call.exit != kExitOk) return call.exit;
    if (c.json) {
      std::cout << call.body.dump(2) << "\n";
      return kExitOk;
    }
    std::cout << FormatDeploymentDetail(call.body);
    return kExitOk;
  }
  Call call = Exchange(c, "GET", "/v1/deployments?limit=" + c.args.Get("limit", "20"));
  if (call.exit != kExitOk) return call.exit;
  if (c.json) {
    std::cout << call.body.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << FormatDeploymentList(call.body["deployments"]);
  return kExitOk;
}

int RunHealthCheck(Context& c) {
  std::string target = "/v1/health";
  if (!c.args.positional().empty()) target += "?slot=" + c.args.positional()[0];
  Call call = Exchange(c, "GET", target);
  if (call.exit != kExitOk) return call.exit;
  const bool ok = call.body.value("ok", false);
  if (c.json) {
    std::cout << call.body.dump(2) << "\n";
    return ok ? kExitOk : kExitFailed;
  }
  std::cout << FormatHealth(call.body);
  return ok ? kExitOk : kExitFailed;
}

int RunLogs(Context& c) {
  for (const char* flag : {"file", "slot", "status", "since"}) {
    if (c.args.Has(flag)) return Usage(c.command, std::string("--") + flag + " needs --access");
  }
  std::string target = "/v1/logs?lines=" + c.args.Get("lines", "50");
  if (!c.args.positional().empty()) target += "&slot=" + c.args.positional()[0];
  if (c.args.Has("follow")) {
    // The containers' logs as the engine streams them, until Ctrl-C (or the containers stop).
    api::Client client({c.endpoint, c.token, Millis(30000)});
    Result<api::Reply> reply = client.Stream(target + "&follow=1", [](std::string_view piece) {
      std::cout << piece << std::flush;
      return static_cast<bool>(std::cout);
    });
    if (!reply.ok()) return Fail(c, reply.status().message());
    if (reply->status / 100 != 2) return Fail(c, api::StatusFromReply(*reply).message());
    return kExitOk;
  }
  Call call = Exchange(c, "GET", target);
  if (call.exit != kExitOk) return call.exit;
  if (c.json) {
    std::cout << call.body.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& i : call.body["instances"]) {
    std::cout << "==> " << Str(i, "instance") << " (" << Str(i, "version") << ", "
              << Str(i, "state") << ") " << Str(i, "path") << " <==\n"
              << Str(i, "text");
    const std::string text = Str(i, "text");
    if (!text.empty() && text.back() != '\n') std::cout << "\n";
  }
  if (call.body["instances"].empty()) {
    std::cout << "no instances have run in " << Str(call.body, "slot") << "\n";
  }
  return kExitOk;
}

// `turnout logs --access`: the router's access log, read from its file (no turnoutd call).
int RunAccessLogs(const std::string& command, const Args& args) {
  std::string file = args.Get("file", "");
  if (file.empty()) {
    std::string config = args.Get("config", EnvOr("TURNOUT_CONFIG", "turnout.yaml"));
    Result<service::ServiceConfig> sc = service::LoadServiceConfig(config);
    if (!sc.ok()) {
      return Usage(command, "--access: give --file FILE, or run where turnout.yaml is (" +
                                sc.status().message() + ")");
    }
    file = sc->router.access_log.path;
    if (file.empty() || file == "-") {
      return Usage(command,
                   "--access: turnout.yaml has no router.access_log.path file; set one, or "
                   "give --file FILE");
    }
  }
  AccessLogFilter filter;
  filter.slot = args.Get("slot", "");
  if (args.Has("status")) {
    if (Status s = ParseStatusFilter(args.Get("status"), &filter); !s.ok()) {
      return Usage(command, s.message());
    }
  }
  if (args.Has("since")) {
    Result<std::chrono::milliseconds> d = ParseDuration(args.Get("since"));
    if (!d.ok()) return Usage(command, "--since: " + d.status().message());
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    filter.since = router::FormatAccessLogTime(now_ms - d->count());
  }
  const bool as_json = args.Has("json");
  if (!as_json) std::cout << AccessLogHeaderRow();
  Status s = ReadAccessLog(file, args.Has("follow"), std::chrono::milliseconds(200),
                           [&](std::string_view text) {
                             std::optional<AccessLogLine> line = ParseAccessLogLine(text);
                             if (!line || !Matches(*line, filter)) return true;
                             if (as_json) {
                               std::cout << text << "\n";
                             } else {
                               std::cout << FormatAccessLogRow(*line);
                             }
                             std::cout.flush();
                             return static_cast<bool>(std::cout);
                           });
  if (!s.ok()) {
    std::cerr << "turnout " << command << ": " << s.message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

void PrintAuditEntry(const json& e) { std::cout << FormatAuditEntry(e); }

int RunAudit(Context& c) {
  if (!c.args.positional().empty() && c.args.positional()[0] == "verify") {
    Call call = Exchange(c, "GET", "/v1/audit/verify");
    if (call.exit != kExitOk) return call.exit;
    const bool ok = call.body.value("ok", false);
    if (c.json) {
      std::cout << call.body.dump(2) << "\n";
    } else {
      std::cout << Str(call.body, "message") << "\n";
    }
    return ok ? kExitOk : kExitFailed;
  }
  if (!c.args.positional().empty() && c.args.positional()[0] == "acknowledge") {
    if (c.args.Get("reason", "").empty()) {
      return Usage(c.command,
                   "acknowledge needs --reason TEXT: why the broken log may be trusted again");
    }
    Call call = Exchange(c, "POST", "/v1/audit/acknowledge",
                         json{{"actor", Actor()}, {"reason", c.args.Get("reason", "")}});
    if (call.exit != kExitOk) return call.exit;
    if (c.json) {
      std::cout << call.body.dump(2) << "\n";
    } else {
      std::cout << "acknowledged as audit entry " << Str(call.body, "acknowledged_seq") << ": "
                << Str(call.body, "problem") << "\nturnoutd acts again.\n";
    }
    return kExitOk;
  }
  if (!c.args.positional().empty()) {
    return Usage(c.command,
                 "unknown argument '" + c.args.positional()[0] + "' (try: verify, acknowledge)");
  }
  Call call = Exchange(c, "GET", "/v1/audit?tail=" + c.args.Get("limit", "30"));
  if (call.exit != kExitOk) return call.exit;
  if (c.json) {
    std::cout << call.body.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& e : call.body["entries"]) PrintAuditEntry(e);
  return kExitOk;
}

int RunEvents(Context& c) {
  const bool follow = c.args.Has("follow");
  Call first = Exchange(c, "GET", "/v1/events?tail=" + c.args.Get("limit", "20"));
  if (first.exit != kExitOk) return first.exit;
  int64_t last = 0;
  auto print = [&](const json& entries) {
    for (const auto& e : entries) {
      if (c.json) {
        std::cout << e.dump() << "\n";
      } else {
        PrintAuditEntry(e);
      }
      last = std::max(last, e.value("seq", int64_t{0}));
    }
    std::cout << std::flush;
  };
  print(first.body["entries"]);
  std::string progress;
  while (follow) {
    std::this_thread::sleep_for(Millis(300));
    Call next = Exchange(c, "GET", "/v1/events?after=" + std::to_string(last) + "&limit=500");
    if (next.exit != kExitOk) return next.exit;
    print(next.body["entries"]);
    const json& p = next.body["progress"];
    const std::string now = Str(p, "state") + " " + Str(p, "waiting_for");
    if (!c.json && c.tty && now != progress && !Str(p, "waiting_for").empty()) {
      std::cout << "        ... deployment " << Str(p, "deployment_id") << " " << now << "\n";
    }
    progress = now;
  }
  return kExitOk;
}

int RunSlo(Context& c) {
  Call call = Exchange(c, "GET", "/v1/slo");
  if (call.exit != kExitOk) return call.exit;
  if (c.json) {
    std::cout << call.body.dump(2) << "\n";
    return kExitOk;
  }
  const json& list = call.body["objectives"];
  if (list.empty()) {
    std::cout
        << "no objectives: add an `slo:` section to turnout.yaml (see docs/turnout-yaml.md)\n";
    return kExitOk;
  }
  std::cout << "service " << Str(call.body, "service") << ", " << Str(call.body, "covers") << " ("
            << ShortTime(Str(call.body, "since")) << ")\n";
  bool overspent = false;
  for (const auto& o : list) {
    std::cout << "  " << Str(o, "summary") << "; burn rate over the last minute " << std::fixed
              << std::setprecision(2) << o.value("burn_rate_60s", 0.0) << "x\n";
    overspent |= o["budget"].value("remaining", 1.0) < 0;
  }
  return overspent ? kExitFailed : kExitOk;
}

// ---- up / down -----------------------------------------------------------------------------

std::string FindTurnoutd() {
  if (std::string env = EnvOr("TURNOUTD", ""); !env.empty()) return env;
  return daemon::FindProgram("turnoutd", "daemon");
}

bool Answers(const Context& c) {
  api::Client client({c.endpoint, c.token, Millis(2000)});
  Result<api::Reply> r = client.Call("GET", "/healthz");
  return r.ok() && r->status == 200;
}

int RunUp(Context& c) {
  if (c.config_path.empty()) {
    return Fail(c, "no turnout.yaml here; write one with `turnout init` or pass --config FILE");
  }
  Result<service::ServiceConfig> sc = service::LoadServiceConfig(c.config_path);
  if (!sc.ok()) return Fail(c, sc.status().message());
  for (const std::string& w : daemon::ConfigWarnings(*sc)) {
    std::cerr << "turnout up: warning: " << w << "\n";
  }
  const daemon::StatePaths paths =
      daemon::PathsFor(*sc, fs::path(c.config_path).parent_path().string());
  if (Answers(c)) {
    std::cout << "turnoutd is already running for " << sc->name << " (" << c.endpoint << ")\n";
    return kExitOk;
  }
  std::vector<std::string> argv = {FindTurnoutd(), "--config", c.config_path};
  if (c.args.Has("socket")) {
    argv.push_back("--socket");
    argv.push_back(c.args.Get("socket"));
  }
  if (c.args.Has("api")) {
    argv.push_back("--api");
    argv.push_back(c.args.Get("api"));
  }
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  if (c.args.Has("foreground")) {
    ::execvp(cargv[0], cargv.data());
    return Fail(c, "cannot run " + argv[0] + ": " + std::strerror(errno));
  }
  std::error_code ec;
  fs::create_directories(paths.dir, ec);
  ::chmod(paths.dir.c_str(), 0700);
  const int log_fd =
      ::open(paths.daemon_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return Fail(c, "cannot open " + paths.daemon_log + ": " + std::strerror(errno));
  const off_t log_start = ::lseek(log_fd, 0, SEEK_END);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 1);
  posix_spawn_file_actions_adddup2(&fa, log_fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(log_fd);
  if (rc != 0) return Fail(c, "cannot start " + argv[0] + ": " + std::strerror(rc));
  // Wait until it answers, or report why it stopped.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::ifstream log(paths.daemon_log);
      log.seekg(log_start);
      std::string tail((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
      return Fail(c, "turnoutd stopped at once:\n" + tail);
    }
    if (Answers(c)) {
      if (c.json) {
        std::cout << json{{"pid", pid}, {"endpoint", c.endpoint}, {"log", paths.daemon_log}}.dump()
                  << "\n";
      } else {
        std::cout << "turnoutd started for " << sc->name << " (pid " << pid << ")\n"
                  << "  API:  " << c.endpoint << "\n  log:  " << paths.daemon_log << "\n";
        // What it found from the turnoutd before (resumed, or a broken audit log).
        Call status = Exchange(c, "GET", "/v1/status", nullptr, Millis(5000));
        const json& s = status.body;
        if (status.exit == kExitOk && s.contains("audit") && !s["audit"].value("ok", true)) {
          std::cout << FormatDaemonWarnings(s);
          std::cout << "  next: check the audit log (`turnout audit verify`), then `turnout audit "
                       "acknowledge --reason TEXT`\n";
        } else if (status.exit == kExitOk && !Str(s["daemon"], "resumed").empty()) {
          std::cout << FormatDaemonWarnings(s);
          std::cout << "  next: `turnout status`, `turnout history`\n";
        } else {
          std::cout << "  next: `turnout deploy VERSION --wait`, `turnout status`\n";
        }
      }
      return kExitOk;
    }
    std::this_thread::sleep_for(Millis(50));
  }
  return Fail(c, "turnoutd (pid " + std::to_string(pid) + ") did not answer within 30 s; see " +
                     paths.daemon_log);
}

int RunDown(Context& c) {
  Call call = Exchange(c, "GET", "/v1/status", nullptr, Millis(5000));
  if (call.exit != kExitOk) return call.exit;
  int stopped = -1;
  bool router_stopped = false;
  if (c.args.Has("stop-instances")) {
    Call stop =
        Exchange(c, "POST", "/v1/stop-instances", json{{"actor", Actor()}, {"router", true}});
    if (stop.exit != kExitOk) return stop.exit;
    stopped = stop.body.value("stopped", 0);
    router_stopped = stop.body.value("router_stopped", false);
  }
  const pid_t pid = call.body["daemon"].value("pid", 0);
  if (pid <= 0 || ::kill(pid, SIGTERM) != 0) {
    return Fail(c, "cannot signal turnoutd (pid " + std::to_string(pid) + ")");
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline && ::kill(pid, 0) == 0) {
    std::this_thread::sleep_for(Millis(50));
  }
  if (::kill(pid, 0) == 0) return Fail(c, "turnoutd (pid " + std::to_string(pid) + ") still runs");
  const bool router_process = call.body["router"].value("mode", "") == "process";
  if (c.json) {
    std::cout << json{{"pid", pid},
                      {"instances_stopped", std::max(stopped, 0)},
                      {"router_stopped", router_stopped},
                      {"router_serving", router_process && !router_stopped}}
                     .dump()
              << "\n";
  } else if (stopped >= 0) {
    std::cout << "stopped " << stopped << " app instance(s)"
              << (router_stopped ? ", the router process" : "") << " and turnoutd (pid " << pid
              << ")" << (router_stopped ? "; users are no longer served" : "") << "\n";
  } else {
    std::cout << "turnoutd stopped (pid " << pid << "); app instances"
              << (router_process ? " and the router keep running: users are still served"
                                 : " keep running")
              << "; `turnout up` attaches to them again\n";
  }
  return kExitOk;
}

// ---- the table -----------------------------------------------------------------------------

struct Sub {
  const char* name;
  const char* usage;
  const char* about;
  std::vector<FlagSpec> flags;
  int (*run)(Context&);
  bool needs_daemon = true;
};

const std::vector<Sub>& Subs() {
  static const std::vector<Sub> subs = {
      {"up",
       "turnout up [--foreground] [--api HOST:PORT]",
       "Starts turnoutd for the service in turnout.yaml (in the background, logging to\n"
       "<state_dir>/turnoutd.log) and waits until it answers. turnoutd runs the router as a\n"
       "process of its own; the router and the instances left running by an earlier turnoutd\n"
       "are attached to again; an interrupted deployment resumes.",
       {{"foreground", "", "run turnoutd in this terminal instead"},
        {"api", "HOST:PORT", "also serve the API on TCP (set TURNOUTD_TOKEN)"}},
       RunUp,
       false},
      {"down",
       "turnout down [--stop-instances]",
       "Stops turnoutd (SIGTERM). App instances and the router process keep running, so users\n"
       "are still served (the next `turnout up` attaches to them), unless --stop-instances.",
       {{"stop-instances", "", "first stop every app instance of the service and the router"}},
       RunDown},
      {"deploy",
       "turnout deploy VERSION [--wait] [--reason TEXT]",
       "Deploys VERSION to the idle slot: pre-checks, launch, readiness, smoke tests, switch,\n"
       "bake, then the old slot stays warm until it is scaled down. With --wait, shows each\n"
       "step live and exits 0 once traffic is on VERSION and the bake passed, 1 if it rolled\n"
       "back.",
       {{"wait", "", "follow the deployment until it is done"},
        {"reason", "TEXT", "why (recorded in history and the audit log)"}},
       RunDeploy},
      {"restart",
       "turnout restart [--wait] [--reason TEXT]",
       "Replaces every instance of the serving version (after a secret or a dependency changed)\n"
       "as a new revision with the serving revision's own definition. With ports: auto the\n"
       "instances are replaced one at a time in place (each new one takes traffic only once\n"
       "ready; each old one is drained first); with fixed ports the idle slot gets a fresh set\n"
       "and traffic switches to it (blue/green). Recorded in history as a restart; refused\n"
       "while a deployment runs.",
       {{"wait", "", "follow until it is done"},
        {"reason", "TEXT", "why (recorded in history and the audit log)"}},
       RunRestart},
      {"scale",
       "turnout scale N [--wait] [--reason TEXT]",
       "Runs N instances (1 to 64) of the serving version: a new revision of the serving\n"
       "definition with replicas N, rolled in place one instance at a time with ports: auto\n"
       "(blue/green into the idle slot with fixed ports). `turnout rollback` returns to the\n"
       "previous count. Refused while a deployment runs.",
       {{"wait", "", "follow until it is done"},
        {"reason", "TEXT", "why (recorded in history and the audit log)"}},
       RunScale},
      {"set",
       "turnout set env NAME=VALUE... [--unset NAME]... [--wait] [--reason TEXT]",
       "Changes the environment of the serving version: a new revision of the serving\n"
       "definition with the variables set or removed, rolled out by its strategy. The values\n"
       "are kept with the revision (`turnout rollback --to N` restores N's), never shown in\n"
       "history, logs or the audit log: only the names are (on this machine, `ps` and the\n"
       "shell's history still see the command line). Refused while a deployment runs.",
       {{"unset", "NAME", "remove this variable", true},
        {"wait", "", "follow until it is done"},
        {"reason", "TEXT", "why (recorded in history and the audit log)"}},
       RunSetEnv},
      {"secrets",
       "turnout secrets list | rotate NAME [--value-from-file F | --generate] [--overlap 24h] "
       "[--wait] [--reason TEXT] | drop-previous NAME [--wait]",
       "The secrets of turnout.yaml's secrets: section. `list`: each one's source, delivery,\n"
       "generation and keyed fingerprint (never a value), its last rotation and whether\n"
       "NAME_PREVIOUS is live. `rotate NAME`: a new revision of the serving version whose NAME\n"
       "is a new value (generated, or read from a 0600 file) and NAME_PREVIOUS the old one, so\n"
       "that tokens signed with it stay valid; after the overlap turnoutd rolls a revision\n"
       "without NAME_PREVIOUS. `drop-previous NAME` does that at once. `turnout rollback`\n"
       "restores the value before. Refused while a deployment runs.",
       {{"value-from-file", "FILE", "the new value: this file's content (mode 0600)"},
        {"generate", "", "the new value: 32 random bytes as hex (the default)"},
        {"overlap", "DURATION", "how long NAME_PREVIOUS stays (0 for none). Default: 24h"},
        {"wait", "", "follow until it is done"},
        {"reason", "TEXT", "why (recorded in history and the audit log)"}},
       RunSecrets},
      {"status",
       "turnout status",
       "Shows what serves traffic, the deployment in progress, and every slot's instances.",
       {},
       RunStatus},
      {"health-check",
       "turnout health-check [SLOT]",
       "Probes readiness and liveness of every running instance now (all slots, or SLOT) and\n"
       "shows how the router sees them. Exit 1 when a readiness probe fails.",
       {},
       RunHealthCheck},
      {"switch",
       "turnout switch SLOT",
       "Moves all traffic to SLOT at once (its instances must be running and healthy). For\n"
       "undoing a deployment prefer `turnout rollback`.",
       {},
       nullptr},
      {"rollback",
       "turnout rollback [--to REVISION] [--wait] [--confirm-data-loss] "
       "[--confirm-unsupported-schema]",
       "During a deployment: switches traffic back to the old slot at once (it is still warm)\n"
       "and stops the new version. Afterwards: redeploys the previous successful revision (or\n"
       "REVISION) with the definition it was deployed with. Down migrations run only after a\n"
       "verified backup; those that would drop data, or break the version serving until the\n"
       "switch, are refused with what they would do unless confirmed.",
       {{"to", "REVISION", "the revision to go back to (see `turnout history`)"},
        {"wait", "", "follow until the rollback is done"},
        {"confirm-data-loss", "", "let down migrations drop tables or columns that hold data"},
        {"confirm-unsupported-schema", "",
         "let down migrations run although the serving version does not support their schema"}},
       RunRollback},
      {"approve",
       "turnout approve",
       "Lets a deployment waiting for manual approval (manual_approval: true) switch traffic.",
       {},
       nullptr},
      {"abort",
       "turnout abort",
       "Stops the deployment in progress and rolls it back (users go back to the old slot).",
       {},
       nullptr},
      {"pause",
       "turnout pause",
       "Stops the clock of the current canary step or bake: nothing advances until `turnout\n"
       "resume`. Rules and the canary judge keep watching and still roll back a bad version.",
       {},
       nullptr},
      {"resume", "turnout resume", "Lets a paused deployment's clock run again.", {}, nullptr},
      {"promote",
       "turnout promote [--full]",
       "Canary: moves to the next step now (--full: straight to 100 %). Bake: ends the bake now.\n"
       "Automatic rollback keeps working afterwards, during the bake.",
       {{"full", "", "skip the remaining canary steps"}},
       nullptr},
      {"maintenance",
       "turnout maintenance on|off [--reason TEXT]",
       "on: the router answers every request itself with 503, Retry-After and the page of\n"
       "turnout.yaml's `maintenance:` section (read now), never a connection error, while the\n"
       "instances keep running; smoke tests with the override header and its secret still get\n"
       "through. off: traffic is routed again at once. Refused during a deployment.",
       {{"reason", "TEXT", "why (recorded in the audit log)"}},
       RunMaintenance},
      {"slo",
       "turnout slo",
       "Shows each objective of turnout.yaml's `slo:` section: the share of good requests, the\n"
       "error budget left and the burn rate of the last minute. Exit 1 when a budget is spent.",
       {},
       RunSlo},
      {"prune",
       "turnout prune [--dry-run]",
       "Containers: removes the images of the revisions that revisions.on_disk no longer keeps\n"
       "and the stopped containers turnoutd labelled for this service that no record names, and\n"
       "says what it freed (image, tag, revision, size) and the total. Never removes the image\n"
       "of a kept revision (the newest on_disk, the serving one, any with a running instance),\n"
       "an image a container uses or another name tags, an image turnout did not record, or a\n"
       "running container. Processes keep nothing per revision: there is nothing to prune.\n"
       "Exit 1 when a stopped container could not be removed.",
       {{"dry-run", "", "say what would be removed, remove nothing"}},
       RunPrune},
      {"history",
       "turnout history [REVISION] [--limit N]",
       "Lists the revisions (newest first), or one revision's transitions and steps.",
       {{"limit", "N", "how many (default 20)"}},
       RunHistory},
      {"logs",
       "turnout logs [SLOT] [--lines N] [--follow]\n"
       "       turnout logs --access [--file FILE] [--slot S] [--status 5xx|404] [--since 10m] "
       "[--follow] [--json]",
       "Shows the end of each instance's log in SLOT (default: the serving slot).\n"
       "--access: the router's access log instead (router.access_log.path of turnout.yaml, or\n"
       "--file), filtered, as a table (or the JSON lines with --json); --follow keeps printing\n"
       "new lines, across rotations, until Ctrl-C.",
       {{"lines", "N", "lines per instance (default 50)"},
        {"follow", "", "keep printing new lines until Ctrl-C (containers, or --access)"},
        {"access", "", "read the router's access log"},
        {"file", "FILE", "--access: the access log file (default: router.access_log.path)"},
        {"slot", "SLOT", "--access: only this slot's requests"},
        {"status", "STATUS", "--access: only this status (404) or class (5xx)"},
        {"since", "DURATION", "--access: only requests of the last DURATION (10m, 1h)"}},
       RunLogs},
      {"audit",
       "turnout audit [verify | acknowledge --reason TEXT] [--limit N]",
       "Shows the newest audit entries, or verifies the hash chain (exit 1 when it was\n"
       "tampered with: modified, deleted, inserted, reordered or truncated entries).\n"
       "turnoutd refuses to act on a broken chain until `acknowledge` records why it may be\n"
       "trusted again.",
       {{"limit", "N", "how many entries (default 30)"},
        {"reason", "TEXT", "acknowledge: why (recorded in the audit log)"}},
       RunAudit},
      {"events",
       "turnout events [--follow] [--limit N]",
       "Prints the audit events (every transition, switch and instance restart); --follow keeps\n"
       "printing new ones as they happen (Ctrl-C to stop).",
       {{"follow", "", "keep printing new events"},
        {"limit", "N", "how many past events (default 20)"}},
       RunEvents},
  };
  return subs;
}

int RunPostCommand(Context& c) {
  if (c.command == "switch") {
    if (c.args.positional().size() != 1) return Usage(c.command, "expected one SLOT");
    return RunSimplePost(c, "/v1/switch", {{"slot", c.args.positional()[0]}});
  }
  if (!c.args.positional().empty()) return Usage(c.command, "unexpected argument");
  if (c.command == "promote") {
    return RunSimplePost(c, "/v1/promote", json{{"full", c.args.Has("full")}});
  }
  return RunSimplePost(c, "/v1/" + c.command, json::object());
}

}  // namespace

std::vector<FlagSpec> DaemonCommandFlags(const std::string& command) {
  for (const auto& s : Subs()) {
    if (command == s.name) return CommonFlags(s.flags);
  }
  return {};
}

int RunDaemonCommand(const std::string& command, const std::vector<std::string>& argv) {
  const Sub* sub = nullptr;
  for (const auto& s : Subs()) {
    if (command == s.name) sub = &s;
  }
  if (sub == nullptr) return Usage(command, "unknown command");
  const std::vector<FlagSpec> flags = CommonFlags(sub->flags);
  Result<Args> args = Args::Parse(argv, flags);
  if (!args.ok()) return Usage(command, args.status().message());
  if (args->help()) {
    std::cout << "usage: " << sub->usage << "\n\n"
              << sub->about << "\n\nOptions:\n"
              << FlagsHelp(flags)
              << "\nExit codes: 0 ok, 1 the operation failed, 2 usage error, 3 turnoutd could "
                 "not be reached.\n";
    return kExitOk;
  }
  if (command == "logs" && args->Has("access")) return RunAccessLogs(command, *args);
  Context c;
  c.command = command;
  c.args = *args;
  c.json = args->Has("json");
  c.tty = ::isatty(STDOUT_FILENO) == 1 && !c.json;
  if (Status s = Locate(c); !s.ok()) {
    std::cerr << "turnout " << command << ": " << s.message() << "\n";
    return kExitUsage;
  }
  if (sub->run == nullptr) return RunPostCommand(c);
  return sub->run(c);
}

}  // namespace turnout::cli
