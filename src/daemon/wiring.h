// From turnout.yaml to the parts turnoutd wires together: the DeploymentSpec the controller
// deploys, the RouterConfig of the router process turnoutd runs (and its YAML file), and the
// paths under the state directory.
//
// Pure functions (no I/O, except FindProgram, which looks at the file system); thread-safe.

#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "container_platform/container_platform.h"
#include "controller/deployment_spec.h"
#include "platform/ports.h"
#include "router/config.h"
#include "service/service_config.h"
#include "state/state_store.h"

namespace turnout::daemon {

// Where a daemon keeps its files, all under one state directory (created 0700).
struct StatePaths {
  std::string dir;              // absolute
  std::string database;         // <dir>/state.db
  std::string socket;           // <dir>/turnoutd.sock (the API; 0600)
  std::string router_policy;    // <dir>/router-policy.json (the router's persisted policy; 0600)
  std::string router_config;    // <dir>/router.yaml (the router process's config; 0600)
  std::string router_record;    // <dir>/router-process.json (the launched router process; 0600)
  std::string router_socket;    // <dir>/router.sock (the router's admin API; 0600)
  std::string router_token;     // <dir>/router-admin.token (the router's admin token; 0600)
  std::string override_secret;  // <dir>/override.secret (the override header's secret; 0600)
  std::string logs;             // <dir>/logs (instance logs)
  std::string daemon_log;       // <dir>/turnoutd.log (written when started by `turnout up`)
  std::string pid_file;         // <dir>/turnoutd.pid
  // <dir>/turnoutd.lock: flock()ed by the turnoutd that serves the directory, for its whole life
  // (the kernel releases it when that process dies, kill -9 included); holds its pid.
  std::string lock_file;
};

// `path` as it is when absolute, else relative to `base` (normalized): how every file named in
// turnout.yaml is found.
std::string ResolvePath(std::string_view path, std::string_view base);

// The config's state_dir resolved against `config_dir` (the directory of turnout.yaml).
StatePaths PathsFor(const service::ServiceConfig& config, std::string_view config_dir);

// The spec of deploying `version` with this config. Relative working_dir is resolved against
// `config_dir`; instance logs go to paths.logs. For `type: container` the spec has platform
// "container", no command or working directory, the container environment in `env`, and
// ContainerOptionsHash as its platform_hash; its image is resolved in PreChecks. InvalidArgument
// for a bad version name.
Result<controller::DeploymentSpec> SpecFromConfig(const service::ServiceConfig& config,
                                                  std::string_view config_dir,
                                                  const StatePaths& paths,
                                                  std::string_view version);

// The options of the container platform for `platform.type: container`, one field per key of
// the section (docs/turnout-yaml.md, "Containers"): relative mount sources resolved against
// `config_dir`, network and pull as their enums. The environment (env and env_file) is not among
// them: it travels with each deployment's spec (SpecFromConfig), as a process's does, so that a
// redeploy of an earlier revision runs with that revision's environment and its values stay out
// of the platform's options.
platform::ContainerPlatformOptions ContainerOptionsFromConfig(const service::ServiceConfig& config,
                                                              std::string_view config_dir);

// A digest of the options above (16 hex digits), recorded in each container deployment's spec
// as platform_hash so that the instances' spec hash changes with any of them.
std::string ContainerOptionsHash(const platform::ContainerPlatformOptions& options);

// The credentials turnoutd hands its router (read from or generated into the state directory).
struct RouterSecrets {
  std::string admin_token;      // the admin API's bearer token
  std::string override_secret;  // the override header's secret (smoke tests send it)
};

// The router process's config: the service's listeners, workers, slots and health checks
// (readiness probe), override header and `secrets.override_secret`, the admin API
// (`router.admin` when set, else the Unix socket paths.router_socket) with
// `secrets.admin_token`, the
// policy file under the state directory, and as slot instances the addresses of `live`
// instances (so a new router serves them from its first request). `active_slot` ("" before the
// first deployment: the first slot) becomes the initial policy; a persisted policy wins over it.
// Where the router reaches a recorded instance: the address in its platform handle, or, for a
// row without a usable handle, 127.0.0.1:<port> (turnoutd runs process instances there).
std::string RecordAddress(const state::InstanceRecord& record);

router::RouterConfig RouterConfigFromService(const service::ServiceConfig& config,
                                             const StatePaths& paths, std::string_view active_slot,
                                             const std::vector<state::InstanceRecord>& live,
                                             const RouterSecrets& secrets);

// `config` as the YAML file `turnout router --config` reads (every field turnoutd sets:
// listen, workers, admin, slots, policy, state_file, health). It contains the admin token and
// the override secret: write it 0600.
std::string RouterConfigYaml(const router::RouterConfig& config);

// Where a program of this install lives: beside the running binary, else in the build tree's
// `src/<build_dir>/` next to the running binary's folder, else `name` (searched in PATH).
std::string FindProgram(std::string_view name, std::string_view build_dir);

// What is valid in a config but risky on this machine, one sentence each: today, platform.ports
// overlapping the kernel's ephemeral port range (read from `local_port_range`; nothing when it
// cannot be read). `turnout check` and `turnout up` print them, turnoutd logs them at start.
std::vector<std::string> ConfigWarnings(
    const service::ServiceConfig& config,
    const std::string& local_port_range = platform::kLocalPortRangePath);

}  // namespace turnout::daemon
