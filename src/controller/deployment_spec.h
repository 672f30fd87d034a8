// DeploymentSpec: everything the controller needs to deploy one version of one service in
// blue/green fashion. The turnout.yaml parser (a later mapping) fills it; tests build it by hand.
//
// The controller persists the spec of every deployment it begins (as JSON, EncodeSpec) so that a
// restarted controller resumes with exactly the definition the deployment started with, even if
// turnout.yaml changed meanwhile.

#pragma once

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "platform/platform.h"

namespace turnout::controller {

using Millis = std::chrono::milliseconds;

// All traffic, in basis points (the router's unit: 0.01 %).
inline constexpr uint32_t kFullWeightBp = 10000;

// A smoke test run against the new slot before the switch. HTTP checks are sent through the
// router with the override header (EngineOptions::override_header, and the secret when set), so
// they take the real path; command checks get {url} (the router's base URL), {slot} and
// {version} substituted in every word and pass when they exit 0.
struct SmokeCheck {
  enum class Kind { kHttp, kCommand };
  // Recorded as the step "smoke_test:<name>". Default: "" -> "<METHOD> <path>", or the command.
  std::string name;
  Kind kind = Kind::kHttp;  // Default: kHttp
  // kHttp:
  std::string method = "GET";                                // Default: GET
  std::string path = "/";                                    // Default: /
  std::vector<std::pair<std::string, std::string>> headers;  // Default: none
  std::string body;                                          // Default: empty
  int expected_status = 200;                                 // Default: 200
  // The body must contain this text ({version} replaced). Default: "" (not checked)
  std::string expect_body_contains;
  // JSON path ("data.items[0].id") -> expected value text: a string's contents, or a number,
  // bool or null as JSON writes it ({version} replaced). Default: none
  std::vector<std::pair<std::string, std::string>> expect_json;
  // kCommand: split like platform commands (no shell unless it runs one).
  std::string command;
  Millis timeout{10000};  // Default: 10 s
};

// A pre-deploy check: a command ({version} replaced) that must exit 0 before anything launches.
struct PreDeployCheck {
  std::string name;  // recorded as the step "pre_deploy:<name>"; required
  std::string command;
  Millis timeout{60000};  // Default: 60 s
};

// One request of a performance check's mix: of every sum-of-weights requests, `weight` are
// `method path`.
struct VerifyPath {
  std::string method = "GET";  // Default: GET
  std::string path = "/";      // Default: /
  int weight = 1;              // >= 1. Default: 1
};

// A post-switch check (turnout.yaml `verify:`), run at the start of the bake against the
// version that now serves through the router. kCommand: `command` ({url}: the router's base
// URL, {version}) must exit 0 within `timeout`. kPerformance: `requests` requests of the `paths`
// mix, `concurrency` at once, through the router (Verifier::MeasurePerformance), all within
// `timeout`; no errors, and each percentile at most its tolerance above the baseline's (see
// controller/verify.h).
struct VerifyCheck {
  enum class Kind { kCommand, kPerformance };
  std::string name;  // recorded as the step "verify:<name>"; required, unique
  Kind kind = Kind::kCommand;
  std::string command;  // kCommand
  // kPerformance:
  int requests = 500;             // 1..100000. Default: 500
  int concurrency = 4;            // 1..64. Default: 4
  std::vector<VerifyPath> paths;  // at least one
  double tolerance_p50 = 0.20;    // fractions of the baseline. Default: 20 %, 25 %, 50 %
  double tolerance_p95 = 0.25;
  double tolerance_p99 = 0.50;
  Millis tolerance_min{5};  // a difference up to this never fails. Default: 5 ms
  Millis timeout{60000};    // the whole check. Default: 60 s
};

// One canary step: the share of traffic the new slot gets and how long it keeps it at most
// (an analysis verdict or `turnout promote` may end it earlier).
struct CanaryStep {
  uint32_t weight_bp = 500;  // basis points of traffic on the new slot: 500 = 5 %. Default: 5 %
  Millis duration{300000};   // Default: 5 min
};

struct DeploymentSpec {
  std::string service;      // [A-Za-z0-9][A-Za-z0-9._+-]*
  std::string version;      // same character set
  std::string config_hash;  // of the service definition; recorded with the revision. Default: ""
  // Exactly two slot names; the first deployment of a service goes to slots[0], every later one
  // to the slot that is not active. Default: blue, green
  std::vector<std::string> slots = {"blue", "green"};

  // The platform's kind ("process" or "container"); only a process needs `command`.
  std::string platform = "process";  // Default: process
  // Containers: the image ID every instance runs. "" until PreChecks resolved it
  // (Platform::ResolveImage) and recorded it in the saved spec, so that a redeploy of this
  // revision (rollback --to) runs the same image even after the tag moved.
  std::string image;
  // A digest of the platform's own options (platform::InstanceSpec::platform_hash). Default: ""
  std::string platform_hash;

  // How one instance runs (platform::InstanceSpec): a command template with {version} {port}
  // {slot} {instance}, its working directory, environment, stop signal and grace, log dir.
  std::string command;
  std::string working_dir;  // Default: "" (the controller's working directory)
  std::vector<std::pair<std::string, std::string>> env;  // Default: none
  int stop_signal = SIGTERM;                             // Default: SIGTERM
  Millis grace{10000};                                   // Default: 10 s
  std::string log_dir;                                   // Default: "" (working directory)
  int replicas = 1;                                      // instances per slot, >= 1. Default: 1
  // turnout.yaml's secrets, by reference (name, delivery, generation, keyed fingerprint, the
  // previous generation during a rotation's overlap): never a value. Each instance's values are
  // resolved just before its launch by whoever keeps them (turnoutd's SecretPlatform).
  // Default: none
  std::vector<platform::SecretRef> secrets;

  // Placement, handed to Platform::AllocateAddress (the engine itself never picks or checks a
  // port). Processes: instance i of the slot with index s listens on base_port + s * replicas +
  // i, or, when base_port is 0, on a port the OS reports free at launch time. Default: 0
  uint16_t base_port = 0;
  std::string host = "127.0.0.1";  // where instances listen (IPv4 literal). Default: 127.0.0.1

  // Readiness: GET readiness_path must answer 2xx on every new instance within ready_deadline
  // (measured from entering WaitingReady, by the controller's clock).
  std::string readiness_path = "/ready";   // Default: /ready
  Millis ready_deadline{30000};            // Default: 30 s
  std::vector<SmokeCheck> smoke_checks;    // Default: none
  std::vector<PreDeployCheck> pre_deploy;  // run in PreChecks, in order. Default: none
  std::vector<VerifyCheck> verify;         // at the start of Baking, in order. Default: none
  // Wait in AwaitingApproval after the smoke tests until Engine::Approve. Default: false
  bool manual_approval = false;
  // The least time between two readiness probes of one instance in WaitingReady and Baking
  // (Step() calls in between only look for exited instances). Default: 0 (every Step)
  Millis probe_interval{0};
  // During bake, this many failed readiness probes in a row on a new instance (or any instance
  // exiting) switches traffic back. Default: 3
  int bake_failure_threshold = 3;
  // Liveness during bake: GET liveness_path on every new instance at most every
  // liveness_interval (by the controller's clock, each bounded by liveness_timeout); this many
  // failed answers in a row (not 2xx, or none) on one instance switches traffic back at once.
  // Default: "" (liveness is not watched; turnoutd sets turnout.yaml's health.liveness)
  std::string liveness_path;
  Millis liveness_interval{5000};      // Default: 5 s
  Millis liveness_timeout{1000};       // Default: 1 s
  int liveness_failure_threshold = 3;  // Default: 3
  Millis bake_time{60000};             // Default: 60 s

  // "blue_green": after the smoke tests all traffic moves at once. "canary": the new slot first
  // gets canary_steps[0].weight_bp of the traffic (sticky per client), then each following
  // step's weight, then all of it (Switching). A first deployment has no stable version to
  // compare with and switches at once. "rolling": the serving slot's instances are replaced one at
  // a time in place (one extra instance at most, never one fewer ready: launch a new one, wait
  // until ready, add it, remove and stop an old one), then the bake; needs base_port 0. A first
  // deployment is deployed as blue_green. "recreate": with downtime, for changes that cannot be
  // made compatible: the router in maintenance, the serving slot stopped, the database phases,
  // then the new version as blue_green and maintenance off after the switch (engine.h). A first
  // deployment is deployed as blue_green. Default: "blue_green"
  std::string strategy = "blue_green";
  // rolling only: the serving instances are kept, not replaced (the definition is the same but
  // for replicas: `turnout scale`); only the instances beyond the old count are launched, and
  // those beyond the new count drained and stopped. Default: false
  bool keep_instances = false;
  // canary: at least one step; weights strictly increasing, each in (0, 10000); durations > 0.
  // Default: none (required for "canary")
  std::vector<CanaryStep> canary_steps;
  // How often EngineOptions::analyze is consulted in Canary and Baking (by the controller's
  // clock). Default: 1 s
  Millis analysis_interval{1000};
  Millis scale_down_delay{300000};  // old slot kept warm after the bake. Default: 5 min

  std::string started_by = "turnout";  // audit actor of the deployment. Default: "turnout"
  std::string reason;                  // why it was started. Default: ""
};

// The platform's spec of instance `index` of `slot`, listening on `port` (what the engine
// launches, and what turnoutd's supervisor relaunches when a serving instance dies).
platform::InstanceSpec InstanceSpecFor(const DeploymentSpec& spec, const std::string& slot,
                                       int index, uint16_t port);

// Checks names, slots, replicas, command, durations; InvalidArgument names the field.
Status ValidateDeploymentSpec(const DeploymentSpec& spec);

// JSON text for the state store, and back (DecodeSpec never throws; InvalidArgument on bad
// text).
std::string EncodeSpec(const DeploymentSpec& spec);
Result<DeploymentSpec> DecodeSpec(std::string_view json);

}  // namespace turnout::controller
