#!/usr/bin/env bash
# `turnout completion bash|zsh`: the generated scripts, driven the way the shells drive them.
#   completion_test.sh TURNOUT_BINARY
set -euo pipefail
turnout=${1:?usage: completion_test.sh TURNOUT_BINARY}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$turnout" completion bash >"$work/turnout.bash"
# shellcheck disable=SC1091
source "$work/turnout.bash"
complete -p turnout | grep -q -- '-F _turnout' || fail "complete -p turnout: $(complete -p turnout)"

# What bash offers for the words typed so far (the last one is being completed).
offered() {
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMP_LINE="$*"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _turnout turnout "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}"
}

[[ "$(offered turnout dep)" == "deploy" ]] || fail "turnout dep<TAB>: $(offered turnout dep)"
[[ "$(offered turnout deploy --w)" == "--wait" ]] || fail "turnout deploy --w<TAB>: $(offered turnout deploy --w)"
offered turnout up --f | grep -qx -- --foreground || fail "turnout up --f<TAB>"
offered turnout router --li | grep -qx -- --listen || fail "turnout router --li<TAB>"
offered turnout router sw | grep -qx switch || fail "turnout router sw<TAB>"
offered turnout help ro | grep -qx router || fail "turnout help ro<TAB>"
offered turnout completion z | grep -qx zsh || fail "turnout completion z<TAB>"
[[ -z "$(offered turnout deploy 2.4.1 --nosuch)" ]] || fail "an unknown flag was offered"
# Every command of `turnout --help` is offered after `turnout `: one table for both.
listed=$("$turnout" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 && /^  [a-z]/ {print $1}' | sort)
[[ -n "$listed" ]] || fail "no commands in turnout --help"
[[ "$(offered turnout "" | sort)" == "$listed" ]] || fail "offered commands differ from --help: $(offered turnout "" | tr '\n' ' ')"

"$turnout" completion zsh >"$work/_turnout"
if command -v zsh >/dev/null; then
  zsh -n "$work/_turnout" || fail "zsh -n _turnout"
  # Loaded from fpath as the package installs it: compinit finds #compdef turnout.
  zsh -f -c "fpath=('$work' \$fpath); autoload -Uz compinit; compinit -u -d '$work/zcompdump';
             [[ \${_comps[turnout]} == _turnout ]]" || fail "zsh: compinit does not map turnout to _turnout"
else
  echo "completion_test: zsh not installed, its script was only generated" >&2
fi
"$turnout" completion fish >/dev/null 2>&1 && fail "completion fish should be a usage error"
[[ $("$turnout" completion fish >/dev/null 2>&1; echo $?) -eq 2 ]] || fail "completion fish: exit status"
echo "completion_test: ok"
