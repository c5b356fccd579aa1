#!/usr/bin/env bash
# Upload and download SIZE MiB (default 256) through fxd::s3::client
# (build/ci/bench/s3_transfer) and through s3cmd, against one private gateway
# started by scripts/lib/ceph-s3.sh, in the same run. Not part of CI.
#   bench/s3_compare.sh [SIZE_MIB] [BUILD_DIR]
set -euo pipefail
size=${1:-256}
build=${2:-build/ci}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/fxd-s3-compare-XXXXXX)
gateway=$work/gateway
trap '"$root/scripts/lib/ceph-s3.sh" destroy "$gateway" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

"$root/scripts/lib/ceph-s3.sh" start "$gateway" >/dev/null
set -a
# shellcheck disable=SC1091 # written by ceph-s3.sh at run time
. "$gateway/env"
set +a
command -v s3cmd >/dev/null || { echo "s3cmd missing (apt-get install s3cmd)"; exit 77; }

"$root/$build/bench/s3_transfer" "$S3_ENDPOINT" fxd-bench "$size" 16

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
# rate START END: MiB/s for SIZE MiB between two `date +%s.%N` stamps
rate() { python3 -c "import sys; print(f'{$size / (float(sys.argv[2]) - float(sys.argv[1])):.1f}')" "$1" "$2"; }
t0=$(date +%s.%N); s3 put "$work/payload" s3://s3cmd-bench/payload; t1=$(date +%s.%N)
s3 get --force s3://s3cmd-bench/payload "$work/back"; t2=$(date +%s.%N)
cmp -s "$work/payload" "$work/back" || { echo "s3cmd read back different bytes"; exit 1; }
echo "s3cmd upload_mib_s=$(rate "$t0" "$t1") download_mib_s=$(rate "$t1" "$t2") bytes=$((size * 1024 * 1024)) part_mib=16"
