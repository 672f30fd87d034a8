// ServiceConfig: the service definition, `turnout.yaml`.
//
// One file describes one service: how to start a version of it (platform), how to tell that an
// instance is healthy, what to check before traffic moves to a new slot, how long to watch it
// afterwards, and whom to tell. docs/turnout-yaml.md is the reference of every key;
// ExampleServiceConfig() is the commented file `turnout init` writes.
//
// Parsing is strict: unknown keys, keys given twice, values of the wrong kind and values that
// make no sense together are all refused. Every problem found is reported (not just the first),
// one per line, each as "turnout.yaml:12: health.readiness.interval: expected a duration like
// 500ms or 2s, got 'soon'".
//
// Relative paths in the file (platform.working_dir, platform.mounts, state_dir) are kept as
// written; the caller resolves them against the directory that holds the file. The one file the
// parser reads itself is platform.env_file, relative to the directory of `file_name`.
//
// Thread-safety: the functions are pure (no shared state) and may be called from any thread.

#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/duration.h"
#include "common/status.h"
#include "judge/canary_judge.h"
#include "judge/rule.h"
#include "judge/slo.h"
// Only the CheckSpec types (plain structs) are used: service does not link turnout_sources, which
// would pull libpq and the HTTP client into everything that reads turnout.yaml.
#include "sources/dependency.h"

namespace turnout::service {

using Millis = std::chrono::milliseconds;

// Ports the platform hands out to instances, inclusive on both ends.
struct PortRange {
  // 0 (with last 0): `ports: auto`, a port the OS reports free at each launch.
  uint16_t first = 20000;  // Default: 20000
  uint16_t last = 20999;   // Default: 20999
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

// One bind mount of a container: `source:target[:ro]`.
struct ContainerMountConfig {
  std::string source;  // a path on the machine, kept as written (relative: vs turnout.yaml)
  std::string target;  // an absolute path inside the container
  bool read_only = false;
  friend bool operator==(const ContainerMountConfig&, const ContainerMountConfig&) = default;
};

// The keys only `type: container` has. One field per key of
// platform::ContainerPlatformOptions (docs/containers.md); the keys both types share
// (env, replicas, stop_signal, grace_period) stay in PlatformConfig.
struct ContainerConfig {
  // unix:///path.sock or /path.sock. Default: "" ($DOCKER_HOST, then the default sockets)
  std::string engine;
  std::string image;  // "registry/app:{version}"; only {version} is replaced. Required
  // The port the app listens on inside the container, 1..65535. Required with network bridge;
  // with host the app listens on the port turnout picks ($PORT). Default: 0
  uint16_t port = 0;
  std::string network = "host";      // host | bridge. Default: host
  std::vector<std::string> command;  // replaces the image's entrypoint. Default: the image's
  std::vector<std::string> args;     // replaces the image's command. Default: the image's
  // As written (relative: vs turnout.yaml). Its KEY=VALUE lines were read into
  // PlatformConfig::env, before the `env` map (which wins). Default: ""
  std::string env_file;
  std::vector<ContainerMountConfig> mounts;  // Default: none
  int64_t memory_bytes = 0;  // `memory: 512m` (k/m/g: KiB, MiB, GiB; a plain number is bytes)
  double cpus = 0;           // > 0 when given. Default: 0 (no limit)
  std::string user;          // "uid[:gid]" or a name. Default: the image's
  std::string pull = "if_not_present";  // always | if_not_present | never
  // `ulimits: {nofile: 1024, nproc: "4096:8192"}`: each a number (soft = hard) or "soft:hard"
  // (1 <= soft <= hard), both or neither: an explicit list replaces all of the engine's defaults
  // (Podman's can exceed a machine's hard limits). 0 (the default): the engine's.
  int64_t nofile_soft = 0, nofile_hard = 0;
  int64_t nproc_soft = 0, nproc_hard = 0;
};

// platform: how one instance of a version is started: `process` (a command on this machine) or
// `container` (an image run by a Docker Engine API engine). The controller reaches either
// through platform::Platform; the daemon's wiring picks the one named by `type`. Keys of the
// other type are refused.
struct PlatformConfig {
  std::string type = "process";  // process | container. Default: process
  // process: split into words like a shell would, then {version} {port} {slot} {instance} are
  // replaced. Must contain {port} (the router sends traffic there). Required, no default.
  std::string command;
  std::string working_dir;  // process only. Default: "" (the directory of turnout.yaml)
  // Processes: added to the daemon's environment. Containers: the container's environment
  // (env_file's lines first, then the `env` map). In file order. Default: none.
  std::vector<std::pair<std::string, std::string>> env;
  int replicas = 1;                     // instances per slot, 1..64. Default: 1
  std::string stop_signal = "SIGTERM";  // canonical name. Default: SIGTERM
  int stop_signal_number = SIGTERM;     // the number of stop_signal (filled by the parser)
  Millis grace_period{10000};           // stop_signal -> SIGKILL. Default: 10s
  // process only: containers always get a loopback port the OS reports free (auto).
  PortRange ports;            // Default: 20000-20999
  ContainerConfig container;  // type container only
  bool is_container() const { return type == "container"; }
};

// One HTTP probe (readiness or liveness). Any 2xx answer is a success.
struct ProbeConfig {
  std::string path;           // starts with '/'
  Millis interval{1000};      // Default: 1s (readiness), 5s (liveness)
  Millis timeout{500};        // must not exceed interval. Default: 500ms (readiness), 1s (liveness)
  int healthy_threshold = 2;  // consecutive successes to count as healthy. Default: 2 / 1
  int unhealthy_threshold = 3;  // consecutive failures to count as unhealthy. Default: 3 / 3
  friend bool operator==(const ProbeConfig&, const ProbeConfig&) = default;
};

struct HealthConfig {
  ProbeConfig readiness{"/ready", Millis(1000), Millis(500), 2, 3};  // Default: /ready
  ProbeConfig liveness{"/live", Millis(5000), Millis(1000), 1, 3};   // Default: /live
  // A new slot that is not ready this long after launch fails the deployment. Default: 60s
  Millis ready_deadline{60000};
};

// One smoke test: either an HTTP request (kind kHttp) or a command (kind kCommand). HTTP checks
// are sent to the public listener with the router's override header, so they take the real path
// to the new slot.
struct SmokeTest {
  enum class Kind { kHttp, kCommand };
  std::string name;  // unique among smoke tests; required
  Kind kind = Kind::kHttp;
  // kHttp:
  std::string method = "GET";                                // Default: GET
  std::string path;                                          // starts with '/'
  std::vector<std::pair<std::string, std::string>> headers;  // Default: none
  std::string body;                                          // Default: empty
  int expect_status = 200;                                   // Default: 200
  std::string expect_body_contains;                          // Default: "" (not checked)
  // "data.items[0].id" -> expected value, compared with the JSON value's text (a string's
  // contents, or a number/bool/null as JSON writes it). Default: none.
  std::vector<std::pair<std::string, std::string>> expect_json;
  // {version} in expect_body_contains and expect_json values is replaced by the version.
  // kCommand: run like platform.command (no shell unless it runs one); {url} is replaced by the
  // router's public base URL ("http://127.0.0.1:8080"), {slot} and {version} by the new slot and
  // version (send the override header to reach the slot); exit status 0 passes.
  std::string command;
  Millis timeout{10000};  // Default: smoke_test_timeout (10s)
};

// verify: checks run after the switch, at the start of the bake, against the new version
// serving through the router's public listener. A failing check rolls back like a failing rule.
// Bounded: every check has a timeout, a performance check at most kMaxVerifyRequests requests on
// at most kMaxVerifyConcurrency connections.
inline constexpr int64_t kMaxVerifyRequests = 100000;
inline constexpr int64_t kMaxVerifyConcurrency = 64;

// One request of a performance check's mix: `weight` of every `sum of weights` requests.
struct VerifyPath {
  std::string path;            // starts with '/'; required
  std::string method = "GET";  // Default: GET
  int weight = 1;              // 1..1000. Default: 1
  bool operator==(const VerifyPath&) const = default;
};

// How much slower than the baseline (the last succeeded revision's result of the same mix) a
// percentile may be: fails when new > baseline * (1 + tolerance) and new - baseline > min.
struct VerifyTolerance {
  double p50 = 0.20;  // Default: 20%
  double p95 = 0.25;  // Default: 25%
  double p99 = 0.50;  // Default: 50%
  Millis min{5};      // differences up to this never fail (noise on fast services). Default: 5ms
  bool operator==(const VerifyTolerance&) const = default;
};

struct VerifyPerformance {
  int requests = 500;             // 1..kMaxVerifyRequests. Default: 500
  int concurrency = 4;            // 1..kMaxVerifyConcurrency connections at once. Default: 4
  std::vector<VerifyPath> paths;  // at least one; required
  VerifyTolerance tolerance;
  bool operator==(const VerifyPerformance&) const = default;
};

// One item of `verify:`: a command ({url} = the router's public base URL, {version}; exit 0
// passes) or a performance check (the request mix through the router, compared with the
// baseline).
struct VerifyCheck {
  enum class Kind { kCommand, kPerformance };
  std::string name;  // unique among verify checks; required
  Kind kind = Kind::kCommand;
  std::string command;  // kCommand: run like platform.command (no shell unless it runs one)
  VerifyPerformance performance;  // kPerformance
  Millis timeout{60000};  // the whole check (all the requests of a performance check). Default: 60s
};

// A pre-deploy check: a command that must exit 0 before anything is launched.
struct PreDeployCheck {
  std::string name;       // unique; required
  std::string command;    // required; {version} is replaced
  Millis timeout{60000};  // Default: 60s
};

// Deployment events hooks can subscribe to. The five after "aborted" come from rules and the
// canary strategy: a canary step judged good, a deployment paused or resumed (`turnout
// pause/resume`), a canary promoted to all traffic, and a warning-severity rule firing. The last
// is turnoutd's: it found the audit log's hash chain broken (at start or as it grows) and
// refuses to act until `turnout audit acknowledge`.
// clang-format off
inline constexpr std::string_view kHookEvents[] = {
    "deploy_started", "pre_checks_passed",  "awaiting_approval",
    "ready",          "smoke_passed",       "switched",
    "succeeded",      "rolled_back",        "failed",
    "aborted",        "canary_step_passed", "paused",
    "resumed",        "promoted",           "warning",
    "audit_broken"};
// clang-format on

struct WebhookConfig {
  std::string url;       // http:// or https://
  int retries = 3;       // extra attempts after a failure, 0..10. Default: 3
  Millis timeout{5000};  // per attempt. Default: 5s
};

// A hook never blocks or fails a deployment: it runs in the background and its failures are
// logged. Exactly one of `command` and `webhook` is set.
struct HookConfig {
  std::vector<std::string> on;  // events from kHookEvents, or "*" for all; required
  // Placeholders: {event} {service} {version} {slot} {revision}.
  std::string command;
  bool has_webhook = false;
  WebhookConfig webhook;  // the body is Slack-compatible JSON: {"text": "..."} plus details
  Millis timeout{30000};  // command hooks only. Default: 30s
};

struct RevisionsConfig {
  int warm = 1;      // old revisions kept running as instant rollback targets, 0..5. Default: 1
  int on_disk = 10;  // revisions whose records are kept, >= warm, 1..1000. Default: 10
};

// router.access_log: the router's access log (docs/router.md "Access log"); passed to the
// router process turnoutd runs (not to an `external` router, which has its own config).
struct RouterAccessLogOptions {
  std::string path;  // an absolute file path, or "-" (the router's stdout). Default: "" (off)
  std::string format = "json";     // json or logfmt. Default: json
  double sample = 1.0;             // fraction of 2xx/3xx answers logged (0..1). Default: 1
  bool include_query = false;      // Default: false
  int64_t max_size = 100ll << 20;  // rotate past this many bytes; 0 = never. Default: 100m
  int keep = 5;                    // rotated files kept, 1..100. Default: 5
};

struct RouterOptions {
  // A TCP address for the admin API of the router process turnoutd runs (host:port). turnoutd
  // then drives it there, with admin_token. Default: "" (no TCP admin listener: the admin API is
  // the Unix socket <state_dir>/router.sock, mode 0600).
  std::string admin;
  // Bearer token of the router's admin API. Default: "" (turnoutd generates one and keeps it in
  // <state_dir>/router-admin.token, mode 0600); sent to an `external` router as is.
  std::string admin_token;
  // The admin address of a standalone `turnout router` that turnoutd drives instead of running
  // one itself (then `listen`, `admin` and `workers` belong to that router's own config).
  // Default: "" (turnoutd runs the router as a process of its own)
  std::string external;
  std::string override_header = "X-Turnout-Slot";  // Default: X-Turnout-Slot
  // The override header only counts when the request also carries
  // `X-Turnout-Secret: <secret>` (the smoke tests send it). Default: "" (turnoutd generates one
  // and keeps it in <state_dir>/override.secret, mode 0600).
  std::string override_secret;
  int workers = 0;  // 0 = one per core. Default: 0
  RouterAccessLogOptions access_log;
  // router.trace.generate: a new W3C traceparent for requests without a valid one. Default: false
  bool trace_generate = false;
};

// One canary step: `- {weight: 5%, for: 5m}`. The canary slot gets weight_bp of the traffic
// (sticky per client) while the judge compares it with the stable slot; the step ends early when
// the judge decides, and at the latest after `duration` (judge.max_duration caps it further).
struct CanaryStepConfig {
  uint32_t weight_bp = 0;  // basis points: 500 = 5 %; in (0, 10000), strictly increasing. Required
  Millis duration{0};      // > 0. Required
  friend bool operator==(const CanaryStepConfig&, const CanaryStepConfig&) = default;
};

// canary: the steps of `strategy: canary` and how the canary judge decides. After the last step
// the canary is promoted to all traffic (the bake time and the rules still apply).
struct CanaryConfig {
  // Default (strategy canary and no steps given): 5% for 5m, 25% for 10m, 50% for 10m.
  std::vector<CanaryStepConfig> steps;
  // Keys: alpha, error_margin ("1%": percentage points), error_relative_margin ("50%"),
  // latency (true/false), latency_percentile (95), latency_margin ("5%"),
  // latency_relative_margin ("0%"), min_requests (100), max_step_time (10m),
  // end_policy (promote|rollback). Defaults: judge::CanaryJudgeConfig's. Validated with
  // judge::ValidateCanaryJudgeConfig.
  judge::CanaryJudgeConfig judge;
  // The first step's first `warmup` is not judged: the fresh instances warm their caches, pools
  // and JIT, and their first requests are slower for a reason that says nothing about the
  // version. The rules still apply during it. Default: 0s
  Millis warmup{0};
};

// The steps `strategy: canary` uses when the file lists none.
std::vector<CanaryStepConfig> DefaultCanarySteps();

// One dependency the rules can name (`dependency NAME unavailable for 10s`).
struct DependencyConfig {
  // Unique among dependencies; a word of the rule language ([A-Za-z_][A-Za-z0-9_.:-]*, at most
  // 64). Required.
  std::string name;
  // Exactly one of `tcp: host:port`, `http: url`, `postgres: conninfo`, `command: "..."`. The
  // check's own timeouts are set from `timeout` (both of PostgresCheck's); CommandCheck's argv is
  // the command split like platform.command, its working_dir "" (turnoutd runs in the directory
  // of turnout.yaml). HttpCheck keeps its default 200..399.
  sources::CheckSpec check;
  Millis interval{5000};  // from the end of one check to the start of the next. Default: 5s
  Millis timeout{2000};   // per check, must not exceed interval. Default: 2s
};

// prometheus: where `metric NAME` rules get their values (an instant query per evaluation).
struct PrometheusConfig {
  std::string url;       // http:// or https:// base URL. Default: "" (not used)
  Millis timeout{5000};  // per attempt. Default: 5s
  int retries = 2;       // extra attempts, 0..10. Default: 2
  // name -> PromQL, in file order; a `metric NAME` rule needs NAME here. Names as for
  // dependencies. Given the section, url is required. Default: none
  std::vector<std::pair<std::string, std::string>> queries;
};

// slo: objectives `turnout slo` reports on, computed from the router's per-slot metrics.
struct SloConfig {
  // `availability: 99.95%` -> {name "availability", kAvailability, 0.9995};
  // `latency: {threshold: 100ms, target: 95%}` -> {name "latency", kLatency, 0.95, 100000 us};
  // `period: 30d` (every objective's period; units ms s m h d). Default: none (no objectives),
  // period 30d.
  std::vector<judge::SloObjective> objectives;
};

// database: the PostgreSQL side of each deployment (docs/daemon.md "Database"): a verified
// backup and the expand migrations before the new version starts, the contract migrations once
// the old slot is retired, and the rollback ladder.
struct DatabaseConfig {
  std::string url;      // a PostgreSQL URL or conninfo. Default: "" (no database section)
  std::string url_env;  // or: the environment variable holding it (keeps secrets out of files)
  std::string migrations = "migrations";  // relative to turnout.yaml. Default: migrations
  std::string backups;                    // Default: "" = <state_dir>/backups
  int verify_level = 2;  // 1 hashes, 2 + full decode, 3 + restore and compare. Default: 2
  std::string format = "directory";  // directory | custom. Default: directory
  int jobs = 1;                      // pg_dump/pg_restore -j, 1..64. Default: 1
  Millis lock_timeout{5000};         // lock_timeout of each migration statement. Default: 5s
  // Rehearse the pending migrations on a restore of the fresh backup before applying them for
  // real; a finding (a lock held over lock_budget, a rewrite, a broken down file) stops the
  // deployment before anything changed. Default: false
  bool rehearse = false;
  Millis lock_budget{1000};  // rehearsal: longest tolerated write-blocking lock. Default: 1s
  // Who migrates: "sql" (turnout, from `migrations`) or "command" (the app's own tool, through
  // the command templates below, run in the new version's environment). Default: sql
  std::string tool = "sql";
  std::string up;      // command: applies the app's pending migrations. Required with command
  std::string status;  // command: prints the schema version the tool is at (one line). Required
  // command: goes back to the version {to} (a line `status` printed). Default: "" (none: a
  // rollback past a destructive change then needs the restore command)
  std::string down;
  Millis tool_timeout{600000};  // command: each command's deadline. Default: 10m
  bool command_tool() const { return tool == "command"; }
  bool enabled() const { return !url.empty() || !url_env.empty(); }
};

// maintenance: what the router answers while the service is in maintenance (`turnout
// maintenance on`, strategy recreate): 503 with Retry-After and this page. Not part of the config
// hash (it changes no instance); the page file is read again when maintenance starts.
inline constexpr size_t kMaxMaintenancePage = 64 * 1024;  // the router's limit too

struct MaintenanceConfig {
  Millis retry_after{30000};  // 1s .. 24h, sent in whole seconds. Default: 30s
  std::string page;           // a file (relative to turnout.yaml), at most 64 KiB. Default: none
                              // (a short built-in HTML page)
  std::string content_type = "text/html; charset=utf-8";  // of the page
};

// secrets: values an instance receives that never appear in turnout.yaml, logs, the API,
// history, hooks or the audit log. turnoutd reads each value at deploy time, keeps it in a 0600
// file of its state directory and records only a keyed fingerprint (docs/SECURITY.md).
// The key (under `secrets:`) is the variable name the app reads (common::IsUserEnvName).
struct SecretConfig {
  std::string name;
  // Where the value comes from: a file (relative to turnout.yaml; it must be this user's and
  // unreadable by group and others) or a variable of turnoutd's environment. At most one.
  std::string from_file;
  std::string from_env;
  // "hex32": turnoutd generates 32 random bytes as hex when the source is absent (no file, no
  // variable, or neither given) and keeps them (in from_file when given). Default: "" (an
  // absent source is an error)
  std::string generate;
  // "env": the variable NAME holds the value. "file": NAME_FILE names a file only the instance's
  // user may read (processes only). During a rotation's overlap, NAME_PREVIOUS (or
  // NAME_PREVIOUS_FILE) holds the value before it. Default: env
  std::string as = "env";
  // "file", "env" or "generated": where the value comes from.
  std::string source() const {
    return !from_file.empty() ? "file" : !from_env.empty() ? "env" : "generated";
  }
};

struct ServiceConfig {
  std::string name;                                   // [a-z0-9][a-z0-9._-]{0,62}; required
  std::vector<std::string> listen{"127.0.0.1:8080"};  // host:port, >= 1. Default: 127.0.0.1:8080
  std::vector<std::string> slots{"blue", "green"};    // unique, >= 2. Default: blue, green
  PlatformConfig platform;
  HealthConfig health;
  std::vector<SmokeTest> smoke_tests;      // Default: none
  Millis smoke_test_timeout{10000};        // default timeout of each smoke test. Default: 10s
  std::vector<PreDeployCheck> pre_deploy;  // Default: none
  std::vector<VerifyCheck> verify;         // after the switch, in the bake. Default: none
  bool manual_approval = false;  // wait for `turnout approve` before the switch. Default: false
  // After the switch: failing health on the new slot during this time switches back.
  Millis bake_time{60000};          // Default: 60s
  Millis scale_down_delay{300000};  // old slot stopped this long after success. Default: 5m
  RevisionsConfig revisions;
  std::vector<HookConfig> hooks;  // Default: none
  RouterOptions router;
  std::string state_dir = ".turnout";  // Default: .turnout (beside turnout.yaml)

  // How a new version gets traffic: all at once after the checks (blue_green), in judged
  // steps (canary), or by replacing the serving instances one at a time in place (rolling;
  // needs `platform.ports: auto`). Default: blue_green
  std::string strategy = "blue_green";
  CanaryConfig canary;  // only with strategy: canary (the key is refused otherwise)
  // Rollback and alert rules, evaluated every analysis_interval during canary steps and the bake
  // time. Each expression was parsed with judge::MakeRule at load (a typo is a turnout.yaml:LINE
  // error); `dependency X` names a dependency below, `metric X` a prometheus query.
  // Keys of an item: name, when, severity (warning|critical), min_samples,
  // on_insufficient_data (wait|pass|fail), window. Default: none
  std::vector<judge::RuleConfig> rules;
  Millis analysis_interval{1000};              // 100ms .. 1m. Default: 1s
  std::vector<DependencyConfig> dependencies;  // Default: none
  PrometheusConfig prometheus;
  SloConfig slo;
  DatabaseConfig database;  // Default: none
  MaintenanceConfig maintenance;
  std::vector<SecretConfig> secrets;  // in file order. Default: none
};

// Reads and validates a file. IoError when it cannot be read; InvalidArgument (all problems,
// one per line, each prefixed with "<path>:<line>: ") when its content is wrong.
Result<ServiceConfig> LoadServiceConfig(const std::string& path);

// The same for text in memory; `file_name` only prefixes the messages.
Result<ServiceConfig> ParseServiceConfig(std::string_view yaml_text, std::string_view file_name);

// The canonical text of a config: every field, in a fixed order, defaults included, so two
// files that mean the same thing (key order, comments, defaults spelled out or not) have the
// same text. Stable across releases unless a field is added.
std::string CanonicalServiceConfig(const ServiceConfig& config);

// SHA-256 of CanonicalServiceConfig, 64 lowercase hex digits. Recorded with every revision.
std::string ConfigHash(const ServiceConfig& config);

// The commented example `turnout init` writes (for the demo app, turnout-demo-app). It parses
// and validates; every key is explained.
std::string ExampleServiceConfig();

}  // namespace turnout::service
