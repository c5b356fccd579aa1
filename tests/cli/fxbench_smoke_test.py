#!/usr/bin/env python3
"""Every fxbench mode, for a second or so, against a real fxd: the benchmark
tools keep building and running (issue 17's regression guard). No figure is
checked against a threshold: only that each mode finishes with status 0 and
prints its figures.

Usage: fxbench_smoke_test.py FXD FXBENCH
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fault"))
from harness import DEADLINE, Daemon, run_main  # noqa: E402

ROOM = ["limits.max_connections=100000", "limits.max_connections_per_address=100000", "udp.rate_per_source=0"]


def main():
    fxd, fxbench = sys.argv[1], sys.argv[2]

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
                    "udp": ["udp", "-w", "16", *short],
                    "upload": ["upload", "-s", "4M", "-c", "2", "--file", blob],
                    "download": ["download", "-s", "4M", "-c", "2", "--file", blob],
                    "idle": ["idle", "-c", "50", "--hold", "0.5"],
                    "connect per request": ["handshake", "-c", "2", *short],
                }
                for label, args in runs.items():
                    r = subprocess.run([fxbench, *args, *common], capture_output=True, text=True, timeout=DEADLINE)
                    assert r.returncode == 0, f"fxbench {label} exited {r.returncode}: {r.stderr}"
                    figures = json.loads(r.stdout)
                    assert isinstance(figures, dict) and figures, f"fxbench {label} printed no figures: {r.stdout}"
                    print(f"{label}: {r.stdout.strip()[:200]}")
            finally:
                daemon.stop()

    return run_main(body)


if __name__ == "__main__":
    sys.exit(main())
