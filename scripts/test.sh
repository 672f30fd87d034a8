#!/usr/bin/env bash
# Installs what is needed, builds turnout and runs the whole test suite:
#   1. AddressSanitizer + UBSan build (clang, -O2): every unit and integration test (real
#      processes, real sockets on loopback, a real PostgreSQL), then every fuzz target for a
#      bounded time over its seed corpus;
#   2. clang-format and clang-tidy over the sources (scripts/lint.sh, with the asan build's
#      compile commands);
#   3. ThreadSanitizer build: the tests labelled 'concurrency' (only their targets are built);
#   4. the Debian package of a release build (only turnout, turnoutd, their man pages and
#      completions are built): lintian, its contents, install + purge in a throwaway root
#      (the tests labelled 'package').
#
#   scripts/test.sh            everything above
#   scripts/test.sh --quick    a plain release build and its tests, no sanitizers
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[[ "${1:-}" == "--quick" ]] && quick=1

./scripts/install-deps.sh

jobs=$(nproc)
step() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

if [[ $quick -eq 1 ]]; then
  step "configure + build (release)"
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$jobs"
  step "test (release)"
  ctest --preset release -j "$jobs"
  step "all tests passed"
  exit 0
fi

step "configure + build (asan: AddressSanitizer + UBSan, with fuzz targets)"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
step "test (asan): unit, integration and fuzz"
ctest --preset asan -j "$jobs"

step "lint: clang-format, clang-tidy (scripts/lint.sh)"
./scripts/lint.sh build/asan

step "configure + build (tsan: the concurrency tests)"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs" --target concurrency_tests
step "test (tsan)"
ctest --preset tsan -j "$jobs"

step "configure + build (release: what the Debian package holds)"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs" --target turnout turnoutd package_files
step "test (package): lintian, contents, install + purge in a throwaway root"
ctest --preset release -L package

step "all test stages passed"
