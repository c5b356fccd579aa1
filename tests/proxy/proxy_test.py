#!/usr/bin/env python3
"""The PROXY protocol against the real daemon: raw v1 and v2 headers from a
trusted peer (the client they name is the one the per-address limits, the
registration limiter and the log see), headers from peers not trusted, trusted
peers without a valid header, TLS (header, then handshake), SIGHUP, and Debian's
haproxy (scripts/lib/haproxy.sh) with send-proxy-v2 in front of one and of two
instances.

    proxy_test.py CASE FXD_BINARY

Cases: headers, untrusted, bad_header, tls, reload, haproxy, haproxy_cluster, haproxy_tls.
Loopback is all 127.0.0.0/8, so clients bind their source to 127.0.0.2 and up
to be told apart from the trusted 127.0.0.1. Exit status 0 pass, 1 fail, 77
skipped (no haproxy, or no openssl command for the TLS cases).
"""

import ipaddress
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fault"))
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
from harness import (DEADLINE, PASSWORD, ROOT, Daemon, FxClient, FxError, Skip, frame, read_reply,  # noqa: E402
                     expect_error, run_main, wait_for)

HAPROXY_SH = os.path.join(ROOT, "scripts", "lib", "haproxy.sh")
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(client, port=40000, proto=None):
    """A v1 line naming client (an IPv4 or IPv6 address text)."""
    six = ipaddress.ip_address(client).version == 6
    proto = proto or ("TCP6" if six else "TCP4")
    destination = "2001:db8::1" if six else "192.0.2.1"
    return f"PROXY {proto} {client} {destination} {port} 7070\r\n".encode()


def v2(client, port=40000, tlvs=b""):
    """A v2 PROXY header naming client, with optional TLVs after the addresses."""
    address = ipaddress.ip_address(client)
    if address.version == 4:
        block = address.packed + ipaddress.ip_address("192.0.2.1").packed + struct.pack(">HH", port, 7070)
        family = 0x11
    else:
        block = address.packed + ipaddress.ip_address("2001:db8::1").packed + struct.pack(">HH", port, 7070)
        family = 0x21
    payload = block + tlvs
    return V2_SIGNATURE + bytes([0x21, family]) + struct.pack(">H", len(payload)) + payload


def v2_local():
    """The balancer speaking for itself (a health check): the connection keeps its own peer."""
    return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack(">H", 0)


class ProxiedClient(FxClient):
    """An FxClient whose connection comes from `source` and starts with
    `preamble` (a PROXY header, or nothing), before any TLS handshake."""

    def __init__(self, port, preamble=b"", source="127.0.0.1", **kw):
        self._preamble, self._source = preamble, source
        super().__init__("127.0.0.1", port, timeout=DEADLINE, **kw)

    def _connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout,
                                        source_address=(self._source, 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.sendall(self._preamble)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._server_hostname)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._broken = False


def raw(port, data, source="127.0.0.1"):
    """A socket from source that has sent data."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE, source_address=(source, 0))
    sock.sendall(data)
    return sock


def closed_without_reply(sock):
    """The daemon closed the connection without sending a byte (a reset counts as closed)."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    finally:
        sock.close()


def counters(port, preamble=b""):
    """stats from this host (a loopback peer may read them) through 127.0.0.1."""
    with ProxiedClient(port, preamble) as fx:
        return fx.stats()


def counters_from(port, source):
    """stats straight from source (a loopback address not trusted: served as itself)."""
    with ProxiedClient(port, source=source) as fx:
        return fx.stats()


def daemon(fxd, folder, *sets, name="fxd"):
    return Daemon(fxd, os.path.join(folder, name, "var"), os.path.join(folder, f"{name}.log"),
                  sets=["log.level=debug", *sets]).start()


def case_headers(fxd, folder):
    """Raw v1 and v2 headers from a trusted peer: the client they name is the one
    limited per address, rate limited at registration, and logged."""
    d = daemon(fxd, folder, "proxy.trusted=127.0.0.0/8", "limits.max_connections_per_address=1",
               "auth.max_registrations_per_address=1", "auth.plaintext=allow")
    try:
        with ProxiedClient(d.tcp, v1("203.0.113.7")) as first:
            assert first.echo(b"via v1") == b"VIA V1"
            d.wait_log("connection from 127.0.0.1 relays client 203.0.113.7 (PROXY v1)")
            # 203.0.113.7 has its one connection: a second one claiming it is busy...
            expect_error("busy", lambda: ProxiedClient(d.tcp, v2("203.0.113.7")).ping())
            # ...while another client through the same balancer is served.
            with ProxiedClient(d.tcp, v2("203.0.113.8")) as second:
                assert second.echo(b"via v2") == b"VIA V2"
                d.wait_log("connection from 127.0.0.1 relays client 203.0.113.8 (PROXY v2)")
                with ProxiedClient(d.tcp, v2("2001:db8::7", tlvs=b"\x05\x00\x03abc")) as third:
                    third.ping()
                    with ProxiedClient(d.tcp, v1("2001:db8::8")) as fourth:  # the same /64 as 2001:db8::7
                        expect_error("busy", fourth.ping)
                # The balancer's own connections (here five at once) are not limited; LOCAL keeps its own peer.
                with ProxiedClient(d.tcp, v2_local()) as local:
                    stats = local.stats()
                    assert stats["proxy"]["accepted"] >= 6, stats["proxy"]
                    assert stats["connections"]["refused_per_address"] == 2, stats["connections"]
                with ProxiedClient(d.tcp, b"PROXY UNKNOWN\r\n") as unknown:
                    unknown.ping()
        # The registration limiter counts the client, not the balancer. (Fresh addresses: the
        # daemon may not have seen the connections above close yet.)
        with ProxiedClient(d.tcp, v1("203.0.113.20")) as fx:
            fx.register("alice", PASSWORD)
            expect_error("rate_limited", lambda: fx.register("bob", PASSWORD))
        with ProxiedClient(d.tcp, v1("203.0.113.21")) as fx:
            fx.register("bob", PASSWORD)
            fx.login("bob", PASSWORD)
        d.wait_log('login: user="bob" addr=203.0.113.21')
        d.stop()
    finally:
        d.kill()


def case_untrusted(fxd, folder):
    """A header from a peer not in proxy.trusted gets bad_request and a close;
    a trusted network's neighbour is not trusted."""
    d = daemon(fxd, folder, "proxy.trusted=127.0.0.1/32")
    try:
        for header in (v1("203.0.113.7"), v2("203.0.113.7"), b"PROXY UNKNOWN\r\n"):
            sock = raw(d.tcp, header + frame({"op": "ping", "id": 1}), source="127.0.0.2")
            reply, _ = read_reply(sock)
            assert reply["status"] == "error" and reply["code"] == "bad_request", reply
            assert "proxy.trusted" in reply["message"], reply
            assert closed_without_reply(sock), "the connection stayed open after the refusal"
        d.wait_log("connection from 127.0.0.2 closed: a PROXY protocol header, but the peer is not in proxy.trusted")
        # The same peer without a header is served as itself.
        with ProxiedClient(d.tcp, source="127.0.0.2") as fx:
            fx.ping()
            stats = fx.stats()
        assert stats["proxy"] == {"accepted": 0, "refused_untrusted": 3, "bad_header": 0}, stats["proxy"]
        # A second header after a trusted one is refused the same way.
        sock = raw(d.tcp, v1("203.0.113.7") + v1("203.0.113.8"))
        reply, _ = read_reply(sock)
        assert reply.get("code") == "bad_request" and "second" in reply["message"], reply
        sock.close()
        d.stop()
    finally:
        d.kill()


def case_bad_header(fxd, folder):
    """From a trusted peer, a connection without a valid header is closed, counted and logged."""
    d = daemon(fxd, folder, "proxy.trusted=127.0.0.1/32", "timeouts.header_s=0.5")
    try:
        broken = [frame({"op": "ping", "id": 1}),                            # no header at all
                  b"GET / HTTP/1.1\r\n\r\n",                                 # garbage
                  b"PROXY TCP4 203.0.113.7 192.0.2.1 99999 7070\r\n",       # a bad port
                  b"PROXY TCP4 " + b"1" * 120,                               # longer than 107 bytes
                  V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack(">H", 4096),  # oversized
                  V2_SIGNATURE[:-1] + b"X" + bytes([0x21, 0x11, 0, 12]) + bytes(12)]  # a wrong signature
        for data in broken:
            assert closed_without_reply(raw(d.tcp, data)), f"{data[:20]!r} was answered"
        # Half a header, then silence: closed at timeouts.header_s.
        assert closed_without_reply(raw(d.tcp, b"PROXY TCP4 203.0.113.7")), "a stalled header was answered"
        d.wait_log("(proxy.trusted) closed: no PROXY header within timeouts.header_s")
        d.wait_log("(proxy.trusted) closed: not a PROXY protocol header")
        # A header arriving a byte at a time is still read whole.
        sock = raw(d.tcp, b"")
        for byte in v2("203.0.113.7"):
            sock.sendall(bytes([byte]))
        sock.sendall(frame({"op": "ping", "id": 7}))
        reply, _ = read_reply(sock)
        assert reply["status"] == "ok" and reply["id"] == 7, reply
        sock.close()
        stats = counters(d.tcp, v2_local())
        assert stats["proxy"]["bad_header"] == len(broken) + 1, stats["proxy"]
        assert stats["proxy"]["accepted"] >= 2, stats["proxy"]
        d.stop()
    finally:
        d.kill()


def case_tls(fxd, folder):
    """On the TLS port the header comes before the handshake; an untrusted peer's header is refused."""
    from tls_test import Certificates, tls_daemon  # noqa: E402 (needs the openssl command)
    certs = Certificates(folder)
    d = tls_daemon(fxd, folder, certs, "proxy.trusted=127.0.0.1/32", "limits.max_connections_per_address=1",
                   "log.level=debug")
    try:
        tls = {"tls": True, "cafile": certs.ca}
        with ProxiedClient(d.tls, v2("203.0.113.7"), **tls) as fx:
            assert fx.echo(b"over tls") == b"OVER TLS"
            d.wait_log("connection from 127.0.0.1 relays client 203.0.113.7 (PROXY v2)")
            expect_error("busy", lambda: ProxiedClient(d.tls, v1("203.0.113.7"), **tls).ping())
            with ProxiedClient(d.tls, v1("203.0.113.8"), **tls) as other:
                other.ping()
        # Trusted, no header: the ClientHello is not a PROXY header; the connection closes.
        try:
            ProxiedClient(d.tls, b"", **tls).ping()
            raise AssertionError("a TLS client without a header from a trusted peer was served")
        except (ssl.SSLError, OSError):
            pass
        # Not trusted: a header before the handshake is refused without a reply.
        assert closed_without_reply(raw(d.tls, v2("203.0.113.7"), source="127.0.0.2"))
        d.wait_log("connection from 127.0.0.2 closed: a PROXY protocol header, but the peer is not in proxy.trusted")
        # Not trusted, no header: an ordinary TLS client.
        with ProxiedClient(d.tls, b"", source="127.0.0.2", **tls) as fx:
            fx.ping()
            stats = fx.stats()
        assert stats["proxy"]["refused_untrusted"] == 1, stats["proxy"]
        assert stats["proxy"]["bad_header"] == 1, stats["proxy"]
        assert stats["proxy"]["accepted"] >= 3, stats["proxy"]
        d.stop()
    finally:
        d.kill()


def case_reload(fxd, folder):
    """SIGHUP applies a changed proxy.trusted to new connections."""
    config = os.path.join(folder, "fxd.json")

    def write(trusted):
        with open(config, "w") as f:
            f.write('{"proxy": {"trusted": [%s]}, "log": {"level": "debug"}}' % ", ".join(f'"{t}"' for t in trusted))

    class ConfiguredDaemon(Daemon):
        def argv(self):
            return super().argv() + ["--config", config]

    write([])
    d = ConfiguredDaemon(fxd, os.path.join(folder, "var"), os.path.join(folder, "fxd.log")).start()
    try:
        ProxiedClient(d.tcp).ping()
        write(["127.0.0.0/8"])
        d.signal(signal.SIGHUP)
        d.wait_log("reload: applied")
        with ProxiedClient(d.tcp, v1("203.0.113.7")) as fx:
            fx.ping()
        d.wait_log("relays client 203.0.113.7")
        write(["not-a-network"])
        d.signal(signal.SIGHUP)
        d.wait_log("reload refused, keeping the running config: config key 'proxy.trusted'")
        with ProxiedClient(d.tcp, v2("203.0.113.8")) as fx:
            fx.ping()
        d.stop()
    finally:
        d.kill()


class Haproxy:
    """scripts/lib/haproxy.sh: start in front of backends, stop at the end."""

    def __init__(self, folder, backends, *options):
        self.dir = os.path.join(folder, "haproxy")
        result = subprocess.run([HAPROXY_SH, "start", "--dir", self.dir, *options, *backends],
                                capture_output=True, text=True, timeout=DEADLINE)
        if result.returncode == 77:
            raise Skip("haproxy is not installed")
        assert result.returncode == 0, f"haproxy.sh start failed: {result.stderr}"
        self.port = int(result.stdout.strip())

    def stop(self):
        subprocess.run([HAPROXY_SH, "stop", "--dir", self.dir], timeout=DEADLINE, check=True)


def case_haproxy(fxd, folder):
    """Debian's haproxy with send-proxy-v2 in front of fxd: fxd sees the clients
    (127.0.0.2, 127.0.0.3), not haproxy (127.0.0.1), and limits them, not haproxy."""
    d = daemon(fxd, folder, "proxy.trusted=127.0.0.1/32", "limits.max_connections_per_address=1")
    h = None
    try:
        h = Haproxy(folder, [f"127.0.0.1:{d.tcp}"])
        with ProxiedClient(h.port, source="127.0.0.2") as fx:
            assert fx.echo(b"through haproxy") == b"THROUGH HAPROXY"
            d.wait_log("connection from 127.0.0.1 relays client 127.0.0.2 (PROXY v2)")
            # 127.0.0.2 has its one connection; haproxy's own address holds two and more, unlimited.
            expect_error("busy", lambda: ProxiedClient(h.port, source="127.0.0.2").ping())
            with ProxiedClient(h.port, source="127.0.0.3") as other:
                other.ping()
                d.wait_log("connection from 127.0.0.1 relays client 127.0.0.3 (PROXY v2)")
        # Straight to fxd from 127.0.0.9, which is not trusted: served as itself. (Not from
        # 127.0.0.2: haproxy may not have closed its side of that client's connection yet.)
        stats = counters_from(d.tcp, "127.0.0.9")
        assert stats["proxy"]["accepted"] >= 3, stats["proxy"]
        assert stats["proxy"]["bad_header"] == 0, stats["proxy"]
        assert stats["connections"]["refused_per_address"] == 1, stats["connections"]
        h.stop()
        h = None
        d.stop()
    finally:
        if h:
            h.stop()
        d.kill()


def case_haproxy_cluster(fxd, folder):
    """haproxy round robin over two instances: each serves clients through it and sees who they are."""
    instances = [daemon(fxd, folder, "proxy.trusted=127.0.0.1/32", name=f"fxd{i}") for i in (1, 2)]
    h = None
    try:
        h = Haproxy(folder, [f"127.0.0.1:{d.tcp}" for d in instances])
        for i in range(4):
            with ProxiedClient(h.port, source="127.0.0.2") as fx:
                assert fx.echo(b"turn %d" % i) == b"TURN %d" % i
        for d in instances:
            d.wait_log("relays client 127.0.0.2 (PROXY v2)")
            assert counters_from(d.tcp, "127.0.0.2")["proxy"]["accepted"] == 2
        h.stop()
        h = None
        for d in instances:
            d.stop()
    finally:
        if h:
            h.stop()
        for d in instances:
            d.kill()


def case_haproxy_tls(fxd, folder):
    """TLS passthrough: haproxy relays the encrypted bytes after its PROXY header (v1 this
    time, send-proxy); fxd terminates TLS."""
    from tls_test import Certificates, tls_daemon  # noqa: E402 (needs the openssl command)
    certs = Certificates(folder)
    d = tls_daemon(fxd, folder, certs, "proxy.trusted=127.0.0.1/32", "log.level=debug")
    h = None
    try:
        h = Haproxy(folder, [f"127.0.0.1:{d.tls}"], "--tls", "--proxy", "v1")
        with ProxiedClient(h.port, source="127.0.0.4", tls=True, cafile=certs.ca) as fx:
            assert fx.echo(b"passed through") == b"PASSED THROUGH"
        d.wait_log("connection from 127.0.0.1 relays client 127.0.0.4 (PROXY v1)")
        # haproxy refuses what is not a ClientHello itself.
        assert closed_without_reply(raw(h.port, frame({"op": "ping", "id": 1}), source="127.0.0.4"))
        h.stop()
        h = None
        d.stop()
    finally:
        if h:
            h.stop()
        d.kill()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in CASES:
        print(__doc__)
        return 2
    case, fxd = sys.argv[1], sys.argv[2]

    def body():
        with tempfile.TemporaryDirectory(prefix=f"fxd-proxy-{case}-") as folder:
            CASES[case](fxd, folder)

    return run_main(body)


CASES = {"headers": case_headers, "untrusted": case_untrusted, "bad_header": case_bad_header, "tls": case_tls,
         "reload": case_reload, "haproxy": case_haproxy, "haproxy_cluster": case_haproxy_cluster,
         "haproxy_tls": case_haproxy_tls}

if __name__ == "__main__":
    sys.exit(main())
