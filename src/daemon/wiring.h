// From turnout.yaml to the parts turnoutd wires together: the DeploymentSpec the controller
// deploys, the RouterConfig of the embedded router, and the paths under the state directory.
//
// Pure functions (no I/O besides none); thread-safe.

#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "controller/deployment_spec.h"
#include "platform/ports.h"
#include "router/config.h"
#include "service/service_config.h"
#include "state/state_store.h"

namespace turnout::daemon {

// Where a daemon keeps its files, all under one state directory (created 0700).
struct StatePaths {
  std::string dir;          // absolute
  std::string database;     // <dir>/state.db
  std::string socket;       // <dir>/turnoutd.sock (the API; 0600)
  std::string router_policy;  // <dir>/router-policy.json (the embedded router's policy)
  std::string logs;         // <dir>/logs (instance logs)
  std::string daemon_log;   // <dir>/turnoutd.log (written when started by `turnout up`)
  std::string pid_file;     // <dir>/turnoutd.pid
};

// The config's state_dir resolved against `config_dir` (the directory of turnout.yaml).
StatePaths PathsFor(const service::ServiceConfig& config, std::string_view config_dir);

// The spec of deploying `version` with this config. Relative working_dir is resolved against
// `config_dir`; instance logs go to paths.logs. InvalidArgument for a bad version name.
Result<controller::DeploymentSpec> SpecFromConfig(const service::ServiceConfig& config,
                                                  std::string_view config_dir,
                                                  const StatePaths& paths, std::string_view version);

// The embedded router's config: the service's listeners, slots and health checks (readiness
// probe), override header and secret, the policy file under the state directory, and as slot
// instances the addresses of `live` instances (so a restarted daemon's router serves them from
// its first request). `active_slot` ("" before the first deployment: the first slot) becomes
// the initial policy; a persisted policy wins over it.
router::RouterConfig RouterConfigFromService(const service::ServiceConfig& config,
                                             const StatePaths& paths, std::string_view active_slot,
                                             const std::vector<state::InstanceRecord>& live);

// What is valid in a config but risky on this machine, one sentence each: today, platform.ports
// overlapping the kernel's ephemeral port range (read from `local_port_range`; nothing when it
// cannot be read). `turnout check` and `turnout up` print them, turnoutd logs them at start.
std::vector<std::string> ConfigWarnings(
    const service::ServiceConfig& config,
    const std::string& local_port_range = platform::kLocalPortRangePath);

}  // namespace turnout::daemon
