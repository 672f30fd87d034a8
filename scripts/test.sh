#!/usr/bin/env bash
# Installs what is needed, builds turnout and runs the whole test suite:
#   1. release build: unit + integration tests (real processes, real sockets on loopback);
#   2. AddressSanitizer + UBSan build: the same tests, plus every fuzz target for a bounded time;
#   3. ThreadSanitizer build: the tests labelled 'concurrency'.
#
#   scripts/test.sh            everything above
#   scripts/test.sh --quick    the release build's tests only
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

./scripts/install-deps.sh

jobs=$(nproc)
step() { printf '\n==> %s\n' "$*"; }

run_preset() {
  local preset=$1
  step "configure + build ($preset)"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  step "test ($preset)"
  ctest --preset "$preset" -j "$jobs"
}

run_preset release
if [[ $quick -eq 0 ]]; then
  run_preset asan
  run_preset tsan
fi
step "all test stages passed"
