#!/usr/bin/env python3
"""Talks to a running fxd the way a user would, with nothing but the standard
library: ping and echo over TCP and UDP, then register, login, upload and
download when hello offers those ops (an op not offered is skipped, and said so).

  smoke-client.py [--host H] [--tcp PORT] [--udp PORT] [--wait S] write
      checks everything and stores a file (smoke.txt) for a user (smoke)
  smoke-client.py ... read
      logs in as that user and checks the stored file is still there, intact
  smoke-client.py ... ping
      one TCP ping (for readiness loops)

Exit status 0 when every offered check passed.
"""
import argparse
import hashlib
import json
import socket
import struct
import sys
import time

USER, PASSWORD, NAME = "smoke", "smoke-password-1", "smoke.txt"
CONTENT = b"fxd keeps this file across restarts\n" * 100


class connection:
    def __init__(self, host, port, timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)

    def close(self):
        self.sock.close()

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("fxd closed the connection")
            data += chunk
        return data

    def call(self, op, body=b"", **fields):
        header = json.dumps(dict(fields, op=op, size=len(body))).encode()
        self.sock.sendall(struct.pack(">I", len(header)) + header + body)
        (length,) = struct.unpack(">I", self._read(4))
        reply = json.loads(self._read(length))
        return reply, self._read(reply["size"])


def udp_call(host, port, op, body=b""):
    header = json.dumps({"op": op}).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(struct.pack(">I", len(header)) + header + body, (host, port))
        data = u.recv(65536)
    (length,) = struct.unpack(">I", data[:4])
    return json.loads(data[4:4 + length]), data[4 + length:]


def check(what, ok, detail=""):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}" + (f"  ({detail})" if detail and not ok else ""))
    if not ok:
        sys.exit(1)


def wait_for_ping(args):
    end = time.monotonic() + args.wait
    while True:
        try:
            c = connection(args.host, args.tcp, timeout=2)
            reply, _ = c.call("ping")
            c.close()
            if reply.get("status") == "ok":
                return
        except OSError:
            pass
        if time.monotonic() > end:
            print(f"  FAIL no ping reply on {args.host}:{args.tcp} within {args.wait} s")
            sys.exit(1)
        time.sleep(0.2)


def login(c):
    reply, _ = c.call("login", user=USER, password=PASSWORD)
    check(f"login {USER}", reply.get("status") == "ok", reply)


def write(args):
    c = connection(args.host, args.tcp)
    reply, _ = c.call("ping", id=1)
    check("tcp ping", reply.get("status") == "ok" and reply.get("id") == 1, reply)
    reply, body = c.call("echo", b"Hello, fxd!")
    check("tcp echo", body == b"HELLO, FXD!", (reply, body))
    reply, _ = udp_call(args.host, args.udp, "ping")
    check("udp ping", reply.get("status") == "ok", reply)
    reply, body = udp_call(args.host, args.udp, "echo", b"over udp")
    check("udp echo", body == b"OVER UDP", (reply, body))
    reply, _ = c.call("hello")
    ops = set(reply.get("ops", []))
    print(f"  hello: {reply.get('server')}, ops {sorted(ops)}")

    if "register" in ops:
        reply, _ = c.call("register", user=USER, password=PASSWORD)
        check(f"register {USER}", reply.get("status") == "ok", reply)
    else:
        print("  skip register, login: not offered by this fxd")
    if {"register", "login", "upload", "download"} <= ops:
        login(c)
        digest = hashlib.sha256(CONTENT).hexdigest()
        reply, _ = c.call("upload", CONTENT, name=NAME, sha256=digest)
        check(f"upload {NAME} ({len(CONTENT)} bytes)", reply.get("status") == "ok" and reply.get("sha256") == digest, reply)
        reply, body = c.call("download", name=NAME)
        check(f"download {NAME}", reply.get("status") == "ok" and body == CONTENT, reply)
    else:
        missing = sorted({"login", "upload", "download"} - ops)
        print(f"  skip upload, download: {', '.join(missing) or 'register'} not offered by this fxd")
    c.close()


def read(args):
    c = connection(args.host, args.tcp)
    reply, _ = c.call("hello")
    ops = set(reply.get("ops", []))
    if {"login", "download"} <= ops:
        login(c)
        reply, body = c.call("download", name=NAME)
        check(f"{NAME} kept, intact", reply.get("status") == "ok" and body == CONTENT, reply)
    elif "login" in ops:
        login(c)
        print("  skip download: not offered by this fxd (the account was kept)")
    else:
        print("  skip: login and download not offered by this fxd; nothing stored to look for")
    c.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tcp", type=int, default=7070)
    parser.add_argument("--udp", type=int, default=7071)
    parser.add_argument("--wait", type=float, default=30, help="seconds to wait for the first ping")
    parser.add_argument("phase", choices=["write", "read", "ping"])
    args = parser.parse_args()
    wait_for_ping(args)
    if args.phase == "write":
        write(args)
    elif args.phase == "read":
        read(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
