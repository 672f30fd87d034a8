#!/usr/bin/env bash
# Enforces the module map of docs/ARCHITECTURE.md: the "may use" column of its module table is
# the only list of allowed arrows. Fails (status 1), with one line per violation, when
#   - a module's source includes "<other module>/..." that its row does not allow (tests, testing
#     helpers, fuzz targets and benchmarks follow the rule for test code, below);
#   - a target named in the table links a turnout target its row does not allow;
#   - a turnout library, or a folder under src/, has no row in the table, or the table names a
#     turnout target the build does not define.
# Status 2: wrong usage or unreadable input.
#
# The rules it applies (docs/ARCHITECTURE.md, "Modules"):
#   - Every module may use common. A row's "may use" entries are separated by commas or
#     semicolons; an entry starts with a module (folder) name, which allows that folder's targets
#     except its testing libraries, or a target name without "turnout_", which allows that target.
#     What follows in parentheses is a comment, except "header only" (includes allowed, linking
#     not) and "tests only" (includes allowed in the module's test code only, linking not). Other
#     entries (OpenSSL, Asio, ...) are third-party libraries and are not checked here.
#   - A module's own code may include the modules allowed by its rows, except its testing
#     libraries' rows (turnout_*_testing).
#   - Test code (*_test.cc/.h, *_fixture.h, *_fuzz.cc, *_benchmark.cc, files under testing/, and
#     the sources of a turnout_*_testing library) may also include what its module's testing
#     rows allow, the testing helpers of any module (headers under <module>/testing/ or of a
#     turnout_*_testing library), and what the rows of the testing helpers it includes allow.
#   - Targets in the same row may link each other.
#
#   scripts/check-modules.sh --targets BUILD/module_targets.tsv [--root DIR]
#
# The targets file is written by CMake at configure time (cmake/module_map.cmake); DIR (default:
# this repository) holds docs/ARCHITECTURE.md and the sources. ctest runs it as `module_map`.
set -euo pipefail

usage() {
  sed -n '2,29s/^# \{0,1\}//p' "$0"
}

root="$(cd "$(dirname "$0")/.." && pwd)"
targets=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "check-modules: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$targets" ]]; then
  echo "check-modules: --targets FILE is required (CMake writes <build>/module_targets.tsv)" >&2
  exit 2
fi
targets="$(cd "$(dirname "$targets")" && pwd)/$(basename "$targets")"
arch="docs/ARCHITECTURE.md"
cd "$root"
for f in "$arch" "$targets"; do
  if [[ ! -r "$f" ]]; then
    echo "check-modules: cannot read $f (configure the build first for the targets file)" >&2
    exit 2
  fi
done

# The folders to scan: every folder under src/ and every other folder the table names.
folders=()
for d in src/*/; do folders+=("${d%/}"); done
while IFS= read -r d; do
  [[ -d "$d" && "$d" != src/* ]] && folders+=("$d")
done < <(awk -F'|' '$0 == "## Modules" { on = 1; next } /^## / { on = 0 }
  on && /^\|/ { f = $2; gsub(/[` ]/, "", f); sub(/\/$/, "", f); if (f != "" && f != "folder" && f !~ /^-+$/) print f }' "$arch")

includes="$(mktemp)"
out="$(mktemp)"
trap 'rm -f "$includes" "$out"' EXIT
status=0
# path<TAB>line<TAB>included path, for every #include "..." of a .cc or .h file.
find "${folders[@]}" -type f \( -name '*.cc' -o -name '*.h' \) | LC_ALL=C sort |
  while IFS= read -r f; do
    awk -v f="$f" '/^[ \t]*#[ \t]*include[ \t]*"/ {
        s = $0; sub(/^[^"]*"/, "", s); sub(/".*$/, "", s); print f "\t" FNR "\t" s }' "$f"
  done > "$includes"

awk -F'\t' -v arch="$arch" -v targets="$targets" -v folders="${folders[*]}" '
function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
function add(list, item) { return list == "" ? item : list ", " item }
function basename(p) { sub(/.*\//, "", p); return p }
function isTestingTarget(t) { return t ~ /^turnout_.*_testing$/ }
# The module (table name) of a source path, "" when outside every folder.
function moduleOf(p,   m) {
  if (p ~ /^src\//) { m = p; sub(/^src\//, "", m); sub(/\/.*$/, "", m); return m }
  m = p; sub(/\/.*$/, "", m); return m
}
# The turnout_*_testing library a header belongs to ("" when none): the library of its .cc, or
# for a header under <module>/testing/, the testing library of that folder.
function helperTarget(inc,   x, path, cc, t) {
  x = moduleOf("src/" inc)
  if (!(x in modFolder)) return ""
  path = modFolder[x] "/" substr(inc, length(x) + 2)
  cc = path; sub(/\.h$/, ".cc", cc)
  if ((cc in srcOwner) && isTestingTarget(srcOwner[cc])) return srcOwner[cc]
  if (inc ~ /\/testing\//)
    for (t in tFolder) if (tFolder[t] == modFolder[x] && isTestingTarget(t)) return t
  return ""
}
function isHelperHeader(inc) { return inc ~ /^[^\/]+\/testing\// || helperTarget(inc) != "" }
function isTestCode(p,   b) {
  b = basename(p)
  if (b ~ /_test\.(cc|h)$/ || b ~ /_fixture\.h$/ || b ~ /_fuzz\.cc$/ || b ~ /_benchmark\.cc$/) return 1
  if (p ~ /\/testing\//) return 1
  return (p in srcOwner) && isTestingTarget(srcOwner[p])
}
# Splits a "may use" cell at the commas and semicolons outside parentheses into entries[1..n]; returns n.
function splitEntries(cell, entries,   i, c, depth, cur, n) {
  n = 0; depth = 0; cur = ""
  for (i = 1; i <= length(cell); i++) {
    c = substr(cell, i, 1)
    if (c == "(") depth++
    if (c == ")") depth--
    if ((c == "," || c == ";") && depth == 0) { entries[++n] = cur; cur = ""; continue }
    cur = cur c
  }
  entries[++n] = cur
  return n
}
function violation(msg) { print msg; bad++ }

FILENAME == arch {
  if ($0 == "## Modules") { inTable = 1; next }
  if ($0 ~ /^## /) inTable = 0
  if (!inTable || $0 !~ /^\|/) next
  n = split($0, c, "|")
  folder = trim(c[2]); gsub(/`/, "", folder); sub(/\/$/, "", folder)
  if (folder == "folder" || folder ~ /^-+$/) next
  if (n != 6) { violation(arch ": a row of the module table has " n - 2 " columns, not 4: " $0); next }
  if (folder != "") {
    cur = moduleOf(folder); modFolder[cur] = folder; modOrder[++mods] = cur
  }
  if (cur == "") { violation(arch ": the module table starts with a row without a folder"); next }
  row = ++rows; rowMod[row] = cur; rowUse[row] = trim(c[5]); rowTesting[row] = 1; named = 0
  cell = c[3]
  while (match(cell, /`[^`]+`/)) {
    t = substr(cell, RSTART + 1, RLENGTH - 2); cell = substr(cell, RSTART + RLENGTH)
    rowOf[t] = row; named++
    if (t ~ /^turnout_/) modTargets[cur] = modTargets[cur] " " t
    if (!isTestingTarget(t)) rowTesting[row] = 0
  }
  if (named == 0) rowTesting[row] = 0
  next
}
FILENAME == targets {
  if ($0 ~ /^#/ || NF < 3) next
  tType[$1] = $2; tFolder[$1] = $3; tLinks[$1] = $4
  ns = split($5, s, " ")
  for (i = 1; i <= ns; i++) srcOwner[s[i]] = $1
  next
}
{ incFile[++incs] = $1; incLine[incs] = $2; incPath[incs] = $3 }

END {
  # What each row allows: modules to include (rowInc), targets to link (rowLink).
  for (r = 1; r <= rows; r++) {
    rowInc[r, "common"] = 1; rowLink[r, "turnout_common"] = 1
    ne = splitEntries(rowUse[r], e)
    for (i = 1; i <= ne; i++) {
      entry = trim(e[i]); gsub(/`/, "", entry)
      headerOnly = (entry ~ /\((header|tests) only/)
      testsOnly = (entry ~ /\(tests only/)
      if (!match(entry, /^[A-Za-z0-9_-]+/)) continue
      name = substr(entry, 1, RLENGTH)
      if (name in modFolder) {
        x = name
        if (!headerOnly) { nt = split(modTargets[x], ts, " "); for (j = 1; j <= nt; j++) if (!isTestingTarget(ts[j])) rowLink[r, ts[j]] = 1 }
      } else if (("turnout_" name) in rowOf) {
        x = rowMod[rowOf["turnout_" name]]
        if (!headerOnly) rowLink[r, "turnout_" name] = 1
      } else continue
      if (testsOnly) rowTestInc[r, x] = 1
      else rowInc[r, x] = 1
    }
  }
  # Per module: what its own code may include (prod), what its test code may include (test).
  for (r = 1; r <= rows; r++) {
    m = rowMod[r]
    for (j = 1; j <= mods; j++) {
      x = modOrder[j]
      if (!((r, x) in rowInc) || x == m) continue
      if (!rowTesting[r] && !((m, x) in prod)) { prod[m, x] = 1; if (x != "common") prodList[m] = add(prodList[m], x) }
      if (!((m, x) in test)) test[m, x] = 1
    }
    for (j = 1; j <= mods; j++) if ((r, modOrder[j]) in rowTestInc) test[m, modOrder[j]] = 1
  }
  for (m in modFolder) prodList[m] = add(prodList[m], "common")

  # Folders without a row.
  nf = split(folders, fs, " ")
  for (i = 1; i <= nf; i++) {
    m = moduleOf(fs[i])
    if (!(m in modFolder))
      violation(fs[i] ": a folder without a row in the module table of " arch ": add its row (folder, target(s), owns, may use)")
  }

  # Links: every turnout library has a row; every target in the table links what its row allows.
  for (t in tType) {
    if (t ~ /^turnout_/ && tType[t] ~ /LIBRARY$/ && !(t in rowOf))
      violation(t " (" tFolder[t] "): a library without a row in the module table of " arch ": name it in its module'"'"'s row, or add a row for it")
  }
  for (t in rowOf) {
    if (t ~ /^turnout/ && t !~ /[\/.]/ && !(t in tType))
      violation(arch " names " t ", a target the build does not define: correct the table")
  }
  for (t in tType) {
    if (!(t in rowOf)) continue
    r = rowOf[t]
    nl = split(tLinks[t], ls, " ")
    for (i = 1; i <= nl; i++) {
      l = ls[i]
      if (l !~ /^turnout_[A-Za-z0-9_]+$/ || ((t, l) in seenLink)) continue
      seenLink[t, l] = 1
      if (((r, l) in rowLink) || ((l in rowOf) && rowOf[l] == r)) continue
      allowed = ""
      for (j = 1; j <= mods; j++) {
        nt = split(modTargets[modOrder[j]], ts, " ")
        for (k = 1; k <= nt; k++) if ((r, ts[k]) in rowLink) allowed = add(allowed, ts[k])
      }
      violation(t " links " l ": its row in " arch " allows only " allowed " (and the targets of its own row)")
    }
  }

  # Test code: the testing helpers it includes bring what their rows allow.
  for (i = 1; i <= incs; i++) {
    p = incFile[i]; inc = incPath[i]; m = moduleOf(p); x = moduleOf("src/" inc)
    if (!(m in modFolder) || !(x in modFolder) || !isTestCode(p)) continue
    h = helperTarget(inc)
    if (h == "") { if (inc ~ /^[^\/]+\/testing\//) helperNeeds[m, x] = 1; continue }
    hr = rowOf[h]
    helperNeeds[m, rowMod[hr]] = 1
    for (y in modFolder) if ((hr, y) in rowInc) helperNeeds[m, y] = 1
  }

  # Includes.
  for (i = 1; i <= incs; i++) {
    p = incFile[i]; inc = incPath[i]; m = moduleOf(p); x = moduleOf("src/" inc)
    if (!(m in modFolder) || !(x in modFolder) || inc !~ /\//) continue
    if (x == m || x == "common") continue
    if (!isTestCode(p)) {
      if ((m, x) in prod) continue
      violation(p ":" incLine[i] " includes " inc ": " m " may use only " prodList[m] " — see " arch)
      continue
    }
    if (((m, x) in test) || ((m, x) in helperNeeds) || isHelperHeader(inc)) continue
    violation(p ":" incLine[i] " (test code) includes " inc ": " m "'"'"'s tests may use only " prodList[m] \
              ", the testing helpers of any module and what those helpers use — see " arch)
  }
  if (bad) exit 1
  print "check-modules: " mods " modules, " incs " includes: all within the module map of " arch
}
' "$arch" "$targets" "$includes" > "$out" || status=$?
# Violations sorted, so that the output does not depend on awk's hash order.
LC_ALL=C sort "$out"
if [[ $status -ne 0 ]]; then
  echo "check-modules: $(wc -l < "$out") violation(s) of the module map: fix the include or the" \
       "link, or the table in $arch when the table is what is wrong"
  exit "$status"
fi
