#include "controller/deployment_spec.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "common/text.h"
#include "controller/json_path.h"
#include "platform/command.h"
#include "router/policy.h"

namespace turnout::controller {
namespace {

bool IsName(std::string_view s) {
  if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '+' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

bool HasLineBreakOrNul(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

Status ValidateSmokeCheck(const SmokeCheck& c) {
  const std::string label =
      "smoke_checks: '" +
      (c.name.empty() ? c.kind == SmokeCheck::Kind::kHttp ? c.method + " " + c.path : c.command
                      : c.name) +
      "': ";
  if (c.timeout.count() <= 0) return InvalidArgument(label + "timeout must be > 0");
  if (HasLineBreakOrNul(c.name)) return InvalidArgument(label + "name has a line break");
  if (c.kind == SmokeCheck::Kind::kCommand) {
    Result<std::vector<std::string>> words = platform::SplitCommand(c.command);
    if (!words.ok()) return InvalidArgument(label + "command: " + words.status().message());
    return Status::Ok();
  }
  if (!IsToken(c.method)) return InvalidArgument(label + "method is not an HTTP token");
  if (c.path.empty() || c.path[0] != '/') {
    return InvalidArgument("smoke_checks: path '" + c.path + "' must start with '/'");
  }
  for (char ch : c.path) {
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) {
      return InvalidArgument(label + "path has a space or control character");
    }
  }
  if (c.expected_status < 100 || c.expected_status > 599) {
    return InvalidArgument("smoke_checks: expected_status must be 100..599");
  }
  for (const auto& [name, value] : c.headers) {
    if (!IsToken(name)) return InvalidArgument(label + "header name '" + name + "' is invalid");
    // The probe frames the request itself (Content-Length of `body`, Connection: close).
    for (std::string_view framing : {"content-length", "transfer-encoding", "connection"}) {
      if (name.size() == framing.size() &&
          std::equal(name.begin(), name.end(), framing.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) == b;
          })) {
        return InvalidArgument(label + "header '" + name + "' is set by turnout");
      }
    }
    if (HasLineBreakOrNul(value)) {
      return InvalidArgument(label + "header '" + name + "' has a line break in its value");
    }
  }
  for (const auto& [path, expected] : c.expect_json) {
    Status st = ValidateJsonPath(path);
    if (!st.ok()) return InvalidArgument(label + "expect_json: " + st.message());
  }
  return Status::Ok();
}

std::string SmokeKindName(SmokeCheck::Kind kind) {
  return kind == SmokeCheck::Kind::kCommand ? "command" : "http";
}

nlohmann::json PairsToJson(const std::vector<std::pair<std::string, std::string>>& pairs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [k, v] : pairs) out.push_back({k, v});
  return out;
}

// Missing key -> the field keeps its default (specs persisted before the field existed).
template <typename T>
void Optional(const nlohmann::json& j, const char* key, T& field) {
  auto it = j.find(key);
  if (it != j.end()) field = it->template get<T>();
}

void OptionalMillis(const nlohmann::json& j, const char* key, Millis& field) {
  auto it = j.find(key);
  if (it != j.end()) field = Millis(it->get<int64_t>());
}

void OptionalPairs(const nlohmann::json& j, const char* key,
                   std::vector<std::pair<std::string, std::string>>& field) {
  auto it = j.find(key);
  if (it == j.end()) return;
  field.clear();
  for (const auto& e : *it) {
    if (!e.is_array() || e.size() != 2) throw std::runtime_error(std::string(key) + ": pairs");
    field.emplace_back(e.at(0).get<std::string>(), e.at(1).get<std::string>());
  }
}

}  // namespace

Status ValidateDeploymentSpec(const DeploymentSpec& spec) {
  if (!IsName(spec.service))
    return InvalidArgument("service: '" + spec.service + "' is not a name");
  if (!IsName(spec.version))
    return InvalidArgument("version: '" + spec.version + "' is not a name");
  if (spec.slots.size() != 2 || spec.slots[0] == spec.slots[1]) {
    return InvalidArgument("slots: exactly two different slot names are needed");
  }
  for (const auto& s : spec.slots) {
    if (!IsName(s) || !router::IsValidSlotName(s)) {
      return InvalidArgument("slots: '" + s + "' is not a valid slot name");
    }
  }
  for (const platform::SecretRef& r : spec.secrets) {
    if (!IsUserEnvName(r.name)) {
      return InvalidArgument("secrets: '" + r.name + "' is not a variable name");
    }
    if (r.as != "env" && r.as != "file") {
      return InvalidArgument("secrets: " + r.name + " must be delivered as env or file");
    }
    if (r.generation < 1) return InvalidArgument("secrets: " + r.name + " has no generation");
  }
  if (spec.platform != "process" && spec.platform != "container") {
    return InvalidArgument("platform: expected process or container, got '" + spec.platform + "'");
  }
  if (spec.platform == "process" && spec.command.empty()) {
    return InvalidArgument("command: must not be empty");
  }
  if (spec.replicas < 1 || spec.replicas > 1000) {
    return InvalidArgument("replicas: expected 1..1000, got " + std::to_string(spec.replicas));
  }
  if (spec.base_port != 0 && spec.base_port + 2 * spec.replicas > 65535) {
    return InvalidArgument("base_port: the ports of both slots must fit below 65536");
  }
  if (spec.readiness_path.empty() || spec.readiness_path[0] != '/') {
    return InvalidArgument("readiness_path: must start with '/'");
  }
  for (const auto& c : spec.smoke_checks) TURNOUT_RETURN_IF_ERROR(ValidateSmokeCheck(c));
  for (size_t i = 0; i < spec.pre_deploy.size(); ++i) {
    const PreDeployCheck& c = spec.pre_deploy[i];
    if (!IsName(c.name)) return InvalidArgument("pre_deploy: '" + c.name + "' is not a name");
    for (size_t k = 0; k < i; ++k) {
      if (spec.pre_deploy[k].name == c.name) {
        return InvalidArgument("pre_deploy: the name '" + c.name + "' is used twice");
      }
    }
    Result<std::vector<std::string>> words = platform::SplitCommand(c.command);
    if (!words.ok()) {
      return InvalidArgument("pre_deploy: '" + c.name + "': command: " + words.status().message());
    }
    if (c.timeout.count() <= 0) {
      return InvalidArgument("pre_deploy: '" + c.name + "': timeout must be > 0");
    }
  }
  for (size_t i = 0; i < spec.verify.size(); ++i) {
    const VerifyCheck& c = spec.verify[i];
    const std::string what = "verify: '" + c.name + "': ";
    if (!IsName(c.name)) return InvalidArgument("verify: '" + c.name + "' is not a name");
    for (size_t k = 0; k < i; ++k) {
      if (spec.verify[k].name == c.name) {
        return InvalidArgument("verify: the name '" + c.name + "' is used twice");
      }
    }
    if (c.timeout.count() <= 0) return InvalidArgument(what + "timeout must be > 0");
    if (c.kind == VerifyCheck::Kind::kCommand) {
      Result<std::vector<std::string>> words = platform::SplitCommand(c.command);
      if (!words.ok()) return InvalidArgument(what + "command: " + words.status().message());
      continue;
    }
    if (c.requests < 1 || c.requests > 100000) {
      return InvalidArgument(what + "requests must be 1..100000");
    }
    if (c.concurrency < 1 || c.concurrency > 64) {
      return InvalidArgument(what + "concurrency must be 1..64");
    }
    if (c.paths.empty()) return InvalidArgument(what + "needs at least one path");
    for (const VerifyPath& p : c.paths) {
      if (p.path.empty() || p.path[0] != '/') {
        return InvalidArgument(what + "path '" + p.path + "' must start with '/'");
      }
      if (p.method.empty() || p.weight < 1) {
        return InvalidArgument(what + "each path needs a method and a weight >= 1");
      }
    }
    if (c.tolerance_p50 < 0 || c.tolerance_p95 < 0 || c.tolerance_p99 < 0 ||
        c.tolerance_min.count() < 0) {
      return InvalidArgument(what + "tolerances must be >= 0");
    }
  }
  if (spec.probe_interval.count() < 0) return InvalidArgument("probe_interval: must be >= 0");
  if (spec.ready_deadline.count() <= 0) return InvalidArgument("ready_deadline: must be > 0");
  if (spec.bake_time.count() < 0) return InvalidArgument("bake_time: must be >= 0");
  if (spec.scale_down_delay.count() < 0) return InvalidArgument("scale_down_delay: must be >= 0");
  if (spec.grace.count() < 0) return InvalidArgument("grace: must be >= 0");
  if (spec.bake_failure_threshold < 1) return InvalidArgument("bake_failure_threshold: >= 1");
  if (!spec.liveness_path.empty() && spec.liveness_path[0] != '/') {
    return InvalidArgument("liveness_path: must start with '/' (or be empty: not watched)");
  }
  if (spec.liveness_interval.count() <= 0) return InvalidArgument("liveness_interval: must be > 0");
  if (spec.liveness_timeout.count() <= 0) return InvalidArgument("liveness_timeout: must be > 0");
  if (spec.liveness_failure_threshold < 1) {
    return InvalidArgument("liveness_failure_threshold: >= 1");
  }
  if (spec.strategy != "blue_green" && spec.strategy != "canary" && spec.strategy != "rolling" &&
      spec.strategy != "recreate") {
    return InvalidArgument("strategy: expected blue_green, canary, rolling or recreate, got '" +
                           spec.strategy + "'");
  }
  if (spec.strategy == "rolling" && spec.base_port != 0) {
    // A new instance runs beside the one it replaces, in the same slot: fixed ports would clash.
    return InvalidArgument("strategy: rolling needs base_port 0 (ports chosen at launch)");
  }
  if (spec.strategy == "canary" && spec.canary_steps.empty()) {
    return InvalidArgument("canary_steps: the canary strategy needs at least one step");
  }
  uint32_t previous_weight = 0;
  for (size_t i = 0; i < spec.canary_steps.size(); ++i) {
    const CanaryStep& step = spec.canary_steps[i];
    const std::string label = "canary_steps[" + std::to_string(i) + "]: ";
    if (step.weight_bp == 0 || step.weight_bp >= kFullWeightBp) {
      return InvalidArgument(label + "weight must be above 0 % and below 100 %");
    }
    if (step.weight_bp <= previous_weight) {
      return InvalidArgument(label + "weights must increase from step to step");
    }
    if (step.duration.count() <= 0) return InvalidArgument(label + "duration must be > 0");
    previous_weight = step.weight_bp;
  }
  if (spec.analysis_interval.count() < 0) {
    return InvalidArgument("analysis_interval: must be >= 0");
  }
  return Status::Ok();
}

std::string EncodeSpec(const DeploymentSpec& spec) {
  nlohmann::json j;
  j["service"] = spec.service;
  j["version"] = spec.version;
  j["config_hash"] = spec.config_hash;
  j["slots"] = spec.slots;
  j["command"] = spec.command;
  // Only a container spec has these, so that process specs keep their text.
  if (spec.platform != "process") j["platform"] = spec.platform;
  if (!spec.image.empty()) j["image"] = spec.image;
  if (!spec.platform_hash.empty()) j["platform_hash"] = spec.platform_hash;
  j["working_dir"] = spec.working_dir;
  nlohmann::json env = nlohmann::json::array();
  for (const auto& [k, v] : spec.env) env.push_back({k, v});
  j["env"] = env;
  // References only (name, delivery, generation, keyed fingerprint), never a value; only specs
  // with secrets have the key, so that the others keep their text.
  if (!spec.secrets.empty()) {
    nlohmann::json secrets = nlohmann::json::array();
    for (const platform::SecretRef& r : spec.secrets) {
      secrets.push_back({{"name", r.name},
                         {"as", r.as},
                         {"generation", r.generation},
                         {"fingerprint", r.fingerprint},
                         {"previous_generation", r.previous_generation},
                         {"previous_fingerprint", r.previous_fingerprint}});
    }
    j["secrets"] = secrets;
  }
  j["stop_signal"] = spec.stop_signal;
  j["grace_ms"] = spec.grace.count();
  j["log_dir"] = spec.log_dir;
  j["replicas"] = spec.replicas;
  j["base_port"] = spec.base_port;
  j["host"] = spec.host;
  j["readiness_path"] = spec.readiness_path;
  j["ready_deadline_ms"] = spec.ready_deadline.count();
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : spec.smoke_checks) {
    nlohmann::json check = {{"name", c.name},
                            {"kind", SmokeKindName(c.kind)},
                            {"method", c.method},
                            {"path", c.path},
                            {"headers", PairsToJson(c.headers)},
                            {"body", c.body},
                            {"status", c.expected_status},
                            {"expect_body_contains", c.expect_body_contains},
                            {"expect_json", PairsToJson(c.expect_json)},
                            {"command", c.command},
                            {"timeout_ms", c.timeout.count()}};
    checks.push_back(std::move(check));
  }
  j["smoke_checks"] = checks;
  nlohmann::json pre = nlohmann::json::array();
  for (const auto& c : spec.pre_deploy) {
    pre.push_back({{"name", c.name}, {"command", c.command}, {"timeout_ms", c.timeout.count()}});
  }
  j["pre_deploy"] = pre;
  nlohmann::json verify = nlohmann::json::array();
  for (const auto& c : spec.verify) {
    nlohmann::json check = {
        {"name", c.name},
        {"kind", c.kind == VerifyCheck::Kind::kCommand ? "command" : "performance"},
        {"timeout_ms", c.timeout.count()}};
    if (c.kind == VerifyCheck::Kind::kCommand) {
      check["command"] = c.command;
    } else {
      nlohmann::json paths = nlohmann::json::array();
      for (const auto& p : c.paths) {
        paths.push_back({{"method", p.method}, {"path", p.path}, {"weight", p.weight}});
      }
      check["requests"] = c.requests;
      check["concurrency"] = c.concurrency;
      check["paths"] = paths;
      check["tolerance"] = {{"p50", c.tolerance_p50},
                            {"p95", c.tolerance_p95},
                            {"p99", c.tolerance_p99},
                            {"min_ms", c.tolerance_min.count()}};
    }
    verify.push_back(std::move(check));
  }
  j["verify"] = verify;
  j["manual_approval"] = spec.manual_approval;
  j["probe_interval_ms"] = spec.probe_interval.count();
  j["bake_failure_threshold"] = spec.bake_failure_threshold;
  j["liveness_path"] = spec.liveness_path;
  j["liveness_interval_ms"] = spec.liveness_interval.count();
  j["liveness_timeout_ms"] = spec.liveness_timeout.count();
  j["liveness_failure_threshold"] = spec.liveness_failure_threshold;
  j["bake_time_ms"] = spec.bake_time.count();
  j["scale_down_delay_ms"] = spec.scale_down_delay.count();
  j["strategy"] = spec.strategy;
  if (spec.keep_instances) j["keep_instances"] = true;
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& step : spec.canary_steps) {
    steps.push_back({{"weight_bp", step.weight_bp}, {"duration_ms", step.duration.count()}});
  }
  j["canary_steps"] = steps;
  j["analysis_interval_ms"] = spec.analysis_interval.count();
  j["started_by"] = spec.started_by;
  j["reason"] = spec.reason;
  return j.dump();
}

Result<DeploymentSpec> DecodeSpec(std::string_view json) {
  try {
    nlohmann::json j = nlohmann::json::parse(json);
    DeploymentSpec s;
    s.service = j.at("service").get<std::string>();
    s.version = j.at("version").get<std::string>();
    s.config_hash = j.at("config_hash").get<std::string>();
    s.slots = j.at("slots").get<std::vector<std::string>>();
    s.command = j.at("command").get<std::string>();
    s.platform = j.value("platform", std::string("process"));
    s.image = j.value("image", std::string());
    s.platform_hash = j.value("platform_hash", std::string());
    s.working_dir = j.at("working_dir").get<std::string>();
    for (const auto& e : j.at("env"))
      s.env.emplace_back(e.at(0).get<std::string>(), e.at(1).get<std::string>());
    if (j.contains("secrets")) {
      for (const auto& e : j.at("secrets")) {
        s.secrets.push_back(platform::SecretRef{
            e.at("name").get<std::string>(), e.at("as").get<std::string>(),
            e.at("generation").get<int64_t>(), e.at("fingerprint").get<std::string>(),
            e.at("previous_generation").get<int64_t>(),
            e.at("previous_fingerprint").get<std::string>()});
      }
    }
    s.stop_signal = j.at("stop_signal").get<int>();
    s.grace = Millis(j.at("grace_ms").get<int64_t>());
    s.log_dir = j.at("log_dir").get<std::string>();
    s.replicas = j.at("replicas").get<int>();
    s.base_port = j.at("base_port").get<uint16_t>();
    s.host = j.at("host").get<std::string>();
    s.readiness_path = j.at("readiness_path").get<std::string>();
    s.ready_deadline = Millis(j.at("ready_deadline_ms").get<int64_t>());
    for (const auto& c : j.at("smoke_checks")) {
      if (!c.is_object())
        return InvalidArgument("deployment spec JSON: a smoke check is no object");
      SmokeCheck check;
      Optional(c, "name", check.name);
      std::string kind = "http";
      Optional(c, "kind", kind);
      if (kind == "command") {
        check.kind = SmokeCheck::Kind::kCommand;
      } else if (kind != "http") {
        return InvalidArgument("deployment spec JSON: unknown smoke check kind '" + kind + "'");
      }
      Optional(c, "method", check.method);
      Optional(c, "path", check.path);
      OptionalPairs(c, "headers", check.headers);
      Optional(c, "body", check.body);
      Optional(c, "status", check.expected_status);
      Optional(c, "expect_body_contains", check.expect_body_contains);
      OptionalPairs(c, "expect_json", check.expect_json);
      Optional(c, "command", check.command);
      OptionalMillis(c, "timeout_ms", check.timeout);
      s.smoke_checks.push_back(std::move(check));
    }
    if (auto it = j.find("pre_deploy"); it != j.end()) {
      for (const auto& c : *it) {
        PreDeployCheck check;
        check.name = c.at("name").get<std::string>();
        check.command = c.at("command").get<std::string>();
        OptionalMillis(c, "timeout_ms", check.timeout);
        s.pre_deploy.push_back(std::move(check));
      }
    }
    // Absent in the specs of deployments begun before verify existed.
    if (auto it = j.find("verify"); it != j.end()) {
      for (const auto& c : *it) {
        VerifyCheck check;
        check.name = c.at("name").get<std::string>();
        const std::string kind = c.at("kind").get<std::string>();
        if (kind == "performance") {
          check.kind = VerifyCheck::Kind::kPerformance;
        } else if (kind != "command") {
          return InvalidArgument("deployment spec JSON: unknown verify kind '" + kind + "'");
        }
        OptionalMillis(c, "timeout_ms", check.timeout);
        Optional(c, "command", check.command);
        Optional(c, "requests", check.requests);
        Optional(c, "concurrency", check.concurrency);
        if (auto paths = c.find("paths"); paths != c.end()) {
          for (const auto& p : *paths) {
            check.paths.push_back({p.at("method").get<std::string>(),
                                   p.at("path").get<std::string>(), p.at("weight").get<int>()});
          }
        }
        if (auto t = c.find("tolerance"); t != c.end()) {
          Optional(*t, "p50", check.tolerance_p50);
          Optional(*t, "p95", check.tolerance_p95);
          Optional(*t, "p99", check.tolerance_p99);
          OptionalMillis(*t, "min_ms", check.tolerance_min);
        }
        s.verify.push_back(std::move(check));
      }
    }
    Optional(j, "manual_approval", s.manual_approval);
    OptionalMillis(j, "probe_interval_ms", s.probe_interval);
    s.bake_failure_threshold = j.at("bake_failure_threshold").get<int>();
    // Absent in the specs of deployments begun before liveness was watched.
    Optional(j, "liveness_path", s.liveness_path);
    OptionalMillis(j, "liveness_interval_ms", s.liveness_interval);
    OptionalMillis(j, "liveness_timeout_ms", s.liveness_timeout);
    Optional(j, "liveness_failure_threshold", s.liveness_failure_threshold);
    s.bake_time = Millis(j.at("bake_time_ms").get<int64_t>());
    s.scale_down_delay = Millis(j.at("scale_down_delay_ms").get<int64_t>());
    Optional(j, "strategy", s.strategy);
    Optional(j, "keep_instances", s.keep_instances);
    if (auto it = j.find("canary_steps"); it != j.end()) {
      for (const auto& c : *it) {
        CanaryStep step;
        step.weight_bp = c.at("weight_bp").get<uint32_t>();
        step.duration = Millis(c.at("duration_ms").get<int64_t>());
        s.canary_steps.push_back(step);
      }
    }
    OptionalMillis(j, "analysis_interval_ms", s.analysis_interval);
    s.started_by = j.at("started_by").get<std::string>();
    s.reason = j.at("reason").get<std::string>();
    return s;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("deployment spec JSON: ") + e.what());
  }
}

platform::InstanceSpec InstanceSpecFor(const DeploymentSpec& spec, const std::string& slot,
                                       int index, uint16_t port) {
  platform::InstanceSpec ps;
  ps.service = spec.service;
  ps.version = spec.version;
  ps.slot = slot;
  ps.instance = index;
  ps.host = spec.host;
  ps.port = port;
  ps.command = spec.command;
  ps.working_dir = spec.working_dir;
  ps.env = spec.env;
  ps.stop_signal = spec.stop_signal;
  ps.grace = spec.grace;
  ps.log_dir = spec.log_dir;
  ps.image = spec.image;
  ps.platform_hash = spec.platform_hash;
  ps.secrets = spec.secrets;
  return ps;
}

}  // namespace turnout::controller
