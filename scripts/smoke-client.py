#!/usr/bin/env python3
"""Talks to a running fxd the way a user would, with the standard library and
examples/python/fxclient.py: ping and echo over TCP and UDP, then register,
login, upload and download (hello must offer them: one missing is a failure).

  smoke-client.py [--host H] [--tcp PORT] [--udp PORT] [--tls PORT --cacert FILE] [--wait S] write
      checks everything and stores a file (smoke.txt) for a user (smoke)
  smoke-client.py ... read
      logs in as that user and checks the stored file is still there, intact
  smoke-client.py ... ping
      one TCP ping (for readiness loops)

With --tls, the account and file steps go over TLS to that port (checked
against the CA in --cacert), as they must from another host when the daemon
keeps auth.plaintext at "loopback".

Exit status 0 when every offered check passed.
"""
import argparse
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "python"))

from fxclient import FxClient, udp_exchange  # noqa: E402

USER, PASSWORD, NAME = "smoke", "smoke-password-1", "smoke.txt"
CONTENT = b"fxd keeps this file across restarts\n" * 100


def connection(host, port, timeout=10):
    """A client whose call(op, body, **fields) gives (reply header, body) whatever the status."""
    return FxClient(host, port, timeout=timeout)


def account_connection(args):
    """Where passwords go: the TLS port when one is given, else the plain one."""
    if args.tls:
        return FxClient(args.host, args.tls, timeout=10, tls=True, cafile=args.cacert)
    return connection(args.host, args.tcp)


def udp_call(host, port, op, body=b""):
    return udp_exchange(host, port, {"op": op}, body, timeout=5)


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
    require_ops(ops, {"register", "login", "upload", "download"})
    c.close()

    c = account_connection(args)
    if args.tls:
        reply, _ = c.call("ping")
        check(f"tls ping on port {args.tls}", reply.get("status") == "ok", reply)
    reply, _ = c.call("register", user=USER, password=PASSWORD)
    check(f"register {USER}", reply.get("status") == "ok", reply)
    login(c)
    digest = hashlib.sha256(CONTENT).hexdigest()
    reply, _ = c.call("upload", CONTENT, name=NAME, sha256=digest)
    check(f"upload {NAME} ({len(CONTENT)} bytes)", reply.get("status") == "ok" and reply.get("sha256") == digest, reply)
    reply, body = c.call("download", name=NAME)
    check(f"download {NAME}", reply.get("status") == "ok" and body == CONTENT, reply)
    c.close()


def read(args):
    c = account_connection(args)
    reply, _ = c.call("hello")
    require_ops(set(reply.get("ops", [])), {"login", "download"})
    login(c)
    reply, body = c.call("download", name=NAME)
    check(f"{NAME} kept, intact", reply.get("status") == "ok" and body == CONTENT, reply)
    c.close()


def require_ops(offered, needed):
    missing = sorted(needed - offered)
    check("hello offers " + ", ".join(sorted(needed)), not missing, f"missing {', '.join(missing)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tcp", type=int, default=7070)
    parser.add_argument("--udp", type=int, default=7071)
    parser.add_argument("--tls", type=int, default=0, help="TLS port for the account and file steps")
    parser.add_argument("--cacert", help="the CA that signed the daemon's certificate (default: the system's)")
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
