#!/usr/bin/env bash
# A private one-node Ceph (one monitor, one manager, one OSD) with the RADOS
# Gateway's S3 API on 127.0.0.1, from Debian's own packages, run as plain
# background processes (no systemd, no cephadm). Everything lives under DIR:
# config, keys, the monitor's store, the OSD's store, logs, sockets, PIDs.
#
#   ceph-s3.sh start DIR    make the cluster (first time) or start it again (after
#                           stop or kill: same data, keys and port); prints and
#                           writes DIR/env: S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION,
#                           and S3_TLS_ENDPOINT + S3_CA_FILE: the same gateway over
#                           https, with a self-signed certificate for IP 127.0.0.1
#   ceph-s3.sh stop DIR     SIGTERM each daemon (gateway first), bounded waits; data kept
#   ceph-s3.sh kill DIR     SIGKILL every daemon at once (a store that dies mid-request)
#   ceph-s3.sh destroy DIR  stop, then remove DIR (only a DIR this script made)
#
# Exit status 77 when Debian's ceph packages are not installed (scripts/setup.sh
# --test installs them): test suites turn that into "skipped".
# Environment: CEPH_S3_STORE=bluestore (default: a sparse file, survives stop and
# start) or memstore (RAM; start after stop is refused); CEPH_S3_WAIT_S=120 (the
# longest wait for any one step).
set -euo pipefail

readonly store=${CEPH_S3_STORE:-bluestore}
readonly wait_s=${CEPH_S3_WAIT_S:-120}
readonly region=us-east-1
readonly daemons=(mon.a mgr.x osd.0 rgw.a) # start order; stop goes backwards

say() { echo "ceph-s3: $*" >&2; }
die() { say "$*"; exit 1; }

need_packages() {
    local tool
    for tool in ceph-mon ceph-mgr ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl python3 openssl; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            say "$tool is missing: install Debian's ceph-mon ceph-mgr ceph-osd radosgw ceph-common curl (scripts/setup.sh --test)"
            exit 77
        fi
    done
}

unused_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
random_text() { head -c 4000 /dev/urandom | tr -dc "$2" | head -c "$1"; }

ceph_cli() { timeout 60 ceph -c "$DIR/ceph.conf" --connect-timeout 20 "$@"; }

# PID of a daemon of this DIR, if running (its command line names DIR's config).
pid_of() {
    local pid
    pid=$(cat "$DIR/run/$1.started-pid" 2>/dev/null) || return 1
    running "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/ceph.conf" || return 1
    echo "$pid"
}
# A zombie has let go of its ports and files: it counts as gone.
running() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status"; }

launch() { # NAME COMMAND...: in the foreground (-f) of a background job, output to DIR/log/NAME.out
    local name=$1; shift
    "$@" -f -c "$DIR/ceph.conf" </dev/null >>"$DIR/log/$name.out" 2>&1 &
    echo $! >"$DIR/run/$name.started-pid"
}

# until_ok NAME WHAT COMMAND...: poll COMMAND; give up after wait_s, or at once when NAME died.
until_ok() {
    local name=$1 what=$2 until=$((SECONDS + wait_s)); shift 2
    until "$@" >/dev/null 2>&1; do
        if ! pid_of "$name" >/dev/null; then
            tail -n 20 "$DIR/log/$name.out" "$DIR/log/"*"$name"*.log 2>/dev/null >&2 || true
            die "$name exited while waiting for $what (logs in $DIR/log)"
        fi
        [ "$SECONDS" -lt "$until" ] || die "gave up after ${wait_s}s waiting for $what (logs in $DIR/log)"
        sleep 0.2
    done
}

signed() { # EXPECTED_STATUS METHOD PATH [CURL ARGS]: one SigV4 request with curl
    local want=$1 method=$2 path=$3 got; shift 3
    # curl does not send x-amz-content-sha256 itself, and RGW wants it.
    got=$(curl -s -o "$DIR/log/last-s3-answer" -w '%{http_code}' --max-time 20 -X "$method" \
        --aws-sigv4 "aws:amz:$region:s3" -u "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" "$S3_ENDPOINT$path") || true
    [ "$got" = "$want" ]
}

write_config() {
    local fsid=$1 mon_port=$2 s3_port=$3 tls_port=$4
    cat >"$DIR/ceph.conf" <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$mon_port]
public_addr = 127.0.0.1
ms_bind_msgr1 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = $DIR/keyring
run_dir = $DIR/run
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid
log_file = $DIR/log/\$name.log
crash_dir = $DIR/log
mon_data = $DIR/\$name
mgr_data = $DIR/\$name
osd_data = $DIR/\$name
rgw_data = $DIR/\$name
# a single OSD: one copy, few placement groups, no redundancy warnings
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 2
mon_data_avail_crit = 1
# map changes committed every 0.1 s: pools and the OSD's boot wait for commits
paxos_propose_interval = 0.1
mgr_initial_modules = iostat
osd_objectstore = $store
bluestore_block_size = 10737418240
bluestore_fsck_on_mount = false
bluestore_fsck_on_mkfs = false
memstore_device_bytes = 2147483648
osd_memory_target = 939524096

[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$s3_port ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$DIR/tls.pem
CONF
}

create() {
    local fsid osd_uuid mon_port id kr=$DIR/keyring
    mkdir -p "$DIR"/{log,run,mon.a,mgr.x,osd.0,rgw.a}
    : >"$DIR/.made-by-ceph-s3"
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    mon_port=$(unused_port)
    write_config "$fsid" "$mon_port" "$(unused_port)" "$(unused_port)"
    # One self-signed certificate (key included: radosgw reads both from one
    # file) for the IP only, so that a client asking for "localhost" must refuse it.
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$DIR/tls.key" -out "$DIR/tls.crt" >/dev/null 2>&1 || die "openssl could not make the certificate"
    cat "$DIR/tls.crt" "$DIR/tls.key" >"$DIR/tls.pem"
    ceph-authtool --create-keyring "$kr" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool "$kr" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$kr" --gen-key -n mgr.x --cap mon 'allow profile mgr' --cap osd 'allow *' >/dev/null
    ceph-authtool "$kr" --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
    ceph-authtool "$kr" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >/dev/null
    ceph-mon --mkfs -i a --monmap "$DIR/monmap" --keyring "$kr" -c "$DIR/ceph.conf" >>"$DIR/log/mon.a.out" 2>&1 ||
        die "ceph-mon --mkfs failed (see $DIR/log/mon.a.out)"
    launch mon.a ceph-mon -i a
    until_ok mon.a "the monitor" ceph_cli mon stat
    id=$(ceph_cli osd new "$osd_uuid") || die "ceph osd new failed"
    [ "$id" = 0 ] || die "the new OSD got id $id, not 0"
    ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" -c "$DIR/ceph.conf" >>"$DIR/log/osd.0.out" 2>&1 ||
        die "ceph-osd --mkfs failed (see $DIR/log/osd.0.out)"
    echo "$store" >"$DIR/store"
}

osd_is_up() { ceph_cli osd dump | grep -q '^osd\.0 up'; }
gateway_answers() { curl -s -o /dev/null --max-time 3 "$S3_ENDPOINT/"; }

# The first bucket, object and multipart upload make RGW create its pools (seconds
# each): done here so that no test pays for it.
first_use() {
    local b=/ceph-s3-first-use id
    signed 200 PUT "$b" && signed 200 PUT "$b/o" --data-binary x && signed 200 GET "$b/o" &&
        signed 200 POST "$b/m?uploads=" || return 1
    id=$(sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p' "$DIR/log/last-s3-answer")
    [ -n "$id" ] && signed 204 DELETE "$b/m?uploadId=$id" && signed 204 DELETE "$b/o" && signed 204 DELETE "$b"
}

start() {
    need_packages
    case "$DIR" in *[[:space:]]*) die "DIR must have no blanks (ceph.conf cannot quote them)";; esac
    local fresh=0
    if [ ! -f "$DIR/ceph.conf" ]; then
        if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then die "$DIR is not empty and holds no cluster"; fi
        case "$store" in bluestore | memstore) ;; *) die "CEPH_S3_STORE must be bluestore or memstore";; esac
        create
        fresh=1
    elif [ "$(cat "$DIR/store")" = memstore ] && ! pid_of osd.0 >/dev/null; then
        die "$DIR's OSD kept its objects in memory and is gone: destroy it and start anew"
    fi
    local s3_port
    s3_port=$(sed -n 's/^rgw_frontends = beast endpoint=127.0.0.1:\([0-9]*\) .*$/\1/p' "$DIR/ceph.conf")
    S3_ENDPOINT=http://127.0.0.1:$s3_port

    pid_of mon.a >/dev/null || launch mon.a ceph-mon -i a
    until_ok mon.a "the monitor" ceph_cli mon stat
    pid_of mgr.x >/dev/null || launch mgr.x ceph-mgr -i x
    pid_of osd.0 >/dev/null || launch osd.0 ceph-osd -i 0
    until_ok osd.0 "osd.0 up" osd_is_up
    pid_of rgw.a >/dev/null || launch rgw.a radosgw -n client.rgw.a
    until_ok rgw.a "the gateway on $S3_ENDPOINT" gateway_answers

    if [ "$fresh" = 1 ]; then
        S3_ACCESS_KEY=$(random_text 20 'A-Z0-9')
        S3_SECRET_KEY=$(random_text 40 'A-Za-z0-9')
        timeout 60 radosgw-admin -c "$DIR/ceph.conf" user create --uid=fxd-test --display-name="fxd tests" \
            --access-key="$S3_ACCESS_KEY" --secret-key="$S3_SECRET_KEY" >/dev/null 2>>"$DIR/log/radosgw-admin.out" ||
            die "radosgw-admin user create failed (see $DIR/log/radosgw-admin.out)"
        local tls_port
        tls_port=$(sed -n 's/^rgw_frontends = .* ssl_endpoint=127.0.0.1:\([0-9]*\) .*$/\1/p' "$DIR/ceph.conf")
        printf 'S3_ENDPOINT=%s\nS3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\nS3_REGION=%s\nS3_TLS_ENDPOINT=%s\nS3_CA_FILE=%s\n' \
            "$S3_ENDPOINT" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$region" "https://127.0.0.1:$tls_port" "$DIR/tls.crt" \
            >"$DIR/env"
    else
        # shellcheck source=/dev/null
        . "$DIR/env"
    fi
    until_ok rgw.a "a signed request to succeed" signed 200 GET /
    if [ "$fresh" = 1 ]; then first_use || die "the first bucket, object and upload failed: $(cat "$DIR/log/last-s3-answer")"; fi
    cat "$DIR/env"
}

stop() {
    local i name pid until
    for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do
        name=${daemons[i]}
        pid=$(pid_of "$name") || continue
        kill -TERM "$pid" 2>/dev/null || true
        until=$((SECONDS + 20))
        while running "$pid" && [ "$SECONDS" -lt "$until" ]; do sleep 0.05; done
        if running "$pid"; then
            say "$name ($pid) still running 20 s after SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
        fi
    done
}

kill_all() {
    local name pid pids=()
    for name in "${daemons[@]}"; do
        if pid=$(pid_of "$name"); then pids+=("$pid"); fi
    done
    [ ${#pids[@]} -eq 0 ] && return 0
    kill -KILL "${pids[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do running "$pid" || break; sleep 0.05; done
    done
}

destroy() {
    [ -d "$DIR" ] || return 0
    [ -f "$DIR/.made-by-ceph-s3" ] || die "$DIR was not made by ceph-s3.sh; not removing it"
    stop
    rm -rf "$DIR"
}

if [ $# -ne 2 ]; then sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; fi
DIR=$(realpath -m "$2")
[ "$DIR" != / ] || die "refusing DIR=/"
case "$1" in
start) start ;;
stop | kill)
    if [ ! -d "$DIR" ]; then say "$DIR does not exist: nothing to $1"; exit 0; fi
    if [ "$1" = stop ]; then stop; else kill_all; fi
    ;;
destroy) destroy ;;
*) die "unknown command '$1' (start, stop, kill, destroy)" ;;
esac
