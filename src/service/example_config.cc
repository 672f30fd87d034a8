// The text `turnout init` writes. Kept in its own file so the reference text is easy to review;
// service_config_test.cc proves it parses and validates.

#include "service/service_config.h"

namespace turnout::service {

std::string ExampleServiceConfig() {
  return R"yaml(# turnout.yaml - the service definition read by turnoutd (`turnout up`).
# Durations are a whole number and a unit: 500ms, 30s, 5m, 1h (slo.period also takes 30d).
# Relative paths are relative to the directory that holds this file.
# Full reference: docs/turnout-yaml.md

# The service's name: lowercase letters, digits, '.', '_', '-'. Required.
name: demo

# Where the public router accepts user traffic (one address or a list). Default: 127.0.0.1:8080
listen: 127.0.0.1:8080

# The slots versions are deployed into; one serves while another receives the next version.
# At least two, unique. Default: [blue, green]
slots: [blue, green]

platform:
  # How instances run: process (local processes) or container (below). Default: process
  type: process
  # How to start one instance. Required; must contain {port}. Placeholders:
  #   {version} the version being deployed   {port} the port this instance must listen on
  #   {slot}    blue / green                 {instance} replica index, 0..replicas-1
  # Split into words like a shell would; there is no shell unless you run one (sh -c '...').
  command: turnout-demo-app --listen 127.0.0.1:{port} --version {version} --slot {slot}
  # Working directory of the instances. Default: the directory of this file.
  working_dir: .
  # Extra environment variables. turnout also sets TURNOUT_VERSION, TURNOUT_SLOT,
  # TURNOUT_PORT and TURNOUT_INSTANCE. Default: none
  env:
    DEMO_GREETING: hello
  # Instances per slot, 1..64. Default: 1
  replicas: 1
  # Sent to stop an instance; SIGKILL follows after grace_period. Default: SIGTERM
  stop_signal: SIGTERM
  # Default: 10s
  grace_period: 10s
  # Ports handed to instances: a range (20000-20999) or a base port (20000 = the next 1000).
  # Default: 20000-20999
  ports: 20000-20999
  # With type: container, instances are containers of Docker or Podman (docs/containers.md)
  # and command, working_dir and ports give way to these keys (env, replicas, stop_signal and
  # grace_period stay):
  # engine: unix:///run/podman/podman.sock  # Default: $DOCKER_HOST, then the usual sockets
  # image: registry.example/shop:{version}  # required; the deployment records its image ID
  # port: 8080             # the app's port inside the container; required with bridge
  # network: host          # host (the app listens on $PORT) or bridge. Default: host
  # command: [/app/server] # replaces the image's entrypoint. Default: the image's
  # args: [--verbose]      # replaces the image's command. Default: the image's
  # env_file: .env         # KEY=VALUE lines, read before env. Default: none
  # mounts: ["./data:/data:ro"]  # source:target[:ro]. Default: none
  # memory: 512m           # k, m, g. Default: no limit
  # cpus: 1.5              # Default: no limit
  # user: "1000:1000"      # Default: the image's
  # pull: if_not_present   # always, if_not_present or never. Default: if_not_present
  # ulimits: {nofile: 1024, nproc: "4096:8192"}  # both or neither. Default: the engine's

health:
  # Decides when a new instance may get traffic (any 2xx answer is a success).
  readiness:
    path: /ready            # Default: /ready
    interval: 1s            # Default: 1s
    timeout: 500ms          # at most interval. Default: 500ms
    healthy_threshold: 2    # successes in a row to be ready. Default: 2
    unhealthy_threshold: 3  # failures in a row to be not ready. Default: 3
  # Watches running instances; during bake_time a failing new slot is switched back.
  liveness:
    path: /live             # Default: /live
    interval: 5s            # Default: 5s
    timeout: 1s             # Default: 1s
    healthy_threshold: 1    # Default: 1
    unhealthy_threshold: 3  # Default: 3
  # A new slot not ready this long after launch fails the deployment; users never see it.
  # Default: 60s
  ready_deadline: 60s

# Default timeout of each smoke test. Default: 10s
smoke_test_timeout: 10s

# Run against the new slot before the switch, through the router's override header, so they
# take the real path users will take. Every one must pass. Default: none
smoke_tests:
  # An HTTP check: method (Default: GET), path, headers, body, and what to expect.
  - name: home-page
    method: GET
    path: /
    headers:
      Accept: text/plain
    # body: ""                   # request body. Default: empty
    expect:
      status: 200                # Default: 200
      body_contains: demo        # substring of the body. Default: not checked
  - name: version-reported
    path: /version
    expect:                      # {version} in expected values is replaced
      json:                      # JSON field path -> expected value. Default: none
        version: "{version}"
    timeout: 5s                  # Default: smoke_test_timeout
  # A command check: exit status 0 passes. {url} is the router's public base URL
  # (http://127.0.0.1:8080); send the override header yourself to reach the new slot.
  # {version} and {slot} are replaced too.
  - name: curl-live
    command: >-
      sh -c 'curl -fsS -H "X-Turnout-Slot: {slot}" {url}/live'

# Checks a machine can verify before anything starts: commands that must exit 0
# ({version} is replaced). Default: none
pre_deploy:
  - name: demo-app-installed
    command: sh -c 'command -v turnout-demo-app'
    timeout: 10s               # Default: 60s

# After the switch, at the start of bake_time: checks of the version that now serves, through
# the router ({url}: its public base URL). A failing one switches traffic back. A performance
# check replays a request mix and compares p50/p95/p99 with the last succeeded revision's
# result of the same mix (none yet: it is recorded and passes). Default: none
# verify:
#   - name: functional
#     run: sh -c 'curl -fsS {url}/live'    # exit status 0 passes; {version} is replaced too
#     timeout: 60s                         # Default: 60s
#   - name: latency
#     performance:
#       requests: 500                      # 1..100000. Default: 500
#       concurrency: 4                     # connections at once, 1..64. Default: 4
#       paths:                             # the mix: weight of every sum-of-weights requests
#         - {path: /, method: GET, weight: 3}
#         - {path: /live, weight: 1}       # Default: method GET, weight 1
#       tolerance: {p50: 20%, p95: 25%, p99: 50%, min_ms: 5ms}   # the defaults: slower than
#                                          # baseline by more than both fails
#     timeout: 60s                         # all the requests. Default: 60s

# true: the deployment waits before the switch until someone runs `turnout approve`.
# Default: false
manual_approval: false

# After the switch the new slot is watched this long; failing liveness switches traffic back
# at once. Default: 60s
bake_time: 60s

# The old slot keeps running this long after success, as the instant rollback target, then it
# is stopped. Default: 5m
scale_down_delay: 5m

revisions:
  # Old revisions kept running (rollback in milliseconds), 0..5. Default: 1
  warm: 1
  # Revisions whose records are kept for `turnout rollback --to N`, >= warm. Default: 10
  on_disk: 10

# How a new version gets traffic. blue_green: all of it at once, after the checks above.
# canary: in steps, each judged against the stable version (below). Default: blue_green
strategy: blue_green

# With strategy: canary, the steps and the judge (the defaults are shown). After the last step
# the canary gets all traffic; the bake time and the rules still apply.
# canary:
#   steps:                       # weight: share of traffic (sticky per client), in order.
#     - {weight: 5%, for: 5m}    # Default: 5% for 5m, 25% for 10m, 50% for 10m
#     - {weight: 25%, for: 10m}
#     - {weight: 50%, for: 10m}
#   alpha: 0.05                  # chance of a wrong early call per step. Default: 0.05
#   error_margin: 1%             # tolerated error-rate excess, in points. Default: 1%
#   error_relative_margin: 50%   # ... plus this share of the stable error rate. Default: 50%
#   latency: true                # compare latency distributions too. Default: true
#   latency_percentile: 95       # share of requests slower than stable's p95. Default: 95
#   latency_margin: 5%           # tolerated excess of that share, in points. Default: 5%
#   latency_relative_margin: 0%  # ... plus this share of stable's. Default: 0%
#   latency_tolerance: 2ms       # slower than stable p95 by less than this is not slow. 2ms
#   warmup: 10s                  # the first step's start is not judged (cold caches). 0s
#   min_requests: 100            # per slot before a step may pass. Default: 100
#   max_step_time: 10m           # an undecided step ends then. Default: 10m
#   end_policy: promote          # what an undecided step with enough data does. Default: promote

# Rules are checked every analysis_interval while a canary step runs and during bake_time.
# critical rolls back, warning notifies (hook event "warning"). Statistics: error_rate, p50,
# p90, p95, p99, p999, mean_latency, request_rate; "baseline" is the stable slot's value.
# Too little traffic (min_samples requests in the window) is "insufficient data", and
# on_insufficient_data decides: wait, pass or fail. Default: none
rules:
  - name: errors
    when: error_rate > 5% for 2m
    severity: critical           # warning | critical. Default: critical
    min_samples: 50              # requests in the window. Default: 50
    on_insufficient_data: wait   # wait | pass | fail. Default: wait
    window: 2m                   # 1s..2m. Default: the `for` duration (>= analysis_interval)
  - name: slow
    when: p95 > 2s for 5m
  - name: slower-than-stable
    when: p99 > baseline * 1.5 for 1m
    severity: warning
  - name: unhealthy
    when: health failing for 30s
  # - name: database
  #   when: dependency postgres unavailable for 10s
  # - when: metric db_connections > 90 for 1m
  #   severity: warning

# How often rules are checked, 100ms..1m. Default: 1s
analysis_interval: 1s

# Services the app depends on, checked in the background; rules name them
# (dependency NAME unavailable for 10s). Each has one of tcp, http, postgres, command.
# Default: none
# dependencies:
#   - name: postgres
#     postgres: postgresql://app@127.0.0.1:5432/shop   # connect + SELECT 1
#     interval: 5s               # Default: 5s
#     timeout: 2s                # at most interval. Default: 2s
#   - name: payments
#     http: http://127.0.0.1:9000/health               # any 2xx or 3xx is up
#   - name: cache
#     tcp: 127.0.0.1:6379                              # a TCP connect
#   - name: disk
#     command: sh -c 'test "$(df --output=pcent / | tail -1 | tr -dc 0-9)" -lt 95'

# A Prometheus server for `metric NAME` rules: NAME is a PromQL query below. Default: not used
# prometheus:
#   url: http://127.0.0.1:9090
#   timeout: 5s                  # per attempt. Default: 5s
#   retries: 2                   # 0..10. Default: 2
#   queries:
#     db_connections: sum(pg_stat_activity_count{datname="shop"})

# Service level objectives, shown by `turnout slo` with the error budget left. Default: none
slo:
  availability: 99.95%           # share of requests that are not errors
  latency:                       # share of requests faster than threshold
    threshold: 100ms
    target: 95%
  period: 30d                    # units ms s m h d. Default: 30d

# The PostgreSQL side of each deployment: a verified backup and the expand migrations before
# the new version starts, the contract migrations once the old slot is retired, and on rollback
# the ladder (expand-only: keep; else the down migrations; else the restore command to run by
# hand). Default: none
# database:
#   url_env: DATABASE_URL        # the variable holding the URL (or url: postgresql://...)
#   migrations: migrations       # NNNN_name.up.sql / .down.sql. Default: migrations
#   backups: .turnout/backups    # Default: <state_dir>/backups
#   verify_level: 2              # 1 hashes, 2 + full decode, 3 + restore and compare. Default: 2
#   format: directory            # or custom. Default: directory
#   jobs: 2                      # pg_dump / pg_restore -j. Default: 1
#   lock_timeout: 5s             # per migration statement. Default: 5s
#   rehearse: true               # rehearse on a restored copy first. Default: false
#   lock_budget: 1s              # rehearsal: longest write-blocking lock allowed. Default: 1s
#   # Or migrate with the app's own tool (run in the new version's directory and environment,
#   # with DATABASE_URL), still after a verified backup; turnout fingerprints the schema around
#   # each command and records which tables changed and whether destructively:
#   tool: command                # sql (the files of migrations) or command. Default: sql
#   up: ./bin/migrate up         # applies the pending migrations ({version}: the version)
#   status: ./bin/migrate status # prints the version the schema is at (its last line counts)
#   down: ./bin/migrate down {to} # back to a version status printed. Default: none (restore)
#   tool_timeout: 10m            # each command's deadline. Default: 10m

# Told about deployment events; a hook never blocks or fails a deployment. Events:
# deploy_started pre_checks_passed awaiting_approval ready smoke_passed switched succeeded
# rolled_back failed aborted canary_step_passed paused resumed promoted warning, or "*" for
# all. Default: none
hooks:
  # A command: {event} {service} {version} {slot} {revision} are replaced. timeout Default: 30s
  - on: [succeeded, rolled_back, failed]
    command: sh -c 'echo "{service} {version} {event}" >> deployments.log'
    timeout: 30s
  # A webhook: POSTs Slack-compatible JSON ({"text": "..."} plus the event's details).
  # - on: ["*"]
  #   webhook:
  #     url: https://hooks.slack.com/services/T000/B000/XXXX   # http:// or https://
  #     retries: 3      # extra attempts after a failure, 0..10. Default: 3
  #     timeout: 5s     # per attempt. Default: 5s

router:
  # turnoutd runs the router as a process of its own, which keeps serving while turnoutd is
  # down or restarting. A TCP address for its admin API (policy, health, metrics). Default: ""
  # (no TCP listener: the admin API is the Unix socket <state_dir>/router.sock, mode 0600)
  admin: ""
  # Bearer token of the admin API. Default: "" (turnoutd generates one into
  # <state_dir>/router-admin.token, mode 0600); sent as is to an external router
  admin_token: ""
  # The admin address of a standalone `turnout router` to drive instead of running one.
  # Default: "" (turnoutd runs it)
  # external: 127.0.0.1:9901
  # Header that sends a request to a named slot (smoke tests use it). Default: X-Turnout-Slot
  override_header: X-Turnout-Slot
  # The override only counts with X-Turnout-Secret: <secret>. Default: "" (turnoutd generates
  # one into <state_dir>/override.secret, mode 0600; smoke tests send it)
  override_secret: ""
  # Router worker threads; 0 = one per core. Default: 0
  workers: 0
  # One line per request (JSON or logfmt), read back with `turnout logs --access`; no header is
  # logged. Default: none. sample: share of 2xx/3xx logged (errors always); max_size/keep: rotation
  # access_log: {path: /var/log/shop/access.log, format: json, sample: 1, include_query: false,
  #              max_size: 100m, keep: 5}
  # A new W3C traceparent for requests without a valid one (a valid one is always passed on).
  # Default: false
  # trace: {generate: false}

# Where turnoutd keeps its database, logs and audit trail. Default: .turnout
state_dir: .turnout

# What users get while the service is in maintenance (`turnout maintenance on`): the router
# answers every request itself with 503, Retry-After and this page, never a connection error.
# maintenance:
#   retry_after: 30s       # 1s..24h, sent in seconds. Default: 30s
#   page: maintenance.html # relative to this file, at most 64 KiB. Default: a short built-in page
#   content_type: text/html; charset=utf-8   # of the page. Default: text/html; charset=utf-8

# Values the app gets that must never be written here, logged or shown: turnoutd reads each one
# at deploy time and records only a keyed fingerprint. `turnout secrets rotate NAME` rolls out a
# new value and keeps the old one in NAME_PREVIOUS for an overlap window. Default: none
# secrets:
#   JWT_SIGNING_KEY: {generate: hex32}                    # turnoutd makes and keeps it
#   DB_PASSWORD: {from_file: secrets/db.password, as: file} # 0600 file; the app reads
#                                                           # DB_PASSWORD_FILE. as Default: env
#   STRIPE_KEY: {from_env: STRIPE_KEY}                    # from turnoutd's environment
)yaml";
}

}  // namespace turnout::service
