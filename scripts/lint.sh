#!/usr/bin/env bash
# Static checks of the C++ sources, run by scripts/test.sh after the asan build:
#   1. clang-format (.clang-format): every tracked .h/.cc is formatted; prints the files that are
#      not and the command that fixes them.
#   2. clang-tidy (.clang-tidy, a small profile of checks that find bugs, not style): every
#      non-test source, with the compile commands of BUILD_DIR (default build/asan).
#
#   scripts/lint.sh [BUILD_DIR]      check
#   scripts/lint.sh --fix-format     reformat every file in place (then review and commit)
set -euo pipefail
cd "$(dirname "$0")/.."

format=clang-format-14
tidy=clang-tidy-14
sources() { git ls-files 'src/*.cc' 'src/*.h' 'bench/*.cc' 'bench/*.h' 'demo/*.cc' 'demo/*.h'; }

if [[ "${1:-}" == "--fix-format" ]]; then
  sources | xargs "$format" -i
  exit 0
fi
build="${1:-build/asan}"
if [[ ! -f "$build/compile_commands.json" ]]; then
  echo "lint: $build/compile_commands.json is missing; configure first (cmake --preset asan)" >&2
  exit 2
fi

status=0
unformatted=$(sources | while read -r f; do
  "$format" --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"
done)
if [[ -n "$unformatted" ]]; then
  echo "lint: not clang-format clean (fix: scripts/lint.sh --fix-format):" >&2
  echo "$unformatted" | sed 's/^/  /' >&2
  status=1
else
  echo "lint: clang-format: $(sources | wc -l) files clean"
fi

# Test sources and fuzz targets are left out: the profile is about the shipped code.
mapfile -t tidy_sources < <(git ls-files 'src/*.cc' | grep -v -e '_test\.cc$' -e '_fuzz\.cc$' -e '/testing/')
tidy_out=$(mktemp)
trap 'rm -f "$tidy_out"' EXIT
# clang-tidy exits non-zero on a finding (WarningsAsErrors) and when it cannot check a file.
if printf '%s\n' "${tidy_sources[@]}" |
    xargs -P "$(nproc)" -n 4 "$tidy" -p "$build" --quiet >"$tidy_out" 2>&1; then
  echo "lint: clang-tidy: ${#tidy_sources[@]} sources clean"
else
  grep -v -e ' warnings\? generated\.$' -e '^Suppressed ' "$tidy_out" >&2 || true
  echo "lint: clang-tidy failed (findings above; .clang-tidy lists the checks)" >&2
  status=1
fi
exit $status
