#!/usr/bin/env python3
"""fxd as systemd runs it, without systemd: readiness and watchdog over a
NOTIFY_SOCKET the test reads, socket activation through systemd's own
systemd-socket-activate, and SIGHUP reloads.

Usage: deploy_test.py CASE FXD_BINARY     CASE: notify | socket_activation | reload
Exit status 0 passed, 1 failed, 77 skipped (a tool is missing).
Every wait has a deadline; nothing asserts how long something took.
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))

from fxclient import encode_frame, read_reply, udp_exchange  # noqa: E402

DEADLINE = 15.0  # seconds any single wait may take before the test fails


def request(sock, header, body=b""):
    """One request/reply on an open TCP connection: (reply header, body)."""
    sock.sendall(encode_frame(header, body))
    return read_reply(sock)


def udp_request(port, header, body=b""):
    return udp_exchange("127.0.0.1", port, header, body, timeout=DEADLINE)


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    sock.settimeout(DEADLINE)
    return sock


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


class notify_socket:
    """The service manager's end of sd_notify: a unix datagram socket."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(DEADLINE)

    def next(self):
        """The next message as a dict of its KEY=VALUE lines."""
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            raise AssertionError("no sd_notify message arrived") from None
        return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)

    def until(self, key):
        while True:
            message = self.next()
            if key in message:
                return message


class daemon:
    def __init__(self, argv, folder, env=None, config=None):
        self.log_path = os.path.join(folder, "fxd.log")
        self.log_file = open(self.log_path, "w")
        args = list(argv)
        if config:
            args += ["--config", config]
        args += ["--set", f"storage.dir={folder}/var"]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log_file, text=True,
                                     env=dict(os.environ, **(env or {})))

    def ports(self):
        line = self.proc.stdout.readline()
        assert line.startswith("tcp="), f"expected the ports line, got {line!r}; log:\n{self.log()}"
        ports = dict(kv.split("=") for kv in line.split())
        return int(ports["tcp"]), int(ports["udp"])

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def signal(self, signo):
        self.proc.send_signal(signo)

    def stop(self, signalled=False):
        if not signalled:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=DEADLINE)
        assert code == 0, f"fxd exited with {code} after SIGTERM; log:\n{self.log()}"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def fxd_argv(fxd):
    return [fxd, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0", "--print-ports"]


def case_notify(fxd, folder):
    """READY=1 comes once both ports answer; WATCHDOG=1 keeps coming; STOPPING=1 at the drain."""
    manager = notify_socket(folder)
    d = daemon(fxd_argv(fxd), folder, env={"NOTIFY_SOCKET": manager.path, "WATCHDOG_USEC": "200000"})
    try:
        ready = manager.until("READY")
        ready_after = time.monotonic() - d.started
        assert ready["READY"] == "1", ready
        status = dict(kv.split("=") for kv in ready["STATUS"].split() if "=" in kv)
        tcp, udp = int(status["tcp"]), int(status["udp"])
        # No retry: at READY=1 both sockets must already answer.
        with connect(tcp) as c:
            reply, _ = request(c, {"op": "ping", "id": 1})
            assert reply["status"] == "ok", reply
        reply, _ = udp_request(udp, {"op": "ping"})
        assert reply["status"] == "ok", reply
        print(f"READY=1 {ready_after * 1000:.0f} ms after exec, STATUS={ready['STATUS']!r}; tcp and udp answered at once")
        assert d.ports() == (tcp, udp)

        beats = 0
        while beats < 5:
            message = manager.next()
            assert "READY" not in message and "STOPPING" not in message, message
            beats += "WATCHDOG" in message
        print(f"{beats} WATCHDOG=1 keep-alives (WATCHDOG_USEC=200000)")

        d.signal(signal.SIGTERM)
        stopping = manager.until("STOPPING")
        assert stopping["STOPPING"] == "1", stopping
        d.stop(signalled=True)
        print("STOPPING=1 at SIGTERM, exit status 0")
    finally:
        d.kill()


def case_socket_activation(fxd, folder):
    """fxd serves the sockets systemd-socket-activate passes (one stream, one datagram)."""
    activate = shutil.which("systemd-socket-activate")
    if not activate:
        print("SKIP: systemd-socket-activate not found (Debian package systemd)")
        sys.exit(77)
    tcp, udp = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    # --datagram applies to every -l of one invocation, so a second invocation
    # adds the UDP socket; it passes the first one's socket on at fd 3.
    argv = [activate, "-l", f"127.0.0.1:{tcp}", activate, "--datagram", "-l", f"127.0.0.1:{udp}"] + fxd_argv(fxd)
    d = daemon(argv, folder)
    try:
        # The first connection is what starts fxd; until systemd-socket-activate listens, connect may be refused.
        def try_connect():
            try:
                return connect(tcp)
            except ConnectionRefusedError:
                return None

        with wait_for("systemd-socket-activate to listen", try_connect) as c:
            reply, _ = request(c, {"op": "ping", "id": "first"})
            assert reply["status"] == "ok", reply
            reply, body = request(c, {"op": "echo"}, b"socket activation")
            assert reply["status"] == "ok" and body == b"SOCKET ACTIVATION", (reply, body)
        assert d.ports() == (tcp, udp), "fxd should report the passed sockets' ports, not its config's"
        reply, body = udp_request(udp, {"op": "echo"}, b"over udp")
        assert reply["status"] == "ok" and body == b"OVER UDP", (reply, body)
        log = d.log()
        assert "tcp: serving the socket passed by systemd" in log, log
        assert "udp: serving the socket passed by systemd" in log, log
        print(f"tcp {tcp} and udp {udp} passed by systemd-socket-activate answered ping and echo")
        d.stop()
        print("exit status 0 after SIGTERM")
    finally:
        d.kill()


def debug_lines(d):
    return [line for line in d.log().splitlines() if " debug " in line]


def open_connections(c):
    reply, body = request(c, {"op": "stats"})
    assert reply["status"] == "ok", reply
    return json.loads(body)["connections"]["open"]


def reset_one_connection(port, c):
    """Opens a second connection and resets it (a debug-level event in fxd), then
    waits, through stats on c, until fxd has closed it."""
    other = connect(port)
    wait_for("the second connection", lambda: open_connections(c) == 2)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    other.close()
    wait_for("fxd to close the reset connection", lambda: open_connections(c) == 1)


def write_config(path, text):
    with open(path + ".new", "w") as f:
        f.write(text)
    os.replace(path + ".new", path)


def case_reload(fxd, folder):
    """SIGHUP applies a new log level and limit to open connections; a broken file changes nothing."""
    manager = notify_socket(folder)
    config = os.path.join(folder, "fxd.json")
    write_config(config, json.dumps({"log": {"level": "info"}, "limits": {"max_echo_bytes": 1024}}))
    d = daemon(fxd_argv(fxd), folder, env={"NOTIFY_SOCKET": manager.path}, config=config)
    try:
        tcp, _ = d.ports()
        manager.until("READY")
        with connect(tcp) as c:
            reply, body = request(c, {"op": "echo"}, b"hello")
            assert body == b"HELLO", (reply, body)
            reset_one_connection(tcp, c)
            assert not debug_lines(d), "log.level=info must not log debug lines"

            # A live change (level, limit) and one that needs a restart (udp.bind).
            write_config(config, json.dumps({"log": {"level": "debug"}, "limits": {"max_echo_bytes": 4},
                                             "udp": {"bind": "127.0.0.2"}}))
            d.signal(signal.SIGHUP)
            assert manager.until("RELOADING")["RELOADING"] == "1"
            assert manager.until("READY")["READY"] == "1"
            wait_for("the reload to be logged", lambda: "reload: applied" in d.log())
            assert "'udp.bind' changed, which needs a restart" in d.log(), d.log()
            reply, _ = request(c, {"op": "echo", "id": 2}, b"hello")
            assert reply["status"] == "error" and reply["code"] == "body_too_large", reply
            reset_one_connection(tcp, c)
            assert debug_lines(d), "after reloading log.level=debug, debug lines must appear"
            print("SIGHUP: log.level info->debug and limits.max_echo_bytes 1024->4 applied on the open connection;"
                  " udp.bind change refused as needing a restart")

            # A broken file: refused, the running config stays.
            write_config(config, '{"log": {"level": "debug"}, "limits": {"max_echo_bytes": ')
            before = len(debug_lines(d))
            d.signal(signal.SIGHUP)
            assert manager.until("RELOADING")["RELOADING"] == "1"
            assert manager.until("READY")["READY"] == "1"
            wait_for("the refusal to be logged", lambda: "reload refused, keeping the running config" in d.log())
            reply, _ = request(c, {"op": "echo", "id": 3}, b"hello")
            assert reply["code"] == "body_too_large", reply
            reply, body = request(c, {"op": "echo", "id": 4}, b"hi")
            assert reply["status"] == "ok" and body == b"HI", (reply, body)
            reset_one_connection(tcp, c)
            assert len(debug_lines(d)) > before, "the old log.level=debug must stay"
            print("SIGHUP with a broken file: refused, old config kept, same connection still served")
        d.stop()
    finally:
        d.kill()


def main():
    cases = {"notify": case_notify, "socket_activation": case_socket_activation, "reload": case_reload}
    if len(sys.argv) != 3 or sys.argv[1] not in cases:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory(prefix="fxd-deploy-") as folder:
        cases[sys.argv[1]](os.path.abspath(sys.argv[2]), folder)
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
