#!/usr/bin/env bash
# Writes the man pages turnout.1 and turnoutd.8 with help2man, from the binaries' own --help
# (so they cannot drift from it): turnout's page also gets every command's --help.
#
#   scripts/man-pages.sh TURNOUT TURNOUTD VERSION OUT_DIR
set -euo pipefail
turnout=${1:?usage: man-pages.sh TURNOUT TURNOUTD VERSION OUT_DIR}
turnoutd=${2:?} version=${3:?} out=${4:?}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v help2man >/dev/null || { echo "man-pages: help2man is not installed (scripts/install-deps.sh)" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Each command's help, verbatim (roff-escaped), as one section of turnout.1.
{
  cat "$here/packaging/man/turnout.h2m"
  printf '\n[COMMANDS IN DETAIL]\n'
  "$turnout" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 && /^  [a-z]/ {print $1}' |
    while read -r command; do
      [[ "$command" == help ]] && continue
      printf '.SS "turnout %s"\n.nf\n' "$command"
      "$turnout" "$command" --help | sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
      printf '.fi\n'
    done
} >"$work/turnout.h2m"

# Reproducible: the date of the page is the source's (SOURCE_DATE_EPOCH) when given.
help2man --no-info --version-string="$version" --section 1 --include "$work/turnout.h2m" \
  --output "$out/turnout.1" "$turnout"
help2man --no-info --version-string="$version" --section 8 \
  --include "$here/packaging/man/turnoutd.h2m" --output "$out/turnoutd.8" "$turnoutd"
echo "man-pages: wrote $out/turnout.1 $out/turnoutd.8"
