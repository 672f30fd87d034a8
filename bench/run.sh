#!/usr/bin/env bash
# turnout's benchmark suite, one command:
#
#   bench/run.sh            install the contenders, build (release), run everything (~6 min)
#   bench/run.sh --quick    fewer rounds, shorter runs, 2,000 idle connections (~2 min)
#   bench/run.sh --no-build use an existing release build
#   Only some parts: BENCH_PARTS="throughput switch memory containers" (any subset);
#   only some proxies: BENCH_CONTENDERS="turnout turnout-log haproxy nginx caddy" (any subset;
#   turnout-log is turnout with its JSON access log on, every request logged to a file).
#
# What it measures (details and the latest numbers: docs/BENCHMARKS.md):
#   throughput  wrk -t1 -c64 against direct nginx, turnout, HAProxy, nginx-as-proxy and Caddy,
#               interleaved rounds; median req/s, p50/p99. Then latency at fixed request rates
#               below saturation (turnout-load --rate: latency counted from when each request
#               was due, so stalls are not hidden).
#   switch      100 blue<->green switches under constant load (256 keep-alive connections):
#               turnout (`turnout router switch`), nginx (`nginx -s reload` with swapped
#               upstreams), HAProxy (runtime API `set weight`). Failed requests and per-version
#               counts.
#   memory      RSS per idle keep-alive client connection with 10,000 of them open.
#   containers  bench/containers/run.sh: turnout's added time in a container deployment, from
#               the container answering to traffic switched, against the engine's own start
#               (create + start through the API, and `podman run -d`), on a Podman service of
#               its own.
#
# Every server is one worker/thread pinned to CPU 0 together with the backend; the load
# generator runs on CPU 1. Everything listens on loopback ports that are free at the time.
# It starts, and stops by pid, only its own processes. Raw results go to
# bench/results/<UTC time>/ (gitignored); the markdown summary goes to stdout and summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source demo/lib.sh

bench_args "usage: bench/run.sh [--quick] [--no-build]" "$@"
parts=${BENCH_PARTS:-throughput switch memory containers}
contenders_wanted=${BENCH_CONTENDERS:-turnout turnout-log haproxy nginx caddy}
wants() { [[ " $contenders_wanted " == *" $1 "* ]]; }
if [[ $quick -eq 1 ]]; then
  rounds=1 seconds=3 switches=20 idle_conns=2000
else
  rounds=3 seconds=5 switches=100 idle_conns=10000
fi
switch_interval=0.1  # seconds between two switches

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

if [[ $build -eq 1 ]]; then
  say "installing dependencies (scripts/install-deps.sh --bench)"
  ./scripts/install-deps.sh --bench >&2
fi
bin=${TURNOUT_BUILD_DIR:-build/release}
if [[ $build -eq 1 ]]; then
  say "building turnout (release) in $bin"
  if [[ $bin == build/release ]]; then
    cmake --preset release >/dev/null
  else
    cmake -S . -B "$bin" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTURNOUT_BUILD_TESTS=OFF >/dev/null
  fi
  targets=(turnout-load turnout-bench-idle-clients)
  wants turnout && targets+=(turnout)
  [[ " $parts " == *" containers "* ]] &&
    targets+=(turnout turnoutd turnout-container-test-app turnout-bench-container-start)
  cmake --build "$bin" --target "${targets[@]}" >&2
fi
turnout=$bin/src/cli/turnout
load=$bin/demo/turnout-load
idle_clients=$bin/bench/turnout-bench-idle-clients
needed=("$load" "$idle_clients")
wants turnout && needed+=("$turnout")
for b in "${needed[@]}"; do
  [[ -x $b ]] || die "$b is missing; build first (run without --no-build)"
done
# The router parts need the contenders and a backend; the container part needs neither.
router_parts=0
for p in throughput switch memory; do [[ " $parts " == *" $p "* ]] && router_parts=1; done
tools=(taskset curl ss)
if [[ $router_parts -eq 1 ]]; then
  tools+=(nginx wrk)  # the backend and the load
  wants haproxy && tools+=(haproxy)
  wants caddy && tools+=(caddy)
fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is missing; run scripts/install-deps.sh --bench"
done

cpus=$(nproc)
if ((cpus >= 2)); then
  cpu_server=0 cpu_load=1
else
  cpu_server=0 cpu_load=0
fi
server_pin=(taskset -c "$cpu_server")
load_pin=(taskset -c "$cpu_load")

results=bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$results"
work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-bench.XXXXXX")
cleanup() {
  stop_spawned
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Many idle connections need many descriptors (clients and proxies inherit this limit). turnout
# takes about half of its limit in client connections (each served client may also hold an
# upstream connection; docs/router.md), so the test stays below that.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
if ((fd_limit < 2 * idle_conns + 1000)); then
  idle_conns=$(((fd_limit - 1000) / 2 / 1000 * 1000))
  echo "bench: open-file limit $fd_limit; idle connection test reduced to $idle_conns" >&2
fi

# --- machine and versions ---------------------------------------------------------------------
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"
  echo "kernel: $(uname -sr)"
  echo "turnout: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) (release build)"
  echo "nginx: $(nginx -v 2>&1 | sed 's/.*nginx\///')"
  wants haproxy && echo "haproxy: $(haproxy -v | head -1 | awk '{print $3}')"
  wants caddy && echo "caddy: $(caddy version | awk '{print $1}')"
  echo "wrk: $(wrk --version 2>&1 | head -1 | awk '{print $2}')"
  echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$results/machine.txt"
cat "$results/machine.txt" >&2

# --- servers ------------------------------------------------------------------------------------
# Every config lives in $work; ports come from free_port.

# The backend: Debian's nginx, one worker, a fixed small response. Port b1 says X-Version v1,
# port b2 says v2 (the switch test tells the versions apart by it).
b1=$(free_port)
b2=$(free_port)
nginx_common() {  # PREFIX
  cat <<EOF
worker_processes 1;
worker_rlimit_nofile $fd_limit;
daemon off;
master_process on;
pid $1.pid;
error_log $1.error.log warn;
events { worker_connections $((fd_limit - 100)); multi_accept on; }
EOF
}
nginx_http_common() {  # PREFIX
  cat <<EOF
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path $1.body;
  proxy_temp_path $1.proxy;
  fastcgi_temp_path $1.fastcgi;
  uwsgi_temp_path $1.uwsgi;
  scgi_temp_path $1.scgi;
EOF
}
{
  nginx_common "$work/backend"
  echo "http {"
  nginx_http_common "$work/backend"
  for v in 1 2; do
    port_var=b$v
    cat <<EOF
  server {
    listen 127.0.0.1:${!port_var} backlog=4096;
    location / {
      default_type text/plain;
      add_header X-Version v$v;
      return 200 "hello from the backend, version v$v\n";
    }
  }
EOF
  done
  echo "}"
} >"$work/backend.conf"

start_backend() {
  spawn "$work/backend.log" "${server_pin[@]}" nginx -c "$work/backend.conf" -e stderr
  backend_pid=$spawned
  wait_http "http://127.0.0.1:$b1/" 10 "$backend_pid" && wait_http "http://127.0.0.1:$b2/" 10
}

# turnout's admin API on TCP needs a token; the router and the switch command both read it from
# the environment.
export TURNOUT_ADMIN_TOKEN="bench-$RANDOM$RANDOM$RANDOM"

# turnout: both slots, blue active. Sets turnout_pid; $1 = listen port, $2 = admin port, more
# arguments go to `turnout router` as they are.
start_turnout() {
  local listen=$1 admin=$2
  shift 2
  spawn "$work/turnout-$listen.log" "${server_pin[@]}" "$turnout" router --listen "127.0.0.1:$listen" \
    --slot "blue=127.0.0.1:$b1" --slot "green=127.0.0.1:$b2" --active blue \
    --admin "127.0.0.1:$admin" --workers 1 --no-health-checks "$@"
  turnout_pid=$spawned
  wait_http "http://127.0.0.1:$listen/" 15 "$turnout_pid"
}

# HAProxy 2.6: one thread, server-side keep-alive reused across clients. Runtime API on a
# loopback TCP port so that bash can talk to it without extra tools. maxconn is enough for the
# idle-connection test; HAProxy sizes its descriptor needs as twice maxconn, but idle clients
# need one each, so with `no strict-limits` a lower open-file limit is only warned about.
start_haproxy() {  # PORT STATS_PORT
  cat >"$work/haproxy-$1.cfg" <<EOF
global
  nbthread 1
  maxconn $((idle_conns + 1000))
  no strict-limits
  stats socket ipv4@127.0.0.1:$2 level admin
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
frontend fe
  bind 127.0.0.1:$1
  default_backend be
backend be
  server blue 127.0.0.1:$b1 weight 100
  server green 127.0.0.1:$b2 weight 0
EOF
  spawn "$work/haproxy-$1.log" "${server_pin[@]}" haproxy -db -f "$work/haproxy-$1.cfg"
  haproxy_pid=$spawned
  wait_http "http://127.0.0.1:$1/" 10 "$haproxy_pid"
}

# nginx as a reverse proxy: one worker, upstream keep-alive. The upstream lives in its own
# file so that the switch test can swap it and reload.
start_nginx_proxy() {  # PORT
  local prefix=$work/nginx-proxy-$1
  printf 'upstream be {\n  server 127.0.0.1:%s;\n  keepalive 256;\n}\n' "$b1" >"$prefix.upstream"
  {
    nginx_common "$prefix"
    echo "http {"
    nginx_http_common "$prefix"
    cat <<EOF
  include $prefix.upstream;
  server {
    listen 127.0.0.1:$1 backlog=4096;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
EOF
  } >"$prefix.conf"
  spawn "$prefix.log" "${server_pin[@]}" nginx -c "$prefix.conf" -e stderr
  nginx_proxy_pid=$spawned
  wait_http "http://127.0.0.1:$1/" 10 "$nginx_proxy_pid"
}

# Caddy 2.6: reverse_proxy (keeps upstream connections alive by default), GOMAXPROCS=1.
start_caddy() {  # PORT
  cat >"$work/Caddyfile-$1" <<EOF
{
  admin off
  auto_https off
}
http://127.0.0.1:$1 {
  reverse_proxy 127.0.0.1:$b1
}
EOF
  spawn "$work/caddy-$1.log" env GOMAXPROCS=1 HOME="$work" XDG_DATA_HOME="$work" \
    XDG_CONFIG_HOME="$work" "${server_pin[@]}" caddy run --adapter caddyfile \
    --config "$work/Caddyfile-$1"
  caddy_pid=$spawned
  wait_http "http://127.0.0.1:$1/" 15 "$caddy_pid"
}

# start_contender NAME : a fresh instance of turnout, haproxy, nginx (as proxy) or caddy on free
# ports. Sets c_port (traffic), c_ctl (turnout's admin API / HAProxy's runtime API) and c_pid.
start_contender() {
  c_port=$(free_port)
  c_ctl=$(free_port)
  case $1 in
    turnout) start_turnout "$c_port" "$c_ctl" && c_pid=$turnout_pid ;;
    # Every request logged (sample 1), JSON, to a file on the results' disk.
    turnout-log)
      start_turnout "$c_port" "$c_ctl" --access-log "$work/access-$c_port.log" &&
        c_pid=$turnout_pid ;;
    haproxy) start_haproxy "$c_port" "$c_ctl" && c_pid=$haproxy_pid ;;
    nginx) start_nginx_proxy "$c_port" && c_pid=$nginx_proxy_pid ;;
    caddy) start_caddy "$c_port" && c_pid=$caddy_pid ;;
  esac || die "$1 did not start (its log is in $work)"
}
stop_contender() {  # PID
  stop_pid "$1" 15
  forget_pid "$1"
}

# Sum of VmRSS (KiB) of a process and its children (nginx: master + workers).
rss_kib() {
  local total=0 p kib
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}

# CPU time (user + system, clock ticks) of a process and its children (nginx: master + workers).
cpu_ticks() {
  local total=0 p t
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + ${t:-0}))
  done
  echo "$total"
}

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else print a[int((NR + 1) / 2)]}'; }

# wrk's latency lines ("50%  412.00us") -> milliseconds.
wrk_ms() {  # FILE PERCENT
  awk -v p="$2%" '$1 == p {
      v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
      f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1;
      printf "%.3f\n", v * f }' "$1"
}

json_get() {  # FILE JQ-LIKE-PATH (a.b.c) : tiny reader for turnout-load --json output
  awk -v path="$2" 'BEGIN { n = split(path, keys, ".") }
    { line = $0; gsub(/[",]/, "", line); split(line, kv, ":");
      gsub(/^ +| +$/, "", kv[1]); gsub(/^ +| +$/, "", kv[2]);
      if (kv[1] == keys[depth + 1] && depth + 1 < n && $0 ~ /\{ *$/) { depth++; next }
      if (depth + 1 == n && kv[1] == keys[n]) { print kv[2]; found = 1; exit } }
    END { if (!found) print 0 }' "$1"
}

declare -A rps p50 p99 cpu_us switch_failed mem_bytes
summary=$results/summary.md
: >"$summary"
out() { echo "$*" | tee -a "$summary"; }

if [[ $router_parts -eq 1 ]]; then
  say "starting the backend (nginx, 1 worker, CPU $cpu_server)"
  start_backend || die "backend did not start (see $work/backend.error.log)"
fi

# --- a. throughput and latency ---------------------------------------------------------------
if [[ " $parts " == *" throughput "* ]]; then
  say "starting the contenders (one worker each, CPU $cpu_server)"
  declare -A port=([direct]=$b1) pid_of=([direct]=$backend_pid)
  contenders=(direct)
  throughput_pids=()
  for c in turnout turnout-log haproxy nginx caddy; do
    wants "$c" || continue
    start_contender "$c"
    port[$c]=$c_port
    pid_of[$c]=$c_pid
    contenders+=("$c")
    throughput_pids+=("$c_pid")
  done

  for c in "${contenders[@]}"; do  # warm-up: connections, pools, page cache
    "${load_pin[@]}" wrk -t1 -c64 -d1s "http://127.0.0.1:${port[$c]}/" >/dev/null 2>&1 || true
  done
  for ((r = 1; r <= rounds; r++)); do
    for c in "${contenders[@]}"; do
      say "throughput round $r/$rounds: $c (wrk -t1 -c64 -d${seconds}s)"
      ticks0=$(cpu_ticks "${pid_of[$c]}")
      "${load_pin[@]}" wrk -t1 -c64 -d"${seconds}s" --latency \
        "http://127.0.0.1:${port[$c]}/" >"$results/wrk-$c-$r.txt" 2>&1 || true
      ticks1=$(cpu_ticks "${pid_of[$c]}")
      # The server's CPU per request (user + system), in microseconds: what throughput costs
      # even on a machine too busy for req/s to be steady.
      awk -v t="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" '/ requests in / {
          gsub(/,/, "", $1); if ($1 > 0) printf "%.2f\n", t * 1e6 / hz / $1 }' \
        "$results/wrk-$c-$r.txt" >"$results/cpu-$c-$r.txt"
      grep -E "Requests/sec|Non-2xx|Socket errors" "$results/wrk-$c-$r.txt" >&2 || true
    done
  done

  for c in "${contenders[@]}"; do
    # -[0-9]*: "turnout" must not take turnout-log's files.
    rps[$c]=$(for f in "$results"/wrk-"$c"-[0-9]*.txt; do
      awk '/^Requests\/sec:/ {print $2}' "$f"; done | median)
    p50[$c]=$(for f in "$results"/wrk-"$c"-[0-9]*.txt; do wrk_ms "$f" 50; done | median)
    p99[$c]=$(for f in "$results"/wrk-"$c"-[0-9]*.txt; do wrk_ms "$f" 99; done | median)
    cpu_us[$c]=$(cat "$results"/cpu-"$c"-[0-9]*.txt | median)
  done

  out ""
  out "### Throughput (wrk -t1 -c64, ${seconds} s x $rounds interleaved rounds, median)"
  out ""
  out "| contender | req/s | p50 ms | p99 ms | turnout's req/s vs. this | server CPU µs/request |"
  out "| --- | ---: | ---: | ---: | ---: | ---: |"
  for c in "${contenders[@]}"; do
    ratio=$(awk -v t="${rps[turnout]:-0}" -v x="${rps[$c]}" 'BEGIN {
      if (x > 0 && t > 0) printf "%.2fx", t / x; else print "n/a" }')
    out "| $c | ${rps[$c]} | ${p50[$c]} | ${p99[$c]} | $ratio | ${cpu_us[$c]} |"
  done

  # Latency at fixed rates: fractions of the slowest proxy's throughput, so every contender is
  # below saturation.
  slowest=$(for c in "${contenders[@]}"; do echo "${rps[$c]}"; done | sort -g | head -1)
  out ""
  out "### Latency at fixed rates (turnout-load --rate, 64 connections, ${seconds} s; ms)"
  out ""
  out "| rate req/s | contender | p50 | p99 | p99.9 | failed |"
  out "| ---: | --- | ---: | ---: | ---: | ---: |"
  for share in 25 50 75; do
    rate=$(awk -v s="$slowest" -v f="$share" 'BEGIN { r = int(s * f / 100); print (r < 1 ? 1 : r) }')
    for c in "${contenders[@]}"; do
      f=$results/rate-$c-$rate.json
      say "fixed rate $rate req/s: $c"
      "${load_pin[@]}" "$load" --url "http://127.0.0.1:${port[$c]}/" --connections 64 \
        --rate "$rate" --duration "${seconds}s" --json >"$f" 2>&1 || true
      out "| $rate | $c | $(json_get "$f" latency_ms.p50) | $(json_get "$f" latency_ms.p99) |" \
        "$(json_get "$f" latency_ms.p999) | $(json_get "$f" failed) |"
    done
  done

  for pid in "${throughput_pids[@]}"; do stop_contender "$pid"; done
fi

# --- b. switches under load ------------------------------------------------------------------
if [[ " $parts " == *" switch "* ]]; then
  # The load runs until the switches are done (plus a second), then is stopped with SIGINT;
  # its duration is only a safety bound.
  switch_under_load() {  # NAME PORT SWITCH-FUNCTION
    local name=$1 p=$2 fn=$3 i target load_pid t0 t1 spent=0
    say "switch test: $name, $switches switches under 256 connections"
    "${load_pin[@]}" "$load" --url "http://127.0.0.1:$p/" --connections 256 --duration 300s \
      --by-header X-Version --json >"$results/switch-$name.json" 2>"$results/switch-$name.err" &
    load_pid=$!
    spawned_pids+=("$load_pid")
    sleep 1
    for ((i = 1; i <= switches; i++)); do
      if ((i % 2 == 1)); then target=green; else target=blue; fi
      t0=${EPOCHREALTIME/./}
      "$fn" "$target" >>"$results/switch-$name.log" 2>&1 || echo "switch $i failed" >&2
      t1=${EPOCHREALTIME/./}
      spent=$((spent + t1 - t0))
      sleep "$switch_interval"
    done
    sleep 1
    kill -INT "$load_pid" 2>/dev/null || true
    wait "$load_pid" || true
    forget_pid "$load_pid"
    local f=$results/switch-$name.json
    switch_failed[$name]=$(json_get "$f" failed)
    out "| $name | $switches | $(json_get "$f" requests) | $(json_get "$f" failed) |" \
      "$(json_get "$f" responses.5xx) | $(json_get "$f" resets) | $(json_get "$f" timeouts) |" \
      "$(json_get "$f" errors) | $(json_get "$f" by_header.values.v1) |" \
      "$(json_get "$f" by_header.values.v2) | $(json_get "$f" latency_ms.p99) |" \
      "$(awk -v us="$spent" -v n="$switches" 'BEGIN { printf "%.1f", us / 1000 / n }') |"
  }

  out ""
  out "### Switches under load (turnout-load, 256 keep-alive connections)"
  out ""
  out "| contender | switches | requests | failed | 5xx | resets | timeouts | other |" \
    "v1 | v2 | p99 ms | ms per switch (command) |"
  out "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"

  switch_turnout() { "$turnout" router switch "$1" --admin "127.0.0.1:$c_ctl"; }
  switch_haproxy() {  # the runtime API on its TCP port, spoken with bash's /dev/tcp
    local on=$1 off=blue
    [[ $on == blue ]] && off=green
    exec 3<>"/dev/tcp/127.0.0.1/$c_ctl"
    printf 'set weight be/%s 100; set weight be/%s 0\n' "$on" "$off" >&3
    cat <&3
    exec 3<&-
  }
  switch_nginx() {  # swap the upstream file, then reload (SIGHUP to the master)
    local upstream_port=$b1
    [[ $1 == green ]] && upstream_port=$b2
    printf 'upstream be {\n  server 127.0.0.1:%s;\n  keepalive 256;\n}\n' "$upstream_port" \
      >"$work/nginx-proxy-$c_port.upstream"
    kill -HUP "$c_pid"
  }
  for c in turnout haproxy nginx; do
    wants "$c" || continue
    start_contender "$c"
    label=$c
    [[ $c == nginx ]] && label=nginx-reload
    switch_under_load "$label" "$c_port" "switch_$c"
    stop_contender "$c_pid"
  done
fi

# --- c. memory per idle connection -------------------------------------------------------------
if [[ " $parts " == *" memory "* ]]; then
  out ""
  out "### Memory per idle keep-alive client connection ($idle_conns connections)"
  out ""
  # Read twice: right after the last request (what a burst costs) and after 3 s with every
  # connection idle (what an idle connection keeps; turnout returns request buffers after 1 s).
  out "| contender | RSS before (KiB) | just after the requests (KiB) | after 3 s idle (KiB) | bytes per idle connection |"
  out "| --- | ---: | ---: | ---: | ---: |"
  measure_idle() {  # NAME PORT PID
    local name=$1 p=$2 pid=$3 before burst after clients line
    curl -fsS -o /dev/null "http://127.0.0.1:$p/"
    before=$(rss_kib "$pid")
    say "memory: $name, opening $idle_conns idle connections"
    spawn "$results/idle-$name.out" "${load_pin[@]}" "$idle_clients" \
      --url "http://127.0.0.1:$p/" --connections "$idle_conns" --hold 120s --timeout 60s
    clients=$spawned
    line=$(first_line "$results/idle-$name.out" 90) || line="ready 0 $idle_conns"
    burst=$(rss_kib "$pid")
    sleep 3  # the measured quantity is memory per *idle* connection
    after=$(rss_kib "$pid")
    stop_pid "$clients"
    forget_pid "$clients"
    read -r _ ok failed <<<"$line"
    mem_bytes[$name]=$(awk -v a="$after" -v b="$before" -v n="$ok" 'BEGIN {
        if (n > 0) printf "%.0f", (a - b) * 1024 / n; else print "n/a" }')
    out "| $name | $before | $burst | $after | ${mem_bytes[$name]}$(
        [[ $failed != 0 ]] && echo " ($failed of $idle_conns failed)") |"
  }
  for c in turnout haproxy nginx; do
    wants "$c" || continue
    start_contender "$c"
    measure_idle "$c" "$c_port" "$c_pid"
    stop_contender "$c_pid"
  done
fi

# --- d. containers: turnout's added time against the engine's own start -----------------------
if [[ " $parts " == *" containers "* ]]; then
  out ""
  container_args=(--no-build)
  [[ $quick -eq 1 ]] && container_args+=(--quick)
  TURNOUT_BUILD_DIR=$bin bench/containers/run.sh "${container_args[@]}" | tee -a "$summary"
fi

# --- targets ---------------------------------------------------------------------------------
verdict() {  # AWK-CONDITION (on a, b) A B
  awk -v a="$2" -v b="$3" "BEGIN { if (a == \"\" || b == \"\" || a == \"n/a\") print \"not measured\";
    else if ($1) print \"met\"; else print \"NOT met\" }"
}
out ""
out "### Targets"
out ""
out "| target | measured | verdict |"
out "| --- | --- | --- |"
out "| throughput >= 1.25x HAProxy | turnout ${rps[turnout]:-?} vs HAProxy ${rps[haproxy]:-?} req/s |" \
  "$(verdict 'a >= 1.25 * b' "${rps[turnout]:-}" "${rps[haproxy]:-}") |"
out "| p99 <= HAProxy's | turnout ${p99[turnout]:-?} ms vs HAProxy ${p99[haproxy]:-?} ms |" \
  "$(verdict 'a <= b' "${p99[turnout]:-}" "${p99[haproxy]:-}") |"
out "| 0 failed requests over $switches switches | ${switch_failed[turnout]:-?} failed |" \
  "$(verdict 'a == 0' "${switch_failed[turnout]:-}" 0) |"
out "| <= 1 KB per idle connection | ${mem_bytes[turnout]:-?} bytes |" \
  "$(verdict 'a <= 1024' "${mem_bytes[turnout]:-}" 0) |"

echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/machine.txt"
out ""
out "Machine:"
out ""
sed 's/^/    /' "$results/machine.txt" | tee -a "$summary"
say "raw results in $results"
