#!/usr/bin/env bash
# Checks the systemd units with `systemd-analyze verify` (no running systemd needed).
#
#   scripts/verify-units.sh UNIT_DIR [BINARY...]
#
# verify refuses a unit whose ExecStart binary is missing, so with BINARY arguments (the build's
# turnoutd and turnout) the units are checked as copies in which /usr/bin/NAME is replaced by the
# BINARY of that name; without them, as they are (an installed tree). Template units are checked through an instance (@check).
# Any output fails the check: verify reports unknown keys and bad values as warnings only.
# Man page references are not looked up here (the package test checks that the pages ship).
# Exit 77 (a skipped test) when systemd-analyze is not installed.
set -euo pipefail

unit_dir=${1:?usage: verify-units.sh UNIT_DIR [BINARY...]}
shift

if ! command -v systemd-analyze >/dev/null; then
  echo "verify-units: SKIPPED: systemd-analyze is not installed (Debian package systemd;" \
       "scripts/install-deps.sh installs it)" >&2
  exit 77
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
units=()
for unit in "$unit_dir"/*.service; do
  name=$(basename "$unit")
  cp "$unit" "$work/$name"
  for binary in "$@"; do
    sed -E -i "s#/usr/bin/$(basename "$binary")( |\$)#${binary}\1#g" "$work/$name"
  done
  if [[ "$name" == *@.service ]]; then
    units+=("$work/${name%@.service}@check.service")
  else
    units+=("$work/$name")
  fi
done
[[ ${#units[@]} -gt 0 ]] || { echo "verify-units: no units in $unit_dir" >&2; exit 1; }

status=0
out=$(systemd-analyze verify --man=no "${units[@]}" 2>&1) || status=$?
if [[ $status -ne 0 || -n "$out" ]]; then
  printf '%s\n' "$out" >&2
  echo "verify-units: FAILED (status $status)" >&2
  exit 1
fi
echo "verify-units: verified $(cd "$work" && echo *.service)"
