#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (docs/testing.md#fuzzing).

Frames follow docs/protocol.md and the unit and integration tests: one per op,
valid and invalid. Config seeds are config/*.json plus a few broken variants.
Running it again rewrites the same files; files it does not write (inputs a
fuzzer found and someone kept) are left alone unless --clean is given.
"""

import argparse
import json
import pathlib
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

SHA = "93ba6071a6e4af2473e01756d27741d04b639f0a31f305becfedc0f34242790f"


def frame(header, body=b""):
    """A request frame: big-endian u32 header length, header, body."""
    if not isinstance(header, (bytes, str)):
        header = json.dumps(header, separators=(",", ":"))
    if isinstance(header, str):
        header = header.encode()
    return struct.pack(">I", len(header)) + header + body


# (name, header, body): one or more per op, valid and invalid.
REQUESTS = [
    ("ping", {"op": "ping", "id": 1}, b""),
    ("ping-string-id", {"op": "ping", "id": "a-7"}, b""),
    ("ping-with-body", {"op": "ping", "size": 4}, b"abcd"),
    ("hello", {"op": "hello", "id": 1}, b""),
    ("echo", {"op": "echo", "id": 1, "size": 5}, b"hi fx"),
    ("echo-utf8-id", '{"op":"echo","id":"req-\\u00fc-\\ud83d\\ude80","size":3}', b"abc"),
    ("echo-empty", {"op": "echo", "id": "", "size": 0}, b""),
    ("echo-extra-fields", {"op": "echo", "id": "abc-123", "size": 2, "tags": ["a", "b", {"c": 1}]}, b"xy"),
    ("echo-bad-size", '{"op":"echo","size":-1}', b""),
    ("echo-float-size", '{"op":"echo","size":1.5}', b""),
    ("echo-string-size", '{"op":"echo","size":"3"}', b""),
    ("echo-float-id", '{"op":"echo","id":1.5,"size":1}', b"a"),
    ("echo-object-id", '{"op":"echo","id":{"x":1},"size":5}', b"hello"),
    ("echo-too-large", {"op": "echo", "id": 2, "size": 1048577}, b""),
    ("stats", {"op": "stats", "id": 9}, b""),
    ("register", {"op": "register", "id": 4, "user": "alice", "password": "correct horse"}, b""),
    ("register-bad-user", {"op": "register", "id": 6, "user": "Alice", "password": "correct horse"}, b""),
    ("login", {"op": "login", "id": 12, "user": "alice", "password": "correct horse"}, b""),
    ("login-no-password", {"op": "login", "id": 10, "user": "alice"}, b""),
    ("logout", {"op": "logout", "id": 37}, b""),
    ("whoami", {"op": "whoami", "id": 13}, b""),
    ("upload", {"op": "upload", "id": 14, "name": "hello.txt", "size": 11, "sha256": SHA}, b"hello, fxd\n"),
    ("upload-resume", {"op": "upload", "id": 5, "name": "big.bin", "size": 11, "offset": 4}, b"4567890"),
    ("upload-bad-offset", {"op": "upload", "id": 4, "name": "big.bin", "size": 3, "offset": 10}, b""),
    ("upload-bad-name", {"op": "upload", "id": 23, "name": "../etc/passwd", "size": 3}, b"abc"),
    ("upload-bad-sha", {"op": "upload", "id": 30, "name": "a.txt", "size": 3, "sha256": "ABC"}, b"abc"),
    ("download", {"op": "download", "id": 6, "name": "hello.txt"}, b""),
    ("download-offset", {"op": "download", "id": 7, "name": "hello.txt", "offset": 5}, b""),
    ("stat", {"op": "stat", "id": 3, "name": "big.bin"}, b""),
    ("stat-no-name", {"op": "stat", "id": 3}, b""),
    ("stat-control-name", '{"op":"stat","id":3,"name":"a\\u0085b"}', b""),
    ("list", {"op": "list", "id": 8}, b""),
    ("delete", {"op": "delete", "id": 9, "name": "hello.txt"}, b""),
    ("delete-dot", {"op": "delete", "id": 9, "name": "."}, b""),
    ("unknown-op", {"op": "nope", "id": 3, "size": 2}, b"zz"),
    ("uppercase-op", {"op": "PING", "id": 1}, b""),
    ("no-op", {"id": 1}, b""),
    ("array-header", '["op","ping"]', b""),
    ("bad-json", '{"op":"ping"', b""),
    ("nested", '{"op":"ping","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}', b""),
]


def decoder_seeds():
    """byte 0: low 5 bits = number of choice bytes, bit 5 = small header limit; choices; stream."""
    seeds = {}
    for name, header, body in REQUESTS:
        seeds["frame-" + name] = bytes([0]) + frame(header, body)
    pipeline = (frame({"op": "ping", "id": 1}) + frame({"op": "echo", "id": 2, "size": 3}, b"abc")
                + frame({"op": "nope", "id": 3, "size": 2}, b"zz") + frame({"op": "ping", "id": 4}))
    resume = next(r for r in REQUESTS if r[0] == "upload-resume")
    upload = frame(resume[1], resume[2]) + frame({"op": "ping", "id": 2})
    # Choice bytes: bits 0-2 piece size (1,2,3,4,7,16,100,rest), bit 3 prepare/commit;
    # at a header, bits 0-1 body mode (0/3 buffer, 1 skip, 2 stream), bit 2 resume offset.
    seeds["pipeline-whole"] = bytes([0]) + pipeline
    seeds["pipeline-bytewise-buffer"] = bytes([1, 0x00]) + pipeline
    seeds["pipeline-bytewise-skip"] = bytes([1, 0x01]) + pipeline
    seeds["pipeline-stream-mixed"] = bytes([4, 0x02, 0x0A, 0x85, 0x13]) + pipeline
    seeds["pipeline-prepare"] = bytes([2, 0x3E, 0x19]) + pipeline
    seeds["upload-resume-stream"] = bytes([2, 0x06, 0x02]) + upload
    seeds["upload-resume-skip"] = bytes([2, 0x05, 0x05]) + upload
    seeds["error-zero-length"] = bytes([0]) + b"\x00\x00\x00\x00" + frame({"op": "ping"})
    seeds["error-too-large"] = bytes([0x20]) + frame({"op": "echo", "note": "x" * 80})
    seeds["error-after-frame"] = bytes([1, 0x03]) + frame({"op": "ping"}) + frame("{}x")
    seeds["truncated"] = bytes([0]) + frame({"op": "echo", "size": 10}, b"abc")
    return seeds


def header_seeds():
    """byte 0: bit 0 UDP, bit 1 logged in, bit 2 draining; header text; NUL; body."""
    seeds = {}
    for name, header, body in REQUESTS:
        text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
        flags = 2 if name.split("-")[0] in ("upload", "download", "stat", "list", "delete", "whoami") else 0
        seeds[name] = bytes([flags]) + text.encode() + b"\0" + body
    seeds["udp-echo"] = bytes([1]) + b'{"op":"echo","id":1}\0hello udp'
    seeds["udp-hello"] = bytes([1]) + b'{"op":"hello","id":1}\0'
    seeds["draining-ping"] = bytes([4]) + b'{"op":"ping","id":1}\0'
    seeds["upload-logged-out"] = bytes([0]) + b'{"op":"upload","name":"a","size":1}\0x'
    # The parser's fast path (flat, printable ASCII, unsigned integers, booleans)
    # and the edges where it hands over to Boost.JSON.
    fast = {
        "fast-echo": (0, b'{"op":"echo","size":4,"id":7}\0abcd'),
        "fast-spaces": (0, b' {"op": "echo", "id": "r-1", "size": 2}\t\r\n\0xy'),
        "fast-login-remember": (0, b'{"op":"login","user":"alice","password":"pw12345678","remember":true}\0'),
        "fast-upload": (2, b'{"op":"upload","name":"a.txt","size":3,"mtime":1700000000,'
                           b'"sha256":"' + b"ab" * 32 + b'"}\0abc'),
        "fast-id-uint64": (0, b'{"op":"ping","id":9223372036854775808}\0'),
        "fast-size-19-digits": (0, b'{"op":"echo","size":9999999999999999999}\0'),
        "fast-eight-members": (0, b'{"op":"ping","a":1,"b":true,"c":"x","d":0,"e":false,"f":"","g":2}\0'),
        "edge-size-20-digits": (0, b'{"op":"echo","size":18446744073709551615}\0'),
        "edge-size-past-uint64": (0, b'{"op":"echo","size":18446744073709551616}\0'),
        "edge-minus-zero": (0, b'{"op":"echo","size":-0}\0'),
        "edge-exponent": (0, b'{"op":"echo","size":1e3}\0'),
        "edge-leading-zero": (0, b'{"op":"echo","size":01}\0'),
        "edge-duplicate-op": (0, b'{"op":"ping","op":"echo","size":1}\0a'),
        "edge-escape": (0, b'{"op":"ec\\u0068o","size":1}\0a'),
        "edge-unicode-name": (2, '{"op":"stat","name":"caf\u00e9"}'.encode() + b"\0"),
        "edge-nine-members": (0, b'{"op":"ping","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}\0'),
        "edge-trailing-comma": (0, b'{"op":"ping",}\0'),
        "edge-truex": (0, b'{"op":"ping","x":truex}\0'),
        "edge-vertical-tab": (0, b'{"op":"ping"}\x0b\0'),
        "edge-null-id": (0, b'{"op":"ping","id":null}\0'),
        # Bytes past ASCII, raw (valid UTF-8 or not) or escaped: Boost.JSON decides.
        "edge-escaped-unicode": (2, b'{"op":"stat","name":"caf\\u00e9"}\0'),
        "edge-invalid-utf8-key": (0, b'{"id\x8c\x8c":1}\0'),
        "edge-bool-id": (0, b'{"op":"ping","id":false}\0'),
    }
    for name, (flags, data) in fast.items():
        seeds[name] = bytes([flags]) + data
    return seeds


def udp_seeds():
    seeds = {}
    for name, header, body in REQUESTS:
        if isinstance(header, dict) and name.startswith(("ping", "echo", "hello", "login", "unknown")):
            seeds[name] = frame(header, body)
    seeds["empty"] = b""
    seeds["short"] = b"\x00\x00"
    seeds["zero-length"] = b"\x00\x00\x00\x00"
    seeds["length-past-end"] = b"\x00\x00\x01\x00{}"
    seeds["size-mismatch"] = frame({"op": "echo", "id": 1, "size": 9}, b"abc")
    seeds["echo-no-size"] = frame({"op": "echo", "id": 1}, b"abc")
    seeds["echo-long-id"] = frame({"op": "echo", "id": "i" * 200}, b"")
    seeds["echo-escaped-id"] = frame('{"op":"echo","id":"\\u0001\\/\\"","size":1}', b"q")
    seeds["no-op"] = frame("{}")
    return seeds


def names_seeds():
    names = [b"hello.txt", b"notes.txt", b".", b"..", b".hidden", b"a/b", b"../etc/passwd", b"a\\b",
             b"a\x00b", b"a\x1bb", b"a\x7fb", "a\u0085b".encode(), "caf\u00e9 \U0001F600 \u00fc \u65e5\u672c".encode(),
             b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"x" * 255, b"x" * 256,
             b"alice", b"Alice", b"a" * 32, b"a" * 33, b"_alice", b"bob.smith-2", b"correct horse", b"1234567",
             b"p" * 1024, b"p" * 1025, b"",
             # NFD spellings, canonical reordering, a form that grows in NFC, a dot with a mark (stored in NFC)
             b"cafe\xcc\x81.txt", b"\xe1\x84\x92\xe1\x85\xa1\xe1\x86\xab", b"a\xcc\xa3\xcc\x81\xcd\x84\xcd\x84", b".\xcc\x81"]
    return {f"name-{i:02d}": n for i, n in enumerate(names)}


def config_seeds():
    seeds = {}
    for path in sorted((ROOT / "config").glob("*.json")):
        seeds["file-" + path.stem.replace(".", "-")] = path.read_bytes()
    seeds["empty-object"] = b"{}"
    seeds["ports"] = b'{"tcp": {"port": 0}, "udp": {"port": 0}, /* comment */ "log": {"level": "error",},}'
    seeds["unknown-key"] = b'{"tcp": {"prot": 7070}}'
    seeds["out-of-range"] = b'{"tcp": {"port": 70000}}'
    seeds["wrong-type"] = b'{"timeouts": {"idle_s": "300"}}'
    seeds["bad-address"] = b'{"udp": {"bind": "localhost"}}'
    seeds["pending-too-small"] = b'{"limits": {"max_echo_bytes": 1048576, "max_pending_reply_bytes": 65536}}'
    seeds["doubles"] = b'{"timeouts": {"idle_s": 0.01, "drain_s": 0}, "auth": {"lockout_s": 1e7}}'
    seeds["not-object"] = b'[1, 2]'
    seeds["section-not-object"] = b'{"tcp": 7070}'
    seeds["unknown-section"] = b'{"nope": {}}'
    seeds["not-json"] = b'tcp.port=7070'
    return seeds


def proxy_seeds():
    """PROXY protocol headers (v1 text, v2 binary), valid and broken, some with a frame after."""
    ping = frame({"op": "ping", "id": 1})
    sig = b"\r\n\r\n\x00\r\nQUIT\n"

    def v2(command, family, payload):
        return sig + bytes([command, family]) + struct.pack(">H", len(payload)) + payload

    inet = bytes([203, 0, 113, 7, 192, 0, 2, 1]) + struct.pack(">HH", 5555, 7070)
    inet6 = bytes([0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [7]) + bytes([0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [1]) \
        + struct.pack(">HH", 4242, 7070)
    tlv = b"\x05" + struct.pack(">H", 3) + b"uid" + b"\x04" + struct.pack(">H", 0)
    return {
        "v1-tcp4": b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 7070\r\n" + ping,
        "v1-tcp6": b"PROXY TCP6 2001:db8::7 2001:db8::1 4242 7070\r\n" + ping,
        "v1-unknown": b"PROXY UNKNOWN\r\n" + ping,
        "v1-unknown-rest": b"PROXY UNKNOWN ::1 ::1 1 2\r\n",
        "v1-no-cr": b"PROXY TCP4 203.0.113.7 192.0.2.1 5555 7070\n",
        "v1-bad-port": b"PROXY TCP4 203.0.113.7 192.0.2.1 65536 7070\r\n",
        "v1-too-long": b"PROXY UNKNOWN " + b"x" * 120 + b"\r\n",
        "v1-truncated": b"PROXY TCP4 203.0.1",
        "v2-inet": v2(0x21, 0x11, inet) + ping,
        "v2-inet6": v2(0x21, 0x21, inet6),
        "v2-local": v2(0x20, 0x00, b"") + ping,
        "v2-unix": v2(0x21, 0x31, bytes(216)),
        "v2-tlvs": v2(0x21, 0x11, inet + tlv),
        "v2-tlv-overrun": v2(0x21, 0x11, inet + b"\x05\x00\x09abc"),
        "v2-oversized": sig + b"\x21\x11" + struct.pack(">H", 600),
        "v2-truncated": v2(0x21, 0x21, inet6)[:30],
        "v2-wrong-signature": sig[:10] + b"X\n" + b"\x21\x11\x00\x0c" + inet,
        "v2-version-1": v2(0x11, 0x11, inet),
        "frame": ping,
        "tls-hello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="remove every file in fuzz/corpus/<target>/ first")
    args = parser.parse_args()
    corpora = {
        "fuzz_decoder": decoder_seeds(),
        "fuzz_header": header_seeds(),
        "fuzz_names": names_seeds(),
        "fuzz_config": config_seeds(),
        "fuzz_udp": udp_seeds(),
        "fuzz_proxy": proxy_seeds(),
    }
    for target, seeds in corpora.items():
        folder = HERE / "corpus" / target
        if args.clean and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds in {folder.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
