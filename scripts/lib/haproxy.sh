#!/usr/bin/env bash
# Debian's haproxy in front of one or more fxd instances, for tests: run as
# the current user (no root, no chroot, no user switch), on a free loopback
# port, TCP mode, round robin over the backends.
#
# Usage:
#   scripts/lib/haproxy.sh start --dir DIR [OPTIONS] HOST:PORT [HOST:PORT...]
#       writes DIR/haproxy.cfg, starts haproxy in the background (its pid in
#       DIR/haproxy.pid), waits until it accepts, prints the port it listens on
#   scripts/lib/haproxy.sh stop --dir DIR
#       stops the haproxy started with that DIR and removes its pid file
# Options of start:
#   --bind ADDR      address to listen on (default 127.0.0.1)
#   --port N         port to listen on (default: a free one)
#   --proxy v2|v1|off  PROXY protocol header sent to each backend (default v2:
#                    send-proxy-v2); fxd must list haproxy's address in proxy.trusted
#   --tls            TLS passthrough: haproxy waits for the client's TLS
#                    ClientHello and relays the encrypted bytes untouched to
#                    the backends' TLS ports (fxd terminates TLS)
#   --check          health checks every second (with the PROXY header when
#                    one is sent): a dead backend leaves the rotation
# Exit status: 0 done, 2 usage, 77 haproxy is not installed (tests skip),
# 1 anything else (haproxy's own message on stderr).
set -euo pipefail

usage() {
  sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to ten seconds for a listening socket on PORT. It looks at the
# kernel's table rather than connecting: a probe connection would be relayed
# to a backend and counted there.
wait_listening() {
  local port=$1 i
  for i in $(seq 100); do
    [ -n "$(ss -Hltn "sport = :$port")" ] && return 0
    sleep 0.1
  done
  return 1
}

write_config() {
  local cfg=$1 bind=$2 port=$3 proxy=$4 tls=$5 check=$6
  shift 6
  local server_options=""
  case $proxy in
    v2) server_options=" send-proxy-v2" ;;
    v1) server_options=" send-proxy" ;;
    off) ;;
    *) echo "haproxy.sh: --proxy takes v2, v1 or off, not '$proxy'" >&2; exit 2 ;;
  esac
  if [ "$check" = 1 ]; then
    server_options+=" check inter 1s fall 2 rise 1"
    [ "$proxy" != off ] && server_options+=" check-send-proxy"
  fi
  {
    echo "# Written by scripts/lib/haproxy.sh; runs as $(id -un), in the background."
    echo "global"
    echo "    maxconn 4096"
    echo "defaults"
    echo "    mode tcp"
    echo "    timeout connect 5s"
    # fxd closes idle clients itself (timeouts.idle_s); haproxy must not cut them first.
    echo "    timeout client 1h"
    echo "    timeout server 1h"
    echo "frontend fxd_in"
    echo "    bind $bind:$port"
    if [ "$tls" = 1 ]; then
      echo "    tcp-request inspect-delay 5s"
      echo "    tcp-request content accept if { req.ssl_hello_type 1 }"
      echo "    tcp-request content reject"
    fi
    echo "    default_backend fxd_out"
    echo "backend fxd_out"
    echo "    balance roundrobin"
    local n=0 backend
    for backend in "$@"; do
      n=$((n + 1))
      echo "    server fxd$n $backend$server_options"
    done
  } >"$cfg"
}

start() {
  local dir="" bind=127.0.0.1 port="" proxy=v2 tls=0 check=0 backends=()
  while [ $# -gt 0 ]; do
    case $1 in
      --dir) dir=${2:?}; shift 2 ;;
      --bind) bind=${2:?}; shift 2 ;;
      --port) port=${2:?}; shift 2 ;;
      --proxy) proxy=${2:?}; shift 2 ;;
      --tls) tls=1; shift ;;
      --check) check=1; shift ;;
      -*) usage ;;
      *) backends+=("$1"); shift ;;
    esac
  done
  [ -n "$dir" ] && [ ${#backends[@]} -gt 0 ] || usage
  command -v haproxy >/dev/null || { echo "haproxy.sh: haproxy is not installed (apt-get install haproxy)" >&2; exit 77; }
  mkdir -p "$dir"
  local cfg=$dir/haproxy.cfg pidfile=$dir/haproxy.pid attempt
  # A free port can be taken between the probe and haproxy's bind: try again with another.
  for attempt in 1 2 3 4 5; do
    local listen=${port:-$(free_port)}
    write_config "$cfg" "$bind" "$listen" "$proxy" "$tls" "$check" "${backends[@]}"
    haproxy -c -q -f "$cfg" >&2
    if haproxy -D -q -f "$cfg" -p "$pidfile" >&2 && wait_listening "$listen"; then
      echo "$listen"
      return 0
    fi
    stop --dir "$dir" 2>/dev/null || true
    [ -z "$port" ] || break
  done
  echo "haproxy.sh: haproxy did not start listening on $bind (config: $cfg)" >&2
  exit 1
}

stop() {
  local dir=""
  while [ $# -gt 0 ]; do
    case $1 in
      --dir) dir=${2:?}; shift 2 ;;
      *) usage ;;
    esac
  done
  [ -n "$dir" ] || usage
  local pidfile=$dir/haproxy.pid pid i
  [ -f "$pidfile" ] || return 0
  for pid in $(cat "$pidfile"); do
    kill "$pid" 2>/dev/null || continue
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$pidfile"
}

case ${1:-} in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) usage ;;
esac
