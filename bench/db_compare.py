#!/usr/bin/env python3
"""One fxd on SQLite against one fxd on PostgreSQL, in the same run.

    bench/db_compare.py [--fxd PATH] [--fxbench PATH] [--seconds T] [--clients N]

Starts a private, durable PostgreSQL 15 (scripts/lib/postgres.sh with fsync
on, and pg_stat_statements to count statements) and two fxd on port 0, each
with its own storage folder: one with the default SQLite database, one with
database.url. For each it measures

  echo     fxbench echo, 8 connections x 16 pipelined 64-byte requests
  login    logins/s by N clients (each: connect, login, close), Argon2id at
           its cheapest (auth.hash_memory_bytes=8192, passes 1) so that the
           database's share shows; the default cost (19 MiB, 2 passes) is
           ~50 ms per login on either database
  upload   4 KiB uploads/s by N clients, each on its own logged-in connection
  stat     stat/s by N clients (one catalog read and the login check)

and, for PostgreSQL, the statements and transactions per op (from
pg_stat_statements and pg_stat_database). Prints a Markdown table.
"""

import argparse
import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))
from fxclient import FxClient, encode_frame, read_reply  # noqa: E402

POSTGRES_SH = os.path.join(ROOT, "scripts", "lib", "postgres.sh")
PASSWORD = "bench-password"
CHEAP_HASH = ["auth.hash_memory_bytes=8192", "auth.hash_passes=1"]


def start_fxd(fxd, storage, sets, env):
    args = [fxd, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", f"storage.dir={storage}",
            "--set", "log.level=warn", "--set", "auth.max_failures_per_address=1000000",
            "--set", "auth.max_registrations_per_address=1000000", "--set", "workers.threads=4",
            "--set", "workers.hash_threads=2", "--set", "admin.enabled=false", "--print-ports"]
    for s in CHEAP_HASH + sets:
        args += ["--set", s]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = proc.stdout.readline().decode()
    if not line.startswith("tcp="):
        raise SystemExit(f"fxd did not start: {line!r}")
    return proc, int(dict(kv.split("=") for kv in line.split())["tcp"])


def worker(kind, port, index, seconds, out):
    user = f"u{index}"
    data = os.urandom(4096)
    sha = hashlib.sha256(data).hexdigest()
    c = FxClient(port=port, timeout=30)
    c.login(user, PASSWORD)
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if kind == "login":
            with FxClient(port=port, timeout=30) as fresh:
                fresh.login(user, PASSWORD)
        elif kind == "upload":
            c._sock.sendall(encode_frame({"op": "upload", "id": done, "name": f"f{done % 64}", "size": len(data),
                                          "sha256": sha}, data))
            header, _ = read_reply(c._sock)
            assert header["status"] == "ok", header
        elif kind == "stat":
            c.stat("f0")
        done += 1
    c.close()
    out.put(done)


def rate(kind, port, clients, seconds):
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=worker, args=(kind, port, i, seconds, out)) for i in range(clients)]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def echo_rate(fxbench, port, seconds):
    r = subprocess.run([fxbench, "echo", "--port", str(port), "-c", "8", "-p", "16", "-t", str(seconds)],
                       capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        if line.startswith("requests/s:"):
            return float(line.split()[1])
    raise SystemExit(f"no rate in fxbench's output:\n{r.stdout}")


def psql(pg_dir, url, sql):
    r = subprocess.run(["psql", url, "-At", "-c", sql], capture_output=True, text=True, check=True)
    return r.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fxd", default=os.path.join(ROOT, "build", "release", "daemon", "fxd"))
    ap.add_argument("--fxbench", default=os.path.join(ROOT, "build", "release", "bench", "fxbench"))
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="fxd-dbbench-")
    pg_dir = tempfile.mkdtemp(prefix="fxd-dbbench-pg-", dir="/tmp")
    os.chmod(pg_dir, 0o755)
    env = dict(os.environ, FXD_PG_DURABLE="1", FXD_PG_CONF="shared_preload_libraries = 'pg_stat_statements'")
    url = subprocess.run([POSTGRES_SH, "start", pg_dir], capture_output=True, text=True, check=True,
                         env=env).stdout.strip()
    procs = []
    try:
        setups = {}
        for label, sets, fxd_env in (("SQLite", [], {k: v for k, v in os.environ.items() if k != "FXD_DATABASE_URL"}),
                                     ("PostgreSQL", [], dict(os.environ, FXD_DATABASE_URL=url))):
            storage = os.path.join(work, label)
            os.mkdir(storage, 0o700)
            proc, port = start_fxd(args.fxd, storage, sets, fxd_env)
            procs.append(proc)
            for i in range(args.clients):
                with FxClient(port=port) as c:
                    c.register(f"u{i}", PASSWORD)
            setups[label] = port
        psql(pg_dir, url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

        rows = {}
        per_op = {}
        for label, port in setups.items():
            rows[label] = {"echo": echo_rate(args.fxbench, port, args.seconds)}
            for kind in ("login", "upload", "stat"):
                if label == "PostgreSQL":
                    psql(pg_dir, url, "SELECT pg_stat_statements_reset()")
                    before = int(psql(pg_dir, url, "SELECT xact_commit FROM pg_stat_database WHERE datname = 'fxd'"))
                r = rate(kind, port, args.clients, args.seconds)
                rows[label][kind] = r
                if label == "PostgreSQL":
                    time.sleep(0.6)  # the statistics collector's flush
                    calls = psql(pg_dir, url, "SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements"
                                              " WHERE query NOT LIKE '%pg_stat%' AND dbid = "
                                              "(SELECT oid FROM pg_database WHERE datname = 'fxd')")
                    after = int(psql(pg_dir, url, "SELECT xact_commit FROM pg_stat_database WHERE datname = 'fxd'"))
                    ops = r * args.seconds
                    per_op[kind] = (float(calls) / ops, (after - before) / ops)

        print(f"One instance each, {args.clients} clients, {args.seconds:g} s per row; "
              f"PostgreSQL 15 durable (fsync on), on loopback; SQLite synchronous=FULL.\n")
        print("| op | SQLite /s | PostgreSQL /s | PG / SQLite | PG statements per op | PG transactions per op |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for kind in ("echo", "login", "upload", "stat"):
            a, b = rows["SQLite"][kind], rows["PostgreSQL"][kind]
            stmts, xacts = per_op.get(kind, (0.0, 0.0))
            extra = f"{stmts:.1f} | {xacts:.1f}" if kind in per_op else "0 | 0"
            print(f"| {kind} | {a:,.0f} | {b:,.0f} | {b / a:.2f}x | {extra} |")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        subprocess.run([POSTGRES_SH, "wipe", pg_dir], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
