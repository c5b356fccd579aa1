#!/usr/bin/env bash
# Builds the fxd image with podman and checks it as a user would run it: ports
# published on 127.0.0.1, data in a named volume, a TLS certificate mounted
# (made here with the openssl command) and the image's TLS config; ping and
# echo over TCP and UDP, register/upload/download over TLS; the health check;
# fxd as PID 1 under a non-root user; `podman stop` (SIGTERM) draining to exit
# status 0; and the data still there for a new container on the same volume.
#
# Usage (as root): scripts/container-test.sh
#   FXD_TCP_PORT / FXD_UDP_PORT / FXD_TLS_PORT   host ports to publish
#                                 (default 27070 / 27071 / 27443)
#   JOBS                          compile jobs inside the image build (default 2)
#   KEEP=1                        keep the container and volume afterwards
# Needs only Debian's packages: scripts/lib/container-env.sh installs podman
# and makes the debian:bookworm base images locally with debootstrap (no
# container registry is contacted).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib/container-env.sh
source "$here/lib/container-env.sh" || { echo "FAIL: podman could not be set up"; exit 1; }

image=localhost/fxd:test
name=fxd-container-test
volume=fxd-container-test-data
tcp=${FXD_TCP_PORT:-27070}
udp=${FXD_UDP_PORT:-27071}
tls=${FXD_TLS_PORT:-27443}
certs=""
step() { printf '\n== %s\n' "$*"; }
# podman wants systemd timers for health checks and complains when the host's
# PID 1 is not systemd; that noise is dropped (the script runs the check itself).
pm() { podman "$@" 2> >(grep -v 'get systemd connection' >&2); }
fail() { echo "FAIL: $*"; podman logs "$name" 2>&1 | tail -20 || true; exit 1; }
cleanup() {
  [ "${KEEP:-0}" = 1 ] && return
  podman rm -f -t 0 "$name" "$name-again" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  [ -z "$certs" ] || rm -rf "$certs"
}
trap cleanup EXIT
cleanup

step "build the image (compiles fxd and runs its unit tests inside)"
start=$(date +%s)
# --format docker keeps HEALTHCHECK (the OCI image format has no field for it).
podman build --pull=never --network host --format docker --build-arg JOBS="${JOBS:-2}" -t "$image" "$repo" \
  > /tmp/fxd-container-build.log 2>&1 || { tail -40 /tmp/fxd-container-build.log; fail "podman build"; }
grep -E 'tests passed|tests failed' /tmp/fxd-container-build.log || true
echo "built $image in $(( $(date +%s) - start )) s; image size: $(podman image inspect "$image" --format '{{.Size}}' | numfmt --to=iec) ($(podman images "$image" --format '{{.Size}}'))"

step "a certificate for 127.0.0.1, signed by a throw-away CA"
certs=$(mktemp -d /tmp/fxd-container-certs.XXXXXX)
chmod 0755 "$certs" # mounted read-only for the container's user
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=fxd test CA" \
  -keyout "$certs/ca.key" -out "$certs/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$certs/key.pem" -out "$certs/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$certs/san.ext"
openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" -CAcreateserial \
  -days 2 -extfile "$certs/san.ext" -out "$certs/cert.pem" 2>/dev/null
chmod 0644 "$certs/key.pem" # read by the container's user fxd (uid 10001)
tls_mount=(-v "$certs:/etc/fxd/tls:ro" -p "127.0.0.1:$tls:7443")

step "run: ports 127.0.0.1:$tcp/tcp, $udp/udp and $tls/tcp (TLS), volume $volume"
podman volume create "$volume" >/dev/null
# Plain TCP from the host is not loopback inside the container: with its TLS
# config the image takes passwords over TLS only, as from any other host.
pm run -d --name "$name" -p "127.0.0.1:$tcp:7070" -p "127.0.0.1:$udp:7071/udp" "${tls_mount[@]}" \
  -v "$volume:/var/lib/fxd" "$image" --config /etc/fxd/fxd-tls.json --set tcp.bind=0.0.0.0 >/dev/null
python3 "$repo/scripts/smoke-client.py" --tcp "$tcp" --udp "$udp" --tls "$tls" --cacert "$certs/ca.pem" write \
  || fail "talking to the container"

step "inside the container"
podman top "$name" pid user args | sed 's/^/  /'
[ "$(podman top "$name" pid | sed -n 2p | tr -d ' ')" = 1 ] || fail "fxd is not PID 1"
[ "$(podman top "$name" user | sed -n 2p | tr -d ' ')" = fxd ] || fail "fxd does not run as user fxd"
if podman exec "$name" test -x /usr/bin/fxc; then
  podman healthcheck run "$name" >/dev/null 2>&1 || fail "health check (fxc ping) failed"
  echo "  health check (fxc ping): $(podman inspect "$name" --format '{{.State.Health.Status}}')"
else
  echo "  skip health check: the image has no /usr/bin/fxc yet"
fi

step "podman stop (SIGTERM): drain and exit 0"
pm stop -t 35 "$name" >/dev/null
code=$(podman inspect "$name" --format '{{.State.ExitCode}}')
podman logs "$name" 2>&1 | tail -4 | sed 's/^/  /'
[ "$code" = 0 ] || fail "exit status $code after SIGTERM"
echo "  exit status 0"

step "data kept in volume $volume"
pm run --rm -v "$volume:/var/lib/fxd" --entrypoint /bin/ls "$image" -la /var/lib/fxd | sed 's/^/  /'
pm run -d --name "$name-again" -p "127.0.0.1:$tcp:7070" -p "127.0.0.1:$udp:7071/udp" "${tls_mount[@]}" \
  -v "$volume:/var/lib/fxd" "$image" --config /etc/fxd/fxd-tls.json --set tcp.bind=0.0.0.0 >/dev/null
python3 "$repo/scripts/smoke-client.py" --tcp "$tcp" --udp "$udp" --tls "$tls" --cacert "$certs/ca.pem" read \
  || fail "reading back from a new container"
pm stop -t 35 "$name-again" >/dev/null
[ "$(podman inspect "$name-again" --format '{{.State.ExitCode}}')" = 0 ] || fail "second container's exit status"

echo
echo "container-test: all checks passed"
