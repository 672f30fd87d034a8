#!/usr/bin/env bash
# The README's main command: turnout deploying the demo service end to end.
#
#   ./scripts/demo.sh             install dependencies, build (release), run the demo (~1.5 min)
#   ./scripts/demo.sh --no-build  run against an existing release build
#   ./scripts/demo.sh containers [--no-build]   the same story with container images
#                                 (scripts/demo-containers.sh)
#
# The story: turnoutd starts for the demo service; v1 is deployed; v2 is deployed under live
# traffic (0 failed requests); status and history; v3 fails its readiness check and never gets
# a request; a rollback redeploys v1 under live traffic; then canary releases: v4 is promoted step
# by step, v5 (20 % errors) is rolled back by the judge. Everything runs on free loopback ports in
# a temporary directory; on exit the demo stops what it started (the app instances with
# `turnout down --stop-instances`, the load generator by pid). Works without a terminal
# (CI=true). Exit status 0 when every step did what the story says.
set -euo pipefail
cd "$(dirname "$0")/.."
source demo/lib.sh

containers=0
if [[ "${1:-}" == "containers" ]]; then
  containers=1
  shift
fi
build=1
[[ "${1:-}" == "--no-build" ]] && build=0
bin=${TURNOUT_BUILD_DIR:-build/release}

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

if [[ $build -eq 1 ]]; then
  say "installing dependencies (scripts/install-deps.sh)"
  ./scripts/install-deps.sh
  say "building (release preset)"
  cmake --preset release >/dev/null
  cmake --build --preset release --target turnout turnoutd turnout-demo-app turnout-load \
    turnout-container-test-app
fi

turnout=$(realpath "$bin/src/cli/turnout")
load=$(realpath "$bin/demo/turnout-load")
# The app: the demo app as a process, or the static test app inside the container images.
app=$bin/demo/turnout-demo-app
[[ $containers -eq 1 ]] && app=$bin/src/container/turnout-container-test-app
for b in "$turnout" "$app" "$load" "$bin/src/daemon/turnoutd"; do
  [[ -x $b ]] || die "$b is missing; build first (run without --no-build)"
done
app=$(realpath "$app")

if [[ $containers -eq 1 ]]; then
  source scripts/demo-containers.sh
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-demo.XXXXXX")
daemon_up=0
cleanup() {
  local status=$?
  stop_spawned
  if [[ $daemon_up -eq 1 ]]; then
    (cd "$work" && "$turnout" down --stop-instances >/dev/null 2>&1) || true
  fi
  finish_work "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(free_port)
cat >"$work/turnout.yaml" <<EOF
# The demo service: turnout-demo-app, one instance per slot, on ports the OS hands out. Like a
# small real service, it takes 3 to 5 ms to answer.
name: demo
listen: 127.0.0.1:$port
platform:
  command: $app --listen 127.0.0.1:{port} --version {version} --slot {slot} --latency 4ms --latency-jitter 1ms
  ports: auto
  grace_period: 5s
health:
  readiness: {path: /ready, interval: 250ms, timeout: 250ms, healthy_threshold: 2}
  ready_deadline: 5s
smoke_tests:
  - name: home-page
    path: /
  - name: reports-its-version
    path: /version
    expect: {json: {version: "{version}"}}
bake_time: 3s
scale_down_delay: 5s
router:
  admin: ""
EOF

say "the service definition ($work/turnout.yaml)"
grep -v '^#' "$work/turnout.yaml" | sed 's/^/    /'

say "starting turnoutd for the demo service"
run up
daemon_up=1

say "deploying v1 (nothing serves yet)"
run deploy v1 --wait

say "deploying v2 while 32 connections send requests as fast as they can"
load_start 32
run deploy v2 --wait
say "live traffic during the deployment (turnout-load)"
load_stop || die "requests failed while v2 was deployed"

say "status and history"
run status
run history

say "deploying v3+fail-ready: a version whose readiness check fails (the demo app reads faults"
echo "    from its version name); it must never receive a request"
load_start 32
if run deploy v3+fail-ready --wait; then
  die "v3 was deployed, but it never became ready"
fi
say "live traffic meanwhile: only v2 answered"
load_stop || die "requests failed while v3 was tried"
grep -q 'v3' "$work/load.out" && die "v3 received traffic"

say "rolling back: v2's old slot was scaled down, so v1 is redeployed and traffic switched"
load_start 32
run rollback --wait
say "live traffic during the rollback"
load_stop || die "requests failed during the rollback"

say "switching the service to canary releases, judged on the router's own per-version numbers"
cat >>"$work/turnout.yaml" <<EOF
strategy: canary
canary:
  steps:                         # after the last step: 100 %, then the bake
    - {weight: 10%, for: 5s}
    - {weight: 50%, for: 5s}
  warmup: 1s                     # new instances warm up before the judge compares them
  latency_tolerance: 10ms        # slower than stable's p95 by less than this is not slower: a
                                 # new process of the demo app (under the test suite's
                                 # sanitizers above all) answers a few ms slower at first
rules:                           # the runbook's triggers; critical ones roll back
  - when: error_rate > 5% for 2s
    min_samples: 20
  - when: p95 > 500ms for 2s
    min_samples: 20
EOF
echo "    (appended to turnout.yaml)"
tail -12 "$work/turnout.yaml" | sed 's/^/    /'

say "a healthy canary: v4 gets 10 %, then 50 % of the users; the judge may pass a step early"
load_start 32
run deploy v4 --wait
say "a canary that answers 20 % of its requests with 500: the judge rolls it back in seconds"
if run deploy v5+errors-20 --wait; then
  die "v5 was promoted, but it fails a fifth of its requests"
fi
say "live traffic during both canaries (v5's errors reached only its share of users, briefly)"
load_stop || true

say "history and the audit trail"
run history
run audit verify

say "stopping: the app instances, then turnoutd"
run down --stop-instances
daemon_up=0
echo
echo "demo: v1 -> v2 under load with 0 failed requests; v3 (not ready) never served; rollback to"
echo "v1; canary v4 promoted; canary v5 (20 % errors) rolled back by the judge."
