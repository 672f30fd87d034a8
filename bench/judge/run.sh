#!/usr/bin/env bash
# Benchmarks of turnout's judgement from data: how fast a bad version loses its traffic, and how
# often a good one is rolled back for nothing.
#
#   bench/judge/run.sh             build (release), run every scenario (~11 min)
#   bench/judge/run.sh --quick     2 runs per fault scenario, 10 healthy canaries (~4 min)
#   bench/judge/run.sh --no-build  use an existing release build
#   The build directory is $TURNOUT_BUILD_DIR (default build/release), as for bench/run.sh.
#   Only some scenarios: JUDGE_PARTS="errors latency health healthy" (any subset; the diagnostic
#   part healthy-nolatency runs the healthy canaries without the judge's latency test);
#   runs per fault scenario: JUDGE_RUNS (default 5), healthy canaries: JUDGE_HEALTHY (default 50).
#   A loaded machine: JUDGE_STRESS=N starts N busy loops (niced by JUDGE_STRESS_NICE, default 5,
#   like a parallel build) for the whole run and stops them by pid at the end. Each rollback of a
#   healthy canary prints the judge's evidence (healthy-evidence.txt in the results).
#
# Scenarios (the turnout.yaml of each is written below; results: docs/BENCHMARKS.md):
#   errors   a canary (v2+errors-10: 10 % of its answers are 500s) at 10 % of 1,000 req/s;
#            rule `error_rate > 5% for 2s`. Three variants: the rule alone (the canary judge
#            made unable to decide), the same evaluated every 250 ms instead of every second,
#            and the rule with the canary judge at its defaults.
#   latency  a canary (v2+slow-300ms); rule `p95 > 100ms for 2s`; alone and with the judge.
#   health   blue/green: after the switch, during the bake, the new instance starts failing its
#            readiness check (POST /admin/fault?fail-ready=1); the engine's bake check and the
#            rule `health failing for 2s` watch it.
#   healthy  canaries identical to the stable version (10 % for 3s, 50 % for 3s, then the bake)
#            with the judge at its defaults and all the rules above: every rollback is false.
#   for      (not in the default parts: JUDGE_PARTS=for) time to roll back against the rule's
#            `for`: a canary (v2+errors-10) at 50 % with `error_rate > 5% for F` (F = 2s, 5s,
#            10s; its window follows `for`; min_samples 10) and the canary judge unable to
#            decide, under 25, 250 and 2,500 req/s; JUDGE_FOR_RUNS runs each (default 3).
#
# Times come from the deployment's own transitions (turnoutd's wall clock, ms): from `canary`
# (recorded just before the canary's weight is applied; for health: from the fault request) to `rolling_back` (the
# decision; the router is switched back in the engine's next step) and to `rolled_back` (the
# new slot drained and stopped). turnout-load's per-version counts (every second, time-stamped
# here) check that the canary got no answer later than 1 s after `rolling_back`.
#
# Everything runs on loopback ports that are free at the time, in a temporary directory. The
# script stops only what it started: each turnoutd with `turnout down --stop-instances`, the
# load generator by pid. Raw files go to bench/results/judge-<UTC time>/ (gitignored); the
# markdown summary goes to stdout and summary.md there.
set -euo pipefail
cd "$(dirname "$0")/../.."
source demo/lib.sh

bench_args "usage: bench/judge/run.sh [--quick] [--no-build]" "$@"
parts=${JUDGE_PARTS:-errors latency health healthy}
if [[ $quick -eq 1 ]]; then
  runs=${JUDGE_RUNS:-2} healthy_runs=${JUDGE_HEALTHY:-10}
else
  runs=${JUDGE_RUNS:-5} healthy_runs=${JUDGE_HEALTHY:-50}
fi
stress=${JUDGE_STRESS:-0}
stress_nice=${JUDGE_STRESS_NICE:-5}
rate=1000         # requests per second of the load, in total
rule_window=3     # seconds: the rules' window, and the pause between two fault runs (below)

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench/judge: %s\n' "$*" >&2; exit 1; }

bin=${TURNOUT_BUILD_DIR:-build/release}
if [[ $build -eq 1 ]]; then
  say "building turnout (release) in $bin"
  if [[ $bin == build/release ]]; then
    cmake --preset release >/dev/null
  else
    cmake -S . -B "$bin" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$bin" --target turnout turnoutd turnout-demo-app turnout-load >&2
fi
turnout=$(realpath "$bin/src/cli/turnout")
app=$(realpath "$bin/demo/turnout-demo-app")
load=$(realpath "$bin/demo/turnout-load")
for b in "$turnout" "$app" "$load" "$bin/src/daemon/turnoutd"; do
  [[ -x $b ]] || die "$b is missing; build first (run without --no-build)"
done
for tool in curl jq ss awk; do
  command -v "$tool" >/dev/null || die "$tool is missing; run scripts/install-deps.sh --bench"
done

results=bench/results/judge-$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$results"
results=$(realpath "$results")
work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-judge.XXXXXX")
up_dirs=()
load_pid=""
# stop_service DIR : stops DIR's turnoutd and its app instances. `turnout down` refuses while a
# deployment runs (an interrupted run), so one is aborted first and given up to 30 s to end.
stop_service() {
  local deadline=$((SECONDS + 30))
  (cd "$1" && "$turnout" abort >/dev/null 2>&1) || true
  until (cd "$1" && "$turnout" down --stop-instances >/dev/null 2>&1); do
    if ((SECONDS >= deadline)); then
      echo "bench/judge: turnoutd in $1 did not stop; see $1/.turnout/turnoutd.log" >&2
      return 1
    fi
    sleep 0.2
  done
}
cleanup() {
  local d
  if [[ -n $load_pid ]]; then stop_pid "$load_pid" 5; fi
  stop_spawned
  for d in "${up_dirs[@]}"; do stop_service "$d" || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The busy loops of JUDGE_STRESS: spawned, so cleanup (stop_spawned) stops them by pid.
for ((i = 0; i < stress; i++)); do
  spawn /dev/null nice -n "$stress_nice" sh -c 'while :; do :; done'
done

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"
  echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "turnout: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) (release build)"
  echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "busy loops: $stress (nice $stress_nice)"
} >"$results/machine.txt"
cat "$results/machine.txt" >&2

summary=$results/summary.md
out() { printf '%s\n' "$*" | tee -a "$summary"; }

# --- helpers ------------------------------------------------------------------------------------

# The ISO time turnoutd writes ("2026-11-22T08:11:38.937Z") as epoch seconds with milliseconds.
jq_defs='def ts: (.[0:19] + "Z" | fromdateiso8601) + ((.[20:23] | tonumber) / 1000);'

# api DIR PATH [curl args...] : turnoutd's API on DIR's socket.
api() {
  local dir=$1 path=$2
  shift 2
  curl -sS --max-time 5 --unix-socket "$dir/.turnout/turnoutd.sock" "$@" "http://turnoutd$path"
}

# deployment_state DIR ID
deployment_state() { api "$1" "/v1/deployments/$2" | jq -r '.deployment.state'; }

# wait_state DIR ID TIMEOUT STATE... : waits until the deployment is in one of the STATEs;
# prints it. Fails (printing the state it was in) after TIMEOUT seconds.
wait_state() {
  local dir=$1 id=$2 deadline=$((SECONDS + $3)) s
  shift 3
  while true; do
    s=$(deployment_state "$dir" "$id" 2>/dev/null || echo "?")
    local want
    for want in "$@"; do
      if [[ $s == "$want" ]]; then
        echo "$s"
        return 0
      fi
    done
    if ((SECONDS >= deadline)); then
      echo "$s"
      return 1
    fi
    sleep 0.05
  done
}

# An ended deployment, whatever the outcome.
ended_states=(rolled_back failed succeeded aborted scaling_down)

# Starts turnoutd for a turnout.yaml in DIR and deploys v1 there.
service_up() {
  local dir=$1
  (cd "$dir" && "$turnout" up >"$dir/up.log" 2>&1) || { cat "$dir/up.log" >&2; die "turnout up failed"; }
  up_dirs+=("$dir")
  (cd "$dir" && "$turnout" deploy v1 --wait >"$dir/v1.log" 2>&1) ||
    { cat "$dir/v1.log" >&2; die "v1 was not deployed"; }
}

service_down() {
  local dir=$1 keep=() d
  stop_service "$dir" || true
  for d in "${up_dirs[@]}"; do [[ $d == "$dir" ]] || keep+=("$d"); done
  up_dirs=("${keep[@]}")
}

# load_start DIR PORT SECONDS CONNECTIONS : turnout-load at $rate req/s, per-version counts
# printed every second on stderr; each line is stamped here with the wall clock (epoch seconds).
load_start() {
  local dir=$1 port=$2 seconds=$3 conns=$4
  "$load" --url "http://127.0.0.1:$port/" --rate "$rate" --connections "$conns" \
    --duration "${seconds}s" --by-header X-Version --progress --json >"$dir/load.json" \
    2> >(while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done \
      >"$dir/load-progress.log") &
  load_pid=$!
}

# load_stop : SIGINT (requests in flight finish), then the result is in load.json.
load_stop() {
  kill -INT "$load_pid" 2>/dev/null || true
  wait "$load_pid" || true
  load_pid=""
  sleep 0.2  # the time-stamping reader writes out the last progress line
}

# progress_at FILE KEY EPOCH : KEY's count (a version, "fail" or "2xx") in the first progress line
# stamped at or after EPOCH; "NA" when the load had ended by then.
progress_at() {
  awk -v key="$2" -v t="$3" '
    $2 ~ /^t=/ && $1 >= t {
      n = 0
      for (i = 3; i <= NF; i++) {
        eq = index($i, "=")
        if (substr($i, 1, eq - 1) == key) n = substr($i, eq + 1)
      }
      print n
      found = 1
      exit
    }
    END { if (!found) print "NA" }' "$1"
}

# progress_before FILE KEY EPOCH : KEY's count in the last progress line stamped before EPOCH.
progress_before() {
  awk -v key="$2" -v t="$3" '
    $2 ~ /^t=/ && $1 < t {
      n = 0
      for (i = 3; i <= NF; i++) {
        eq = index($i, "=")
        if (substr($i, 1, eq - 1) == key) n = substr($i, eq + 1)
      }
      last = n
    }
    END { print (last == "" ? 0 : last) }' "$1"
}

# stats : numbers on stdin -> "min / median / max" (3 decimals); "-" when none.
stats() {
  sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2f / %.2f / %.2f\n", v[1], m, v[NR] }'
}

# --- turnout.yaml ---------------------------------------------------------------------------------

# write_config DIR PORT STRATEGY_AND_RULES [ANALYSIS_INTERVAL] : the demo app, one instance per
# slot, fast probes. The smoke test asks /version, which the demo app's faults never touch: a
# bad version must reach its canary (a smoke test on / fails 10 % of errors-10 versions).
write_config() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  cat >"$dir/turnout.yaml" <<EOF
name: judgebench
listen: 127.0.0.1:$port
platform:
  command: $app --listen 127.0.0.1:{port} --version {version} --slot {slot}
  ports: auto
  grace_period: 5s
health:
  readiness: {path: /ready, interval: 250ms, timeout: 250ms, healthy_threshold: 2, unhealthy_threshold: 3}
  ready_deadline: 5s
smoke_tests:
  - name: reports-its-version
    path: /version
    expect: {json: {version: "{version}"}}
scale_down_delay: 1s
router:
  admin: ""
analysis_interval: ${4:-1s}
$3
EOF
}

error_rule="  - {when: error_rate > 5% for 2s, window: ${rule_window}s}"
latency_rule="  - {when: p95 > 100ms for 2s, window: ${rule_window}s}"
health_rule="  - {when: health failing for 2s}"

# The canary judge can roll back at any sample size but promote only with min_requests per slot:
# an unreachable min_requests, a wide error margin and no latency test leave the decision to the
# rules (the step is long enough that it never ends by time during a run).
judge_off="  error_margin: 50%
  latency: false
  min_requests: 100000000"

canary_fault_config() {  # RULE JUDGE(off|default)
  local extra=""
  [[ $2 == off ]] && extra=$judge_off
  cat <<EOF
bake_time: 1s
strategy: canary
canary:
  steps:
    - {weight: 10%, for: 60s}
$extra
rules:
$1
EOF
}

# --- fault scenarios --------------------------------------------------------------------------------

rows=()  # markdown table rows of the fault scenarios

# fault_run KIND DIR VERSION : one deployment of a bad version; sets run_file (its record) and
# run_start (epoch seconds the clock starts at), or fails with a message.
#   canary  the version is bad from its start; the clock starts at its `canary` transition.
#   bake    a healthy version; one second into the bake its instance starts failing readiness;
#           the clock starts just before the fault is injected.
fault_run() {
  local kind=$1 dir=$2 version=$3 id state slot address
  id=$(cd "$dir" && "$turnout" deploy "$version" --json | jq -r '.deployment.id')
  run_start=""
  if [[ $kind == bake ]]; then
    state=$(wait_state "$dir" "$id" 60 baking "${ended_states[@]}") ||
      die "deployment $id of $version still $state after 60 s"
    [[ $state == baking ]] || die "deployment $id of $version ended $state before the bake"
    sleep 1  # a second of the new version serving everything
    slot=$(api "$dir" "/v1/deployments/$id" | jq -r '.deployment.target_slot')
    address=$(api "$dir" /v1/status |
      jq -r --arg s "$slot" '.router.slots[] | select(.name == $s) | .instances[0].address')
    run_start=$EPOCHREALTIME
    curl -fsS --max-time 5 -X POST "http://$address/admin/fault?fail-ready=1" >/dev/null ||
      die "the fault could not be injected at $address"
  fi
  state=$(wait_state "$dir" "$id" 60 "${ended_states[@]}") ||
    die "deployment $id of $version still $state after 60 s"
  run_file=$dir/deployment-$id.json
  api "$dir" "/v1/deployments/$id" >"$run_file"
  if [[ $kind == canary ]]; then
    run_start=$(transition_time "$run_file" canary)
  fi
}

# transition_time FILE STATE : epoch seconds of the deployment's first transition into STATE
# (empty when it never got there).
transition_time() {
  jq -r --arg s "$2" "$jq_defs"' [.transitions[] | select(.to == $s)][0].at // "" |
    if . == "" then "" else ts end' "$1"
}

minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# fault_scenario NAME TITLE KIND FAULT GOAL_SECONDS CONNECTIONS CONFIG [ANALYSIS_INTERVAL]
# Runs $runs deployments of v2.<i>[+FAULT] (see fault_run) under the load, one after the other.
fault_scenario() {
  local name=$1 title=$2 kind=$3 fault=$4 goal=$5 conns=$6 config=$7 interval=${8:-1s}
  local dir=$work/$name port i
  port=$(free_port)
  write_config "$dir" "$port" "$config" "$interval"
  say "$title: $runs runs"
  service_up "$dir"
  load_start "$dir" "$port" $((runs * 40 + 30)) "$conns"
  sleep 1  # the first second of load only on v1 (a baseline line in the progress log)
  local decide=() done_t=() reasons=() meta=()
  for ((i = 1; i <= runs; i++)); do
    local version="v2.$i${fault:++$fault}" t_rb t_done reason state
    fault_run "$kind" "$dir" "$version"
    cp "$run_file" "$results/$name-run$i.json"
    state=$(jq -r '.deployment.state' "$run_file")
    if [[ $state != rolled_back || -z $run_start ]]; then
      reason=$(jq -r '.deployment.reason' "$run_file")
      echo "$name run $i: ended $state without being measured: $reason" >&2
      reasons+=("run $i: not measured, $state: $reason")
      continue
    fi
    t_rb=$(transition_time "$run_file" rolling_back)
    t_done=$(transition_time "$run_file" rolled_back)
    reason=$(jq -r '[.transitions[] | select(.to == "rolling_back")][0].reason' "$run_file")
    decide+=("$(minus "$t_rb" "$run_start")")
    done_t+=("$(minus "$t_done" "$run_start")")
    reasons+=("run $i: ${decide[-1]} s: $reason")
    echo "$name run $i: rolling_back after ${decide[-1]} s, rolled_back after ${done_t[-1]} s" >&2
    echo "  $reason" >&2
    meta+=("$version $run_start $t_rb $t_done")
    # The next canary goes to the same slot: its rules' window must not hold this one's requests.
    [[ $kind == canary ]] && sleep "$rule_window"
  done
  sleep 2  # two more progress lines after the last rollback
  load_stop
  local progress=$dir/load-progress.log
  cp "$dir/load.json" "$results/$name-load.json"
  cp "$progress" "$results/$name-load-progress.log"
  # The bad version's count 1 s after the decision must be its final count; failed requests are
  # counted from the last progress line before the clock started to the first 1 s after the end.
  local m verified=0 after=() answers=0 failed=0
  for m in "${meta[@]}"; do
    local version t0 t_rb t_done at final fail0 fail1
    read -r version t0 t_rb t_done <<<"$m"
    at=$(progress_at "$progress" "$version" "$(minus "$t_rb" -1)")
    final=$(jq -r --arg v "$version" '.by_header.values[$v] // 0' "$dir/load.json")
    answers=$((answers + final))
    if [[ $at == NA ]]; then
      after+=("NA")
    else
      after+=("$((final - at))")
      if ((final == at)); then verified=$((verified + 1)); fi
    fi
    fail0=$(progress_before "$progress" fail "$t0")
    fail1=$(progress_at "$progress" fail "$(minus "$t_done" -1)")
    [[ $fail1 == NA ]] || failed=$((failed + fail1 - fail0))
  done
  service_down "$dir"
  local n=${#decide[@]} met
  met=$(printf '%s\n' "${decide[@]}" | awk -v g="$goal" 'NF && $1 <= g { n++ } END { print n + 0 }')
  rows+=("| $title | $n/$runs | $(printf '%s\n' "${decide[@]}" | stats) | $(printf '%s\n' "${done_t[@]}" | stats) | $met of $n within $goal s | $verified of $n (${after[*]}) | $answers | $failed |")
  {
    echo "#### $title"
    printf -- '- %s\n' "${reasons[@]}"
    echo
  } >>"$results/reasons.md"
}

# --- healthy canaries -------------------------------------------------------------------------------

# judge_evidence FILE : the canary judge's evidence of each rollback verdict in a deployment's
# record: step, sample sizes, quantiles (whole request and upstream), the latency test.
judge_evidence() {
  jq -r '.steps[] | select(.detail.verdict == "rollback") | .step as $s | .detail.evidence.judge
    | select(. != null)
    | def ms: (. / 1000 * 1000 | round / 1000 | tostring) + "ms";
      def slot($n): "\($n) n=\(.requests) p50=\(.p50_us | ms) p95=\(.p95_us | ms) p99=\(.p99_us | ms) mean=\(.mean_us | ms) upstream p50=\(.upstream_p50_us // 0 | ms) p95=\(.upstream_p95_us // 0 | ms) mean=\(.upstream_mean_us // 0 | ms)";
    "  evidence \($s) at \(.elapsed_ms)ms: threshold \((.latency_threshold_us // 0) | ms)\n    \(.canary | slot("canary"))\n    \(.stable | slot("stable"))\n    latency test: canary \(.latency.canary_x // "-")/\(.latency.canary_n // "-") stable \(.latency.stable_x // "-")/\(.latency.stable_n // "-") excess \(.latency.excess_bounds // "-") p_harm \(.latency.p_value_harm // "-")"' "$1"
}

# healthy_scenario NAME TITLE [CANARY_KEYS] : $healthy_runs canaries of versions identical to the
# stable one; every rollback is false.
healthy_scenario() {
  local name=$1 title=$2 keys=${3:-}
  local dir=$work/$name port i
  port=$(free_port)
  write_config "$dir" "$port" "bake_time: 2s
strategy: canary
canary:
  steps:
    - {weight: 10%, for: 3s}
    - {weight: 50%, for: 3s}
$keys
rules:
$error_rule
$latency_rule
$health_rule"
  say "$title: $healthy_runs runs"
  service_up "$dir"
  load_start "$dir" "$port" $((healthy_runs * 30 + 30)) 64
  sleep 1
  local promoted=0 rolled=0 canary_secs=() early=0 rollbacks=()
  for ((i = 1; i <= healthy_runs; i++)); do
    local version="v2.$i" id state file
    id=$(cd "$dir" && "$turnout" deploy "$version" --json | jq -r '.deployment.id')
    state=$(wait_state "$dir" "$id" 90 "${ended_states[@]}") ||
      die "$name run $i: deployment $id still $state after 90 s"
    file=$dir/deployment-$i.json
    api "$dir" "/v1/deployments/$id" >"$file"
    cp "$file" "$results/$name-run$i.json"
    if [[ $state == scaling_down || $state == succeeded ]]; then
      promoted=$((promoted + 1))
      canary_secs+=("$(jq -r "$jq_defs"' ([.transitions[] | select(.from == "canary")][0].at | ts)
        - ([.transitions[] | select(.to == "canary")][0].at | ts) | . * 1000 | round / 1000' "$file")")
      early=$((early + $(jq '[.steps[] | select(.step | startswith("analysis:canary:"))
        | select(.detail.verdict == "promote")] | length' "$file")))
      echo "$name run $i: promoted after ${canary_secs[-1]} s of canary" >&2
    else
      rolled=$((rolled + 1))
      rollbacks+=("run $i ($state, load $(cut -d' ' -f1 /proc/loadavg)): $(jq -r '[.transitions[] | select(.to == "rolling_back")][0].reason' "$file")")
      echo "$name run $i: ${rollbacks[-1]}" >&2
      judge_evidence "$file" | tee -a "$results/$name-evidence.txt" >&2
    fi
  done
  sleep 1
  load_stop
  cp "$dir/load.json" "$results/$name-load.json"
  cp "$dir/load-progress.log" "$results/$name-load-progress.log"
  service_down "$dir"
  healthy_rows+=("| $title | $healthy_runs | $promoted | **$rolled** | $(printf '%s\n' "${canary_secs[@]}" | stats) | $early of $((2 * promoted)) | $(jq -r '.requests' "$results/$name-load.json") | $(jq -r '.failed' "$results/$name-load.json") |")
  {
    echo "#### $title: rollbacks"
    if [[ $rolled -eq 0 ]]; then echo "- none"; else printf -- '- %s\n' "${rollbacks[@]}"; fi
    echo
  } >>"$results/reasons.md"
}

# --- run ------------------------------------------------------------------------------------------

healthy_rows=()
: >"$results/reasons.md"
wants() { [[ " $parts " == *" $1 "* ]]; }
canary_rule_alone() { canary_fault_config "$1" off; }
canary_with_judge() { canary_fault_config "$1" default; }
if wants errors; then
  fault_scenario errors-rule "(a) 10 % 500s, rule alone" canary errors-10 3 64 \
    "$(canary_rule_alone "$error_rule")"
  fault_scenario errors-rule-250ms "(a) 10 % 500s, rule alone, analysis_interval 250ms" canary \
    errors-10 3 64 "$(canary_rule_alone "$error_rule")" 250ms
  fault_scenario errors-judge "(a) 10 % 500s, rule + canary judge" canary errors-10 3 64 \
    "$(canary_with_judge "$error_rule")"
fi
if wants latency; then
  fault_scenario latency-rule "(b) +300 ms, rule alone" canary slow-300ms 3 128 \
    "$(canary_rule_alone "$latency_rule")"
  fault_scenario latency-judge "(b) +300 ms, rule + canary judge" canary slow-300ms 3 128 \
    "$(canary_with_judge "$latency_rule")"
fi
# The engine's bake check fails a slot after unhealthy_threshold (3) probes 250 ms apart: its
# own "for" is 750 ms, so the goal is 1.75 s; the rule would need 2 s + 1 s.
if wants health; then
  fault_scenario health "(c) readiness fails during the bake" bake "" 1.75 64 "bake_time: 30s
rules:
$health_rule"
fi

# Time to roll back against `for`, at three rates: with enough requests in the window, a rule
# should fire `for` plus at most one evaluation (1 s) after the canary starts.
if wants for; then
  for for_rate in 25 250 2500; do
    for for_secs in 2 5 10; do
      rate=$for_rate runs=${JUDGE_FOR_RUNS:-3} fault_scenario "for-${for_secs}s-$for_rate" \
        "(e) 10 % 500s at $for_rate req/s, \`for ${for_secs}s\`" canary errors-10 \
        $((for_secs + 1)) 16 "bake_time: 1s
strategy: canary
canary:
  steps:
    - {weight: 50%, for: 60s}
$judge_off
rules:
  - {when: error_rate > 5% for ${for_secs}s, min_samples: 10}"
    done
  done
fi

wants healthy && healthy_scenario healthy "(d) healthy canaries, judge at its defaults"
# Diagnostic (not in the default parts): the same without the judge's latency test.
wants healthy-nolatency && healthy_scenario healthy-nolatency \
  "(d) healthy canaries, judge without its latency test" "  latency: false"
: >"$summary"
out "## Judgement benchmark (bench/judge/run.sh$([[ $quick -eq 1 ]] && echo ' --quick'))"
out ""
out '```'
out "$(cat "$results/machine.txt")"
out "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
out '```'
out ""
if [[ ${#rows[@]} -gt 0 ]]; then
  out "Seconds, min / median / max. Decision: from \`canary\` (c: from the fault) to \`rolling_back\`; done: to \`rolled_back\`."
  out ""
  out "| scenario | rolled back | decision s | done s | goal | canary silent 1 s after decision (answers after) | new version's answers | failed requests |"
  out "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: |"
  for r in "${rows[@]}"; do out "$r"; done
  out ""
fi
if [[ ${#healthy_rows[@]} -gt 0 ]]; then
  out "| scenario | canaries | promoted | rolled back | canary phase s | steps passed early by the judge | requests | failed |"
  out "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for r in "${healthy_rows[@]}"; do out "$r"; done
  out ""
fi
out "$(cat "$results/reasons.md")"
echo "bench/judge: raw results in $results" >&2
