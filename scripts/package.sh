#!/usr/bin/env bash
# Builds turnout's Debian package from a release build (CMake preset `release`, CPack's DEB
# generator): the binaries, the systemd units, the man pages, the shell completions, the
# maintainer scripts that create the `turnout` system user (packaging/).
#
#   scripts/package.sh            prints the path of the .deb it wrote (build/release/package/)
#   scripts/package.sh --check    then checks it as the `package` test does
#                                 (scripts/package-test.sh: lintian, contents, install + purge
#                                 in a throwaway root)
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    *) echo "package: unknown option $arg (--check)" >&2; exit 2 ;;
  esac
done

./scripts/install-deps.sh >/dev/null
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target turnout turnoutd package_files
rm -f build/release/package/turnout_*.deb
(cd build/release && cpack -G DEB >/dev/null)
deb=$(ls build/release/package/turnout_*.deb)
echo "package: $deb"
if [[ $check -eq 1 ]]; then
  ./scripts/package-test.sh "$deb"
fi
