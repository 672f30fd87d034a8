#include "daemon/wiring.h"

#include <filesystem>

namespace turnout::daemon {

namespace fs = std::filesystem;

namespace {

std::string Resolve(std::string_view path, std::string_view base) {
  fs::path p(path);
  if (p.is_relative()) p = fs::path(base) / p;
  return p.lexically_normal().string();
}

}  // namespace

StatePaths PathsFor(const service::ServiceConfig& config, std::string_view config_dir) {
  StatePaths p;
  std::string dir = Resolve(config.state_dir, config_dir);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  p.dir = dir;
  p.database = dir + "/state.db";
  p.socket = dir + "/turnoutd.sock";
  p.router_policy = dir + "/router-policy.json";
  p.logs = dir + "/logs";
  p.daemon_log = dir + "/turnoutd.log";
  p.pid_file = dir + "/turnoutd.pid";
  return p;
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
  s.command = config.platform.command;
  s.working_dir = Resolve(config.platform.working_dir.empty() ? "." : config.platform.working_dir,
                          config_dir);
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
  TURNOUT_RETURN_IF_ERROR(controller::ValidateDeploymentSpec(s));
  return s;
}

router::RouterConfig RouterConfigFromService(const service::ServiceConfig& config,
                                             const StatePaths& paths, std::string_view active_slot,
                                             const std::vector<state::InstanceRecord>& live) {
  router::RouterConfig r;
  r.listen = config.listen;
  r.workers = config.router.workers;
  r.admin = config.router.admin;
  r.admin_token = config.router.admin_token;
  for (const auto& name : config.slots) {
    router::SlotConfig slot;
    slot.name = name;
    for (const auto& i : live) {
      if (i.slot != name || i.port == 0 || i.state != state::InstanceState::kRunning) continue;
      slot.instances.push_back("127.0.0.1:" + std::to_string(i.port));
    }
    r.slots.push_back(std::move(slot));
  }
  r.policy.active = active_slot.empty() ? config.slots[0] : std::string(active_slot);
  r.policy.override_header.header = config.router.override_header;
  r.policy.override_header.secret = config.router.override_secret;
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
