# shellcheck shell=bash
# Shell helpers for scripts that run turnout's binaries on loopback (scripts/demo.sh,
# bench/run.sh). Source it; it defines functions only.
#
# Processes started with `spawn` are remembered by pid and stopped (SIGTERM, then SIGKILL after
# a grace period) by `stop_spawned`, which the caller puts in its EXIT trap. Nothing else is
# ever signalled.

spawned_pids=()

# spawn LOGFILE CMD... : starts CMD in the background with stdout+stderr to LOGFILE; sets
# $spawned (the pid).
spawn() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  spawned=$!
  spawned_pids+=("$spawned")
}

# stop_pid PID [GRACE_SECONDS] : SIGTERM, wait up to GRACE (default 5) s, then SIGKILL.
stop_pid() {
  local pid=$1 grace=${2:-5} deadline
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Stops every process started with spawn, newest first.
stop_spawned() {
  local i
  for ((i = ${#spawned_pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${spawned_pids[$i]}" 5
  done
  spawned_pids=()
}

# forget_pid PID : after the caller reaped PID itself (wait), so it is never signalled again.
forget_pid() {
  local keep=() p
  for p in "${spawned_pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  spawned_pids=("${keep[@]}")
}

# free_port : prints a loopback TCP port nobody listens on. It is taken from below the kernel's
# ephemeral range so that outgoing connections do not grab it in the meantime; for processes
# that cannot bind port 0 and report what they got.
_free_ports_given=" "
free_port() {
  local port used low
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  used=" $(ss -Htln 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | tr '\n' ' ') "
  for _ in $(seq 1 500); do
    port=$((10000 + RANDOM % (low - 10000)))
    if [[ $used != *" $port "* && $_free_ports_given != *" $port "* ]]; then
      _free_ports_given+="$port "
      echo "$port"
      return 0
    fi
  done
  echo "free_port: no free port found" >&2
  return 1
}

# first_line FILE TIMEOUT_SECONDS : waits for FILE's first complete line and prints it.
first_line() {
  local file=$1 deadline=$((SECONDS + $2))
  until [[ -f $file ]] && [[ $(head -c 4096 "$file" | tr -cd '\n' | wc -c) -gt 0 ]]; do
    if ((SECONDS >= deadline)); then
      echo "first_line: nothing in $file after $2 s" >&2
      return 1
    fi
    sleep 0.05
  done
  head -n1 "$file"
}

# wait_http URL TIMEOUT_SECONDS [PID] : waits until URL answers 2xx; fails early when PID dies.
wait_http() {
  local url=$1 deadline=$((SECONDS + $2)) pid=${3:-}
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      echo "wait_http: process $pid exited before $url answered" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "wait_http: $url did not answer within $2 s" >&2
      return 1
    fi
    sleep 0.05
  done
}

# The demo scripts' steps. They use the caller's $work (the service's directory, with its
# turnout.yaml), $turnout, $load (the binaries) and $port (the router's public port).

# run ARGS... : shows and runs `turnout ARGS...` in the service's directory, its output indented;
# returns turnout's exit status.
run() {
  echo "    \$ turnout $*"
  (cd "$work" && "$turnout" "$@") 2>&1 | sed 's/^/    /'
  return "${PIPESTATUS[0]}"
}

# load_start CONNECTIONS : live traffic through the router (turnout-load, up to 120 s) into
# $work/load.out; sets $load_pid (stopped by stop_spawned if load_stop never runs).
load_start() {
  "$load" --url "http://127.0.0.1:$port/" --connections "$1" --duration 120s \
    --by-header X-Version >"$work/load.out" 2>&1 &
  load_pid=$!
  spawned_pids+=("$load_pid")
}

# load_stop : stops the load (SIGINT: requests in flight finish), prints its result, and returns
# its exit status (non-zero when a request failed).
load_stop() {
  kill -INT "$load_pid"
  local status=0
  wait "$load_pid" || status=$?
  forget_pid "$load_pid"
  sed 's/^/    /' "$work/load.out"
  return "$status"
}

# finish_work STATUS : for the EXIT trap: removes $work after a success; after a failure keeps it
# and says where it is.
finish_work() {
  if [[ $1 -ne 0 ]]; then
    printf '\ndemo: failed; turnoutd log and files are in %s\n' "$work" >&2
  else
    rm -rf "$work"
  fi
}

# ---- a Podman API service of the script's own (scripts/demo-containers.sh, bench/containers) --

# podman_start DIR : starts `podman system service` on DIR/podman.sock (in DIR: conmon writes
# files into the service's working directory), with its storage under DIR (vfs driver) and
# CONTAINERS_CONF (exported) at DIR/containers.conf holding the fixes docs/containers.md
# describes. Sets $podman_sock, $podman_pid (also in spawned_pids) and the array podman_cli (the
# CLI on that storage). Returns 1, with the service's log, when it does not answer in 30 s.
podman_dir=""
podman_start() {
  podman_dir=$1
  mkdir -p "$podman_dir"
  export CONTAINERS_CONF=$podman_dir/containers.conf
  printf '%s\n' '[containers]' 'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]' \
    '[engine]' 'runtime = "runc"' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"' \
    >"$CONTAINERS_CONF"
  podman_cli=(podman --root "$podman_dir/root" --runroot "$podman_dir/runroot"
              --tmpdir "$podman_dir/tmp" --storage-driver vfs)
  podman_sock=$podman_dir/podman.sock
  pushd "$podman_dir" >/dev/null
  spawn "$podman_dir/service.log" "${podman_cli[@]}" system service --time=0 "unix://$podman_sock"
  podman_pid=$spawned
  popd >/dev/null
  local deadline=$((SECONDS + 30))
  until curl -fsS --unix-socket "$podman_sock" -o /dev/null http://d/_ping 2>/dev/null; do
    if ! kill -0 "$podman_pid" 2>/dev/null || ((SECONDS >= deadline)); then
      echo "podman system service did not answer on $podman_sock:" >&2
      tail -5 "$podman_dir/service.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

# podman_clean : removes every container and image of the engine podman_start started (its own
# storage: nothing of the machine's).
podman_clean() {
  [[ -n $podman_dir ]] || return 0
  "${podman_cli[@]}" rm --all --force --time 0 >/dev/null 2>&1 || true
  "${podman_cli[@]}" rmi --all --force >/dev/null 2>&1 || true
}

# podman_unmount : after the service stopped (stop_spawned), unmounts what it left under its
# directory (containers' shm), deepest first.
podman_unmount() {
  [[ -n $podman_dir ]] || return 0
  awk -v d="$podman_dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || true; done
}

# bench_args USAGE ARGS... : the benchmark scripts' options: sets $quick (--quick) and $build (0
# with --no-build) to 0 or 1; anything else prints USAGE and exits 2.
bench_args() {
  local usage=$1 arg
  shift
  quick=0
  build=1
  for arg in "$@"; do
    case $arg in
      --quick) quick=1 ;;
      --no-build) build=0 ;;
      *) echo "$usage" >&2; exit 2 ;;
    esac
  done
}

# stop_turnout_and_podman : for the EXIT trap of a script that ran turnoutd (in $work, with
# $turnout; $daemon_up is 1 while it runs) on the engine of podman_start: stops the instances,
# the router and turnoutd (`turnout down --stop-instances`), removes what the engine still
# holds, stops every spawned process (the engine last: it was spawned first) and unmounts what
# the engine left.
stop_turnout_and_podman() {
  if [[ ${daemon_up:-0} -eq 1 ]]; then
    (cd "$work" && "$turnout" down --stop-instances >/dev/null 2>&1) || true
    daemon_up=0
  fi
  podman_clean
  stop_spawned
  podman_unmount
}
