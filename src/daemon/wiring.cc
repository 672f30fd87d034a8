#include "daemon/wiring.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "common/host_port.h"
#include "common/sha256.h"
#include "platform/platform.h"

namespace turnout::daemon {

namespace fs = std::filesystem;

std::string ResolvePath(std::string_view path, std::string_view base) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(base) / p;
  return p.lexically_normal().string();
}

StatePaths PathsFor(const service::ServiceConfig& config, std::string_view config_dir) {
  StatePaths p;
  std::string dir = ResolvePath(config.state_dir, config_dir);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  p.dir = dir;
  p.database = dir + "/state.db";
  p.socket = dir + "/turnoutd.sock";
  p.router_policy = dir + "/router-policy.json";
  p.router_config = dir + "/router.yaml";
  p.router_record = dir + "/router-process.json";
  p.router_socket = dir + "/router.sock";
  p.router_token = dir + "/router-admin.token";
  p.override_secret = dir + "/override.secret";
  p.logs = dir + "/logs";
  p.daemon_log = dir + "/turnoutd.log";
  p.pid_file = dir + "/turnoutd.pid";
  p.lock_file = dir + "/turnoutd.lock";
  return p;
}

platform::ContainerPlatformOptions ContainerOptionsFromConfig(const service::ServiceConfig& config,
                                                              std::string_view config_dir) {
  const service::ContainerConfig& c = config.platform.container;
  platform::ContainerPlatformOptions o;
  o.engine = c.engine;
  o.image = c.image;
  o.port = c.port;
  o.network = c.network == "bridge" ? platform::ContainerNetwork::kBridge
                                    : platform::ContainerNetwork::kHost;
  o.command = c.command;
  o.args = c.args;
  for (const auto& m : c.mounts) {
    o.mounts.push_back(
        platform::ContainerMount{ResolvePath(m.source, config_dir), m.target, m.read_only});
  }
  o.memory_bytes = c.memory_bytes;
  o.cpus = c.cpus;
  o.user = c.user;
  if (c.nofile_hard > 0 && c.nproc_hard > 0) {
    o.nofile = platform::ContainerLimit{c.nofile_soft, c.nofile_hard};
    o.nproc = platform::ContainerLimit{c.nproc_soft, c.nproc_hard};
  }
  o.pull = c.pull == "always"  ? platform::PullPolicy::kAlways
           : c.pull == "never" ? platform::PullPolicy::kNever
                               : platform::PullPolicy::kIfNotPresent;
  return o;
}

std::string ContainerOptionsHash(const platform::ContainerPlatformOptions& o) {
  std::string text;
  auto add = [&](std::string_view field) {
    text += std::to_string(field.size()) + ":" + std::string(field) + ";";
  };
  add(o.engine);
  add(o.image);
  add(std::to_string(o.port));
  add(o.network == platform::ContainerNetwork::kBridge ? "bridge" : "host");
  add(std::to_string(o.command.size()));
  for (const auto& w : o.command) add(w);
  add(std::to_string(o.args.size()));
  for (const auto& w : o.args) add(w);
  add(std::to_string(o.env.size()));
  for (const auto& [name, value] : o.env) add(name + "=" + value);
  add(std::to_string(o.mounts.size()));
  for (const auto& m : o.mounts) add(m.source + ":" + m.target + (m.read_only ? ":ro" : ""));
  add(std::to_string(o.memory_bytes));
  add(std::to_string(o.cpus));
  add(o.user);
  add(std::to_string(static_cast<int>(o.pull)));
  for (const auto* limit : {&o.nofile, &o.nproc}) {
    add(*limit ? std::to_string((*limit)->soft) + "/" + std::to_string((*limit)->hard) : "-");
  }
  return Sha256Hex(text).substr(0, 16);
}

Result<controller::DeploymentSpec> SpecFromConfig(const service::ServiceConfig& config,
                                                  std::string_view config_dir,
                                                  const StatePaths& paths,
                                                  std::string_view version) {
  controller::DeploymentSpec s;
  s.service = config.name;
  s.version = std::string(version);
  s.config_hash = service::ConfigHash(config);
  s.slots = {config.slots[0], config.slots[1]};
  if (config.platform.is_container()) {
    s.platform = "container";
    s.platform_hash = ContainerOptionsHash(ContainerOptionsFromConfig(config, config_dir));
  } else {
    s.command = config.platform.command;
    s.working_dir = ResolvePath(
        config.platform.working_dir.empty() ? "." : config.platform.working_dir, config_dir);
  }
  s.env = config.platform.env;
  s.stop_signal = config.platform.stop_signal_number;
  s.grace = config.platform.grace_period;
  s.log_dir = paths.logs;
  s.replicas = config.platform.replicas;
  s.base_port = config.platform.ports.first;  // 0: `ports: auto`
  s.readiness_path = config.health.readiness.path;
  s.ready_deadline = config.health.ready_deadline;
  s.probe_interval = config.health.readiness.interval;
  s.bake_failure_threshold = config.health.readiness.unhealthy_threshold;
  s.liveness_path = config.health.liveness.path;
  s.liveness_interval = config.health.liveness.interval;
  s.liveness_timeout = config.health.liveness.timeout;
  s.liveness_failure_threshold = config.health.liveness.unhealthy_threshold;
  s.bake_time = config.bake_time;
  s.scale_down_delay = config.scale_down_delay;
  s.manual_approval = config.manual_approval;
  s.strategy = config.strategy;
  s.analysis_interval = config.analysis_interval;
  if (config.strategy == "canary") {
    for (const auto& step : config.canary.steps) {
      s.canary_steps.push_back(controller::CanaryStep{step.weight_bp, step.duration});
    }
  }
  for (const auto& t : config.smoke_tests) {
    controller::SmokeCheck c;
    c.name = t.name;
    c.timeout = t.timeout;
    if (t.kind == service::SmokeTest::Kind::kCommand) {
      c.kind = controller::SmokeCheck::Kind::kCommand;
      c.command = t.command;
    } else {
      c.kind = controller::SmokeCheck::Kind::kHttp;
      c.method = t.method;
      c.path = t.path;
      c.headers = t.headers;
      c.body = t.body;
      c.expected_status = t.expect_status;
      c.expect_body_contains = t.expect_body_contains;
      c.expect_json = t.expect_json;
    }
    s.smoke_checks.push_back(std::move(c));
  }
  for (const auto& p : config.pre_deploy) {
    s.pre_deploy.push_back(controller::PreDeployCheck{p.name, p.command, p.timeout});
  }
  for (const auto& v : config.verify) {
    controller::VerifyCheck c;
    c.name = v.name;
    c.timeout = v.timeout;
    if (v.kind == service::VerifyCheck::Kind::kCommand) {
      c.command = v.command;
    } else {
      c.kind = controller::VerifyCheck::Kind::kPerformance;
      c.requests = v.performance.requests;
      c.concurrency = v.performance.concurrency;
      for (const auto& p : v.performance.paths) c.paths.push_back({p.method, p.path, p.weight});
      c.tolerance_p50 = v.performance.tolerance.p50;
      c.tolerance_p95 = v.performance.tolerance.p95;
      c.tolerance_p99 = v.performance.tolerance.p99;
      c.tolerance_min = v.performance.tolerance.min;
    }
    s.verify.push_back(std::move(c));
  }
  TURNOUT_RETURN_IF_ERROR(controller::ValidateDeploymentSpec(s));
  return s;
}

std::string RecordAddress(const state::InstanceRecord& record) {
  if (!record.platform_handle.empty()) {
    Result<platform::InstanceHandle> handle = platform::DecodeHandle(record.platform_handle);
    if (handle.ok() && !handle->address.empty()) return handle->address;
  }
  return FormatHostPort("127.0.0.1", static_cast<uint16_t>(record.port));
}

router::RouterConfig RouterConfigFromService(const service::ServiceConfig& config,
                                             const StatePaths& paths, std::string_view active_slot,
                                             const std::vector<state::InstanceRecord>& live,
                                             const RouterSecrets& secrets) {
  router::RouterConfig r;
  r.listen = config.listen;
  r.workers = config.router.workers;
  // No TCP admin listener unless turnout.yaml asks for one: a 0600 socket in the 0700 state
  // directory, and the token all the same.
  r.admin = config.router.admin.empty()
                ? std::string(router::kUnixAddressPrefix) + paths.router_socket
                : config.router.admin;
  r.admin_token = secrets.admin_token;
  for (const auto& name : config.slots) {
    router::SlotConfig slot;
    slot.name = name;
    for (const auto& i : live) {
      if (i.slot != name || i.port == 0 || i.state != state::InstanceState::kRunning) continue;
      slot.instances.push_back(RecordAddress(i));
    }
    r.slots.push_back(std::move(slot));
  }
  r.policy.active = active_slot.empty() ? config.slots[0] : std::string(active_slot);
  r.policy.override_header.header = config.router.override_header;
  r.policy.override_header.secret = secrets.override_secret;
  const service::RouterAccessLogOptions& a = config.router.access_log;
  r.access_log.path = a.path;
  r.access_log.format = a.format == "logfmt" ? router::AccessLogConfig::Format::kLogfmt
                                             : router::AccessLogConfig::Format::kJson;
  r.access_log.sample = a.sample;
  r.access_log.include_query = a.include_query;
  r.access_log.max_size = static_cast<uint64_t>(a.max_size);
  r.access_log.keep = a.keep;
  r.trace.generate = config.router.trace_generate;
  r.state_file = paths.router_policy;
  const service::ProbeConfig& ready = config.health.readiness;
  r.health.enabled = true;
  r.health.path = ready.path;
  r.health.interval = ready.interval;
  r.health.timeout = ready.timeout;
  r.health.rise = ready.healthy_threshold;
  r.health.fall = ready.unhealthy_threshold;
  return r;
}

std::string RouterConfigYaml(const router::RouterConfig& c) {
  auto ms = [](router::Millis d) { return std::to_string(d.count()) + "ms"; };
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "listen" << YAML::Value << YAML::BeginSeq;
  for (const auto& l : c.listen) out << YAML::DoubleQuoted << l;
  out << YAML::EndSeq;
  out << YAML::Key << "workers" << YAML::Value << c.workers;
  out << YAML::Key << "admin" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "address" << YAML::Value << YAML::DoubleQuoted << c.admin;
  out << YAML::Key << "token" << YAML::Value << YAML::DoubleQuoted << c.admin_token;
  out << YAML::EndMap;
  out << YAML::Key << "slots" << YAML::Value << YAML::BeginMap;
  for (const auto& slot : c.slots) {
    out << YAML::Key << YAML::DoubleQuoted << slot.name << YAML::Value << YAML::Flow
        << YAML::BeginSeq;
    for (const auto& i : slot.instances) out << YAML::DoubleQuoted << i;
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
  out << YAML::Key << "policy" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "active" << YAML::Value << YAML::DoubleQuoted << c.policy.active;
  out << YAML::Key << "override" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "header" << YAML::Value << YAML::DoubleQuoted
      << c.policy.override_header.header;
  if (!c.policy.override_header.secret.empty()) {
    out << YAML::Key << "secret" << YAML::Value << YAML::DoubleQuoted
        << c.policy.override_header.secret;
  }
  out << YAML::EndMap << YAML::EndMap;
  if (!c.state_file.empty()) {
    out << YAML::Key << "state_file" << YAML::Value << YAML::DoubleQuoted << c.state_file;
  }
  out << YAML::Key << "health" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "enabled" << YAML::Value << c.health.enabled;
  out << YAML::Key << "path" << YAML::Value << YAML::DoubleQuoted << c.health.path;
  out << YAML::Key << "interval" << YAML::Value << ms(c.health.interval);
  out << YAML::Key << "timeout" << YAML::Value << ms(c.health.timeout);
  out << YAML::Key << "rise" << YAML::Value << c.health.rise;
  out << YAML::Key << "fall" << YAML::Value << c.health.fall;
  out << YAML::EndMap;
  if (!c.access_log.path.empty()) {
    const router::AccessLogConfig& a = c.access_log;
    out << YAML::Key << "access_log" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "path" << YAML::Value << YAML::DoubleQuoted << a.path;
    out << YAML::Key << "format" << YAML::Value
        << (a.format == router::AccessLogConfig::Format::kLogfmt ? "logfmt" : "json");
    out << YAML::Key << "sample" << YAML::Value << a.sample;
    out << YAML::Key << "include_query" << YAML::Value << a.include_query;
    out << YAML::Key << "max_size" << YAML::Value << a.max_size;
    out << YAML::Key << "keep" << YAML::Value << a.keep;
    out << YAML::EndMap;
  }
  if (c.trace.generate) {
    out << YAML::Key << "trace" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "generate" << YAML::Value << true;
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string FindProgram(std::string_view name, std::string_view build_dir) {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& p :
         {self.parent_path() / name, self.parent_path().parent_path() / build_dir / name}) {
      if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  return std::string(name);
}

std::vector<std::string> ConfigWarnings(const service::ServiceConfig& config,
                                        const std::string& local_port_range) {
  std::vector<std::string> out;
  const service::PortRange& ports = config.platform.ports;
  if (ports.first != 0) {
    if (Result<platform::PortSpan> ephemeral = platform::ReadEphemeralPortRange(local_port_range);
        ephemeral.ok()) {
      if (std::optional<std::string> w =
              platform::EphemeralOverlapWarning({ports.first, ports.last}, *ephemeral)) {
        out.push_back(*w);
      }
    }
  }
  return out;
}

}  // namespace turnout::daemon
