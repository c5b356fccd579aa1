#!/usr/bin/env python3
"""Starts fxd on free ports, runs the Python echo example against it, checks its output;
then checks that without a daemon (or with the wrong UDP port) it says so in one line, without a traceback."""
import socket
import subprocess
import sys
import tempfile

fxd, example = sys.argv[1], sys.argv[2]


def run_example(*args):
    out = subprocess.run([sys.executable, example, *args], capture_output=True, text=True, timeout=30)
    print(out.stdout, out.stderr)
    return out


def free_port(kind):
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def check_one_line_refusal(out, *needles):
    assert out.returncode == 1, out.returncode
    assert "Traceback" not in out.stderr, "a traceback instead of a message"
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("echo_client: "), repr(out.stderr)
    for needle in needles:
        assert needle in out.stderr, f"{needle!r} missing from {out.stderr!r}"


passed = 0
with tempfile.TemporaryDirectory() as storage:
    daemon = subprocess.Popen(
        [fxd, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0", "--set", f"storage.dir={storage}/var",
         "--print-ports"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ports = dict(kv.split("=") for kv in daemon.stdout.readline().split())
        out = run_example("--port", ports["tcp"], "--udp-port", ports["udp"], "hello fxd")
        assert out.returncode == 0, out.returncode
        assert out.stdout.count("HELLO FXD") == 2, "expected the upper-cased text over TCP and over UDP"
        passed += 1

        # TCP answers, the UDP port is not the daemon's.
        udp_port = free_port(socket.SOCK_DGRAM)
        out = run_example("--port", ports["tcp"], "--udp-port", udp_port, "hello fxd")
        check_one_line_refusal(out, f"127.0.0.1:{udp_port}", "UDP", "--udp-port")
        passed += 1
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)

# No daemon at all.
tcp_port = free_port(socket.SOCK_STREAM)
out = run_example("--port", tcp_port, "hello fxd")
check_one_line_refusal(out, f"127.0.0.1:{tcp_port}", "connection refused", "is the daemon running?")
passed += 1
print(f"{passed} passed, 0 failed")
