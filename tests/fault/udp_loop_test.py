#!/usr/bin/env python3
"""The UDP reflection loop of issue 14 against two real daemons: one forged
datagram whose source is daemon B's UDP port, sent to daemon A, must not set
them answering each other (before contract 1.1, an empty datagram or an fxd
reply bounced about 520 times until the rate buckets ran dry).

    udp_loop_test.py FXD_BINARY

Forging a source address needs a raw socket: skipped (exit 77) when not root.
"""

import os
import socket
import struct
import sys
import tempfile
import shutil
import time

from harness import Daemon, Skip, frame, run_main, stats  # noqa: E402

SETTLE = 2.0  # seconds for any loop to show itself; at 0.1 ms a round trip it would pass 500


def forge(source_port, destination_port, payload):
    """Sends payload from 127.0.0.1:source_port to 127.0.0.1:destination_port."""
    udp = struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
        s.sendto(ip + udp, ("127.0.0.1", 0))


def body(fxd, folder):
    if os.geteuid() != 0:
        raise Skip("forging a UDP source address needs root (a raw socket)")
    daemons = [Daemon(fxd, os.path.join(folder, name), os.path.join(folder, f"{name}.log")).start()
               for name in ("a", "b")]
    try:
        a, b = daemons
        cases = {
            "empty datagram": b"",
            "fxd ping (answered once; the answer is a reply)": frame({"op": "ping", "id": "x" * 24}),
            "fxd reply": frame({"status": "ok", "op": "ping", "size": 0}),
        }
        for what, payload in cases.items():
            before = [stats(d.tcp)["udp"]["in"] for d in daemons]
            forge(b.udp, a.udp, payload)
            time.sleep(SETTLE)
            after = [stats(d.tcp)["udp"]["in"] for d in daemons]
            got = [x - y for x, y in zip(after, before)]
            print(f"{what}: datagrams received by A and B: {got}")
            assert got[0] == 1, f"{what}: A received {got[0]} datagrams, not the one forged"
            assert got[1] <= 1, f"{what}: B received {got[1]}: the daemons answered each other"
    finally:
        for d in daemons:
            d.kill()


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    folder = tempfile.mkdtemp(prefix="fxd-udp-loop-")
    try:
        return run_main(lambda: body(os.path.abspath(sys.argv[1]), folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
