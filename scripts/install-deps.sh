#!/usr/bin/env bash
# Installs everything turnout needs to build, test and benchmark, from Debian 12 packages only.
#
#   scripts/install-deps.sh           build + test dependencies
#   scripts/install-deps.sh --bench   also the benchmark contenders (nginx, HAProxy, Caddy, wrk, h2load)
#                                     and jq (bench/judge/run.sh reads turnoutd's JSON with it)
#   scripts/install-deps.sh --dockerd also dockerd (docker.io), so that the container tests run
#                                     against it too (on a host with systemd the package starts
#                                     the system's dockerd, which creates a docker0 bridge)
#
# Idempotent: packages already installed are skipped without touching the network.
set -euo pipefail

build_pkgs=(
  cmake ninja-build g++ clang libclang-rt-14-dev clang-format-14 clang-tidy-14 pkg-config
  libboost1.81-dev libyaml-cpp-dev nlohmann-json3-dev libsqlite3-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libpq-dev postgresql-15
  libcurl4-openssl-dev prometheus
  curl ca-certificates procps iproute2
  podman buildah runc
  systemd lintian help2man dpkg-dev fakeroot adduser bash-completion zsh
)
bench_pkgs=(nginx-light haproxy caddy wrk nghttp2-client hyperfine jq)
dockerd_pkgs=(docker.io)

want=("${build_pkgs[@]}")
for arg in "$@"; do
  case "$arg" in
    --bench) want+=("${bench_pkgs[@]}") ;;
    --dockerd) want+=("${dockerd_pkgs[@]}") ;;
    *) echo "install-deps: unknown option $arg (--bench, --dockerd)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Services from these packages (nginx, haproxy, postgresql) are not used as installed: tests and
# benchmarks start their own instances on loopback ports the OS hands out. Podman's container
# tests start their own `podman system service` with its own storage and containers.conf
# (docs/containers.md).
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
