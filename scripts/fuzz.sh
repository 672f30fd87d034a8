#!/usr/bin/env bash
# Runs turnout's libFuzzer targets (asan preset: clang, AddressSanitizer + UBSan; --fast: the fuzz
# preset, UBSan only, with an ASan replay of the final corpus) and prints one line per target.
# See docs/SECURITY.md "Fuzzing".
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/fuzz.sh [options] [SECONDS] [TARGET...] [-- LIBFUZZER-FLAG...]

Builds the fuzz targets of the asan preset when needed, then runs each TARGET (default: every
fuzz target) for SECONDS (default: 60), one after the other, over a scratch copy of its corpus
(the corpus in the repository is not changed) with its dictionary. Prints one line per target:

  TARGET  execs  exec/s  cov  ft  corpus  crashes  log

cov and ft are libFuzzer's final coverage figures (edges, features); corpus is the number of
inputs in the scratch corpus at the end. A finding (crash, leak, timeout, out-of-memory) leaves
its input beside the log and makes the script exit with status 1.

Options:
  --fast          fuzz with the targets of the fuzz preset (libFuzzer + UBSan, no ASan: several
                  times faster, for long runs), then replay every input of each target's final
                  corpus under the asan preset's build; the line ends with "asan-replay: ok" or
                  "asan-replay: FAILED" (a finding)
  --list          print the fuzz targets and exit
  --runs N        stop each target after N executions instead of after SECONDS
  --nice N        run the targets with this niceness (default: 10)
  --minimise      instead of fuzzing, reduce each target's corpus in the repository to the
                  inputs libFuzzer's -merge=1 keeps (file names are kept)
  --out DIR       where logs, scratch corpora and findings go (default: a new directory
                  under ${TMPDIR:-/tmp})
  -h, --help      this text
Flags after -- go to every target as they are (e.g. -- -max_len=512).

Examples:
  scripts/fuzz.sh                      every target, 60 s each
  scripts/fuzz.sh 600 http_response_head_fuzz
  scripts/fuzz.sh --runs 10000000 service_config_fuzz
  scripts/fuzz.sh --fast --runs 10000000 service_config_fuzz
EOF
}

cd "$(dirname "$0")/.."
root=$(pwd)
asan_build="$root/build/asan"
build="$asan_build"
preset=asan
fast=0

seconds=60
runs=""
niceness=10
minimise=0
list=0
out=""
targets=()
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --) shift; extra=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    --list) list=1 ;;
    --fast) fast=1 ;;
    --runs) runs="${2:?--runs needs a number}"; shift ;;
    --nice) niceness="${2:?--nice needs a number}"; shift ;;
    --minimise|--minimize) minimise=1 ;;
    --out) out="${2:?--out needs a directory}"; shift ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *)
      if [[ ${#targets[@]} -eq 0 && "$1" =~ ^[0-9]+$ ]]; then
        seconds="$1"
      else
        targets+=("$1")
      fi
      ;;
  esac
  shift
done
if [[ -n "$runs" && ! "$runs" =~ ^[0-9]+$ ]]; then
  echo "fuzz.sh: --runs needs a number, got '$runs'" >&2
  exit 2
fi

if [[ $fast -eq 1 ]]; then
  preset=fuzz
  build="$root/build/fuzz"
  [[ -d "$asan_build/fuzz" ]] || cmake --preset asan >/dev/null
fi
# Configure (again: a target added since the last configure must be listed too); each fuzz
# target describes itself in build/<preset>/fuzz/<name>.txt.
cmake --preset "$preset" >/dev/null
all=()
for f in "$build"/fuzz/*.txt; do
  [[ -e "$f" ]] && all+=("$(basename "$f" .txt)")
done
if [[ ${#all[@]} -eq 0 ]]; then
  echo "fuzz.sh: no fuzz targets in $build (is clang installed? see scripts/install-deps.sh)" >&2
  exit 2
fi
if [[ $list -eq 1 ]]; then
  printf '%s\n' "${all[@]}"
  exit 0
fi
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
for t in "${targets[@]}"; do
  if [[ ! -f "$build/fuzz/$t.txt" ]]; then
    echo "fuzz.sh: unknown target '$t'; the targets are: ${all[*]}" >&2
    exit 2
  fi
done

cmake --build --preset "$preset" --target "${targets[@]}" >/dev/null
[[ $fast -eq 1 ]] && cmake --build --preset asan --target "${targets[@]}" >/dev/null

field() { sed -n "s/^$2=//p" "$build/fuzz/$1.txt"; }
asan_binary() { sed -n "s/^binary=//p" "$asan_build/fuzz/$1.txt"; }

if [[ $minimise -eq 1 ]]; then
  for t in "${targets[@]}"; do
    corpus=$(field "$t" corpus)
    binary=$(field "$t" binary)
    kept=$(mktemp -d)
    "$binary" -merge=1 -timeout=10 -rss_limit_mb=2048 "$kept" "$corpus" >/dev/null 2>&1
    # -merge names what it keeps by the SHA-1 of its content: keep those files, by their names.
    before=$(find "$corpus" -type f | wc -l)
    find "$corpus" -type f -print0 | while IFS= read -r -d '' seed; do
      sum=$(sha1sum "$seed" | cut -d' ' -f1)
      [[ -e "$kept/$sum" ]] && rm -f "$kept/$sum" || rm -f "$seed"
    done
    rm -rf "$kept"
    echo "$t: $before -> $(find "$corpus" -type f | wc -l) inputs"
  done
  exit 0
fi

[[ -z "$out" ]] && out=$(mktemp -d "${TMPDIR:-/tmp}/turnout-fuzz.XXXXXX")
mkdir -p "$out"
limit="-max_total_time=$seconds"
[[ -n "$runs" ]] && limit="-runs=$runs"

printf '%-26s %12s %8s %6s %7s %7s %8s  %s\n' target execs exec/s cov ft corpus crashes log
found=0
for t in "${targets[@]}"; do
  binary=$(field "$t" binary)
  corpus=$(field "$t" corpus)
  dict=$(field "$t" dict)
  work="$out/$t.corpus"
  log="$out/$t.log"
  rm -rf "$work"
  mkdir -p "$work"
  cp -R "$corpus/." "$work/"
  args=("$limit" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        "-artifact_prefix=$out/$t-")
  [[ -n "$dict" ]] && args+=("-dict=$dict")
  args+=("${extra[@]}")
  status=0
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" nice -n "$niceness" \
    "$binary" "${args[@]}" "$work" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # The last status line ("#N DONE cov: X ft: Y corp: ..." or the last progress line).
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$(find "$out" -maxdepth 1 -name "$t-*" -type f | wc -l)
  if [[ $status -ne 0 || $crashes -gt 0 ]]; then
    found=1
    [[ $crashes -eq 0 ]] && crashes="exit $status"
  fi
  replay=""
  if [[ $fast -eq 1 ]]; then
    # Every input the run kept, once, under AddressSanitizer + UBSan: what the fast build cannot
    # see (a read past a buffer that did not crash) fails here.
    replay="  asan-replay: ok"
    if ! ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" nice -n "$niceness" "$(asan_binary "$t")" \
        -runs=0 -timeout=10 -rss_limit_mb=2048 "-artifact_prefix=$out/$t-asan-" "$work" \
        >"$out/$t.asan-replay.log" 2>&1; then
      replay="  asan-replay: FAILED ($out/$t.asan-replay.log)"
      found=1
    fi
  fi
  printf '%-26s %12s %8s %6s %7s %7s %8s  %s%s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
    "${ft:-?}" "$(find "$work" -type f | wc -l)" "$crashes" "$log" "$replay"
done
if [[ $found -ne 0 ]]; then
  echo "fuzz.sh: findings above; inputs in $out (reproduce: <binary> <input>)" >&2
  exit 1
fi
