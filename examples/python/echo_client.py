#!/usr/bin/env python3
"""Sends one echo request to fxd over TCP and one over UDP, and prints the replies.

The standard library and fxclient.py (beside this file) for the frames. Usage:
    python3 echo_client.py [--host 127.0.0.1] [--port 7070] [--udp-port 7071] TEXT
"""
import argparse
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fxclient import decode_frame, encode_frame, read_reply  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7070)
    parser.add_argument("--udp-port", type=int, default=7071)
    parser.add_argument("text", nargs="?", default="hello fxd")
    args = parser.parse_args()
    body = args.text.encode("utf-8")

    with socket.create_connection((args.host, args.port), timeout=5) as tcp:
        tcp.sendall(encode_frame({"op": "echo", "id": 1}, body))
        header, reply = read_reply(tcp)
        print("tcp:", header, reply.decode("utf-8", "replace"))

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(encode_frame({"op": "echo", "id": 2}, body), (args.host, args.udp_port))
        header, reply = decode_frame(udp.recv(65535))
        print("udp:", header, reply.decode("utf-8", "replace"))


if __name__ == "__main__":
    main()
