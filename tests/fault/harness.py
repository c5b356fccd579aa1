"""Shared pieces of the fault-injection and soak tests: start and watch the
real fxd; frames and the client come from examples/python/fxclient.py.

Exit status convention of the scripts that use it: 0 passed, 1 failed,
77 skipped (something the test needs is missing, e.g. root for a mount).
Every wait has a deadline; nothing asserts how fast something was.
"""
import hashlib
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "examples", "python"))

# The frame codec is fxclient's; fault_test and soak import these names from here.
from fxclient import (FxClient, FxError, encode_frame as frame, encode_header as header_frame,  # noqa: E402,F401
                      read_reply, udp_call)

SKIP = 77
DEADLINE = 60.0  # seconds any single wait may take before the test fails
PASSWORD = "fault-test-password"

# Argon2id at its cheapest, so registering and logging in many users is quick.
FAST_AUTH = ["auth.hash_memory_bytes=8192", "auth.hash_passes=1"]


class Skip(Exception):
    """The test cannot run here (exit status 77)."""


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def connect(port, timeout=DEADLINE):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def reset_close(sock):
    """Closes with SO_LINGER 0, so the kernel sends RST instead of FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def logged_in(port, user, password=PASSWORD, timeout=DEADLINE):
    """An FxClient logged in as user."""
    fx = FxClient("127.0.0.1", port, timeout=timeout)
    fx.login(user, password)
    return fx


def register_users(port, names, password=PASSWORD):
    with FxClient("127.0.0.1", port, timeout=DEADLINE) as fx:
        for name in names:
            fx.register(name, password)


def expect_error(code, fn, *args):
    """Calls fn(*args), which must fail with the error reply `code`; returns the FxError."""
    try:
        fn(*args)
    except FxError as e:
        assert e.code == code, f"expected {code}, got {e.code}: {e}"
        return e
    raise AssertionError(f"expected the error {code}, got an ok reply")


def wait_for(what, predicate, deadline=DEADLINE, period=0.05):
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {deadline:.0f} s waiting for {what}")
        time.sleep(period)


def supported_sets(fxd, pairs):
    """The KEY=VALUE settings this binary knows (some keys are newer than others);
    prints the ones left out."""
    kept = []
    for pair in pairs:
        probe = subprocess.run([fxd, "--set", pair, "--check-config"], capture_output=True, text=True)
        if probe.returncode == 0:
            kept.append(pair)
        else:
            print(f"note: this fxd does not accept --set {pair} ({probe.stderr.strip()}); left out")
    return kept


class Daemon:
    """One fxd process on ports 0 with the given storage folder.

    start() waits for the --print-ports line; the log (stderr) goes to log_path,
    appended across restarts with a marker line per start.
    """

    def __init__(self, fxd, storage, log_path, sets=()):
        self.fxd, self.storage, self.log_path = fxd, storage, log_path
        self.sets = list(sets)
        self.proc = None
        self.tcp = self.udp = self.tls = None
        self._log_start = 0

    def argv(self):
        args = [self.fxd, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0",
                "--set", f"storage.dir={self.storage}", "--print-ports"]
        for pair in FAST_AUTH + self.sets:
            args += ["--set", pair]
        return args

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "fxd is already running"
        self._log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        ready, _, _ = select.select([self.proc.stdout], [], [], DEADLINE)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("tcp="):
            self.kill()
            raise AssertionError(f"fxd did not print its ports (got {line!r}); log:\n{self.log()[-4000:]}")
        ports = dict(kv.split("=") for kv in line.split())
        self.tcp, self.udp = int(ports["tcp"]), int(ports["udp"])
        self.tls = int(ports["tls"]) if "tls" in ports else None
        self.admin = int(ports["admin"]) if "admin" in ports else None
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self, since_start=True):
        """The log text, by default only what this start wrote."""
        with open(self.log_path, "rb") as f:
            if since_start:
                f.seek(self._log_start)
            return f.read().decode(errors="replace")

    def wait_log(self, text, deadline=DEADLINE):
        return wait_for(f"{text!r} in the fxd log", lambda: text in self.log(), deadline)

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/PID/status")

    def signal(self, signo):
        self.proc.send_signal(signo)

    def wait(self, deadline=DEADLINE):
        try:
            return self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"fxd did not exit within {deadline:.0f} s; log:\n{self.log()[-4000:]}") from None

    def stop(self, deadline=DEADLINE):
        """SIGTERM, then the exit status, which must be 0."""
        self.signal(signal.SIGTERM)
        code = self.wait(deadline)
        assert code == 0, f"fxd exited with {code} after SIGTERM; log:\n{self.log()[-4000:]}"
        self.proc.stdout.close()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()

    def kill(self):
        """Cleanup: SIGKILL if still running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def stats(port):
    with FxClient("127.0.0.1", port, timeout=DEADLINE) as fx:
        return fx.stats()


def integrity_check(db_path):
    import sqlite3
    con = sqlite3.connect(db_path, timeout=30)
    try:
        rows = con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def run_main(body):
    """Runs body() and turns its outcome into the exit status (0, 1 or 77)."""
    try:
        body()
    except Skip as e:
        print(f"SKIP: {e}")
        return SKIP
    except AssertionError as e:
        print(f"FAIL: {e}")
        return 1
    print("PASS")
    return 0
