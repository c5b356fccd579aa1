#!/usr/bin/env bash
# Installs the Debian 12 packages fxd needs to build, test and run.
# --test adds what only the tests need (Clang with libFuzzer for the fuzzers,
# the openssl command that makes the TLS tests' certificates, the servers the
# cluster and S3 tests start).
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config python3
  libboost1.81-dev libboost-json1.81-dev libboost-test1.81-dev
  libspdlog-dev libsqlite3-dev libsodium-dev libssl-dev libsystemd-dev libcli11-dev
  libpq-dev  # the PostgreSQL client library (database.url)
  libexpat1-dev  # XML answers of S3 (s3/)
  systemd  # systemd-analyze and systemd-socket-activate for the deployment checks
)
if [ "${1:-}" = "--test" ]; then
  packages+=(clang libclang-rt-14-dev openssl
    postgresql-15 haproxy  # the cluster tests start their own servers
    ceph-mon ceph-mgr ceph-osd radosgw ceph-common curl s3cmd)  # scripts/lib/ceph-s3.sh (S3 tests); s3cmd for bench/s3_compare.sh
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
