#!/usr/bin/env bash
# What turnout adds to a container deployment, against the engine's own container start.
#
#   bench/containers/run.sh             build (release), 10 rounds of each (~2 min)
#   bench/containers/run.sh --quick     3 rounds of each (~40 s)
#   bench/containers/run.sh --no-build  use an existing release build
#   The build directory is $TURNOUT_BUILD_DIR (default build/release); rounds: CONTAINER_ROUNDS.
#   bench/run.sh runs it as its part `containers`.
#
# On a Podman API service the script starts itself (a socket and storage in a temporary
# directory, demo/lib.sh podman_start), with the container test app's image imported without a
# registry (one tag per round, each its own image), host networking:
#   engine  the bare engine, no turnout (turnout-bench-container-start): create + start through
#           the API (what turnout's container platform calls) until the app answers HTTP 200;
#           and `podman --url unix://SOCK run -d --network host ...` until it answers.
#   turnout turnoutd deploying the same image, round after round (blue/green, readiness
#           interval 1 s (the default) with healthy_threshold 1, one HTTP smoke test, bake 1 s).
#           The timeline comes from the deployment's own transitions and steps (turnoutd's wall
#           clock): pre-checks, create+start (launching), ready (waiting_ready), smoke
#           (smoke_testing), switch (switching); "answering" is the container's log timestamp of
#           the app's "listening on port" line (written right after listen(), so it answers from
#           then on); "switched" is the transition to baking, recorded after the router switched.
#           turnout's added time = switched - answering - the smoke tests' own durations.
# Medians and p90s go to stdout and summary.md in bench/results/containers-<UTC time>/ (with the
# raw JSON lines; gitignored). It stops only what it started: turnoutd with `turnout down
# --stop-instances`, the Podman service by pid after removing its containers and images.
set -euo pipefail
cd "$(dirname "$0")/../.."
source demo/lib.sh

bench_args "usage: bench/containers/run.sh [--quick] [--no-build]" "$@"
rounds=${CONTAINER_ROUNDS:-10}
[[ $quick -eq 1 ]] && rounds=${CONTAINER_ROUNDS:-3}

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

bin=${TURNOUT_BUILD_DIR:-build/release}
if [[ $build -eq 1 ]]; then
  say "building (release) in $bin"
  cmake --preset release >/dev/null
  cmake --build "$bin" --target turnout turnoutd turnout-container-test-app \
    turnout-bench-container-start >&2
fi
turnout=$(realpath "$bin/src/cli/turnout")
app=$bin/src/container/turnout-container-test-app
starter=$bin/bench/turnout-bench-container-start
for b in "$turnout" "$app" "$starter" "$bin/src/daemon/turnoutd"; do
  [[ -x $b ]] || die "$b is missing; build first (run without --no-build)"
done
for tool in podman jq curl; do
  command -v "$tool" >/dev/null || die "$tool is missing; run scripts/install-deps.sh --bench"
done

out=bench/results/containers-$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-bench-c.XXXXXX")
daemon_up=0
cleanup() {
  local status=$?
  set +e
  stop_turnout_and_podman
  [[ $status -eq 0 ]] && rm -rf "$work"
  [[ $status -eq 0 ]] || echo "bench: failed; files in $work" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting Podman's API service in $work/engine"
podman_start "$work/engine" || die "podman system service did not start"
mkdir -p "$work/image"
cp "$app" "$work/image/app"
tar -C "$work/image" -cf "$work/app.tar" .
say "importing localhost/turnout-bench:v0..v$rounds (no registry)"
for i in $(seq 0 "$rounds"); do
  "${podman_cli[@]}" import --quiet --change 'CMD ["/app", "serve"]' \
    --change "ENV APP_VERSION=v$i" "$work/app.tar" "localhost/turnout-bench:v$i" >/dev/null
done

# ---- the bare engine ---------------------------------------------------------------------------
say "the engine alone: create + start until HTTP 200, $rounds rounds"
"$starter" --engine "unix://$podman_sock" --image localhost/turnout-bench:v0 --rounds "$rounds" \
  >"$out/engine-api.jsonl"
say "podman --url unix://SOCK run -d until HTTP 200, $rounds rounds"
"$starter" --engine "unix://$podman_sock" --image localhost/turnout-bench:v0 --rounds "$rounds" \
  --cli podman >"$out/engine-cli.jsonl"

# ---- turnout -------------------------------------------------------------------------------------
port=$(free_port)
cat >"$work/turnout.yaml" <<EOF
name: bench
listen: 127.0.0.1:$port
platform:
  type: container
  engine: unix://$podman_sock
  image: localhost/turnout-bench:{version}
  network: host
  pull: never
  grace_period: 2s
health:
  readiness: {path: /ready, interval: 1s, timeout: 500ms, healthy_threshold: 1}
  ready_deadline: 20s
smoke_tests:
  - name: home-page
    path: /
    expect: {body_contains: "{version} /"}
bake_time: 1s
scale_down_delay: 1s
router:
  admin: ""
EOF
say "turnoutd deploying localhost/turnout-bench:v1..v$rounds, one after the other"
(cd "$work" && "$turnout" up >/dev/null)
daemon_up=1
ms_of() {  # an RFC 3339 time -> milliseconds since the epoch
  date -d "$1" +%s%3N
}
for i in $(seq 1 "$rounds"); do
  (cd "$work" && "$turnout" deploy "v$i" --wait >"$work/deploy-$i.txt" 2>&1) ||
    die "deployment of v$i failed: $(tail -3 "$work/deploy-$i.txt")"
  (cd "$work" && "$turnout" history "$i" --json) >"$out/deployment-$i.json"
  id=$("${podman_cli[@]}" ps -a --filter label=turnout.service=bench \
         --filter "label=turnout.revision=v$i" --format '{{.ID}}' | head -1)
  listening=$("${podman_cli[@]}" logs -t "$id" 2>/dev/null | grep -m1 'listening on port' |
                awk '{print $1}')
  [[ -n $listening ]] || die "no 'listening' line in the log of v$i's container"
  jq -c --argjson answering "$(ms_of "$listening")" '
    def ms: (sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) * 1000
            + (capture("\\.(?<f>[0-9]+)Z$").f | tonumber);
    def at(s): [.transitions[] | select(.to == s) | .at | ms][0];
    {pre_checks: (at("launching") - at("pre_checks")),
     create_start: (at("waiting_ready") - at("launching")),
     ready: (at("smoke_testing") - at("waiting_ready")),
     smoke: (at("switching") - at("smoke_testing")),
     switch: (at("baking") - at("switching")),
     smoke_own: ([.steps[] | select(.step | startswith("smoke_test:")) | .duration_ms] | add // 0),
     launch_to_answering: ($answering - at("launching")),
     answering_to_switched: (at("baking") - $answering)}
    | .added = .answering_to_switched - .smoke_own' "$out/deployment-$i.json" \
    >>"$out/turnout.jsonl"
done

# ---- summary -------------------------------------------------------------------------------------
stats() {  # stats FILE FIELD -> "median p90" (nearest rank)
  jq -r ".$2" "$1" | sort -n | awk '{v[NR] = $1}
    END {m = int((NR + 1) / 2); p = int(NR * 0.9 + 0.999); if (p < 1) p = 1;
         printf "%.0f | %.0f", v[m], v[p]}'
}
{
  echo "### Containers: turnout's added time against the engine's own start ($rounds rounds, ms)"
  echo
  echo "| measured | median | p90 |"
  echo "| --- | --- | --- |"
  echo "| engine API: create | $(stats "$out/engine-api.jsonl" create_ms) |"
  echo "| engine API: start | $(stats "$out/engine-api.jsonl" start_ms) |"
  echo "| engine API: create + start until HTTP 200 | $(stats "$out/engine-api.jsonl" total_ms) |"
  echo "| \`podman --url ... run -d\` until HTTP 200 | $(stats "$out/engine-cli.jsonl" total_ms) |"
  echo "| turnout: pre-checks (image resolved) | $(stats "$out/turnout.jsonl" pre_checks) |"
  echo "| turnout: create + start (launching) | $(stats "$out/turnout.jsonl" create_start) |"
  echo "| turnout: ready (waiting_ready) | $(stats "$out/turnout.jsonl" ready) |"
  echo "| turnout: smoke tests (smoke_testing) | $(stats "$out/turnout.jsonl" smoke) |"
  echo "| turnout: the smoke tests' own requests | $(stats "$out/turnout.jsonl" smoke_own) |"
  echo "| turnout: switch (switching) | $(stats "$out/turnout.jsonl" switch) |"
  echo "| turnout: launch until the app answers | $(stats "$out/turnout.jsonl" launch_to_answering) |"
  echo "| turnout: app answering until traffic switched | $(stats "$out/turnout.jsonl" answering_to_switched) |"
  echo "| **turnout's added time** (the line above minus the smoke tests' own requests) | $(stats "$out/turnout.jsonl" added) |"
  added=$(stats "$out/turnout.jsonl" added)
  median=${added% |*} p90=${added#*| }
  echo
  echo "| target | measured | verdict |"
  echo "| --- | --- | --- |"
  echo "| turnout adds <= 150 ms beyond readiness and smoke tests | median $median ms, p90 $p90 ms |" \
    "$(awk -v m="$median" -v p="$p90" 'BEGIN { if (p <= 150) print "met";
        else if (m <= 150) print "met at the median, NOT at p90"; else print "NOT met" }') |"
} | tee "$out/summary.md"
echo "raw results: $out" >&2
