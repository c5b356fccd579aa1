#!/usr/bin/env bash
# A throw-away Debian 12 that boots its own systemd (systemd-nspawn), so units
# can be started and watched with systemctl on a host whose PID 1 is not
# systemd. The box shares the host's network: what runs in it answers on the
# host's loopback. Its root is kept between runs (built once, a few minutes).
#
# Usage (as root):
#   scripts/lib/systemd-box.sh up        build the root when missing, boot it
#   scripts/lib/systemd-box.sh exec CMD  run CMD in the box (two minutes at most)
#   scripts/lib/systemd-box.sh root      print the root folder (copy files in there)
#   scripts/lib/systemd-box.sh down      power the box off
#   FXD_SYSTEMD_BOX   state folder (default /var/tmp/fxd-systemd-box)
set -euo pipefail
# shellcheck source=scripts/lib/debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

state=${FXD_SYSTEMD_BOX:-/var/tmp/fxd-systemd-box}
root=$state/rootfs
pidfile=$state/nspawn.pid

nspawn_pid() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"; }
# The box's PID 1 (its systemd) is the only child of systemd-nspawn.
box_init() { local n; n=$(nspawn_pid) && pgrep -P "$n" | head -n 1; }
in_box() { local p; p=$(box_init) || { echo "the box is not up (run: $0 up)" >&2; return 1; }; timeout 120 nsenter -t "$p" -a "$@"; }

up() {
  mkdir -p "$state"
  fxd_need_packages systemd-container debootstrap
  if [ ! -x "$root/lib/systemd/systemd" ]; then
    fxd_bootstrap_root "$root" "$state/debootstrap.log" --include=systemd,systemd-sysv,dbus,libsystemd0
    : > "$root/etc/machine-id" # empty: systemd makes one at each boot
  fi
  if nspawn_pid >/dev/null; then
    echo "the box is up: PID $(box_init)"
    return
  fi
  setsid systemd-nspawn --quiet --directory="$root" --boot --console=pipe --register=no --keep-unit \
    --machine=fxd-box >"$state/nspawn.log" 2>&1 </dev/null &
  echo $! > "$pidfile"
  local deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    # degraded is fine: a container lacks some of what a machine's units expect.
    if in_box systemctl is-system-running --wait 2>/dev/null | grep -qE '^(running|degraded)$'; then
      echo "the box is up: PID $(box_init)"
      return
    fi
    sleep 0.3
  done
  echo "systemd did not come up in the box; see $state/nspawn.log" >&2
  exit 1
}

down() {
  local n
  n=$(nspawn_pid) || { echo "down"; return; }
  in_box systemctl poweroff >/dev/null 2>&1 || true
  for _ in $(seq 100); do kill -0 "$n" 2>/dev/null || break; sleep 0.2; done
  kill "$n" 2>/dev/null || true
  rm -f "$pidfile"
  echo "down"
}

case "${1:-}" in
  up) up ;;
  exec) shift; in_box "$@" ;;
  root) echo "$root" ;;
  down) down ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
