#!/usr/bin/env bash
# The README's main command: two versions of a service behind the turnout router, traffic
# switched and split under live load, every request counted per version.
#
#   ./scripts/demo.sh             install dependencies, build (release), run the demo (~20 s)
#   ./scripts/demo.sh --no-build  run against an existing release build
#
# It starts (and on exit stops, by pid) only its own processes: two turnout-demo-app instances
# (blue = v1, green = v2), one router and one turnout-load, all on free loopback ports.
# Works without a terminal (CI=true). Exit status 0 when the load saw 0 failed requests.
set -euo pipefail
cd "$(dirname "$0")/.."
source demo/lib.sh

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
  cmake --build --preset release
fi

turnout=$bin/src/cli/turnout
app=$bin/demo/turnout-demo-app
load=$bin/demo/turnout-load
for b in "$turnout" "$app" "$load"; do
  [[ -x $b ]] || die "$b is missing; build first (run without --no-build)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-demo.XXXXXX")
cleanup() {
  local status=$?
  stop_spawned
  if [[ $status -ne 0 ]]; then
    printf '\ndemo: failed; logs are in %s\n' "$work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_app() {  # NAME VERSION -> sets ${NAME}_port
  local name=$1 version=$2 line
  "$app" --listen 127.0.0.1:0 --version "$version" --slot "$name" \
    >"$work/$name.out" 2>"$work/$name.err" &
  spawned_pids+=($!)
  line=$(first_line "$work/$name.out" 10) || die "$name did not start"
  printf -v "${name}_port" '%s' "${line##*:}"
  echo "    $name: turnout-demo-app --version $version, ${line} (pid $!)"
}

say "starting two versions of the demo app"
start_app blue v1
start_app green v2

router_port=$(free_port)
admin=127.0.0.1:$(free_port)
router_url=http://127.0.0.1:$router_port/
say "starting the router on 127.0.0.1:$router_port, all traffic to blue (admin API on $admin)"
router_args=(router --listen "127.0.0.1:$router_port" --slot "blue=127.0.0.1:$blue_port"
  --slot "green=127.0.0.1:$green_port" --active blue --admin "$admin")
echo "    turnout ${router_args[*]}"
spawn "$work/router.log" "$turnout" "${router_args[@]}"
router_pid=$spawned
if ! wait_http "http://$admin/healthz" 15 "$router_pid" || ! wait_http "$router_url" 15 "$router_pid"
then
  cat "$work/router.log" >&2
  die "the router did not come up"
fi

duration=14
say "load: 64 keep-alive connections for ${duration} s, responses counted per X-Version"
"$load" --url "$router_url" --connections 64 --duration "${duration}s" --progress \
  --by-header X-Version >"$work/load.out" &
load_pid=$!
spawned_pids+=("$load_pid")

step() {  # SECONDS NARRATION COMMAND...
  sleep "$1"
  say "$2"
  shift 2
  echo "    \$ turnout ${*:2}"
  "$@" | sed 's/^/    /'
}
step 2 "all traffic is on blue (v1); switching traffic to green (v2)" \
  "$turnout" router switch green --admin "$admin"
step 3 "canary: 25 % of clients back to blue (v1), the rest stay on green (v2)" \
  "$turnout" router weight blue 25 --admin "$admin"
step 3 "rolling back: all traffic to blue (v1)" \
  "$turnout" router switch blue --admin "$admin"
step 3 "and forward again: all traffic to green (v2)" \
  "$turnout" router switch green --admin "$admin"

say "router status"
"$turnout" router status --admin "$admin" | sed 's/^/    /'

load_status=0
wait "$load_pid" || load_status=$?
forget_pid "$load_pid"
say "result (turnout-load)"
sed 's/^/    /' "$work/load.out"
[[ $load_status -eq 0 ]] || die "some requests failed while traffic moved (see above)"
echo
echo "0 failed requests while traffic moved blue -> green -> 25 % canary -> blue -> green."
