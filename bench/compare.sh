#!/usr/bin/env bash
# bench/compare.sh: fxd side by side with redis, iperf3, nginx, dd and the C
# reference servers (tcp_reference, udp_reference), on loopback, one server
# at a time, and one Markdown table of the figures against the targets of
# issues 8 and 17, every ratio from this one run; then the same over TLS
# (issue 13): fxd's TLS port against redis's and nginx's HTTPS, with one
# throw-away certificate, and the rate of new TLS connections.
# docs/benchmarks.md explains every row.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/compare.sh [--quick] [--tls-only | --no-tls] [--no-pin] [--out FILE] [--no-build] [--keep]

Installs the peers when missing (redis-server, redis-tools, iperf3, nginx,
curl), builds fxd, fxbench, tcp_reference and udp_reference with the release
preset, then runs on loopback, one server at a time: fxd (with dd writing the
upload's bytes between its uploads), redis, the C TCP and UDP references,
iperf3 and nginx; then over TLS with a throw-away P-256 certificate: fxd,
redis (tls-port) and nginx (HTTPS). Prints two Markdown tables, plain and TLS
(also written to FILE with --out).

The echo, connect, handshake, UDP and idle rows (plain and TLS) run the
server on CPU 0 and the client on CPU 1 (taskset); transfers and openssl
s_time are not pinned.

  --quick     short runs and a 128 MiB file instead of 1 GiB (about 2.5
              minutes instead of 7, plus the build)
  --tls-only  only the TLS rows (about 40 s with --quick)
  --no-tls    only the plain rows
  --no-pin    pin nothing (the table says so)
  --out FILE  also write the tables to FILE
  --no-build  use the binaries already in build/release
  --keep      keep the work folder (logs, raw outputs) instead of removing it
EOF
}

quick=0 out="" build=1 keep=0 plain_rows=1 tls_rows=1 pin=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out="$2"; shift ;;
    --out=*) out="${1#--out=}" ;;
    --no-build) build=0 ;;
    --tls-only) plain_rows=0 ;;
    --no-tls) tls_rows=0 ;;
    --no-pin) pin=0 ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/release"
fxd="$bin/daemon/fxd" fxbench="$bin/bench/fxbench" udpref="$bin/bench/udp_reference" tcpref="$bin/bench/tcp_reference"

[[ $plain_rows == 0 && $tls_rows == 0 ]] && { echo "compare.sh: --tls-only and --no-tls leave nothing to run" >&2; exit 2; }
if [[ $quick == 1 ]]; then
  secs=1.5 warm=0.5 file_size=128M hold=2 iperf_secs=2 reps=1 scale=5 hs_secs=2
else
  secs=5 warm=1 file_size=1G hold=5 iperf_secs=5 reps=3 scale=1 hs_secs=5
fi
idle_conns=10000
# Connect per request: this many clients at a time, each connecting, sending
# one request and closing once it is answered (fxbench connect, redis-benchmark -k 0).
cpr_conns=50

# Pinning: the server on CPU 0, its client on CPU 1, so that neither
# steals the other's core and the figures move less between runs.
if [[ $pin == 1 && $(nproc) -ge 2 ]]; then
  on_server=(taskset -c 0) on_client=(taskset -c 1)
  pinning="server on CPU 0, client on CPU 1 (taskset) for the echo, connect, handshake, UDP and idle rows; transfers and openssl s_time not pinned"
else
  on_server=() on_client=()
  pinning="not pinned"
fi

log() { printf '== %s\n' "$*" >&2; }

# --- the peers --------------------------------------------------------------
missing=()
for pair in redis-server:redis-server redis-benchmark:redis-tools iperf3:iperf3 nginx:nginx curl:curl python3:python3 openssl:openssl; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]}"
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx -V 2>&1 | grep -q -- --with-http_dav_module || { echo "compare.sh: this nginx lacks the dav module" >&2; exit 1; }

# --- the build --------------------------------------------------------------
if [[ $build == 1 ]]; then
  log "building (release preset)"
  (cd "$root" && cmake --preset release >/dev/null &&
    cmake --build --preset release --target fxd fxbench udp_reference tcp_reference)
fi
for b in "$fxd" "$fxbench" "$udpref" "$tcpref"; do
  [[ -x $b ]] || { echo "compare.sh: $b is missing; build with the release preset" >&2; exit 1; }
done

# --- the work folder and the servers it holds -------------------------------
work="$(mktemp -d /tmp/fxd-compare.XXXXXX)"
raw="$work/out"; mkdir -p "$raw"
server_pid=""
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
cleanup() {
  stop_server
  if [[ $keep == 1 ]]; then log "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_listening() { # port [udp]
  local flag=-ltnH; [[ ${2:-} == udp ]] && flag=-lunH
  for _ in $(seq 300); do
    ss $flag "sport = :$1" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  echo "compare.sh: nothing listens on port $1" >&2; return 1
}

{ echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "dd=$(dd --version | head -1 | awk '{print $NF}')"
  echo "cpus=$(nproc)"
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "kernel=$(uname -r)"
  echo "pinning=$pinning"
  echo "quick=$quick"
  echo "file_size=$file_size"
  echo "redis=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
  echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')"
  echo "iperf3=$(iperf3 --version | head -1 | awk '{print $2}')"
  echo "openssl=$(openssl version | awk '{print $2}')"
  echo "curl=$(curl --version | head -1 | awk '{print $2}')"
} > "$raw/machine.txt"

fxb() { "${on_client[@]}" "$fxbench" "$@" --json; }
# Transfers are not pinned: the daemon's worker threads, the kernel's
# write-back and the client may use both cores, as dd and nginx can.
fxb_free() { "$fxbench" "$@" --json; }
bench_file="$work/www/files/bench.bin"
mkdir -p "$work/www/files" "$work/www/up"

# Starts fxd on free ports with its data in DIR and any further --set
# arguments; sets fxd_tcp, fxd_udp, fxd_tls (when TLS is on) and fxd_pid.
start_fxd() { # dir [args...]
  local dir="$1"; shift
  mkdir -p "$dir"
  local fxd_args=(--set tcp.port=0 --set udp.port=0 --set admin.port=0 --set "storage.dir=$dir/var" --set log.level=warn "$@")
  # The bench needs these limits lifted; a daemon that does not know a key yet has no such limit.
  for kv in limits.max_connections=100000 limits.max_connections_per_address=100000 udp.rate_per_source=0; do
    if "$fxd" --set "$kv" --check-config >/dev/null 2>&1; then
      fxd_args+=(--set "$kv")
    else
      log "this fxd does not know ${kv%%=*}; running without it"
    fi
  done
  "${on_server[@]}" "$fxd" "${fxd_args[@]}" --print-ports > "$dir/ports" 2> "$dir/log" &
  server_pid=$!
  for _ in $(seq 300); do grep -q tcp= "$dir/ports" 2>/dev/null && break; sleep 0.1; done
  # "tcp=P udp=P [tls=P] [admin=P]": read by name, as the set of listeners varies.
  local kv
  fxd_tcp="" fxd_udp="" fxd_tls=""
  for kv in $(head -1 "$dir/ports"); do
    case $kv in
      tcp=*) fxd_tcp="${kv#tcp=}" ;;
      udp=*) fxd_udp="${kv#udp=}" ;;
      tls=*) fxd_tls="${kv#tls=}" ;;
    esac
  done
  fxd_pid=$server_pid
}

# Starts nginx (one worker) with its files in DIR, serving $work/www on
# 127.0.0.1:PORT and taking PUTs under /up/; with CERT and KEY, over HTTPS.
start_nginx() { # dir port [cert key]
  local ng="$1" nginx_port="$2" listen_ssl="" ssl_lines=""
  if [[ $# -ge 4 ]]; then
    listen_ssl=" ssl"
    ssl_lines="ssl_certificate $3; ssl_certificate_key $4; ssl_protocols TLSv1.2 TLSv1.3;"
  fi
  mkdir -p "$ng"/{body,proxy,fastcgi,uwsgi,scgi}
  local ng_user=""; [[ $(id -u) -eq 0 ]] && ng_user="user root;" # the work folder is private to its owner
  cat > "$ng/nginx.conf" <<EOF
$ng_user
daemon off;
worker_processes 1;
pid $ng/nginx.pid;
error_log $ng/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path $ng/body;
    proxy_temp_path $ng/proxy;
    fastcgi_temp_path $ng/fastcgi;
    uwsgi_temp_path $ng/uwsgi;
    scgi_temp_path $ng/scgi;
    server {
        listen 127.0.0.1:$nginx_port$listen_ssl;
        $ssl_lines
        root $work/www;
        location /up/ {
            dav_methods PUT;
            create_full_put_path on;
            client_max_body_size 0;
            client_body_buffer_size 16m;
        }
    }
}
EOF
  nginx -p "$ng" -e "$ng/error.log" -c "$ng/nginx.conf" &
  server_pid=$!
}

# Lets every thread of PID run on every core again (for the transfers).
unpin() { # pid
  if [[ ${#on_server[@]} -gt 0 ]]; then taskset -a -cp "0-$(($(nproc) - 1))" "$1" >/dev/null; fi
}

# dd copying SRC to the new file DST (removed afterwards) with 1 MiB writes
# and an fsync before it exits; writes "bytes seconds" (wall time, the fsync
# included) to OUT.
dd_rate() { # src dst out
  local t0 t1
  t0=$(date +%s.%N)
  LC_ALL=C dd if="$1" of="$2" bs=1M conv=fsync status=none
  t1=$(date +%s.%N)
  awk -v b="$(stat -c %s "$2")" -v t0="$t0" -v t1="$t1" 'BEGIN { print b, t1 - t0 }' > "$3"
  rm -f "$2"
}

# The plain rows: fxd, then each peer.
plain_rows() {
  # --- fxd --------------------------------------------------------------------
  log "fxd"
  start_fxd "$work/fxd"

  log "fxd: $idle_conns idle connections"
  fxb idle --port "$fxd_tcp" --pid "$fxd_pid" -c "$idle_conns" --hold "$hold" > "$raw/fxd-idle.json"
  for cp in 1,1 50,1 50,16; do
    log "fxd: echo 64 B, connections,pipeline = $cp"
    fxb echo --port "$fxd_tcp" -c "${cp%,*}" -p "${cp#*,}" -s 64 -t "$secs" --warmup "$warm" > "$raw/fxd-echo-$cp.json"
  done
  log "fxd: echo 64 B, 50 x 16 in batches (redis-benchmark's way, for the latency rows)"
  fxb echo --batch --port "$fxd_tcp" -c 50 -p 16 -s 64 -t "$secs" --warmup "$warm" > "$raw/fxd-batch-50,16.json"
  log "fxd: connect, one 64 B echo, close; $cpr_conns at a time"
  fxb connect --port "$fxd_tcp" --pid "$fxd_pid" -c "$cpr_conns" -s 64 -t "$secs" --warmup "$warm" > "$raw/fxd-connect.json"
  for n in 10 100 1000 10000; do
    log "fxd: echo 64 B over $n connections"
    fxb echo --port "$fxd_tcp" -c "$n" -p 1 -s 64 -t "$secs" --warmup "$warm" > "$raw/fxd-flat-$n.json"
  done
  log "fxd: udp 64 B, 64 in flight"
  fxb udp --udp-port "$fxd_udp" -w 64 -s 64 -t "$secs" --warmup "$warm" > "$raw/fxd-udp.json"
  unpin "$fxd_pid"
  for r in $(seq "$reps"); do
    log "fxd: download $file_size ($r/$reps)"
    fxb_free download --port "$fxd_tcp" --pid "$fxd_pid" -s "$file_size" --file "$bench_file" > "$raw/fxd-download-$r.json"
  done
  # Uploads alternate with dd writing the same bytes to a new file on the
  # same filesystem and syncing it: the disk's own speed for a durable write.
  for r in $(seq "$reps"); do
    log "fxd: upload $file_size ($r/$reps)"
    fxb_free upload --port "$fxd_tcp" --pid "$fxd_pid" -s "$file_size" --file "$bench_file" > "$raw/fxd-upload-$r.json"
    log "dd bs=1M conv=fsync of the same $file_size ($r/$reps)"
    dd_rate "$bench_file" "$work/fxd/var/dd-$r.bin" "$raw/dd-upload-$r.txt"
  done
  stop_server
  grep -E ' (error|critical) ' "$work/fxd/log" >> "$raw/fxd-errors.txt" || true

  # --- redis ------------------------------------------------------------------
  log "redis"
  redis_port="$(free_port)"
  mkdir -p "$work/redis"
  cat > "$work/redis/redis.conf" <<EOF
bind 127.0.0.1
port $redis_port
protected-mode no
daemonize no
save ""
appendonly no
maxclients $((idle_conns + 100))
dir $work/redis
logfile $work/redis/log
EOF
  "${on_server[@]}" redis-server "$work/redis/redis.conf" &
  server_pid=$!
  wait_listening "$redis_port"
  log "redis: $idle_conns idle connections (one PING each)"
  fxb idle --raw-idle --raw-ping 'PING\r\n' --port "$redis_port" --pid "$server_pid" -c "$idle_conns" --hold "$hold" > "$raw/redis-idle.json"
  for cp in 1,1 50,1 50,16; do
    c="${cp%,*}" p="${cp#*,}"
    case $cp in 1,1) n=100000 ;; 50,1) n=300000 ;; *) n=3000000 ;; esac
    n=$((n / scale))
    log "redis-benchmark: PING_MBULK and SET -d 64, connections,pipeline = $cp, $n requests"
    if [[ $cp == 50,16 ]]; then
      # Without --csv for the percentile listing (the latency rows need p99.9).
      timeout 120 "${on_client[@]}" redis-benchmark -h 127.0.0.1 -p "$redis_port" -c "$c" -P "$p" -n "$n" -t ping_mbulk |
        tr '\r' '\n' > "$raw/redis-ping-$cp.txt"
    else
      timeout 120 "${on_client[@]}" redis-benchmark -h 127.0.0.1 -p "$redis_port" -c "$c" -P "$p" -n "$n" -t ping_mbulk \
        --csv > "$raw/redis-ping-$cp.csv"
    fi
    timeout 120 "${on_client[@]}" redis-benchmark -h 127.0.0.1 -p "$redis_port" -c "$c" -P "$p" -n "$n" -t set -d 64 \
      --csv > "$raw/redis-set-$cp.csv"
  done
  n=$((50000 / scale))
  log "redis-benchmark -k 0: connect, PING_MBULK, close; $cpr_conns at a time, $n requests"
  timeout 120 "${on_client[@]}" redis-benchmark -h 127.0.0.1 -p "$redis_port" -c "$cpr_conns" -k 0 -n "$n" -t ping_mbulk \
    --csv 2>/dev/null > "$raw/redis-connect.csv"
  stop_server

  # --- the C TCP reference ----------------------------------------------------
  log "tcp_reference"
  ref_port="$(free_port)"
  "${on_server[@]}" "$tcpref" "$ref_port" &
  server_pid=$!
  wait_listening "$ref_port"
  for cp in 1,1 50,16; do
    log "tcp_reference: echo 64 B, connections,pipeline = $cp"
    fxb echo --port "$ref_port" -c "${cp%,*}" -p "${cp#*,}" -s 64 -t "$secs" --warmup "$warm" > "$raw/tcpref-echo-$cp.json"
  done
  log "tcp_reference: connect, one 64 B echo, close; $cpr_conns at a time"
  fxb connect --port "$ref_port" --pid "$server_pid" -c "$cpr_conns" -s 64 -t "$secs" --warmup "$warm" \
    > "$raw/tcpref-connect.json"
  stop_server

  # --- the C UDP reference ----------------------------------------------------
  log "udp_reference"
  ref_port="$(free_port)"
  "${on_server[@]}" "$udpref" "$ref_port" &
  server_pid=$!
  wait_listening "$ref_port" udp
  fxb udp --raw --udp-port "$ref_port" -w 64 -s 64 -t "$secs" --warmup "$warm" > "$raw/ref-udp.json"
  stop_server

  # --- iperf3 -----------------------------------------------------------------
  log "iperf3"
  iperf_port="$(free_port)"
  iperf3 -s -1 -p "$iperf_port" > "$work/iperf3-server.log" 2>&1 &
  server_pid=$!
  wait_listening "$iperf_port"
  timeout 60 iperf3 -c 127.0.0.1 -p "$iperf_port" -t "$iperf_secs" -J > "$raw/iperf3.json"
  stop_server

  # --- nginx ------------------------------------------------------------------
  log "nginx"
  nginx_port="$(free_port)"
  start_nginx "$work/nginx" "$nginx_port"
  wait_listening "$nginx_port"
  for r in $(seq "$reps"); do
    log "nginx: GET $file_size ($r/$reps)"
    curl -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' \
      "http://127.0.0.1:$nginx_port/files/bench.bin" > "$raw/nginx-download-$r.txt"
  done
  for r in $(seq "$reps"); do
    log "nginx: PUT $file_size ($r/$reps)"
    curl -sS -H 'Expect:' -T "$bench_file" -o /dev/null -w '%{http_code} %{size_upload} %{time_total}\n' \
      "http://127.0.0.1:$nginx_port/up/put.bin" > "$raw/nginx-upload-$r.txt"
    rm -f "$work/www/up/put.bin"
  done
  stop_server
}

# utime + stime of a process, in clock ticks (all its threads).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# New TLS connections per second with `openssl s_time -new` (connect, full
# handshake, close, one at a time) against 127.0.0.1:PORT, and the CPU time
# the server process PID spent on them. Writes "connections wall_s cpu_s".
s_time_rate() { # port pid out
  local c0 t0 t1 c1 n
  c0=$(cpu_ticks "$2"); t0=$(date +%s.%N)
  timeout $((hs_secs * 3 + 10)) openssl s_time -connect "127.0.0.1:$1" -new -time "$hs_secs" > "$3.log" 2>&1
  t1=$(date +%s.%N); c1=$(cpu_ticks "$2")
  n=$(sed -n 's/^\([0-9]*\) connections in .*/\1/p' "$3.log" | head -1)
  [[ -n $n ]] || { echo "compare.sh: openssl s_time gave no figure (see $3.log)" >&2; return 1; }
  awk -v n="$n" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { print n, t1 - t0, (c1 - c0) / hz }' > "$3"
}

# The protocol, cipher and key exchange a server negotiates with OpenSSL's defaults.
tls_params() { # port out
  echo | timeout 10 openssl s_client -brief -connect "127.0.0.1:$1" 2>&1 |
    sed -n 's/^Protocol version: *//p; s/^Ciphersuite: *//p; s/^Server Temp Key: *\([^,]*\).*/\1/p' |
    paste -sd' ' > "$2"
}

# The TLS rows: fxd's TLS port, redis's tls-port and nginx over HTTPS, all
# with one throw-away self-signed P-256 ECDSA certificate (its own CA).
tls_rows() {
  local tls="$work/tls"
  mkdir -p "$tls"
  log "TLS: a throw-away P-256 ECDSA certificate"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
  local cert="$tls/cert.pem" key="$tls/key.pem"

  # --- fxd over TLS ------------------------------------------------------------
  log "fxd over TLS"
  start_fxd "$work/fxd-tls" --set "tls.cert=$cert" --set "tls.key=$key" --set tls.port=0
  [[ -n $fxd_tls ]] || { echo "compare.sh: fxd did not open a TLS port (see $work/fxd-tls/ports)" >&2; exit 1; }
  tls_params "$fxd_tls" "$raw/tls-params-fxd.txt"
  for cp in 1,1 50,1 50,16; do
    log "fxd TLS: echo 64 B, connections,pipeline = $cp"
    fxb echo --tls --cacert "$cert" --port "$fxd_tls" -c "${cp%,*}" -p "${cp#*,}" -s 64 -t "$secs" --warmup "$warm" \
      > "$raw/tls-fxd-echo-$cp.json"
  done
  for c in 1 16; do
    log "fxd: new connections, $c at a time, TLS and plain TCP"
    fxb handshake --tls --port "$fxd_tls" --pid "$fxd_pid" -c "$c" -t "$hs_secs" --warmup "$warm" > "$raw/tls-fxd-hs-$c.json"
    fxb handshake --port "$fxd_tcp" --pid "$fxd_pid" -c "$c" -t "$hs_secs" --warmup "$warm" > "$raw/tls-fxd-tcp-$c.json"
  done
  unpin "$fxd_pid"
  for r in $(seq "$reps"); do
    log "fxd TLS: download $file_size ($r/$reps)"
    fxb_free download --tls --cacert "$cert" --port "$fxd_tls" --pid "$fxd_pid" -s "$file_size" --file "$bench_file" \
      > "$raw/tls-fxd-download-$r.json"
  done
  for r in $(seq "$reps"); do
    log "fxd TLS: upload $file_size ($r/$reps)"
    fxb_free upload --tls --cacert "$cert" --port "$fxd_tls" --pid "$fxd_pid" -s "$file_size" --file "$bench_file" \
      > "$raw/tls-fxd-upload-$r.json"
  done
  log "fxd TLS: openssl s_time -new"
  s_time_rate "$fxd_tls" "$fxd_pid" "$raw/tls-fxd-stime.txt"
  stop_server
  grep -E ' (error|critical) ' "$work/fxd-tls/log" >> "$raw/fxd-errors.txt" || true

  # --- redis over TLS ----------------------------------------------------------
  log "redis over TLS"
  local redis_tls
  redis_tls="$(free_port)"
  mkdir -p "$work/redis-tls"
  "${on_server[@]}" redis-server --bind 127.0.0.1 --port 0 --tls-port "$redis_tls" --tls-cert-file "$cert" --tls-key-file "$key" \
    --tls-ca-cert-file "$cert" --tls-auth-clients no --protected-mode no --save '' --appendonly no \
    --dir "$work/redis-tls" --logfile "$work/redis-tls/log" &
  server_pid=$!
  if ! wait_listening "$redis_tls"; then
    echo "compare.sh: redis-server did not open its TLS port; is it built with TLS? (see $work/redis-tls/log)" >&2
    exit 1
  fi
  tls_params "$redis_tls" "$raw/tls-params-redis.txt"
  for cp in 1,1 50,1 50,16; do
    local c="${cp%,*}" p="${cp#*,}" n
    case $cp in 1,1) n=100000 ;; 50,1) n=300000 ;; *) n=3000000 ;; esac
    n=$((n / scale))
    log "redis-benchmark --tls: PING_MBULK, connections,pipeline = $cp, $n requests"
    timeout 120 "${on_client[@]}" redis-benchmark --tls --cacert "$cert" -h 127.0.0.1 -p "$redis_tls" -c "$c" -P "$p" -n "$n" \
      -t ping_mbulk --csv > "$raw/tls-redis-ping-$cp.csv"
  done
  log "redis TLS: openssl s_time -new"
  unpin "$server_pid"
  s_time_rate "$redis_tls" "$server_pid" "$raw/tls-redis-stime.txt"
  stop_server

  # --- nginx over HTTPS --------------------------------------------------------
  log "nginx over HTTPS"
  local nginx_tls
  nginx_tls="$(free_port)"
  start_nginx "$work/nginx-tls" "$nginx_tls" "$cert" "$key"
  wait_listening "$nginx_tls"
  tls_params "$nginx_tls" "$raw/tls-params-nginx.txt"
  for r in $(seq "$reps"); do
    log "nginx HTTPS: GET $file_size ($r/$reps)"
    curl -k -sS -o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' \
      "https://127.0.0.1:$nginx_tls/files/bench.bin" > "$raw/tls-nginx-download-$r.txt"
  done
  for r in $(seq "$reps"); do
    log "nginx HTTPS: PUT $file_size ($r/$reps)"
    curl -k -sS -H 'Expect:' -T "$bench_file" -o /dev/null -w '%{http_code} %{size_upload} %{time_total}\n' \
      "https://127.0.0.1:$nginx_tls/up/put.bin" > "$raw/tls-nginx-upload-$r.txt"
    rm -f "$work/www/up/put.bin"
  done
  log "nginx HTTPS: openssl s_time -new"
  # The worker, not the master, does the handshakes.
  s_time_rate "$nginx_tls" "$(pgrep -P "$server_pid" | head -1)" "$raw/tls-nginx-stime.txt"
  stop_server
}

if [[ $plain_rows == 1 ]]; then plain_rows; fi
if [[ $tls_rows == 1 ]]; then tls_rows; fi

# --- the tables -------------------------------------------------------------
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$raw/machine.txt"
table="$(python3 "$root/bench/table.py" "$raw")"
printf '%s\n' "$table"
[[ -n $out ]] && printf '%s\n' "$table" > "$out"
if [[ -s $raw/fxd-errors.txt ]]; then
  echo "fxd logged errors during the run:" >&2
  cat "$raw/fxd-errors.txt" >&2
fi
