#!/usr/bin/env bash
# A private PostgreSQL 15 server for fxd's tests, from Debian's postgresql-15
# binaries (/usr/lib/postgresql/15/bin), without systemd or the Debian cluster
# tools: its data, socket and log live in one folder, it listens on 127.0.0.1
# on a port of its own, and it runs as an unprivileged account (postgres when
# started as root, since the server refuses root; the caller otherwise).
#
#   postgres.sh start DIR   initialise DIR (if new) and start; prints the URL
#                           (postgresql://fxd:...@127.0.0.1:PORT/fxd), also in DIR/url
#   postgres.sh stop DIR    stop it (fast shutdown); the data stays
#   postgres.sh kill DIR    stop it at once (immediate shutdown, like a crash)
#   postgres.sh wipe DIR    stop it and remove DIR
#
# start after stop reuses DIR's data and port. Exit status 77 when PostgreSQL
# 15 is not installed (the tests then skip). For tests, fsync is off (the
# server's own crash safety is not under test); FXD_PG_DURABLE=1 keeps it on
# (benchmarks), and FXD_PG_CONF adds lines to postgresql.conf at initialisation.
set -euo pipefail

bin=/usr/lib/postgresql/15/bin
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: postgres.sh start|stop|kill|wipe DIR" >&2; exit 2; }
[ -x "$bin/pg_ctl" ] || { echo "postgres.sh: $bin/pg_ctl not found (apt-get install postgresql-15)" >&2; exit 77; }

if [ "$(id -u)" -eq 0 ]; then
  account=postgres
  as_account() { (cd / && runuser -u "$account" -- "$@"); }
else
  account=$(id -un)
  as_account() { "$@"; }
fi

data="$dir/data"
ctl() { as_account "$bin/pg_ctl" -D "$data" "$@"; }

pick_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "$cmd" in
start)
  mkdir -p "$dir"
  if [ ! -f "$data/PG_VERSION" ]; then
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    port=$(pick_port)
    chmod 0755 "$dir"
    [ "$account" = "$(id -un)" ] || chown "$account" "$dir"
    printf '%s\n' "$password" >"$dir/password"
    chmod 0644 "$dir/password"
    as_account "$bin/initdb" -D "$data" -U fxd --pwfile="$dir/password" -A scram-sha-256 -E UTF8 \
      --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/password"
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$dir'"
      echo "max_connections = 100"
      if [ "${FXD_PG_DURABLE:-0}" != 1 ]; then
        # Test data need not survive a power cut; it must survive a crash of
        # fxd, which the server's own WAL gives without fsync.
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
      fi
      [ -z "${FXD_PG_CONF:-}" ] || printf '%s\n' "$FXD_PG_CONF"
    } >>"$data/postgresql.conf"
    echo "postgresql://fxd:$password@127.0.0.1:$port/fxd" >"$dir/url"
    ctl -l "$dir/server.log" -w -t 30 start >/dev/null
    PGPASSWORD=$password as_account "$bin/psql" -h 127.0.0.1 -p "$port" -U fxd -d postgres -q \
      -c "CREATE DATABASE fxd" >/dev/null
  else
    ctl -l "$dir/server.log" -w -t 30 start >/dev/null
  fi
  cat "$dir/url"
  ;;
stop)
  [ -f "$data/postmaster.pid" ] && ctl -m fast -w -t 30 stop >/dev/null
  exit 0
  ;;
kill)
  [ -f "$data/postmaster.pid" ] && ctl -m immediate -w -t 30 stop >/dev/null
  exit 0
  ;;
wipe)
  [ -f "$data/postmaster.pid" ] && ctl -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "postgres.sh: unknown command '$cmd'" >&2
  exit 2
  ;;
esac
