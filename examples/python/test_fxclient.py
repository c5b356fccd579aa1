#!/usr/bin/env python3
"""Tests of fxclient against the real daemon.

    FXD_BINARY=path/to/fxd python3 examples/python/test_fxclient.py -v

Starts fxd on free ports with a temporary storage folder. The file tests
(upload, download, stat, list, delete) fail when the daemon's hello stops
offering those ops. The Frames tests check the frame codec without a daemon.
"""
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fxclient import (ChecksumError, FxClient, FxError, decode_frame, encode_frame, encode_header,  # noqa: E402
                      read_reply, read_reply_header, recv_exact, sha256_file, udp_call, udp_echo,
                      udp_exchange, udp_ping)

PASSWORD = "correct-horse-1"


class Daemon:
    """fxd on ports 0 with its own storage; stopped with SIGTERM."""

    def __init__(self):
        binary = os.environ.get("FXD_BINARY")
        if not binary:
            raise RuntimeError("set FXD_BINARY to the fxd binary to test against")
        self.dir = tempfile.TemporaryDirectory(prefix="fxclient-test-")
        self.proc = subprocess.Popen(
            [binary, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0",
             "--set", f"storage.dir={self.dir.name}/storage", "--print-ports"],
            stdout=subprocess.PIPE, stderr=self._log_file(), text=True)
        line = self.proc.stdout.readline()
        try:
            ports = dict(kv.split("=") for kv in line.split())
            self.tcp, self.udp = int(ports["tcp"]), int(ports["udp"])
        except (ValueError, KeyError):
            self.stop()
            raise RuntimeError(f"fxd did not print its ports; it said {line!r}")

    def _log_file(self):
        self.log = open(os.path.join(self.dir.name, "fxd.log"), "wb")
        return self.log

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        self.dir.cleanup()


def setUpModule():
    global DAEMON
    DAEMON = Daemon()


def tearDownModule():
    DAEMON.stop()


class Base(unittest.TestCase):
    users = 0

    def setUp(self):
        self.fx = FxClient("127.0.0.1", DAEMON.tcp, timeout=30)
        self.addCleanup(self.fx.close)
        self.work = tempfile.TemporaryDirectory(prefix="fxclient-work-")
        self.addCleanup(self.work.cleanup)

    def new_user(self, fx=None):
        """Registers and logs in a fresh user; returns its name."""
        Base.users += 1
        name = f"user{Base.users}-{os.getpid()}"
        fx = fx or self.fx
        fx.register(name, PASSWORD)
        fx.login(name, PASSWORD)
        return name

    def path(self, name):
        return os.path.join(self.work.name, name)

    def write(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)
        return self.path(name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def require_files(self):
        offered = self.fx.hello().get("ops", [])
        for op in ("upload", "download", "stat", "list", "delete"):
            self.assertIn(op, offered, "hello does not offer a file op")


class SimpleOps(Base):
    def test_ping(self):
        self.fx.ping()

    def test_hello(self):
        h = self.fx.hello()
        self.assertEqual(h["protocol"], 1)
        self.assertIn("fxd", h["server"])
        for op in ("ping", "hello", "echo", "stats"):
            self.assertIn(op, h["ops"])
        self.assertIn("max_echo_bytes", h["limits"])
        self.assertTrue(self.fx.offers("echo"))

    def test_echo_uppercases_ascii_only(self):
        self.assertEqual(self.fx.echo("hello, World 1"), b"HELLO, WORLD 1")
        data = bytes(range(256))
        expected = bytes(b - 32 if 0x61 <= b <= 0x7A else b for b in data)
        self.assertEqual(self.fx.echo(data), expected)
        self.assertEqual(self.fx.echo(b""), b"")

    def test_stats(self):
        stats = self.fx.stats()
        self.assertIn("requests", stats)
        self.assertIn("connections", stats)

    def test_unknown_op_is_an_error_and_the_connection_stays(self):
        with self.assertRaises(FxError) as e:
            self.fx.request("no-such-op")
        self.assertEqual(e.exception.code, "unknown_op")
        self.fx.ping()

    def test_pipelined_ids_come_back(self):
        header, _ = self.fx.call("ping", id=77)
        self.assertEqual(header["id"], 77)


class Accounts(Base):
    def test_register_login_whoami_logout(self):
        self.assertIsNone(self.fx.whoami())
        name = self.new_user()
        self.assertEqual(self.fx.whoami(), name)
        self.fx.logout()
        self.assertIsNone(self.fx.whoami())

    def test_register_twice_is_user_exists(self):
        name = self.new_user()
        with self.assertRaises(FxError) as e:
            self.fx.register(name, PASSWORD)
        self.assertEqual(e.exception.code, "user_exists")

    def test_wrong_password_is_bad_credentials(self):
        name = self.new_user()
        other = FxClient("127.0.0.1", DAEMON.tcp)
        self.addCleanup(other.close)
        with self.assertRaises(FxError) as e:
            other.login(name, "not-the-password")
        self.assertEqual(e.exception.code, "bad_credentials")
        self.assertIsNone(other.whoami())

    def test_short_password_is_bad_request(self):
        with self.assertRaises(FxError) as e:
            self.fx.register("shorty", "short")
        self.assertEqual(e.exception.code, "bad_request")

    def test_reconnect_logs_in_again(self):
        name = self.new_user()
        self.fx.reconnect()
        self.assertEqual(self.fx.whoami(), name)


class Udp(unittest.TestCase):
    def test_udp_echo_and_ping(self):
        self.assertEqual(udp_echo("127.0.0.1", DAEMON.udp, "over udp"), b"OVER UDP")
        udp_ping("127.0.0.1", DAEMON.udp)

    def test_tcp_only_op_over_udp_is_unsupported(self):
        with self.assertRaises(FxError) as e:
            udp_call("127.0.0.1", DAEMON.udp, "hello")
        self.assertEqual(e.exception.code, "unsupported")


class Connection(unittest.TestCase):
    def test_nothing_listening_is_a_connection_error(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with self.assertRaises(ConnectionError):
            FxClient("127.0.0.1", port, timeout=5)


class Files(Base):
    def setUp(self):
        super().setUp()
        self.require_files()
        self.user = self.new_user()

    def test_file_ops_need_login(self):
        anon = FxClient("127.0.0.1", DAEMON.tcp)
        self.addCleanup(anon.close)
        with self.assertRaises(FxError) as e:
            anon.list()
        self.assertEqual(e.exception.code, "unauthorized")

    def test_upload_stat_list_download_delete(self):
        data = os.urandom(3 * 1024 * 1024 + 11)
        src = self.write("data.bin", data)
        seen = []
        up = self.fx.upload(src, progress=lambda done, total: seen.append((done, total)))
        self.assertEqual(up["name"], "data.bin")
        self.assertEqual(up["size"], len(data))
        self.assertEqual(up["sha256"], hashlib.sha256(data).hexdigest())
        self.assertEqual(up["resumed_from"], 0)
        self.assertEqual(seen[-1], (len(data), len(data)))
        self.assertGreater(len(seen), 2)  # streamed in chunks

        self.fx.upload(src, "another name.bin")
        st = self.fx.stat("data.bin")
        self.assertTrue(st["exists"])
        self.assertEqual(st["size"], len(data))
        self.assertEqual(st["sha256"], up["sha256"])
        self.assertEqual(st["partial"], 0)
        self.assertIsInstance(st["mtime"], int)

        names = [f["name"] for f in self.fx.list()]
        self.assertEqual(names, ["another name.bin", "data.bin"])

        got = self.fx.download("data.bin", self.path("back.bin"))
        self.assertEqual(got["sha256"], up["sha256"])
        self.assertEqual(self.read("back.bin"), data)
        self.assertFalse(os.path.exists(self.path("back.bin.part")))

        self.fx.delete("data.bin")
        self.assertIsNone(self.fx.stat("data.bin"))
        with self.assertRaises(FxError) as e:
            self.fx.delete("data.bin")
        self.assertEqual(e.exception.code, "not_found")
        with self.assertRaises(FxError) as e:
            self.fx.download("data.bin", self.path("gone.bin"))
        self.assertEqual(e.exception.code, "not_found")
        self.assertFalse(os.path.exists(self.path("gone.bin.part")))

    def test_bad_name(self):
        src = self.write("x", b"x")
        with self.assertRaises(FxError) as e:
            self.fx.upload(src, ".hidden", resume=False)
        self.assertEqual(e.exception.code, "bad_name")
        self.fx.ping()

    def test_wrong_sha256_is_checksum_mismatch(self):
        src = self.write("x.bin", b"some bytes")
        with self.assertRaises(FxError) as e:
            self.fx.upload(src, sha256="0" * 64)
        self.assertEqual(e.exception.code, "checksum_mismatch")
        self.assertIsNone(self.fx.stat("x.bin"))

    def test_each_user_sees_only_their_files(self):
        self.fx.upload(self.write("mine.bin", b"mine"))
        other = FxClient("127.0.0.1", DAEMON.tcp)
        self.addCleanup(other.close)
        self.new_user(other)
        self.assertEqual(other.list(), [])
        self.assertIsNone(other.stat("mine.bin"))

    def _cut_upload(self, name, data, sent):
        """An upload of data whose connection is cut after `sent` body bytes."""
        raw = FxClient("127.0.0.1", DAEMON.tcp)
        raw.login(self.user, PASSWORD)
        raw.send_raw(encode_header({"op": "upload", "name": name, "size": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest()}) + data[:sent])
        raw.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st = self.fx.stat(name)
            if st and st["partial"] == sent:
                return st
            time.sleep(0.02)
        self.fail(f"the daemon did not keep {sent} bytes of {name} as a partial: {self.fx.stat(name)}")

    def test_interrupted_upload_resumes(self):
        data = os.urandom(4 * 1024 * 1024)
        half = len(data) // 2
        st = self._cut_upload("big.bin", data, half)
        self.assertFalse(st["exists"])
        up = self.fx.upload(self.write("big.bin", data))
        self.assertEqual(up["resumed_from"], half)
        self.assertEqual(self.fx.stat("big.bin")["partial"], 0)
        self.fx.download("big.bin", self.path("back.bin"))
        self.assertEqual(self.read("back.bin"), data)

    def test_resume_with_a_wrong_offset_is_bad_offset_with_partial(self):
        data = os.urandom(1024 * 1024)
        half = len(data) // 2
        self._cut_upload("f.bin", data, half)
        # A resumed upload: "size" is the whole file's, the body the rest after "offset".
        self.fx.send_raw(encode_header({"op": "upload", "name": "f.bin", "size": len(data), "offset": half + 1})
                         + data[half + 1:])
        header, _ = self.fx.read_reply()
        self.assertEqual(header["status"], "error", header)
        self.assertEqual(header["code"], "bad_offset")
        self.assertEqual(header.get("partial"), half, header)

    def test_partial_of_other_bytes_is_replaced(self):
        other = os.urandom(1024 * 1024)
        self._cut_upload("f.bin", other, len(other) // 2)
        data = os.urandom(len(other))
        self.fx.upload(self.write("f.bin", data))
        self.fx.download("f.bin", self.path("back.bin"))
        self.assertEqual(self.read("back.bin"), data)

    def test_interrupted_download_resumes_from_part(self):
        data = os.urandom(2 * 1024 * 1024 + 3)
        self.fx.upload(self.write("src.bin", data), "file.bin")
        self.write("out.bin.part", data[:700001])
        got = self.fx.download("file.bin", self.path("out.bin"))
        self.assertEqual(got["resumed_from"], 700001)
        self.assertEqual(self.read("out.bin"), data)
        self.assertFalse(os.path.exists(self.path("out.bin.part")))

    def test_download_at_an_offset_returns_the_rest(self):
        data = os.urandom(100000)
        self.fx.upload(self.write("src.bin", data), "file.bin")
        header, body = self.fx.request("download", name="file.bin", offset=40000)
        self.assertEqual(header["total"], len(data))
        self.assertEqual(header["size"], len(data) - 40000)
        self.assertEqual(body, data[40000:])
        with self.assertRaises(FxError) as e:
            self.fx.request("download", name="file.bin", offset=len(data) + 1)
        self.assertEqual(e.exception.code, "bad_offset")

    def test_corrupted_part_raises_checksum_error(self):
        data = os.urandom(1024 * 1024)
        self.fx.upload(self.write("src.bin", data), "file.bin")
        bad = bytearray(data[:300000])
        bad[1234] ^= 0x40
        self.write("out.bin.part", bytes(bad))
        with self.assertRaises(ChecksumError):
            self.fx.download("file.bin", self.path("out.bin"))
        self.assertFalse(os.path.exists(self.path("out.bin.part")))
        self.assertFalse(os.path.exists(self.path("out.bin")))
        self.fx.download("file.bin", self.path("out.bin"))
        self.assertEqual(self.read("out.bin"), data)

    def test_sha256_file_matches_hashlib(self):
        data = os.urandom(3 * 1024 * 1024 + 1)
        self.assertEqual(sha256_file(self.write("h.bin", data)), hashlib.sha256(data).hexdigest())


class Frames(unittest.TestCase):
    """The codec itself, over a socket pair: no daemon needed."""

    def test_encode_frame_sets_size_and_prefixes_the_header_length(self):
        wire = encode_frame({"op": "echo", "id": 7}, b"abc")
        length = int.from_bytes(wire[:4], "big")
        self.assertEqual(wire[4 + length:], b"abc")
        header, body = decode_frame(wire)
        self.assertEqual(header, {"op": "echo", "id": 7, "size": 3})
        self.assertEqual(body, b"abc")

    def test_encode_frame_overrides_a_size_given_in_the_header(self):
        header, body = decode_frame(encode_frame({"op": "ping", "size": 99}))
        self.assertEqual(header["size"], 0)
        self.assertEqual(body, b"")

    def test_encode_header_keeps_the_headers_own_size_and_sends_no_body(self):
        wire = encode_header({"op": "upload", "size": 10, "offset": 4})
        header, rest = decode_frame(wire)
        self.assertEqual(header, {"op": "upload", "size": 10, "offset": 4})
        self.assertEqual(rest, b"")

    def test_decode_frame_refuses_what_is_not_a_frame(self):
        for bad in (b"", b"\x00\x00", b"\x00\x00\x00\x09{}", b"\x00\x00\x00\x02[]", b"\x00\x00\x00\x01x"):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                decode_frame(bad)

    def test_read_reply_reads_frames_split_anywhere_and_in_order(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        wire = encode_frame({"status": "ok", "id": 1}, b"first") + encode_frame({"status": "ok", "id": 2})
        for i in range(len(wire)):  # one byte at a time: every split point
            a.sendall(wire[i:i + 1])
        self.assertEqual(read_reply(b), ({"status": "ok", "id": 1, "size": 5}, b"first"))
        self.assertEqual(read_reply_header(b), {"status": "ok", "id": 2, "size": 0})

    def test_recv_exact_raises_when_the_peer_closes_early(self):
        a, b = socket.socketpair()
        self.addCleanup(b.close)
        a.sendall(b"abc")
        a.close()
        with self.assertRaises(ConnectionError):
            recv_exact(b, 4)


class RawFrames(Base):
    def test_send_raw_and_read_reply_on_a_client_connection(self):
        # Two pings in one write: replies in order.
        self.fx.send_raw(encode_frame({"op": "ping", "id": "a"}) + encode_frame({"op": "ping", "id": "b"}))
        self.assertEqual(self.fx.read_reply()[0]["id"], "a")
        self.assertEqual(self.fx.read_reply()[0]["id"], "b")
        self.fx.ping()

    def test_udp_exchange_returns_error_replies(self):
        header, body = udp_exchange("127.0.0.1", DAEMON.udp, {"op": "list", "id": 5})
        self.assertEqual(header["status"], "error")
        self.assertEqual(header["id"], 5)
        self.assertEqual(body, b"")


if __name__ == "__main__":
    unittest.main()
