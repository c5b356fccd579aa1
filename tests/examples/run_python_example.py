#!/usr/bin/env python3
"""Starts fxd on free ports, runs the Python echo example against it, checks its output."""
import os
import subprocess
import sys
import tempfile

fxd, example = sys.argv[1], sys.argv[2]
with tempfile.TemporaryDirectory() as storage:
    daemon = subprocess.Popen(
        [fxd, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0", "--set", f"storage.dir={storage}/var",
         "--print-ports"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ports = dict(kv.split("=") for kv in daemon.stdout.readline().split())
        out = subprocess.run([sys.executable, example, "--port", ports["tcp"], "--udp-port", ports["udp"], "hello fxd"],
                             capture_output=True, text=True, timeout=30)
        print(out.stdout, out.stderr)
        assert out.returncode == 0, out.returncode
        assert out.stdout.count("HELLO FXD") == 2, "expected the upper-cased text over TCP and over UDP"
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
print("1 passed, 0 failed")
