# shellcheck shell=bash
# `./scripts/demo.sh containers`, sourced by scripts/demo.sh after its build step (which sets
# $turnout, $load, $app: the static test app, say and die): the demo story with container
# images (platform.type: container), on a Podman API service this script starts itself.
#
#   ./scripts/demo.sh containers             install dependencies, build (release), run (~1 min)
#   ./scripts/demo.sh containers --no-build  run against an existing release build
#
# Nothing of the machine's is used: Podman runs as `podman system service` on a socket in a
# temporary directory, with its storage there too (vfs driver) and a containers.conf with the
# fixes docs/containers.md describes (runc, cgroupfs, file events, ulimits). The images are
# built locally without a registry: the statically linked test app
# (src/container/testing/test_app_main.cc) imported as localhost/turnout-demo:v1, v2 and v3
# (v3 answers 20 % of its requests with 500). Containers share the host's network and listen
# on loopback ports turnout picks.
#
# The story: turnoutd deploys v1, then v2 blue/green under live traffic (0 failed requests); a
# canary of v3 is rolled back by the judge while users stay on v2; `rollback --to 1` runs v1's
# recorded image again; `turnout prune` removes the image of the revision revisions.on_disk no
# longer keeps (v2's) and keeps v1's. On exit everything it started is stopped: the containers
# (`turnout down --stop-instances`, then any the engine still holds), the images it imported,
# the Podman service and the load generator, by pid; its directory is removed. Exit status 0
# when every step did what the story says; 77 when Podman is not installed.
command -v podman >/dev/null || { echo "demo: podman is not installed (scripts/install-deps.sh)" >&2; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-demo-c.XXXXXX")
engine=$work/engine
daemon_up=0
cleanup() {
  local status=$?
  set +e
  stop_turnout_and_podman
  finish_work "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting Podman's API service in $engine (its socket and storage)"
podman_start "$engine" || die "podman system service did not start"
sock=$podman_sock
echo "    engine: $(curl -fsS --unix-socket "$sock" http://d/version | grep -o '"Version":"[^"]*"' | head -1)"

say "building the images without a registry: the static test app as localhost/turnout-demo:v1, v2, v3"
mkdir -p "$engine/image"
cp "$app" "$engine/image/app"
tar -C "$engine/image" -cf "$engine/app.tar" .
import_image() {  # import_image VERSION [ENV...]
  local version=$1 changes=(--change 'CMD ["/app", "serve"]' --change "ENV APP_VERSION=$1") e
  shift
  for e in "$@"; do changes+=(--change "ENV $e"); done
  "${podman_cli[@]}" import "${changes[@]}" "$engine/app.tar" "localhost/turnout-demo:$version" \
    >/dev/null
  echo "    localhost/turnout-demo:$version $*"
}
import_image v1
import_image v2
import_image v3 ERROR_PERCENT=20
image_id() { "${podman_cli[@]}" image inspect --format '{{.Id}}' "$1" 2>/dev/null; }
v1_id=$(image_id localhost/turnout-demo:v1)
v2_id=$(image_id localhost/turnout-demo:v2)

port=$(free_port)
cat >"$work/turnout.yaml" <<EOF
# The demo service in containers: one per slot, sharing the host's network, on loopback ports
# turnout picks (the app listens on \$PORT).
name: shop
listen: 127.0.0.1:$port
platform:
  type: container
  engine: unix://$sock
  image: localhost/turnout-demo:{version}  # resolved to an image ID before anything launches
  network: host
  pull: never
  grace_period: 3s
health:
  readiness: {path: /ready, interval: 250ms, timeout: 250ms, healthy_threshold: 2}
  ready_deadline: 10s
smoke_tests:
  - name: home-page
    path: /
    expect: {body_contains: "{version} /"}
bake_time: 2s
scale_down_delay: 2s
revisions: {warm: 1, on_disk: 2}  # turnout prune keeps the images of the newest 2 revisions
router:
  admin: ""
EOF

serving() { curl -fsS --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null || true; }
# Waits until no deployment is in progress (the old slot's scale-down included).
wait_idle() {
  local deadline=$((SECONDS + 30))
  until (cd "$work" && "$turnout" status --json) | grep -q '"deployment": null'; do
    ((SECONDS < deadline)) || die "a deployment was still in progress after 30 s"
    sleep 0.2
  done
}

say "the service definition ($work/turnout.yaml)"
grep -v '^#' "$work/turnout.yaml" | sed 's/^/    /'

say "starting turnoutd for the service"
run up
daemon_up=1

say "deploying v1 (nothing serves yet): the tag is resolved to its image ID first"
run deploy v1 --wait
[[ $(serving) == "v1 /" ]] || die "v1 does not serve: $(serving)"

say "deploying v2 blue/green while 16 connections send requests as fast as they can"
load_start 16
run deploy v2 --wait
say "live traffic during the deployment (turnout-load)"
load_stop || die "requests failed while v2 was deployed"
[[ $(serving) == "v2 /" ]] || die "v2 does not serve: $(serving)"
wait_idle
run status

say "switching the service to canary releases, judged on the router's own per-version numbers"
cat >>"$work/turnout.yaml" <<EOF
strategy: canary
canary:
  steps:
    - {weight: 10%, for: 5s}
    - {weight: 50%, for: 5s}
  warmup: 1s
  latency_tolerance: 10ms
rules:
  - when: error_rate > 5% for 2s
    min_samples: 20
EOF
tail -9 "$work/turnout.yaml" | sed 's/^/    /'

say "a canary of v3, whose containers answer 20 % of their requests with 500: rolled back"
load_start 16
if run deploy v3 --wait; then
  die "v3 was promoted, but it fails a fifth of its requests"
fi
load_stop || true
[[ $(serving) == "v2 /" ]] || die "users are not on v2 after the canary's rollback: $(serving)"
echo "    users stayed on v2"
wait_idle

say "rollback --to 1: v1's recorded image runs again, under live traffic"
load_start 16
run rollback --to 1 --wait
load_stop || die "requests failed during the rollback to revision 1"
[[ $(serving) == "v1 /" ]] || die "v1 does not serve after rollback --to 1: $(serving)"
wait_idle
run history

say "turnout prune: images of revisions that revisions.on_disk (2) no longer keeps"
run prune --dry-run
[[ $(image_id "$v2_id") == "$v2_id" ]] || die "the dry run removed v2's image"
run prune
[[ -z $(image_id "$v2_id") ]] || die "prune did not remove v2's image (revision 2)"
[[ $(image_id "$v1_id") == "$v1_id" ]] || die "prune removed v1's image, which serves"
[[ $(serving) == "v1 /" ]] || die "v1 does not serve after prune: $(serving)"
echo "    v2's image is gone; v1's (serving) and v3's (revision 3) stay"

say "stopping: the containers, then turnoutd; then the Podman service and its images"
run down --stop-instances
daemon_up=0
echo
echo "demo: v1 -> v2 blue/green under load with 0 failed requests; canary v3 (20 % errors) rolled"
echo "back, users on v2; rollback --to 1 ran v1's image; prune freed v2's image."
