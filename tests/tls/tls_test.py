#!/usr/bin/env python3
"""TLS against the real daemon, with certificates this test makes with the
openssl command (a CA, a server certificate for 127.0.0.1, client
certificates from that CA and from another one).

    tls_test.py CASE FXD_BINARY

Cases: ops, mutual, plaintext, reload, junk, port_in_use. Exit status 0 pass, 1 fail, 77
skipped (no openssl command).
"""

import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))
from harness import (DEADLINE, PASSWORD, Daemon, FxClient, FxError, Skip, frame, read_reply,  # noqa: E402
                     expect_error, run_main, wait_for)


class Certificates:
    """A throw-away PKI in folder: ca, server (127.0.0.1 and localhost), client, and a stranger's client."""

    def __init__(self, folder):
        if shutil.which("openssl") is None:
            raise Skip("the openssl command is not installed")
        self.folder = folder
        self.ca = self._authority("ca", "fxd test CA")
        self.other_ca = self._authority("other-ca", "someone else's CA")
        self.server = self.issue("server", "127.0.0.1", "ca", san="IP:127.0.0.1,DNS:localhost")
        self.client = self.issue("client", "alice-laptop", "ca")
        self.stranger = self.issue("stranger", "mallory", "other-ca")

    def path(self, name):
        return os.path.join(self.folder, name)

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def _authority(self, name, subject):
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", self.path(f"{name}.key"), "-out", self.path(f"{name}.pem"), "-days", "2",
                      "-subj", f"/CN={subject}")
        return self.path(f"{name}.pem")

    def issue(self, name, cn, ca, san=None):
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", self.path(f"{name}.key"), "-out", self.path(f"{name}.csr"), "-subj", f"/CN={cn}")
        extensions = self.path(f"{name}.ext")
        with open(extensions, "w") as f:
            if san:
                f.write(f"subjectAltName={san}\n")
        self._openssl("x509", "-req", "-in", self.path(f"{name}.csr"), "-CA", self.path(f"{ca}.pem"),
                      "-CAkey", self.path(f"{ca}.key"), "-CAcreateserial", "-out", self.path(f"{name}.pem"),
                      "-days", "2", "-extfile", extensions)
        return self.path(f"{name}.pem"), self.path(f"{name}.key")


def tls_daemon(fxd, folder, certs, *sets):
    server_cert, server_key = certs.server
    return Daemon(fxd, os.path.join(folder, "var"), os.path.join(folder, "fxd.log"),
                  sets=[f"tls.cert={server_cert}", f"tls.key={server_key}", "tls.port=0", *sets]).start()


def tls_client(d, certs, client=None, **kw):
    certfile, keyfile = client if client else (None, None)
    return FxClient("127.0.0.1", d.tls, timeout=DEADLINE, tls=True, cafile=certs.ca, certfile=certfile,
                    keyfile=keyfile, **kw)


def tls_socket(d, certs):
    ctx = ssl.create_default_context(cafile=certs.ca)
    raw = socket.create_connection(("127.0.0.1", d.tls), timeout=DEADLINE)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def case_ops(fxd, folder):
    """Every TCP op over TLS, one by one and pipelined; downloads of every size class."""
    certs = Certificates(folder)
    d = tls_daemon(fxd, folder, certs)
    try:
        with FxClient("127.0.0.1", d.tcp, timeout=DEADLINE) as plain:
            hello = plain.hello()
            assert hello.get("tls_port") == d.tls, hello
        with tls_client(d, certs) as fx:
            fx.ping()
            assert fx.echo(b"over tls") == b"OVER TLS"
            assert d.tls == fx.hello()["tls_port"]
            fx.register("alice", PASSWORD)
            fx.login("alice", PASSWORD)
            assert fx.whoami() == "alice"
            for size in (0, 1, 16384, 16385, 3 * 1024 * 1024 + 7):
                data = random.randbytes(size)
                src = os.path.join(folder, f"up-{size}")
                with open(src, "wb") as f:
                    f.write(data)
                fx.upload(src, name=f"f{size}")
                dst = os.path.join(folder, f"down-{size}")
                fx.download(f"f{size}", dst)
                with open(dst, "rb") as f:
                    assert f.read() == data, f"download of {size} bytes differs"
                assert fx.stat(f"f{size}")["size"] == size
            assert sorted(e["name"] for e in fx.list()) == sorted(f"f{s}" for s in (0, 1, 16384, 16385, 3145735))
            fx.delete("f0")
            assert fx.stat("f0") is None
            assert fx.stats()["tls"]["handshakes"] >= 1
            fx.logout()
            assert fx.whoami() is None

        # Pipelined: 200 echoes and a login in one write, replies in order.
        s = tls_socket(d, certs)
        batch = b"".join(frame({"op": "echo", "id": i}, b"x%d" % i) for i in range(200))
        batch += frame({"op": "login", "id": "L", "user": "alice", "password": PASSWORD})
        batch += frame({"op": "download", "id": "D", "name": "f16385"})
        s.sendall(batch)
        for i in range(200):
            header, body = read_reply(s)
            assert header["id"] == i and body == b"X%d" % i, (header, body)
        header, _ = read_reply(s)
        assert header["id"] == "L" and header["status"] == "ok", header
        header, body = read_reply(s)
        assert header["id"] == "D" and len(body) == 16385, header
        s.close()
    finally:
        d.kill()


def case_mutual(fxd, folder):
    """tls.client_ca: a certificate from the CA is served and named in the login log; none, or one from
    another CA, ends in a failed handshake that is counted; plain TCP is unaffected."""
    certs = Certificates(folder)
    d = tls_daemon(fxd, folder, certs, f"tls.client_ca={certs.ca}", "log.level=debug")
    try:
        with tls_client(d, certs, client=certs.client) as fx:
            fx.register("alice", PASSWORD)
            fx.login("alice", PASSWORD)
        d.wait_log('cert="CN=alice-laptop"')
        for who in (None, certs.stranger):
            try:
                with tls_client(d, certs, client=who) as fx:
                    fx.ping()  # TLS 1.3: a refused certificate shows at the first read
            except (ssl.SSLError, ConnectionError, OSError):
                pass
            else:
                raise AssertionError(f"a client with {who} was served")
        with FxClient("127.0.0.1", d.tcp, timeout=DEADLINE) as plain:
            wait_for("two failed handshakes", lambda: plain.stats()["tls"]["handshake_failures"] >= 2)
        d.wait_log("tls handshake with 127.0.0.1 failed")
    finally:
        d.kill()


def non_loopback_address():
    """An address of this host that is not loopback, or None."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: only picks the outgoing address
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


def case_plaintext(fxd, folder):
    """auth.plaintext in its three modes: tls_required leaves the connection usable; TLS always works."""
    certs = Certificates(folder)
    outside = non_loopback_address()
    for mode in ("loopback", "allow", "deny"):
        sub = os.path.join(folder, mode)
        os.makedirs(sub)
        d = tls_daemon(fxd, sub, certs, f"auth.plaintext={mode}", "tcp.bind=0.0.0.0")
        try:
            with tls_client(d, certs) as fx:
                fx.register("alice", PASSWORD)
                fx.login("alice", PASSWORD)
            with FxClient("127.0.0.1", d.tcp, timeout=DEADLINE) as fx:
                if mode == "deny":
                    expect_error("tls_required", lambda: fx.login("alice", PASSWORD))
                    expect_error("tls_required", lambda: fx.register("bob", PASSWORD))
                    fx.ping()  # still usable
                else:
                    fx.login("alice", PASSWORD)
            if outside is None:
                print("note: no non-loopback address here; the remote half of the case is left out")
                continue
            with FxClient(outside, d.tcp, timeout=DEADLINE) as fx:
                if mode == "allow":
                    fx.login("alice", PASSWORD)
                else:
                    expect_error("tls_required", lambda: fx.login("alice", PASSWORD))
                    assert fx.echo(b"still here") == b"STILL HERE"
        finally:
            d.kill()


def served_certificate(d, certs):
    s = tls_socket(d, certs)
    try:
        return s.getpeercert(binary_form=True), s
    except BaseException:
        s.close()
        raise


def case_reload(fxd, folder):
    """SIGHUP re-reads the certificate: new connections get the new one, an open one keeps working;
    a file that does not load keeps the running certificate."""
    certs = Certificates(folder)
    live_cert, live_key = os.path.join(folder, "live.pem"), os.path.join(folder, "live.key")
    shutil.copy(certs.server[0], live_cert)
    shutil.copy(certs.server[1], live_key)
    d = Daemon(fxd, os.path.join(folder, "var"), os.path.join(folder, "fxd.log"),
               sets=[f"tls.cert={live_cert}", f"tls.key={live_key}", "tls.port=0"]).start()
    try:
        first, held = served_certificate(d, certs)
        renewed_cert, renewed_key = certs.issue("renewed", "127.0.0.1", "ca", san="IP:127.0.0.1")
        shutil.copy(renewed_cert, live_cert)
        shutil.copy(renewed_key, live_key)
        d.signal(signal.SIGHUP)
        d.wait_log("TLS certificate, key and CA re-read")
        second, fresh = served_certificate(d, certs)
        assert second != first, "a new connection still got the old certificate"
        held.sendall(frame({"op": "echo"}, b"old"))
        assert read_reply(held)[1] == b"OLD"
        held.close()
        fresh.close()

        with open(live_cert, "w") as f:
            f.write("not a certificate\n")
        d.signal(signal.SIGHUP)
        d.wait_log("keeping the running TLS certificate")
        third, s = served_certificate(d, certs)
        assert third == second, "a broken file replaced the running certificate"
        s.sendall(frame({"op": "ping"}))
        assert read_reply(s)[0]["status"] == "ok"
        s.close()
    finally:
        d.kill()


def case_junk(fxd, folder):
    """Plain frames, random bytes and silence on the TLS port: each connection ends, the daemon serves on."""
    certs = Certificates(folder)
    d = tls_daemon(fxd, folder, certs, "timeouts.header_s=1")
    try:
        rng = random.Random(int(os.environ.get("FXD_FAULT_SEED", "7")))
        blobs = [frame({"op": "ping"}), b"GET / HTTP/1.1\r\n\r\n"]
        blobs += [rng.randbytes(rng.randrange(1, 4096)) for _ in range(200)]
        for blob in blobs:
            s = socket.create_connection(("127.0.0.1", d.tls), timeout=DEADLINE)
            try:
                s.sendall(blob)
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):
                    pass  # whatever the daemon answers (a TLS alert), then its close
            except OSError:
                pass  # already closed by the daemon
            finally:
                s.close()
        silent = socket.create_connection(("127.0.0.1", d.tls), timeout=DEADLINE)
        started = time.monotonic()
        assert silent.recv(1) == b"", "a silent client was not closed"
        waited = time.monotonic() - started
        assert waited < DEADLINE, waited
        silent.close()
        assert d.alive(), "fxd died"
        with tls_client(d, certs) as fx:
            assert fx.echo(b"fine") == b"FINE"
            counts = fx.stats()["tls"]
        assert counts["handshake_failures"] >= len(blobs) + 1, counts
        assert counts["open"] == 1, counts
    finally:
        d.kill()


def case_port_in_use(fxd, folder):
    """A second daemon on a TLS port already taken exits 1 naming the tls listener, its address and port."""
    certs = Certificates(folder)
    d = tls_daemon(fxd, folder, certs)
    try:
        server_cert, server_key = certs.server
        second = subprocess.run(
            [fxd, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", f"storage.dir={folder}/second",
             "--set", f"tls.cert={server_cert}", "--set", f"tls.key={server_key}", "--set", f"tls.port={d.tls}"],
            capture_output=True, text=True, timeout=DEADLINE)
        err = second.stderr
        assert second.returncode == 1, (second.returncode, err)
        for needle in (f"cannot open the tls listener on 127.0.0.1:{d.tls}", "address already in use",
                       "another process", "--set tls.port="):
            assert needle in err, f"{needle!r} missing from: {err}"
        for inside in (".hpp", ".ipp", "in function"):
            assert inside not in err, f"{inside!r} in: {err}"
        assert d.alive(), "the first daemon died"
    finally:
        d.kill()


CASES = {"ops": case_ops, "mutual": case_mutual, "plaintext": case_plaintext, "reload": case_reload,
         "junk": case_junk, "port_in_use": case_port_in_use}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in CASES:
        print(__doc__)
        return 2
    case, fxd = sys.argv[1], os.path.abspath(sys.argv[2])
    folder = tempfile.mkdtemp(prefix=f"fxd-tls-{case}-")
    status = run_main(lambda: CASES[case](fxd, folder))
    log = os.path.join(folder, "fxd.log")
    if status == 1 and os.path.exists(log):
        with open(log, errors="replace") as f:
            print("--- last lines of fxd.log ---")
            print("".join(f.readlines()[-40:]))
    shutil.rmtree(folder, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
