#!/usr/bin/env bash
# bench/compare.sh: fxd side by side with redis, iperf3, nginx and a C UDP
# echo server, on loopback, one server at a time, and one Markdown table of
# the figures against the targets of issue 8; then the same over TLS (issue
# 13): fxd's TLS port against redis's and nginx's HTTPS, with one throw-away
# certificate, and the rate of new TLS connections. docs/benchmarks.md
# explains every row.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/compare.sh [--quick] [--tls-only | --no-tls] [--out FILE] [--no-build] [--keep]

Installs the peers when missing (redis-server, redis-tools, iperf3, nginx,
curl), builds fxd and fxbench with the release preset, then runs on loopback,
one server at a time: fxd, redis, the C UDP reference, iperf3 and nginx; then
over TLS with a throw-away P-256 certificate: fxd, redis (tls-port) and nginx
(HTTPS). Prints two Markdown tables, plain and TLS (also written to FILE with
--out).

  --quick     short runs and a 128 MiB file instead of 1 GiB (about 1.5
              minutes instead of 5, plus the build)
  --tls-only  only the TLS rows (about 40 s with --quick)
  --no-tls    only the plain rows
  --out FILE  also write the tables to FILE
  --no-build  use the binaries already in build/release
  --keep      keep the work folder (logs, raw outputs) instead of removing it
EOF
}

quick=0 out="" build=1 keep=0 plain_rows=1 tls_rows=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out="$2"; shift ;;
    --out=*) out="${1#--out=}" ;;
    --no-build) build=0 ;;
    --tls-only) plain_rows=0 ;;
    --no-tls) tls_rows=0 ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/release"
fxd="$bin/daemon/fxd" fxbench="$bin/bench/fxbench" udpref="$bin/bench/udp_reference"

[[ $plain_rows == 0 && $tls_rows == 0 ]] && { echo "compare.sh: --tls-only and --no-tls leave nothing to run" >&2; exit 2; }
if [[ $quick == 1 ]]; then
  secs=1.5 warm=0.5 file_size=128M hold=2 iperf_secs=2 reps=1 scale=5 hs_secs=2
else
  secs=5 warm=1 file_size=1G hold=5 iperf_secs=5 reps=3 scale=1 hs_secs=5
fi
idle_conns=10000

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
  (cd "$root" && cmake --preset release >/dev/null && cmake --build --preset release)
fi
for b in "$fxd" "$fxbench" "$udpref"; do
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
  echo "cpus=$(nproc)"
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "kernel=$(uname -r)"
  echo "quick=$quick"
  echo "file_size=$file_size"
  echo "redis=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
  echo "nginx=$(nginx -v 2>&1 | sed 's/.*nginx\///')"
  echo "iperf3=$(iperf3 --version | head -1 | awk '{print $2}')"
  echo "openssl=$(openssl version | awk '{print $2}')"
  echo "curl=$(curl --version | head -1 | awk '{print $2}')"
} > "$raw/machine.txt"

fxb() { "$fxbench" "$@" --json; }
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
  "$fxd" "${fxd_args[@]}" --print-ports > "$dir/ports" 2> "$dir/log" &
  server_pid=$!
  for _ in $(seq 300); do grep -q tcp= "$dir/ports" 2>/dev/null && break; sleep 0.1; done
  local tcp_kv udp_kv tls_kv
  read -r tcp_kv udp_kv tls_kv < "$dir/ports"
  fxd_tcp="${tcp_kv#tcp=}" fxd_udp="${udp_kv#udp=}" fxd_tls="${tls_kv#tls=}"
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
  for n in 10 100 1000 10000; do
    log "fxd: echo 64 B over $n connections"
    fxb echo --port "$fxd_tcp" -c "$n" -p 1 -s 64 -t "$secs" --warmup "$warm" > "$raw/fxd-flat-$n.json"
  done
  log "fxd: udp 64 B, 64 in flight"
  fxb udp --udp-port "$fxd_udp" -w 64 -s 64 -t "$secs" --warmup "$warm" > "$raw/fxd-udp.json"
  for r in $(seq "$reps"); do
    log "fxd: download $file_size ($r/$reps)"
    fxb download --port "$fxd_tcp" --pid "$fxd_pid" -s "$file_size" --file "$bench_file" > "$raw/fxd-download-$r.json"
  done
  for r in $(seq "$reps"); do
    log "fxd: upload $file_size ($r/$reps)"
    fxb upload --port "$fxd_tcp" --pid "$fxd_pid" -s "$file_size" --file "$bench_file" > "$raw/fxd-upload-$r.json"
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
  redis-server "$work/redis/redis.conf" &
  server_pid=$!
  wait_listening "$redis_port"
  log "redis: $idle_conns idle connections (one PING each)"
  fxb idle --raw-idle --raw-ping 'PING\r\n' --port "$redis_port" --pid "$server_pid" -c "$idle_conns" --hold "$hold" > "$raw/redis-idle.json"
  for cp in 1,1 50,1 50,16; do
    c="${cp%,*}" p="${cp#*,}"
    case $cp in 1,1) n=100000 ;; 50,1) n=300000 ;; *) n=3000000 ;; esac
    n=$((n / scale))
    log "redis-benchmark: PING_MBULK and SET -d 64, connections,pipeline = $cp, $n requests"
    timeout 120 redis-benchmark -h 127.0.0.1 -p "$redis_port" -c "$c" -P "$p" -n "$n" -t ping_mbulk --csv > "$raw/redis-ping-$cp.csv"
    timeout 120 redis-benchmark -h 127.0.0.1 -p "$redis_port" -c "$c" -P "$p" -n "$n" -t set -d 64 --csv > "$raw/redis-set-$cp.csv"
  done
  stop_server

  # --- the C UDP reference ----------------------------------------------------
  log "udp_reference"
  ref_port="$(free_port)"
  "$udpref" "$ref_port" &
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
  for r in $(seq "$reps"); do
    log "fxd TLS: download $file_size ($r/$reps)"
    fxb download --tls --cacert "$cert" --port "$fxd_tls" --pid "$fxd_pid" -s "$file_size" --file "$bench_file" \
      > "$raw/tls-fxd-download-$r.json"
  done
  for r in $(seq "$reps"); do
    log "fxd TLS: upload $file_size ($r/$reps)"
    fxb upload --tls --cacert "$cert" --port "$fxd_tls" --pid "$fxd_pid" -s "$file_size" --file "$bench_file" \
      > "$raw/tls-fxd-upload-$r.json"
  done
  for c in 1 16; do
    log "fxd: new connections, $c at a time, TLS and plain TCP"
    fxb handshake --tls --port "$fxd_tls" --pid "$fxd_pid" -c "$c" -t "$hs_secs" --warmup "$warm" > "$raw/tls-fxd-hs-$c.json"
    fxb handshake --port "$fxd_tcp" --pid "$fxd_pid" -c "$c" -t "$hs_secs" --warmup "$warm" > "$raw/tls-fxd-tcp-$c.json"
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
  redis-server --bind 127.0.0.1 --port 0 --tls-port "$redis_tls" --tls-cert-file "$cert" --tls-key-file "$key" \
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
    timeout 120 redis-benchmark --tls --cacert "$cert" -h 127.0.0.1 -p "$redis_tls" -c "$c" -P "$p" -n "$n" \
      -t ping_mbulk --csv > "$raw/tls-redis-ping-$cp.csv"
  done
  log "redis TLS: openssl s_time -new"
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
table="$(python3 "$root/bench/table.py" "$raw")"
printf '%s\n' "$table"
[[ -n $out ]] && printf '%s\n' "$table" > "$out"
if [[ -s $raw/fxd-errors.txt ]]; then
  echo "fxd logged errors during the run:" >&2
  cat "$raw/fxd-errors.txt" >&2
fi
