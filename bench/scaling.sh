#!/usr/bin/env bash
# bench/scaling.sh: how fxd's cost grows with connections, message size and
# file size (the tables of docs/benchmarks.md, "How cost grows"). Starts its
# own fxd on free ports; uses the binaries in build/release (build them
# first, or run bench/compare.sh once).
set -euo pipefail

secs=3 warm=0.5
[[ ${1:-} == --quick ]] && secs=1 warm=0.3
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/build/release"
fxd="$bin/daemon/fxd" fxbench="$bin/bench/fxbench"
work="$(mktemp -d /tmp/fxd-scaling.XXXXXX)"
pid=""
cleanup() { stop_fxd; rm -rf "$work"; }
trap cleanup EXIT

start_fxd() {
  stop_fxd
  rm -rf "$work/var" "$work/ports"
  "$fxd" --set tcp.port=0 --set udp.port=0 --set admin.enabled=false --set "storage.dir=$work/var" --set log.level=warn \
    --set limits.max_connections=100000 --set limits.max_connections_per_address=100000 \
    --set udp.rate_per_source=0 --print-ports > "$work/ports" 2>> "$work/log" &
  pid=$!
  for _ in $(seq 300); do grep -q tcp= "$work/ports" 2>/dev/null && break; sleep 0.1; done
  read -r t _ < "$work/ports"
  port="${t#tcp=}"
}
stop_fxd() { if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
j() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, d))' "$1"; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

echo "### Connections (64-byte echo, pipeline 1; idle: one ping each, held 3 s, on a fresh daemon)"
echo
echo "| connections | req/s | p50 latency | p99 latency | idle RSS per connection | daemon CPU at rest |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
for n in 1 100 1000 10000; do
  start_fxd # RSS per connection is measured on a daemon that has not grown its heap yet
  i="$("$fxbench" idle --port "$port" --pid "$pid" -c "$n" --hold 3 --json)"
  e="$("$fxbench" echo --port "$port" -c "$n" -p 1 -s 64 -t "$secs" --warmup "$warm" --json)"
  printf '| %s | %s | %s us | %s us | %s B | %s %% |\n' "$n" \
    "$(j '"{:,.0f}".format(requests_per_s)' <<<"$e")" "$(j '"{:.0f}".format(latency_us["p50"])' <<<"$e")" \
    "$(j '"{:.0f}".format(latency_us["p99"])' <<<"$e")" "$(j '"{:,.0f}".format(rss_per_conn_bytes)' <<<"$i")" \
    "$(j '"{:.2f}".format(cpu_percent)' <<<"$i")"
done

start_fxd
echo
echo "### Message size (echo, 10 connections x 8 pipelined)"
echo
echo "| body | req/s | body MB/s each way | p50 latency | daemon CPU per request |"
echo "| ---: | ---: | ---: | ---: | ---: |"
for s in 64 1K 16K 256K; do
  c0=$(cpu)
  e="$("$fxbench" echo --port "$port" -c 10 -p 8 -s "$s" -t "$secs" --warmup 0 --json)"
  c1=$(cpu)
  reqs=$(j 'requests' <<<"$e")
  per=$(python3 -c "print(f'{($c1-$c0)/$hz/max($reqs,1)*1e6:.1f}')")
  printf '| %s | %s | %s | %s us | %s us |\n' "$s" "$(j '"{:,.0f}".format(requests_per_s)' <<<"$e")" \
    "$(j '"{:.1f}".format(mb_per_s)' <<<"$e")" "$(j '"{:.0f}".format(latency_us["p50"])' <<<"$e")" "$per"
done

echo
echo "### File size (one connection; upload with SHA-256 and fsync)"
echo
echo "| file | upload MB/s | last byte to ok | upload daemon CPU/GB | download MB/s | download daemon CPU/GB |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
for s in 1M 16M 256M 1G; do
  f="$work/file-$s.bin"
  u="$("$fxbench" upload --port "$port" --pid "$pid" -s "$s" --file "$f" --json)"
  d="$("$fxbench" download --port "$port" --pid "$pid" -s "$s" --file "$f" --json)"
  printf '| %s | %s | %s ms | %s s | %s | %s s |\n' "$s" "$(j '"{:,.0f}".format(mb_per_s)' <<<"$u")" \
    "$(j '"{:.0f}".format(commit_ms)' <<<"$u")" "$(j '"{:.2f}".format(server_cpu_s_per_gb)' <<<"$u")" \
    "$(j '"{:,.0f}".format(mb_per_s)' <<<"$d")" "$(j '"{:.2f}".format(server_cpu_s_per_gb)' <<<"$d")"
  rm -f "$f" "$f.sha256"
done
