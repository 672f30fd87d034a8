#!/usr/bin/env bash
# The database benchmark: what turnout's safety around a release costs against the bare tools.
#
#   bench/db/run.sh               build turnout (release), run at scale 70 (a ~1 GB database)
#   bench/db/run.sh --no-build    use an existing release build
#   BENCH_SCALE=5 bench/db/run.sh a quick run (~75 MB)
#
# Environment: BENCH_SCALE (pgbench scale, default 70), BENCH_JOBS (pg_dump/pg_restore -j,
# default 2), BENCH_ROUNDS (interleaved rounds of (a) and (b), default 3), BENCH_PHASE_TIMEOUT
# (seconds each phase may take before it is killed, default 1800), TURNOUT_BUILD_DIR (default
# build/release, as for bench/run.sh).
#
# What it does, in a temporary directory, on a PostgreSQL 15 server of its own (initdb + pg_ctl on
# 127.0.0.1 at a free port, as the postgres user when run as root; stopped and removed at the end):
#   1. pgbench -i -s SCALE into database `bench`.
#   2. BENCH_ROUNDS rounds, in alternating order (a b, b a, a b, ...):
#      (a) the bare tools: pg_dump -Fd -jN, then pg_restore -jN into a fresh database;
#      (b) turnout: `turnout backup create --jobs N` (pg_dump from an exported snapshot + exact
#      row counts + schema fingerprint + SHA-256 of every file), `turnout backup verify --level 2`
#      (hashes + a full decode), `turnout rehearse --jobs N` with one small migration (restore
#      into a scratch database, row counts and fingerprint compared, the migration up, down and
#      up again, the scratch database dropped).
#   3. Prints each phase's median time, both totals (median over the rounds), every round's
#      ratio and the ratio of the medians as markdown; the raw outputs go to
#      bench/results/db-<UTC time>/ (not committed).
# Every phase runs under `timeout`, so the script ends by itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

build=1
for arg in "$@"; do
  case $arg in
    --no-build) build=0 ;;
    *) echo "usage: bench/db/run.sh [--no-build]   (BENCH_SCALE=N for another size)" >&2; exit 2 ;;
  esac
done
scale=${BENCH_SCALE:-70}
jobs=${BENCH_JOBS:-2}
limit=${BENCH_PHASE_TIMEOUT:-1800}
rounds=${BENCH_ROUNDS:-3}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/db: %s\n' "$*" >&2; exit 1; }

bin=${TURNOUT_BUILD_DIR:-build/release}
if [[ $build -eq 1 ]]; then
  say "building turnout (release) in $bin"
  if [[ $bin == build/release ]]; then
    cmake --preset release >/dev/null
  else
    cmake -S . -B "$bin" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$bin" --target turnout >&2
fi
turnout=$(realpath "$bin/src/cli/turnout")
[[ -x $turnout ]] || die "$turnout is missing; build first (run without --no-build)"
pgbin=$(pg_config --bindir 2>/dev/null || true)
[[ -x $pgbin/initdb ]] || pgbin=/usr/lib/postgresql/15/bin
for tool in "$pgbin/initdb" "$pgbin/pg_ctl" "$pgbin/postgres"; do
  [[ -x $tool ]] || die "$tool is missing: install postgresql-15 (scripts/install-deps.sh)"
done
for tool in pgbench pg_dump pg_restore psql jq ss; do
  command -v "$tool" >/dev/null || die "$tool is missing: install postgresql-15 and jq"
done

results=bench/results/db-$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p "$results"
results=$(realpath "$results")
work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-db-bench.XXXXXX")
chmod 755 "$work"
mkdir -p "$work/pg"

# PostgreSQL refuses to run as root: then the server is the postgres user's.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[[ $(id -u) -eq 0 ]] && chown postgres "$work/pg"

server_started=0
cleanup() {
  if [[ $server_started -eq 1 ]]; then
    as_owner "$pgbin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on now (the server binds it a moment later; a clash fails the
# start, and the script says so).
port=""
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 40000))
  if ! ss -Htln "sport = :$p" | grep -q .; then port=$p; break; fi
done
[[ -n $port ]] || die "no free port found"

say "PostgreSQL on 127.0.0.1:$port (data in $work/pg)"
as_owner "$pgbin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
as_owner "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -t 60 \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_wal_size=4GB" \
  start >/dev/null || { cat "$work/pg/log" >&2; die "the server did not start"; }
server_started=1
url=postgresql://postgres@127.0.0.1:$port

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"
  echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "disk: $(df -h --output=source,fstype,size "$work" | tail -1 | tr -s ' ')" \
    "(rotational: $(lsblk -dno ROTA "$(df --output=source "$work" | tail -1)" 2>/dev/null | tr -d ' ' || echo '?'))"
  echo "postgresql: $("$pgbin/postgres" --version), $(pg_dump --version)"
  echo "kernel: $(uname -sr)"
  echo "turnout: $(git rev-parse --short HEAD 2>/dev/null || echo unknown) (release build)"
  echo "scale: $scale, jobs: $jobs"
  echo "loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$results/machine.txt"
cat "$results/machine.txt" >&2

# timed NAME CMD...: runs CMD under the phase limit, stores its seconds in secs[NAME]; fails the
# script when CMD fails (exit codes listed in ok_codes[NAME] are accepted).
declare -A secs ok_codes
timed() {
  local name=$1 rc=0 t0 t1
  shift
  t0=$(date +%s.%N)
  timeout "$limit" "$@" || rc=$?
  t1=$(date +%s.%N)
  secs[$name]=$(echo "$t1 - $t0" | bc)
  if [[ $rc -ne 0 && " ${ok_codes[$name]:-} " != *" $rc "* ]]; then
    die "$name failed (exit $rc$([[ $rc -eq 124 ]] && echo ", over ${limit}s"))"
  fi
  say "$name: ${secs[$name]} s"
}

say "pgbench -i -s $scale"
psql -q "$url/postgres" -c "CREATE DATABASE bench"
timed init pgbench -i -q -s "$scale" "$url/bench" 2>"$results/pgbench.log"
say "init: ${secs[init]} s"
db_size=$(psql -tA "$url/postgres" -c "SELECT pg_size_pretty(pg_database_size('bench'))")
say "database size: $db_size"

# (a) The bare tools.
run_bare() {
  local r=$1
  timed "bare_dump_$r" pg_dump -Fd -j "$jobs" -f "$work/bare" "$url/bench"
  dump_size=$(du -sh "$work/bare" | cut -f1)
  psql -q "$url/postgres" -c "CREATE DATABASE bare_restore TEMPLATE template0"
  timed "bare_restore_$r" pg_restore -j "$jobs" -d "$url/bare_restore" "$work/bare"
  psql -q "$url/postgres" -c "DROP DATABASE bare_restore"
  rm -rf "$work/bare"
}

# (b) turnout: backup, verify with a full decode, rehearsal with one small migration.
mkdir -p "$work/migrations"
printf "SET lock_timeout = '5s';\nALTER TABLE pgbench_accounts ADD COLUMN note text;\n" \
  >"$work/migrations/0001_accounts_note.up.sql"
printf "ALTER TABLE pgbench_accounts DROP COLUMN note;\n" \
  >"$work/migrations/0001_accounts_note.down.sql"
run_turnout() {
  local r=$1
  timed "backup_create_$r" "$turnout" backup create --url "$url/bench" --dir "$work/backups" \
    --jobs "$jobs" --json >"$results/create-$r.json"
  timed "backup_verify_$r" "$turnout" backup verify latest --level 2 --dir "$work/backups" \
    --json >"$results/verify-$r.json"
  ok_codes[rehearse_$r]="1"  # 1 = something flagged: still timed, and shown below
  timed "rehearse_$r" "$turnout" rehearse latest --backups "$work/backups" \
    --migrations "$work/migrations" --url "$url/postgres" --jobs "$jobs" --json \
    >"$results/rehearse-$r.json"
  rm -rf "$work/backups"
}

# Interleaved (a b, b a, a b, ...) so that neither side always runs on a warmer cache, on WAL
# files the other one already created, or in a quieter moment of the machine.
for r in $(seq 1 "$rounds"); do
  say "round $r of $rounds"
  if ((r % 2)); then run_bare "$r"; run_turnout "$r"; else run_turnout "$r"; run_bare "$r"; fi
done
echo "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/machine.txt"
cp "$work/pg/log" "$results/postgresql.log"

# --- summary ------------------------------------------------------------------------------------
summary=$results/summary.md
out() { printf '%s\n' "$*" | tee -a "$summary"; }
f() { printf '%.1f' "$1"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
  if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# m NAME: the median over the rounds of secs[NAME_<round>].
m() { local r vals=(); for r in $(seq 1 "$rounds"); do vals+=("${secs[${1}_$r]}"); done; median "${vals[@]}"; }
# phase NAME: the median over the rounds of the rehearsal's own phase (seconds).
phase() {
  local r vals=()
  for r in $(seq 1 "$rounds"); do
    vals+=("$(jq -r --arg p "$1" '(.phase_ms[$p] // 0) / 1000' "$results/rehearse-$r.json")")
  done
  median "${vals[@]}"
}
bare_totals=() turnout_totals=() ratios=()
for r in $(seq 1 "$rounds"); do
  a=$(echo "${secs[bare_dump_$r]} + ${secs[bare_restore_$r]}" | bc)
  b=$(echo "${secs[backup_create_$r]} + ${secs[backup_verify_$r]} + ${secs[rehearse_$r]}" | bc)
  bare_totals+=("$a") turnout_totals+=("$b")
  ratios+=("$(echo "scale=2; $b / $a" | bc)")
done
bare_total=$(median "${bare_totals[@]}")
turnout_total=$(median "${turnout_totals[@]}")
ratio=$(echo "scale=2; $turnout_total / $bare_total" | bc)
flagged=$(jq -r '.findings | length' "$results/rehearse-1.json")

out "pgbench scale $scale: database $db_size, directory dump $dump_size; -j $jobs;" \
  "median of $rounds interleaved rounds"
out ""
out "| path | phase | seconds |"
out "| --- | --- | ---: |"
out "| (a) bare | pg_dump -Fd -j$jobs | $(f "$(m bare_dump)") |"
out "| (a) bare | pg_restore -j$jobs into a fresh database | $(f "$(m bare_restore)") |"
out "| (a) bare | **total** | **$(f "$bare_total")** |"
out "| (b) turnout | backup create --jobs $jobs | $(f "$(m backup_create)") |"
out "| (b) turnout | backup verify --level 2 | $(f "$(m backup_verify)") |"
out "| (b) turnout | rehearse --jobs $jobs | $(f "$(m rehearse)") |"
out "| | - of which: restore (hashes, pg_restore, row counts, fingerprint) | $(f "$(phase restore)") |"
out "| | - of which: migration up / down / up again | $(f "$(phase up)") / $(f "$(phase down)") / $(f "$(phase reup)") |"
out "| | - of which: drop the scratch database | $(f "$(phase drop)") |"
out "| (b) turnout | **total** | **$(f "$turnout_total")** |"
out ""
out "per round, (a) total / (b) total / ratio: $(for r in $(seq 1 "$rounds"); do
  printf '%s / %s / %sx; ' "$(f "${bare_totals[r - 1]}")" "$(f "${turnout_totals[r - 1]}")" \
    "${ratios[r - 1]}"; done)"
out "ratio of the medians (b)/(a): **${ratio}x** (goal: <= 1.3x); rehearsal findings: $flagged"
say "raw results in $results"
