#!/usr/bin/env bash
# Checks the systemd units: `systemd-analyze verify` on systemd/fxd.service and
# systemd/fxd.socket, and `systemd-analyze security --offline=true` on the
# service, failing when its exposure is above 2.0. Works without systemd as
# PID 1 (needs the systemd package's systemd-analyze).
#
# Usage: scripts/check-units.sh [FXD_BINARY]
#   verify wants ExecStart= to be executable, so it checks a copy of the units
#   whose ExecStart= names FXD_BINARY (default: /usr/bin/fxd when installed,
#   else the newest build/*/daemon/fxd); the security review reads the originals.
# Exit status: 0 passed, 1 failed, 77 skipped (no systemd-analyze).
set -euo pipefail
cd "$(dirname "$0")/.."
max_exposure=2.0

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not found (Debian package systemd)"
  exit 77
fi

fxd=${1:-}
if [ -z "$fxd" ]; then
  if [ -x /usr/bin/fxd ]; then
    fxd=/usr/bin/fxd
  else
    fxd=$(ls -t build/*/daemon/fxd 2>/dev/null | head -1 || true)
  fi
fi
if [ -z "$fxd" ] || [ ! -x "$fxd" ]; then
  echo "check-units: no fxd binary to point ExecStart= at; build fxd or pass its path" >&2
  exit 1
fi
fxd=$(realpath "$fxd")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp systemd/fxd.socket "$work/"
sed "s#^ExecStart=/usr/bin/fxd #ExecStart=$fxd #" systemd/fxd.service > "$work/fxd.service"

status=0
if out=$(systemd-analyze verify --man=no "$work/fxd.socket" "$work/fxd.service" 2>&1) && [ -z "$out" ]; then
  echo "verify: fxd.service and fxd.socket are clean"
else
  echo "verify: problems in the units:"
  printf '%s\n' "$out"
  status=1
fi

report=$(systemd-analyze security --offline=true --no-pager systemd/fxd.service 2>&1 || true)
line=$(printf '%s\n' "$report" | grep -E 'Overall exposure level' || true)
if [ -z "$line" ]; then
  echo "security: no exposure line from systemd-analyze:"
  printf '%s\n' "$report"
  exit 1
fi
echo "security: $line"
exposure=$(printf '%s\n' "$line" | grep -oE ': [0-9]+\.[0-9]+' | tr -d ': ')
if awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e > m) }'; then
  echo "security: exposure $exposure is above $max_exposure; what still counts:"
  printf '%s\n' "$report" | grep -E '^✗' || true
  status=1
fi
exit $status
