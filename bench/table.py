#!/usr/bin/env python3
"""Turns the raw outputs bench/compare.sh collected into Markdown tables.

Usage: table.py RAW_DIR   (fxbench --json files, redis-benchmark --csv files
and one text output, iperf3 -J output, curl -w lines, dd figures, openssl
s_time figures, machine.txt)

Prints the plain table when its files are there, and the TLS table (the
files named tls-*) when those are.
"""
import csv
import json
import os
import statistics
import sys

raw = sys.argv[1]


def path(name):
    return os.path.join(raw, name)


def fxb(name):
    with open(path(name)) as f:
        return json.load(f)


def redis(name):
    """The first row of redis-benchmark --csv (NAME.csv), or its text output
    (NAME.txt): rps and p50 in microseconds."""
    if not os.path.exists(path(name + ".csv")):
        r = redis_text(name + ".txt")
        return r["rps"], r["p50"]
    with open(path(name + ".csv")) as f:
        row = next(csv.DictReader(f))
    return float(row["rps"]), float(row["p50_latency_ms"]) * 1000.0


def redis_text(name):
    """redis-benchmark's text output: rps, and p50, p99 (its summary) and p99.9
    in microseconds. Its percentile listing halves the distance to 100 % at
    each line (..., 99.805 %, 99.902 %, ...), so p99.9 is read at the first
    line at or above 99.9 %: an upper bound, within one line of the truth."""
    out = {}
    with open(path(name)) as f:
        lines = [line.strip() for line in f]
    for i, line in enumerate(lines):
        if line.startswith("throughput summary:"):
            out["rps"] = float(line.split()[2])
        if line.startswith("avg") and "p99" in line:
            values = dict(zip(line.split(), (float(v) for v in lines[i + 1].split())))
            out["p50"], out["p99"] = values["p50"] * 1000.0, values["p99"] * 1000.0
        if "p999" not in out and line.endswith(")") and "% <= " in line and "milliseconds" in line:
            percent = float(line.split("%")[0])
            if percent >= 99.9:
                out["p999"] = float(line.split("<=")[1].split()[0]) * 1000.0
                out["p999_at"] = percent
    for key in ("rps", "p50", "p99", "p999"):
        if key not in out:
            raise SystemExit(f"{name}: no {key} in redis-benchmark's output")
    return out


def dd_mbps(name):
    with open(path(name)) as f:
        size, secs = (float(x) for x in f.read().split())
    return size / secs / 1e6


def median_of(prefix, read):
    vals = []
    for name in sorted(os.listdir(raw)):
        if name.startswith(prefix):
            vals.append(read(name))
    return statistics.median(vals), len(vals)


def curl_mbps(name):
    with open(path(name)) as f:
        code, size, secs = f.read().split()
    if code not in ("200", "201", "204"):
        raise SystemExit(f"{name}: HTTP {code}")
    return float(size) / float(secs) / 1e6


machine = {}
with open(path("machine.txt")) as f:
    for line in f:
        k, _, v = line.rstrip("\n").partition("=")
        machine[k] = v

rows = []


def num(v, unit=""):
    if v >= 100:
        s = f"{v:,.0f}"
    elif v >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.2f}"
    return f"{s} {unit}".strip()


def add(workload, fxd, peer, peer_fig, ratio, target="", met=None):
    rows.append((workload, fxd, peer, peer_fig, f"{ratio:.2f}" if ratio is not None else "",
                 target or "(info)", "" if met is None else ("yes" if met else "**no**")))


def plain_rows():
    # Small messages.
    for cp in ("1,1", "50,1", "50,16"):
        c, p = cp.split(",")
        e = fxb(f"fxd-echo-{cp}.json")
        rps = e["requests_per_s"]
        ping_rps, ping_p50 = redis(f"redis-ping-{cp}")
        set_rps, set_p50 = redis(f"redis-set-{cp}")
        w = f"64 B echo, {c} conn x {p} pipelined: req/s"
        target = "fxd >= PING_MBULK" if cp == "50,16" else ""
        add(w, num(rps), "redis PING_MBULK", num(ping_rps), rps / ping_rps, target,
            rps >= ping_rps if cp == "50,16" else None)
        add(w, num(rps), "redis SET -d 64", num(set_rps), rps / set_rps)
        if cp in ("1,1", "50,16"):
            ref_rps = fxb(f"tcpref-echo-{cp}.json")["requests_per_s"]
            target = ">= 0.80 x reference" if cp == "50,16" else ""
            add(w, num(rps), "C epoll reference (tcp_reference)", num(ref_rps), rps / ref_rps, target,
                rps >= 0.8 * ref_rps if cp == "50,16" else None)
        if cp == "1,1":
            p50 = e["latency_us"]["p50"]
            add("64 B echo, 1 x 1: p50 latency", num(p50, "us"), "redis PING_MBULK p50", num(ping_p50, "us"),
                p50 / ping_p50, "fxd <= redis", p50 <= ping_p50)
            add("64 B echo, 1 x 1: p50 latency", num(p50, "us"), "redis SET -d 64 p50", num(set_p50, "us"),
                p50 / set_p50)
            ref_p50 = fxb("tcpref-echo-1,1.json")["latency_us"]["p50"]
            add("64 B echo, 1 x 1: p50 latency", num(p50, "us"), "C reference p50", num(ref_p50, "us"),
                p50 / ref_p50)
            lat = e["latency_us"]
            add("64 B echo, 1 x 1: p99 / p99.9", f"{num(lat['p99'])} / {num(lat['p999'])} us", "", "", None)
        if cp == "50,16":
            lat = e["latency_us"]
            add("64 B echo, 50 x 16: p50 / p99 / p99.9",
                f"{num(lat['p50'])} / {num(lat['p99'])} / {num(lat['p999'])} us", "", "", None)
            # Latency against redis: fxbench in batches of 16 as redis-benchmark -P 16
            # sends them (each from its batch's send to its reply).
            b = fxb("fxd-batch-50,16.json")
            rt = redis_text("redis-ping-50,16.txt")
            w = "64 B echo, 50 x 16 in batches (redis-benchmark's -P)"
            add(f"{w}: req/s", num(b["requests_per_s"]), "redis PING_MBULK", num(rt["rps"]),
                b["requests_per_s"] / rt["rps"])
            for key, label, peer_label in (("p99", "p99", "p99"), ("p999", "p99.9", f"p{rt['p999_at']:g}")):
                add(f"{w}: {label} latency", num(b["latency_us"][key], "us"), f"redis PING_MBULK {peer_label}",
                    num(rt[key], "us"), b["latency_us"][key] / rt[key])

    # Connect per request.
    fc = fxb("fxd-connect.json")
    rc = fxb("tcpref-connect.json")
    with open(path("redis-connect.csv")) as f:
        redis_cpr = float(next(csv.DictReader(f))["rps"])
    cpr = fc["connections_per_s"]
    w = f"connect, one 64 B echo, close ({fc['connections']} at a time): req/s"
    add(w, num(cpr), "redis -k 0 PING_MBULK", num(redis_cpr), cpr / redis_cpr, ">= 0.95 x redis",
        cpr >= 0.95 * redis_cpr)
    add(w, num(cpr), "C epoll reference (tcp_reference)", num(rc["connections_per_s"]),
        cpr / rc["connections_per_s"])
    if "server_cpu_us_per_conn" in fc and "server_cpu_us_per_conn" in rc:
        add("connect per request: server CPU per connection", num(fc["server_cpu_us_per_conn"], "us"),
            "C reference", num(rc["server_cpu_us_per_conn"], "us"),
            fc["server_cpu_us_per_conn"] / rc["server_cpu_us_per_conn"])

    # Transfers.
    with open(path("iperf3.json")) as f:
        iperf = json.load(f)["end"]["sum_received"]["bits_per_second"] / 8 / 1e6
    dl, n_dl = median_of("fxd-download-", lambda n: fxb(n)["mb_per_s"])
    ul, n_ul = median_of("fxd-upload-", lambda n: fxb(n)["mb_per_s"])
    dl_cpu, _ = median_of("fxd-download-", lambda n: fxb(n)["server_cpu_s_per_gb"])
    ul_cpu, _ = median_of("fxd-upload-", lambda n: fxb(n)["server_cpu_s_per_gb"])
    ng_dl, _ = median_of("nginx-download-", curl_mbps)
    ng_ul, _ = median_of("nginx-upload-", curl_mbps)
    size = machine.get("file_size", "?")
    runs = f", median of {n_dl}" if n_dl > 1 else ""
    add(f"download {size}B, 1 conn: MB/s{runs}", num(dl, "MB/s"), "iperf3 1 stream", num(iperf, "MB/s"), dl / iperf,
        ">= 0.90 x iperf3", dl >= 0.9 * iperf)
    add(f"download {size}B, 1 conn: MB/s{runs}", num(dl, "MB/s"), "nginx sendfile + curl", num(ng_dl, "MB/s"), dl / ng_dl,
        ">= nginx", dl >= ng_dl)
    add(f"upload {size}B, 1 conn: MB/s{runs}", num(ul, "MB/s"), "iperf3 1 stream", num(iperf, "MB/s"), ul / iperf,
        ">= 0.60 x iperf3", ul >= 0.6 * iperf)
    add(f"upload {size}B, 1 conn: MB/s{runs}", num(ul, "MB/s"), "nginx WebDAV PUT + curl -T", num(ng_ul, "MB/s"),
        ul / ng_ul, ">= nginx", ul >= ng_ul)
    dd, n_dd = median_of("dd-upload-", dd_mbps)
    runs_dd = f", medians of {n_ul} alternating" if n_ul > 1 else ", alternating"
    add(f"upload {size}B with SHA-256, durable: MB/s{runs_dd}", num(ul, "MB/s"), "dd bs=1M conv=fsync, same filesystem",
        num(dd, "MB/s"), ul / dd, ">= 0.90 x dd", ul >= 0.9 * dd)
    add("download: daemon CPU per GB", num(dl_cpu, "s/GB"), "", "", None)
    add("upload: daemon CPU per GB (SHA-256 + fsync)", num(ul_cpu, "s/GB"), "", "", None)

    # UDP.
    u = fxb("fxd-udp.json")
    r = fxb("ref-udp.json")
    add("UDP 64 B echo, 64 in flight: datagrams/s", num(u["datagrams_per_s"]), "C recvmmsg/sendmmsg echo",
        num(r["datagrams_per_s"]), u["datagrams_per_s"] / r["datagrams_per_s"], ">= 0.80 x reference",
        u["datagrams_per_s"] >= 0.8 * r["datagrams_per_s"])
    add("UDP: loss / p50 latency", f"{u['loss_percent']:.3f} % / {num(u['latency_us']['p50'], 'us')}",
        "C reference", f"{r['loss_percent']:.3f} % / {num(r['latency_us']['p50'], 'us')}", None)

    # Idle connections.
    fi = fxb("fxd-idle.json")
    ri = fxb("redis-idle.json")
    n = fi["connections"]
    fb, rb = fi["rss_per_conn_bytes"], ri["rss_per_conn_bytes"]
    add(f"{n:,} idle connections: RSS per connection", num(fb, "B"), "redis-server", num(rb, "B"),
        fb / rb if rb > 0 else None, "<= 10 KiB and < redis", fb <= 10240 and fb < rb)
    add(f"{n:,} idle connections: CPU at rest", f"{fi['cpu_percent']:.2f} % of a core", "redis-server",
        f"{ri['cpu_percent']:.2f} % of a core", None)

    # Echo over many connections.
    flat = {k: fxb(f"fxd-flat-{k}.json")["requests_per_s"] for k in (10, 100, 1000, 10000)}
    best = max(flat.values())
    for k, v in flat.items():
        add(f"64 B echo, {k:,} conn x 1: req/s", num(v), "fxd, best of 10..10,000", num(best), v / best,
            ">= 0.80 x best (flat)", v >= 0.8 * best)


tls_table = []


def tls_add(workload, fxd, peer="", peer_fig="", ratio=None):
    tls_table.append((workload, fxd, peer, peer_fig, f"{ratio:.2f}" if ratio is not None else ""))


def s_time(name):
    """openssl s_time -new through compare.sh: new connections per wall second, server CPU ms per connection."""
    with open(path(name)) as f:
        n, wall, cpu = (float(x) for x in f.read().split())
    return n / wall, cpu / n * 1e3


def tls_rows():
    plain = os.path.exists(path("fxd-echo-1,1.json"))
    for cp in ("1,1", "50,1", "50,16"):
        c, p = cp.split(",")
        e = fxb(f"tls-fxd-echo-{cp}.json")
        rps = e["requests_per_s"]
        ping_rps, ping_p50 = redis(f"tls-redis-ping-{cp}")
        w = f"64 B echo over TLS, {c} conn x {p} pipelined: req/s"
        tls_add(w, num(rps), "redis --tls PING_MBULK", num(ping_rps), rps / ping_rps)
        if plain:
            plain_rps = fxb(f"fxd-echo-{cp}.json")["requests_per_s"]
            tls_add(w, num(rps), "fxd, plain TCP (same run)", num(plain_rps), rps / plain_rps)
        if cp == "1,1":
            p50 = e["latency_us"]["p50"]
            tls_add("64 B echo over TLS, 1 x 1: p50 latency", num(p50, "us"), "redis --tls PING_MBULK p50",
                    num(ping_p50, "us"), p50 / ping_p50)
    size = machine.get("file_size", "?")
    for kind, peer in (("download", "nginx HTTPS GET + curl -k"), ("upload", "nginx HTTPS WebDAV PUT + curl -k -T")):
        mbps, n = median_of(f"tls-fxd-{kind}-", lambda name: fxb(name)["mb_per_s"])
        cpu, _ = median_of(f"tls-fxd-{kind}-", lambda name: fxb(name)["server_cpu_s_per_gb"])
        ng, _ = median_of(f"tls-nginx-{kind}-", curl_mbps)
        runs = f", median of {n}" if n > 1 else ""
        tls_add(f"{kind} {size}B over TLS, 1 conn: MB/s{runs}", num(mbps, "MB/s"), peer, num(ng, "MB/s"), mbps / ng)
        if plain:
            pl, _ = median_of(f"fxd-{kind}-", lambda name: fxb(name)["mb_per_s"])
            tls_add(f"{kind} {size}B over TLS, 1 conn: MB/s{runs}", num(mbps, "MB/s"), "fxd, plain TCP (same run)",
                    num(pl, "MB/s"), mbps / pl)
        tls_add(f"{kind} over TLS: daemon CPU per GB", num(cpu, "s/GB"))
    fx_rate, fx_cpu = s_time("tls-fxd-stime.txt")
    for peer in ("nginx", "redis"):
        rate, cpu = s_time(f"tls-{peer}-stime.txt")
        tls_add("new TLS connections/s, `openssl s_time -new` (one at a time)", num(fx_rate), f"{peer} (s_time)",
                num(rate), fx_rate / rate)
        tls_add("server CPU per new TLS connection (s_time)", num(fx_cpu, "ms"), f"{peer} (s_time)",
                num(cpu, "ms"), fx_cpu / cpu)
    for c in (1, 16):
        t = fxb(f"tls-fxd-hs-{c}.json")
        p = fxb(f"tls-fxd-tcp-{c}.json")
        w = f"new connections/s, fxbench handshake -c {c} (connect, handshake, ping, close)"
        tls_add(w, f"{num(t['connections_per_s'])} TLS", "fxd, plain TCP", num(p["connections_per_s"]),
                t["connections_per_s"] / p["connections_per_s"])
        if "server_cpu_us_per_conn" in t and "server_cpu_us_per_conn" in p:
            tls_add(f"fxd CPU per new connection (-c {c})", num(t["server_cpu_us_per_conn"], "us"), "fxd, plain TCP",
                    num(p["server_cpu_us_per_conn"], "us"), t["server_cpu_us_per_conn"] / p["server_cpu_us_per_conn"])


mode = "quick run (--quick)" if machine.get("quick") == "1" else "full run"
if os.path.exists(path("fxd-idle.json")):
    plain_rows()
    print(f"fxd against its peers on loopback, {machine.get('date')}: {machine.get('cpus')} cores "
          f"({machine.get('cpu')}), kernel {machine.get('kernel')}, load average {machine.get('load')} at start, "
          f"{machine.get('load_end', '?')} at end; "
          f"{mode}; {machine.get('pinning', 'not pinned')}; redis {machine.get('redis')}, nginx {machine.get('nginx')}, "
          f"iperf3 {machine.get('iperf3')}, dd {machine.get('dd', '?')}.")
    print()
    print("| workload | fxd | peer | peer figure | ratio | target | met? |")
    print("| --- | ---: | --- | ---: | ---: | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")

if os.path.exists(path("tls-fxd-echo-1,1.json")):
    tls_rows()
    if rows:
        print()
    params = {k: open(path(f"tls-params-{k}.txt")).read().strip() or "?" for k in ("fxd", "redis", "nginx")}
    print(f"TLS: fxd against its peers on loopback, {machine.get('date')}: {machine.get('cpus')} cores "
          f"({machine.get('cpu')}), load average at start {machine.get('load')}; {mode}; {machine.get('pinning', 'not pinned')}; OpenSSL "
          f"{machine.get('openssl')}, one self-signed P-256 ECDSA certificate; negotiated with OpenSSL's "
          f"defaults: fxd {params['fxd']}, redis {params['redis']}, nginx {params['nginx']}.")
    print()
    print("| workload (TLS) | fxd | peer | peer figure | ratio |")
    print("| --- | ---: | --- | ---: | ---: |")
    for row in tls_table:
        print("| " + " | ".join(row) + " |")
