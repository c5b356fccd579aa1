#!/usr/bin/env python3
"""Sends one echo request to fxd over TCP and one over UDP, and prints the replies.

Only the standard library: socket, struct, json. Usage:
    python3 echo_client.py [--host 127.0.0.1] [--port 7070] [--udp-port 7071] TEXT
"""
import argparse
import json
import socket
import struct


def frame(header: dict, body: bytes = b"") -> bytes:
    """u32 big-endian header length, the JSON header, then the body."""
    header = dict(header, size=len(body))
    raw = json.dumps(header).encode("utf-8")
    return struct.pack(">I", len(raw)) + raw + body


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("fxd closed the connection")
        data += chunk
    return data


def read_reply(sock: socket.socket):
    (length,) = struct.unpack(">I", recv_exact(sock, 4))
    header = json.loads(recv_exact(sock, length))
    return header, recv_exact(sock, header["size"])


def split_datagram(data: bytes):
    (length,) = struct.unpack(">I", data[:4])
    return json.loads(data[4:4 + length]), data[4 + length:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7070)
    parser.add_argument("--udp-port", type=int, default=7071)
    parser.add_argument("text", nargs="?", default="hello fxd")
    args = parser.parse_args()
    body = args.text.encode("utf-8")

    with socket.create_connection((args.host, args.port), timeout=5) as tcp:
        tcp.sendall(frame({"op": "echo", "id": 1}, body))
        header, reply = read_reply(tcp)
        print("tcp:", header, reply.decode("utf-8", "replace"))

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(frame({"op": "echo", "id": 2}, body), (args.host, args.udp_port))
        header, reply = split_datagram(udp.recv(65535))
        print("udp:", header, reply.decode("utf-8", "replace"))


if __name__ == "__main__":
    main()
