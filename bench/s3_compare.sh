#!/usr/bin/env bash
# Upload and download SIZE MiB (default 256; 1024 for issue 16's 1 GiB rows)
# against one private gateway started by scripts/lib/ceph-s3.sh, in the same
# run, three ways:
#   - fxd::s3::client directly (build/ci/bench/s3_transfer): the direct client;
#   - s3cmd (Debian's), put and get of a file;
#   - through fxd: fxd with storage.backend "s3" on the same gateway (parts of
#     16 MiB, like the other two), fxbench as its client on loopback (plain
#     TCP, one connection); the ratio to the direct client is printed (issue
#     16's target: at least 0.8 both ways).
# The direct client and fxd take turns, ROUNDS times (default 3), so that both
# meet the same load on a shared machine; the last line gives the medians and
# their ratios. s3cmd runs once, for reference. Not part of CI.
#   bench/s3_compare.sh [SIZE_MIB] [BUILD_DIR]      (ROUNDS=N in the environment)
set -euo pipefail
size=${1:-256}
build=${2:-build/ci}
rounds=${ROUNDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/fxd-s3-compare-XXXXXX)
gateway=$work/gateway
fxd_pid=""
cleanup() {
    if [ -n "$fxd_pid" ]; then kill "$fxd_pid" 2>/dev/null || true; wait "$fxd_pid" 2>/dev/null || true; fi
    "$root/scripts/lib/ceph-s3.sh" destroy "$gateway" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

for tool in bench/s3_transfer bench/fxbench daemon/fxd; do
    [ -x "$root/$build/$tool" ] || { echo "$build/$tool missing (cmake --build $build --target ${tool##*/})"; exit 1; }
done
command -v s3cmd >/dev/null || { echo "s3cmd missing (apt-get install s3cmd)"; exit 77; }
"$root/scripts/lib/ceph-s3.sh" start "$gateway" >/dev/null
set -a
# shellcheck disable=SC1091 # written by ceph-s3.sh at run time
. "$gateway/env"
set +a

# field NAME LINE: the value of NAME=VALUE in a result line
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
# rate START END: MiB/s for SIZE MiB between two `date +%s.%N` stamps
rate() { python3 -c "import sys; print(f'{$size / (float(sys.argv[2]) - float(sys.argv[1])):.1f}')" "$1" "$2"; }
# ratio A B: A / B to two places
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }

host=${S3_ENDPOINT#http://}
cat >"$work/s3cfg" <<CFG
[default]
access_key = $S3_ACCESS_KEY
secret_key = $S3_SECRET_KEY
host_base = $host
host_bucket = $host
use_https = False
signature_v2 = False
bucket_location = $S3_REGION
multipart_chunk_size_mb = 16
CFG
s3() { s3cmd -c "$work/s3cfg" --no-progress --quiet "$@"; }
s3 mb s3://s3cmd-bench >/dev/null 2>&1 || true
head -c $((size * 1024 * 1024)) /dev/urandom >"$work/payload"
t0=$(date +%s.%N); s3 put "$work/payload" s3://s3cmd-bench/payload; t1=$(date +%s.%N)
s3 get --force s3://s3cmd-bench/payload "$work/back"; t2=$(date +%s.%N)
cmp -s "$work/payload" "$work/back" || { echo "s3cmd read back different bytes"; exit 1; }
s3 del s3://s3cmd-bench/payload >/dev/null
rm -f "$work/back"
echo "s3cmd upload_mib_s=$(rate "$t0" "$t1") download_mib_s=$(rate "$t1" "$t2") bytes=$((size * 1024 * 1024)) part_mib=16"

# Through fxd: its own bucket (fxd does not create one), keys from the environment.
s3 mb s3://fxd-through >/dev/null
mkdir -p "$work/fxd"
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY "$root/$build/daemon/fxd" \
    --set tcp.port=0 --set udp.port=0 --set admin.port=0 --set "storage.dir=$work/fxd" --set log.level=warn \
    --set storage.backend=s3 --set "s3.endpoint=$S3_ENDPOINT" --set s3.bucket=fxd-through \
    --set "s3.region=$S3_REGION" --set s3.part_bytes=$((16 * 1024 * 1024)) --set s3.request_timeout_s=120 \
    --print-ports >"$work/fxd/ports" 2>"$work/fxd/log" &
fxd_pid=$!
for _ in $(seq 300); do grep -q tcp= "$work/fxd/ports" 2>/dev/null && break; sleep 0.1; done
grep -q tcp= "$work/fxd/ports" || { echo "fxd did not start:"; tail -n 20 "$work/fxd/log"; exit 1; }
port=$(sed -n 's/.*tcp=\([0-9]*\).*/\1/p' "$work/fxd/ports")
fxb() { "$root/$build/bench/fxbench" "$@" --port "$port" --pid "$fxd_pid" -s "${size}M" --file "$work/payload" --json; }
mib() { python3 -c "import json, sys; print(f'{json.loads(sys.argv[1])[\"mb_per_s\"] * 1e6 / 1048576:.1f}')" "$1"; }
median() { python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])):.1f}')" "$@"; }

direct_up=() direct_down=() fxd_up=() fxd_down=()
for r in $(seq "$rounds"); do
    direct=$("$root/$build/bench/s3_transfer" "$S3_ENDPOINT" fxd-bench "$size" 16)
    echo "round $r: $direct"
    direct_up+=("$(field upload_mib_s "$direct")") direct_down+=("$(field download_mib_s "$direct")")
    # download uploads the file the first time (not measured), then times the download;
    # upload times a new version of its own name.
    down=$(mib "$(fxb download)")
    up=$(mib "$(fxb upload)")
    echo "round $r: fxd_through_s3 upload_mib_s=$up download_mib_s=$down bytes=$((size * 1024 * 1024)) part_mib=16"
    fxd_up+=("$up") fxd_down+=("$down")
done
du=$(median "${direct_up[@]}") dd=$(median "${direct_down[@]}") fu=$(median "${fxd_up[@]}") fd=$(median "${fxd_down[@]}")
echo "median of $rounds: direct upload_mib_s=$du download_mib_s=$dd; fxd_through_s3 upload_mib_s=$fu" \
    "download_mib_s=$fd; upload_vs_direct=$(ratio "$fu" "$du") download_vs_direct=$(ratio "$fd" "$dd")"
if grep -E ' (error|critical) ' "$work/fxd/log" >&2; then echo "fxd logged errors (above)"; exit 1; fi
