#include "controller/deployment_spec.h"

#include <cctype>
#include <nlohmann/json.hpp>

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
  if (spec.command.empty()) return InvalidArgument("command: must not be empty");
  if (spec.replicas < 1 || spec.replicas > 1000) {
    return InvalidArgument("replicas: expected 1..1000, got " + std::to_string(spec.replicas));
  }
  if (spec.base_port != 0 && spec.base_port + 2 * spec.replicas > 65535) {
    return InvalidArgument("base_port: the ports of both slots must fit below 65536");
  }
  if (spec.readiness_path.empty() || spec.readiness_path[0] != '/') {
    return InvalidArgument("readiness_path: must start with '/'");
  }
  for (const auto& c : spec.smoke_checks) {
    if (c.path.empty() || c.path[0] != '/') {
      return InvalidArgument("smoke_checks: path '" + c.path + "' must start with '/'");
    }
    if (c.expected_status < 100 || c.expected_status > 599) {
      return InvalidArgument("smoke_checks: expected_status must be 100..599");
    }
  }
  if (spec.ready_deadline.count() <= 0) return InvalidArgument("ready_deadline: must be > 0");
  if (spec.bake_time.count() < 0) return InvalidArgument("bake_time: must be >= 0");
  if (spec.scale_down_delay.count() < 0) return InvalidArgument("scale_down_delay: must be >= 0");
  if (spec.grace.count() < 0) return InvalidArgument("grace: must be >= 0");
  if (spec.bake_failure_threshold < 1) return InvalidArgument("bake_failure_threshold: >= 1");
  return Status::Ok();
}

std::string EncodeSpec(const DeploymentSpec& spec) {
  nlohmann::json j;
  j["service"] = spec.service;
  j["version"] = spec.version;
  j["config_hash"] = spec.config_hash;
  j["slots"] = spec.slots;
  j["command"] = spec.command;
  j["working_dir"] = spec.working_dir;
  nlohmann::json env = nlohmann::json::array();
  for (const auto& [k, v] : spec.env) env.push_back({k, v});
  j["env"] = env;
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
    checks.push_back({{"method", c.method}, {"path", c.path}, {"status", c.expected_status}});
  }
  j["smoke_checks"] = checks;
  j["bake_failure_threshold"] = spec.bake_failure_threshold;
  j["bake_time_ms"] = spec.bake_time.count();
  j["scale_down_delay_ms"] = spec.scale_down_delay.count();
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
    s.working_dir = j.at("working_dir").get<std::string>();
    for (const auto& e : j.at("env"))
      s.env.emplace_back(e.at(0).get<std::string>(), e.at(1).get<std::string>());
    s.stop_signal = j.at("stop_signal").get<int>();
    s.grace = Millis(j.at("grace_ms").get<int64_t>());
    s.log_dir = j.at("log_dir").get<std::string>();
    s.replicas = j.at("replicas").get<int>();
    s.base_port = j.at("base_port").get<uint16_t>();
    s.host = j.at("host").get<std::string>();
    s.readiness_path = j.at("readiness_path").get<std::string>();
    s.ready_deadline = Millis(j.at("ready_deadline_ms").get<int64_t>());
    for (const auto& c : j.at("smoke_checks")) {
      s.smoke_checks.push_back(SmokeCheck{c.at("method").get<std::string>(),
                                          c.at("path").get<std::string>(),
                                          c.at("status").get<int>()});
    }
    s.bake_failure_threshold = j.at("bake_failure_threshold").get<int>();
    s.bake_time = Millis(j.at("bake_time_ms").get<int64_t>());
    s.scale_down_delay = Millis(j.at("scale_down_delay_ms").get<int64_t>());
    s.started_by = j.at("started_by").get<std::string>();
    s.reason = j.at("reason").get<std::string>();
    return s;
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("deployment spec JSON: ") + e.what());
  }
}

}  // namespace turnout::controller
