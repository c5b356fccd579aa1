#!/usr/bin/env bash
# Runs fxd under a real systemd, installed from its Debian package: builds the
# .deb (cpack), boots a throw-away Debian 12 with systemd-nspawn
# (scripts/lib/systemd-box.sh), installs the package there with apt (so its
# Depends are checked on a clean system), and checks fxd.service and fxd.socket:
#   - systemctl start returns once fxd is ready, and the ports answer at once;
#   - systemctl reload re-reads the config; systemctl stop drains, exit 0;
#   - a stopped (SIGSTOP) daemon is caught by the watchdog and restarted;
#   - fxd.socket starts fxd on the first TCP connection and on a UDP datagram;
#   - the admin listener answers /readyz and /metrics; journald files the log
#     lines at their priority; man fxd, man fxc and man fxd.json render
#     without warnings.
# The box shares the host's network: ports 7070, 7071 and 9470 on 127.0.0.1 must be free.
#
# Usage (as root): scripts/systemd-test.sh
#   KEEP=1 leaves the box running; FXD_PKG_BUILD=DIR builds the package in DIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
box="$here/lib/systemd-box.sh"
build=${FXD_PKG_BUILD:-$repo/build/deploy-pkg}  # a build folder configured for /usr (made if missing)
client=("python3" "$repo/scripts/smoke-client.py")

step() { printf '\n== %s\n' "$*"; }
inbox() { "$box" exec "$@"; }
journal() { inbox journalctl -b -u fxd.service -u fxd.socket --no-pager -o short-monotonic -n "${1:-15}" | sed 's/^/  /'; }
fail() { echo "FAIL: $*"; journal 30 || true; exit 1; }
prop() { inbox systemctl show -P "$2" "$1"; }
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...
  local end=$(( $(date +%s) + $1 )) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || fail "gave up waiting: $what"
    sleep 0.2
  done
}
ports_free() { ! ss -Hltnu '( sport = :7070 or sport = :7071 or sport = :9470 )' | grep -q .; }
cleanup() { [ "${KEEP:-0}" = 1 ] || "$box" down >/dev/null 2>&1 || true; }

ports_free || { ss -ltnup '( sport = :7070 or sport = :7071 or sport = :9470 )'; echo "FAIL: 127.0.0.1:7070, :7071 or :9470 is in use on this machine (the box shares its network)"; exit 1; }
# shellcheck source=scripts/lib/debian.sh
source "$here/lib/debian.sh"
fxd_need_packages dpkg-dev file  # cpack's dpkg-shlibdeps, and what it runs

step "build the Debian package"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DFXD_BUILD_TESTS=OFF -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build "$build" -j "${JOBS:-2}" >/dev/null
rm -f "$build"/fxd_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/fxd_*_amd64.deb)
echo "$(basename "$deb"): $(du -h "$deb" | cut -f1)"
dpkg-deb -f "$deb" Depends | sed 's/^/  Depends: /'
dpkg-deb -c "$deb" | awk '$NF !~ /\/$/ {print "  " $NF}'

step "boot systemd in a box and install the package with apt"
trap cleanup EXIT
"$box" up
root=$("$box" root)
cp "$deb" "$root/var/tmp/fxd.deb"  # the box mounts a fresh /tmp
# The box's root lives on between runs: start from a system without fxd or its data.
inbox sh -c 'systemctl stop fxd.socket fxd.service 2>/dev/null; apt-get purge -y -qq fxd >/dev/null 2>&1;
             rm -rf /var/lib/private/fxd /var/lib/fxd /etc/systemd/system/fxd.service.d; systemctl reset-failed fxd.service 2>/dev/null' || true
inbox sh -c 'apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /var/tmp/fxd.deb >/dev/null' \
  || fail "apt-get install fxd.deb in the box"
inbox dpkg -s fxd | grep -E '^(Status|Version)' | sed 's/^/  /'
inbox systemctl daemon-reload
inbox systemd-analyze security fxd.service | grep 'Overall exposure' | sed 's/^/  systemd-analyze security (in the box): /'

step "systemctl start fxd: returns when READY=1, the port answers at once"
inbox systemctl start fxd.service || fail "systemctl start"
state=$(prop fxd.service ActiveState)
"${client[@]}" --wait 0 ping || fail "fxd active ($state) but port 7070 does not answer"
echo "  $state; STATUS=\"$(prop fxd.service StatusText)\"; ping answered without retry"
ready_us=$(( $(prop fxd.service ActiveEnterTimestampMonotonic) - $(prop fxd.service ExecMainStartTimestampMonotonic) ))
echo "  exec to READY=1: $(( ready_us / 1000 )) ms"
"${client[@]}" write || fail "talking to fxd under systemd"

step "the admin listener and journald priorities"
python3 - <<'PY' || fail "the admin listener on 127.0.0.1:9470"
import urllib.request
ready = urllib.request.urlopen("http://127.0.0.1:9470/readyz", timeout=5).read().decode()
assert ready == "ready\n", ready
metrics = urllib.request.urlopen("http://127.0.0.1:9470/metrics", timeout=5).read().decode()
pings = [l for l in metrics.splitlines() if l.startswith('fxd_requests_total{op="ping"}')]
assert pings and float(pings[0].split()[-1]) >= 1, pings
print(f"  /readyz: ready; /metrics: {len(metrics.splitlines())} lines, {pings[0]}")
PY
inbox journalctl -b -u fxd.service -o json --no-pager | python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.strip()]
listening = [l for l in lines if "listening" in l.get("MESSAGE", "")]
assert listening, "no listening line in the journal"
entry = listening[-1]
assert entry.get("PRIORITY") == "6" and entry["MESSAGE"].startswith("fxd "), entry
print("  journal: PRIORITY=6, no timestamp of its own: " + entry["MESSAGE"][:70])
' || fail "the journal entries of fxd"

step "man fxd, man fxc, man fxd.json"
inbox sh -c 'command -v man >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends man-db >/dev/null 2>&1' \
  || fail "installing man-db in the box"
for page in fxd fxc fxd.json; do
  warnings=$(inbox sh -c "MANWIDTH=80 man --warnings $page 2>&1 >/dev/null") || fail "man $page"
  [ -z "$warnings" ] || fail "man $page warns: $warnings"
  first=$(inbox sh -c "MANWIDTH=80 man $page 2>/dev/null | sed -n 4p")
  echo "  man $page: no warnings; $(echo "$first" | sed 's/^ *//')"
done

step "systemctl reload fxd (SIGHUP, RELOADING=1 ... READY=1)"
pid=$(prop fxd.service MainPID)
inbox systemctl reload fxd.service || fail "systemctl reload"
[ "$(prop fxd.service MainPID)" = "$pid" ] || fail "reload restarted the daemon"
"${client[@]}" --wait 0 ping || fail "no answer after reload"
echo "  same PID $pid, $(prop fxd.service ActiveState), still answering"
inbox journalctl -b -u fxd.service --no-pager -o cat | grep -E 'SIGHUP|reload' | tail -2 | sed 's/^/  journal: /'

step "systemctl stop fxd: drain, exit 0"
inbox systemctl stop fxd.service
echo "  Result=$(prop fxd.service Result) ExecMainStatus=$(prop fxd.service ExecMainStatus)"
[ "$(prop fxd.service Result)" = success ] && [ "$(prop fxd.service ExecMainStatus)" = 0 ] || fail "unclean stop"
journal 4

step "watchdog: SIGSTOP the daemon, systemd restarts it"
inbox systemctl start fxd.service
pid=$(prop fxd.service MainPID)
restarts=$(prop fxd.service NRestarts)
echo "  MainPID $pid, WatchdogUSec=$(prop fxd.service WatchdogUSec); sending SIGSTOP at $(date +%T)"
inbox kill -STOP "$pid"
wait_until 60 "a restarted fxd" sh -c "[ \"\$('$box' exec systemctl show -P NRestarts fxd.service)\" -gt $restarts ] && [ \"\$('$box' exec systemctl show -P ActiveState fxd.service)\" = active ]"
echo "  restarted at $(date +%T): MainPID $(prop fxd.service MainPID), NRestarts=$(prop fxd.service NRestarts)"
"${client[@]}" --wait 0 read || fail "restarted fxd lost the data"
inbox journalctl -b -u fxd.service --no-pager -o cat | grep -iE 'watchdog' | tail -2 | sed 's/^/  journal: /'
inbox systemctl stop fxd.service

step "socket activation: fxd.socket owns the ports, starts fxd on demand"
wait_until 10 "ports free after stop" ports_free
inbox systemctl start fxd.socket
echo "  fxd.socket $(prop fxd.socket ActiveState), fxd.service $(prop fxd.service ActiveState)"
[ "$(prop fxd.service ActiveState)" = inactive ] || fail "fxd.service should wait for a client"
"${client[@]}" --wait 5 read || fail "first TCP connection through fxd.socket"
echo "  first TCP client served; fxd.service $(prop fxd.service ActiveState)"
inbox journalctl -b -u fxd.service --no-pager -o cat | grep 'passed by systemd' | tail -2 | sed 's/^/  journal: /'
inbox systemctl stop fxd.service 2>/dev/null
[ "$(prop fxd.service ActiveState)" = inactive ] || fail "fxd.service still running"
python3 - <<'PY' || fail "UDP datagram through fxd.socket"
import json, socket, struct
h = json.dumps({"op": "echo"}).encode()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(15)
u.sendto(struct.pack(">I", len(h)) + h + b"wake up", ("127.0.0.1", 7071))
d = u.recv(65536); n = struct.unpack(">I", d[:4])[0]
assert d[4 + n:] == b"WAKE UP", d
print("  a UDP datagram started fxd again and got its echo: WAKE UP")
PY
echo "  fxd.service $(prop fxd.service ActiveState) (started by the datagram)"
inbox systemctl stop fxd.socket fxd.service
echo "  after stop: fxd.service Result=$(prop fxd.service Result), ExecMainStatus=$(prop fxd.service ExecMainStatus)"

echo
echo "systemd-test: all checks passed"
