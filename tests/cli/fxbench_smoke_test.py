#!/usr/bin/env python3
"""Every fxbench mode, for a second or so, against a real fxd, and the echo
and connect modes against tcp_reference (the C server of bench/compare.sh):
the benchmark tools keep building and running (issue 17's regression guard).
No figure is checked against a threshold: only that each run finishes with
status 0 and prints its figures (fxbench checks the replies it gets, so a
wrong echo from either server fails the run).

Usage: fxbench_smoke_test.py FXD FXBENCH TCP_REFERENCE
"""
import json
import os
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fault"))
from harness import DEADLINE, Daemon, run_main  # noqa: E402

ROOM = ["limits.max_connections=100000", "limits.max_connections_per_address=100000", "udp.rate_per_source=0"]


def run_fxbench(fxbench, label, args):
    r = subprocess.run([fxbench, *args], capture_output=True, text=True, timeout=DEADLINE)
    assert r.returncode == 0, f"fxbench {label} exited {r.returncode}: {r.stderr}"
    figures = json.loads(r.stdout)
    assert isinstance(figures, dict) and figures, f"fxbench {label} printed no figures: {r.stdout}"
    print(f"{label}: {r.stdout.strip()[:200]}")
    return figures


def against_tcp_reference(fxbench, tcp_reference, short):
    """tcp_reference on a free port (it prints tcp=PORT), then fxbench's echo and connect against it."""
    ref = subprocess.Popen([tcp_reference, "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = ref.stdout.readline().strip()
        assert line.startswith("tcp="), f"tcp_reference printed {line!r}, not tcp=PORT"
        common = ["--port", line[4:], "--pid", str(ref.pid), "--json"]
        for label, args in {
            "tcp_reference echo 4x8": ["echo", "-c", "4", "-p", "8", *short],
            "tcp_reference echo 1x1 with a 100 KiB body": ["echo", "-s", "100K", *short],
            "tcp_reference connect per request": ["connect", "-c", "2", *short],
        }.items():
            figures = run_fxbench(fxbench, label, [*args, *common])
            assert figures.get("requests", 0) > 0, f"{label}: no request answered"
    finally:
        ref.send_signal(signal.SIGTERM)
        ref.wait(timeout=DEADLINE)


def main():
    fxd, fxbench, tcp_reference = sys.argv[1], sys.argv[2], sys.argv[3]

    def body():
        with tempfile.TemporaryDirectory(prefix="fxbench-smoke-") as work:
            storage = os.path.join(work, "storage")
            os.mkdir(storage, 0o700)
            daemon = Daemon(fxd, storage, os.path.join(work, "fxd.log"), ROOM).start()
            try:
                common = ["--port", str(daemon.tcp), "--udp-port", str(daemon.udp), "--pid", str(daemon.pid), "--json"]
                short = ["-t", "0.5", "--warmup", "0.2"]
                blob = os.path.join(work, "blob.bin")
                runs = {
                    "echo 4x8": ["echo", "-c", "4", "-p", "8", *short],
                    "echo 4x8 in batches": ["echo", "--batch", "-c", "4", "-p", "8", *short],
                    "udp": ["udp", "-w", "16", *short],
                    "upload": ["upload", "-s", "4M", "-c", "2", "--file", blob],
                    "download": ["download", "-s", "4M", "-c", "2", "--file", blob],
                    "idle": ["idle", "-c", "50", "--hold", "0.5"],
                    "handshake": ["handshake", "-c", "2", *short],
                    "connect per request": ["connect", "-c", "2", *short],
                }
                for label, args in runs.items():
                    run_fxbench(fxbench, label, [*args, *common])
            finally:
                daemon.stop()
        against_tcp_reference(fxbench, tcp_reference, short)

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
