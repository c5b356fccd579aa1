#!/usr/bin/env bash
# Installs the Debian 12 packages fxd needs to build, test and run.
# --test adds what only the tests need (Clang with libFuzzer for the fuzzers,
# the openssl command that makes the TLS tests' certificates, promtool and
# Prometheus, Chromium and lintian for tests/ops and the package check, tmux
# for fxc's terminal tests, and the servers the cluster and S3 tests start:
# PostgreSQL, HAProxy and Ceph's RADOS Gateway).
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config python3
  libboost1.81-dev libboost-json1.81-dev libboost-test1.81-dev
  libspdlog-dev libsqlite3-dev libsodium-dev libssl-dev libsystemd-dev libcli11-dev
  libpq-dev  # the PostgreSQL client library (database.url)
  libutf8proc-dev  # file names in Unicode NFC
  libexpat1-dev  # XML answers of S3 (s3/)
  systemd  # systemd-analyze and systemd-socket-activate for the deployment checks
  scdoc    # the man pages (docs/man)
  libedit-dev  # fxc's shell: line editing, history, completion
)
if [ "${1:-}" = "--test" ]; then
  packages+=(clang libclang-rt-14-dev openssl
    postgresql-15)  # the cluster tests start their own servers
  packages+=(ceph-mon ceph-mgr ceph-osd radosgw ceph-common curl s3cmd)  # scripts/lib/ceph-s3.sh (S3 tests); s3cmd for bench/s3_compare.sh
  packages+=(haproxy iproute2)  # the PROXY protocol tests: haproxy in front of fxd, ss to see it listen
  packages+=(prometheus chromium lintian)  # tests/ops: promtool and a real Prometheus, the status page, the .deb
  packages+=(tmux)  # fxc's progress bar and shell on a real terminal (tests/cli/fxc_tmux_test.py)
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
