#!/usr/bin/env python3
"""fxbench's command line, with no server needed: --help exits 0 and lists
every option; a usage error exits 2 before any connection, naming the option
or argument at fault.

Usage: fxbench_usage_test.py PATH/TO/fxbench
"""
import subprocess
import sys
import unittest

FXBENCH = ""


def run(*args):
    return subprocess.run([FXBENCH, *args], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)


class Usage(unittest.TestCase):
    def test_help_exits_0_and_lists_the_options(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("echo", "udp", "upload", "download", "idle", "handshake", "connect", "--batch", "--tls", "--cacert", "--connections", "--pipeline", "--window",
                     "--size", "--seconds", "--warmup", "--udp-timeout", "--raw-ping", "--pid", "--json",
                     "Exit status"):
            self.assertIn(word, r.stdout)
        self.assertEqual(run("-h").stdout, r.stdout)

    def test_usage_errors_exit_2_naming_what_is_wrong(self):
        # The port is never reached: each line fails before connecting (exit 3 would show it did not).
        cases = [
            ((), "mode"),
            (("frob",), "frob"),
            (("echo", "extra"), "extra"),
            (("--bogus", "echo"), "--bogus"),
            (("echo", "--port", "0"), "--port"),
            (("echo", "--udp-port", "65536"), "--udp-port"),
            (("echo", "-c", "0"), "--connections"),
            (("echo", "-p", "many"), "--pipeline"),
            (("udp", "-w", "5000"), "--window"),
            (("echo", "-s", "12Q"), "--size"),
            (("echo", "-t", "-1"), "--seconds"),
            (("udp", "--udp-timeout", "soon"), "--udp-timeout"),
            (("idle", "--pid", "0"), "--pid"),
            (("echo", "--raw=yes"), "raw"),
            (("echo", "--port"), "--port"),          # a value is missing
            (("udp", "-s", "8"), "--size"),          # too small for the sequence number
            (("echo", "-s", "1G"), "64 MiB"),
            (("connect", "-s", "1G"), "64 MiB"),
            (("udp", "--batch"), "--batch"),
            (("udp", "--tls"), "--tls"),             # TLS is for the TCP modes
            (("idle", "--tls"), "--tls"),
            (("echo", "--cacert", __file__), "--cacert needs --tls"),
            (("echo", "--tls", "--cacert", "/nonexistent/ca.pem"), "--cacert"),
        ]
        for args, named in cases:
            with self.subTest(args=args):
                r = run(*args, "--host", "127.0.0.1")
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertIn(named, r.stderr)

    def test_sizes_take_binary_suffixes(self):
        # A valid line gets as far as connecting: port 1 on loopback refuses, exit 3.
        for size in ("64", "1K", "1k", "2M"):
            with self.subTest(size=size):
                r = run("echo", "-s", size, "-t", "0.1", "--warmup", "0", "--port", "1")
                self.assertEqual(r.returncode, 3, r.stderr)

    def test_tls_and_handshake_lines_get_as_far_as_connecting(self):
        for args in (("echo", "--tls"), ("handshake",), ("handshake", "--tls")):
            with self.subTest(args=args):
                r = run(*args, "-t", "0.1", "--warmup", "0", "--port", "1")
                self.assertEqual(r.returncode, 3, r.stderr)


if __name__ == "__main__":
    FXBENCH = sys.argv.pop(1)
    unittest.main(verbosity=2)
