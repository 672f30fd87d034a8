#!/usr/bin/env bash
# Checks turnout's Debian package (the ctest `package_deb`, label package):
#   1. lintian: no error and no warning other than those packaging/debian/lintian-overrides
#      accepts, each with its reason;
#   2. its contents (dpkg-deb -c) are exactly the expected files, its maintainer scripts are
#      there and executable, its dependencies were computed (libc6 among them);
#   3. it installs into a throwaway root: an overlay of this machine's own root filesystem in a
#      Podman container (`--rootfs /:O`: the root given as an overlay; no network), so the dependencies are present and nothing
#      of the host changes. There: postinst created the `turnout` system user and group, the
#      binaries run, the installed completion is what the binary prints, the installed units
#      pass `systemd-analyze verify` (man pages included), a second install keeps one user, and
#      `dpkg --purge` removes the files, the user and the group.
#
#   scripts/package-test.sh DEB
# Step 3 is skipped (with a message) where podman is not installed; exit 1 on any failure.
set -euo pipefail
deb=$(realpath "${1:?usage: package-test.sh DEB}")
here=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
step() { echo "package-test: $*"; }

# 1. lintian (its own overrides file is shipped in the package and applied from there).
step "lintian"
status=0
out=$(lintian --fail-on error,warning "$deb" 2>&1) || status=$?
out=$(printf '%s\n' "$out" | grep -v '^running with root privileges' || true)
[[ -z "$out" ]] || printf '%s\n' "$out"
[[ $status -eq 0 ]] || fail "lintian reports errors or warnings (above)"

# 2. contents and control data.
step "contents"
expected="/lib/systemd/system/turnout-router@.service
/lib/systemd/system/turnoutd.service
/usr/bin/turnout
/usr/bin/turnoutd
/usr/share/bash-completion/completions/turnout
/usr/share/doc/turnout/changelog.gz
/usr/share/doc/turnout/copyright
/usr/share/lintian/overrides/turnout
/usr/share/man/man1/turnout.1.gz
/usr/share/man/man8/turnoutd.8.gz
/usr/share/zsh/vendor-completions/_turnout"
actual=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {print $6}' | sed 's#^\.##' | sort)
[[ "$actual" == "$expected" ]] || fail "contents differ:
$(diff <(echo "$expected") <(echo "$actual") || true)"
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ && $6 ~ /usr\/bin\// && $1 != "-rwxr-xr-x" {exit 1}' ||
  fail "a binary is not mode 0755"
depends=$(dpkg-deb -f "$deb" Depends)
[[ "$depends" == *adduser* && "$depends" == *libc6* ]] || fail "Depends: $depends"
control=$(mktemp -d)
trap 'rm -rf "$control"' EXIT
dpkg-deb -e "$deb" "$control"
for script in postinst prerm postrm; do
  [[ -x "$control/$script" ]] || fail "no executable $script"
  sh -n "$control/$script" || fail "$script: syntax"
done

# 3. install, reinstall, purge in a throwaway root.
if ! command -v podman >/dev/null; then
  step "install into a throwaway root: SKIPPED (podman is not installed)"
  exit 0
fi
step "install into a throwaway root (overlay of /)"
work=$(mktemp -d)
# (Podman mounts its storage's overlay directory onto itself; it goes before the directory.)
trap 'umount "$work/storage/overlay" 2>/dev/null || true; rm -rf "$control" "$work"' EXIT
# Podman's rlimit and runtime defaults fail on some hosts (docs/containers.md).
cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cp "$deb" "$work/turnout.deb"
cat >"$work/inside.sh" <<'INSIDE'
set -eu
fail() { echo "inside: FAIL: $*" >&2; exit 1; }
getent passwd turnout >/dev/null && fail "the root already has a turnout user"
dpkg -i /pkg/turnout.deb >/dev/null
entry=$(getent passwd turnout) || fail "postinst did not create the turnout user"
uid=$(echo "$entry" | cut -d: -f3)
[ "$uid" -lt 1000 ] || fail "turnout is not a system user: $entry"
case "$entry" in *:/usr/sbin/nologin) ;; *) fail "the turnout user can log in: $entry" ;; esac
getent group turnout >/dev/null || fail "no turnout group"
[ "$(id -gn turnout)" = turnout ] || fail "turnout's primary group: $(id -gn turnout)"
turnout --help >/dev/null || fail "turnout --help"
turnoutd --help >/dev/null || fail "turnoutd --help"
turnout completion bash | cmp -s - /usr/share/bash-completion/completions/turnout ||
  fail "the installed bash completion is not what turnout prints"
out=$(systemd-analyze verify /lib/systemd/system/turnoutd.service \
      /lib/systemd/system/turnout-router@check.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
man -w turnoutd >/dev/null 2>&1 || fail "man turnoutd is not found"
dpkg -i /pkg/turnout.deb >/dev/null || fail "a second install failed"
[ "$(getent passwd | grep -c '^turnout:')" = 1 ] || fail "a second install changed the user"
[ "$(getent passwd turnout | cut -d: -f3)" = "$uid" ] || fail "a second install changed the uid"
dpkg --purge turnout >/dev/null 2>&1 || fail "dpkg --purge"
getent passwd turnout >/dev/null && fail "purge left the turnout user"
getent group turnout >/dev/null && fail "purge left the turnout group"
[ ! -e /usr/bin/turnoutd ] || fail "purge left /usr/bin/turnoutd"
echo "inside: ok (uid $uid)"
INSIDE
CONTAINERS_CONF="$work/containers.conf" podman --root "$work/storage" --runroot "$work/run" \
  run --rm --network none -v "$work:/pkg:ro" --rootfs /:O sh /pkg/inside.sh ||
  fail "install into the throwaway root (above)"
step "ok"
