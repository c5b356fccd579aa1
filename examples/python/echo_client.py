#!/usr/bin/env python3
"""Sends one echo request to fxd over TCP and one over UDP, and prints the replies.

The standard library and fxclient.py (beside this file) for the frames. Usage:
    python3 echo_client.py [--host 127.0.0.1] [--port 7070] [--udp-port 7071] TEXT

Exit status 0 when both echoes came back; 1, with one line on stderr, when
fxd cannot be reached.
"""
import argparse
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fxclient import decode_frame, encode_frame, read_reply  # noqa: E402


def why(error: OSError) -> str:
    """A socket error in a few words: "connection refused", "timed out", ..."""
    if isinstance(error, socket.timeout):  # TimeoutError from Python 3.10 on
        return "no answer within 5 s"
    return (error.strerror or str(error) or type(error).__name__).lower()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7070)
    parser.add_argument("--udp-port", type=int, default=7071)
    parser.add_argument("text", nargs="?", default="hello fxd")
    args = parser.parse_args()
    body = args.text.encode("utf-8")

    # No daemon (or the wrong port) is the usual first-run problem: one line
    # saying where we looked and what to do, not a traceback.
    try:
        with socket.create_connection((args.host, args.port), timeout=5) as tcp:
            tcp.sendall(encode_frame({"op": "echo", "id": 1}, body))
            header, reply = read_reply(tcp)
            print("tcp:", header, reply.decode("utf-8", "replace"))
    except OSError as e:
        print(f"echo_client: cannot reach fxd over TCP at {args.host}:{args.port}: {why(e)}"
              " (is the daemon running? start it, or pass --host/--port)", file=sys.stderr)
        return 1

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(5)
            udp.sendto(encode_frame({"op": "echo", "id": 2}, body), (args.host, args.udp_port))
            header, reply = decode_frame(udp.recv(65535))
            print("udp:", header, reply.decode("utf-8", "replace"))
    except OSError as e:
        print(f"echo_client: no echo from fxd over UDP at {args.host}:{args.udp_port}: {why(e)}"
              " (is the daemon's UDP port this one? pass --udp-port)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
