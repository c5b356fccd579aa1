#!/usr/bin/env python3
"""The operator's view against the real daemon, one case per run:

  admin_test.py CASE FXD [OUT_DIR]

  endpoints   /healthz, /readyz (ready, storage gone, draining), /metrics after
              real traffic, /status and status.json, 404/405/HEAD, the bounds
              (header size, connection cap), admin.enabled=false
  promtool    `promtool check metrics` on a scrape after traffic
  prometheus  a real Prometheus scrapes fxd every second; a counter driven by
              this test is read back through Prometheus's HTTP API
  chromium    /status in headless Chromium: no console errors, the DOM shows
              the numbers, a screenshot (OUT_DIR/status_page.png)
  tls         a TLS connection and its handshake in /metrics (needs openssl)
  journal     JOURNAL_STREAM naming stderr gives "<N>" priority lines without
              a timestamp; a stale JOURNAL_STREAM changes nothing

Exit status 77 (skipped) when a tool the case needs is missing.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python"))
import fxclient  # noqa: E402

DEADLINE = 30.0  # seconds any awaited condition may take before the test fails
FAST_AUTH = ["auth.hash_memory_bytes=8192", "auth.hash_passes=1"]


class Skip(Exception):
    pass


def need(tool):
    path = shutil.which(tool)
    if not path:
        raise Skip(f"{tool} is not installed")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, probe, deadline=DEADLINE):
    """Polls probe() until it returns something true; fails after deadline seconds."""
    end = time.monotonic() + deadline
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Daemon:
    def __init__(self, fxd, folder, sets=(), env=None):
        self.storage = os.path.join(folder, "var")
        self.log_path = os.path.join(folder, "fxd.log")
        args = [fxd, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0",
                "--set", f"storage.dir={self.storage}", "--print-ports"]
        for pair in FAST_AUTH + list(sets):
            args += ["--set", pair]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                         text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("tcp="):
            self.stop()
            raise AssertionError(f"fxd did not print its ports: {line!r}\n{self.log()}")
        self.ports = dict(kv.split("=") for kv in line.split())
        self.tcp, self.udp = int(self.ports["tcp"]), int(self.ports["udp"])
        self.admin = int(self.ports["admin"]) if "admin" in self.ports else None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def get(self, path, method="GET", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=DEADLINE)
        try:
            conn.request(method, path, headers=headers or {})
            reply = conn.getresponse()
            return reply.status, dict(reply.getheaders()), reply.read().decode()
        finally:
            conn.close()

    def client(self):
        return fxclient.FxClient("127.0.0.1", self.tcp, timeout=DEADLINE)


def closed_unanswered(sock):
    """Whether the peer closed (or reset) the connection without sending anything."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def metric(text, name, labels=""):
    """The value of one sample in an exposition, or None."""
    want = name + ("{" + labels + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def drive_traffic(d, folder):
    """Pings, an echo, a UDP ping, an upload and a download, a request with no op."""
    with d.client() as c:
        for _ in range(3):
            c.ping()
        c.echo(b"metrics")
        c.register("ops", "correct horse")
        c.login("ops", "correct horse")
        src = os.path.join(folder, "blob")
        with open(src, "wb") as f:
            f.write(os.urandom(100_000))
        c.upload(src, "blob")
        c.download("blob", os.path.join(folder, "blob.back"))
        c.send_raw(fxclient.encode_frame({"id": 1}))  # no op: an error reply
        c.read_reply()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(DEADLINE)
        u.sendto(fxclient.encode_frame({"op": "ping", "id": 9}), ("127.0.0.1", d.udp))
        u.recvfrom(65536)


# ---- cases -------------------------------------------------------------------------------

def case_endpoints(fxd, folder, _out):
    d = Daemon(fxd, folder)
    try:
        status, headers, body = d.get("/healthz")
        assert (status, body) == (200, "ok\n"), (status, body)
        status, _, body = d.get("/readyz")
        assert (status, body) == (200, "ready\n"), (status, body)

        drive_traffic(d, folder)
        status, headers, text = d.get("/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
        checks = {
            ('fxd_requests_total', 'op="ping"'): 4,  # three over TCP, one over UDP
            ('fxd_requests_total', 'op="unknown"'): 1,
            ('fxd_request_duration_seconds_count', 'op="ping"'): 4,
            ('fxd_request_duration_seconds_count', 'op="upload"'): 1,
            ('fxd_request_duration_seconds_count', 'op="download"'): 1,
            ('fxd_upload_size_bytes_count', ''): 1,
            ('fxd_upload_size_bytes_bucket', 'le="262144"'): 1,
            ('fxd_upload_size_bytes_bucket', 'le="65536"'): 0,
            ('fxd_download_size_bytes_count', ''): 1,
            ('fxd_uploads_total', 'result="ok"'): 1,
            ('fxd_error_replies_total', 'code="unknown_op"'): 1,
            ('fxd_logins_total', 'result="ok"'): 1,
            ('fxd_users', ''): 1,
            ('fxd_ready', ''): 1,
            ('fxd_connections_open', 'transport="tcp"'): 0,
            ('fxd_udp_received_datagrams_total', ''): 1,
            ('fxd_build_info', 'version="%s"' % subprocess.run([fxd, "--version"], capture_output=True,
                                                               text=True).stdout.split()[1]): 1,
        }
        for (name, labels), want in checks.items():
            got = metric(text, name, labels)
            assert got == want, f"{name}{{{labels}}} is {got}, expected {want}"
        assert metric(text, "fxd_received_bytes_total") >= 100_000
        assert metric(text, "process_resident_memory_bytes") > 0
        assert metric(text, "process_open_fds") >= 3
        assert abs(metric(text, "process_start_time_seconds") - time.time()) < 3600

        # An upload cut off after 10 of its 1000 bytes is kept as a partial: its bytes are a gauge.
        with d.client() as c:
            c.login("ops", "correct horse")
            c.send_raw(fxclient.encode_header({"op": "upload", "id": 4, "name": "cut", "size": 1000}) + b"y" * 10)
            time.sleep(0.2)  # let the daemon take the bytes before the close
        wait_for("the partial upload's bytes in /metrics",
                 lambda: metric(d.get("/metrics")[2], "fxd_partial_upload_bytes") == 10)

        status, headers, page = d.get("/status")
        assert status == 200 and headers["Content-Type"].startswith("text/html"), headers
        assert "<canvas" in page and "status.json" in page and "http://" not in page and "https://" not in page
        status, _, body = d.get("/status.json")
        assert status == 200 and json.loads(body)["stats"]["requests"]["ping"] == 4, body
        assert d.get("/nope")[0] == 404
        assert d.get("/metrics", method="POST")[0] == 405
        status, headers, body = d.get("/metrics", method="HEAD")
        assert status == 200 and body == "" and int(headers["Content-Length"]) > 1000, headers

        # Keep-alive: several requests on one connection.
        conn = http.client.HTTPConnection("127.0.0.1", d.admin, timeout=DEADLINE)
        for _ in range(3):
            conn.request("GET", "/healthz")
            assert conn.getresponse().read() == b"ok\n"
        conn.close()

        # A header past 8 KiB gets no answer: the connection is closed.
        with socket.create_connection(("127.0.0.1", d.admin), timeout=DEADLINE) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
            assert closed_unanswered(s), "an oversized header was answered"

        # The connection cap: 32 idle connections are held, one more is closed at once.
        idle = [socket.create_connection(("127.0.0.1", d.admin), timeout=DEADLINE) for _ in range(32)]
        time.sleep(0.3)  # let the daemon accept them all
        with socket.create_connection(("127.0.0.1", d.admin), timeout=DEADLINE) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
            assert closed_unanswered(extra), "a connection past the cap was served"
        for s in idle:
            s.close()

        def healthy():
            try:
                return d.get("/healthz")[0] == 200
            except ConnectionError:
                return False  # the closed ones are not all noticed yet

        wait_for("the admin listener serving again", healthy)

        # Storage gone: not ready, with the reason; back: ready.
        moved = d.storage + ".away"
        os.rename(d.storage, moved)
        status, _, body = d.get("/readyz")
        assert status == 503 and "storage" in body, (status, body)
        assert metric(d.get("/metrics")[2], "fxd_ready") == 0
        os.rename(moved, d.storage)
        assert d.get("/readyz")[0] == 200

        # Draining: an upload in flight keeps the daemon up after SIGTERM; /readyz says why it is not ready.
        c = d.client()
        c.login("ops", "correct horse")
        c.send_raw(fxclient.encode_header({"op": "upload", "id": 5, "name": "slow", "size": 1000}) + b"x" * 10)
        wait_for("the upload in flight", lambda: json.loads(d.get("/status.json")[2])["in_flight"] == 1)
        d.proc.send_signal(signal.SIGTERM)

        def drain_reported():
            status, _, body = d.get("/readyz")
            return body if status == 503 else None

        body = wait_for("/readyz to report the drain", drain_reported)
        assert "draining" in body, body
        assert d.get("/healthz")[0] == 200  # still turning
        c.close()
        assert d.proc.wait(DEADLINE) == 0
    finally:
        d.stop()

    # admin.enabled=false: no listener, no admin= in --print-ports.
    off_folder = os.path.join(folder, "off")
    os.makedirs(off_folder)
    off = Daemon(fxd, off_folder, sets=["admin.enabled=false"])
    try:
        assert off.admin is None and "admin" not in off.ports, off.ports
    finally:
        off.stop()
    print("endpoints: healthz, readyz (ready, storage gone, draining), metrics after traffic, status, bounds: ok")


def case_tls(fxd, folder, _out):
    openssl = need("openssl")
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=60)
    d = Daemon(fxd, folder, sets=[f"tls.cert={cert}", f"tls.key={key}", "tls.port=0"])
    try:
        context = ssl.create_default_context(cafile=cert)
        context.check_hostname = False
        with socket.create_connection(("127.0.0.1", int(d.ports["tls"])), timeout=DEADLINE) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(fxclient.encode_frame({"op": "ping", "id": 1}))
                reply, _ = fxclient.read_reply(tls)
                assert reply.get("status") == "ok", reply
                text = d.get("/metrics")[2]
                assert metric(text, "fxd_connections_open", 'transport="tls"') == 1
                assert metric(text, "fxd_connections_open", 'transport="tcp"') == 0
        text = d.get("/metrics")[2]
        assert metric(text, "fxd_tls_handshakes_total", 'result="ok"') == 1
        assert metric(text, "fxd_tls_handshake_duration_seconds_count") == 1
        assert metric(text, "fxd_tls_handshake_duration_seconds_sum") > 0
    finally:
        d.stop()
    print("tls: the handshake and the TLS connection in /metrics")


def case_promtool(fxd, folder, _out):
    promtool = need("promtool")
    d = Daemon(fxd, folder)
    try:
        drive_traffic(d, folder)
        _, _, text = d.get("/metrics")
    finally:
        d.stop()
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", \
        f"promtool check metrics: status {r.returncode}\n{r.stdout}\n{r.stderr}"
    print(f"promtool check metrics: clean ({len(text.splitlines())} lines)")


def case_prometheus(fxd, folder, _out):
    prometheus = need("prometheus")
    d = Daemon(fxd, folder)
    port = free_port()
    config = os.path.join(folder, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: fxd\n    static_configs:\n"
                f"      - targets: ['127.0.0.1:{d.admin}']\n")
    log = open(os.path.join(folder, "prometheus.log"), "wb")
    prom = subprocess.Popen([prometheus, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                             f"--storage.tsdb.path={os.path.join(folder, 'tsdb')}"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        pings = 7
        with d.client() as c:
            for _ in range(pings):
                c.ping()

        def query():
            if prom.poll() is not None:
                raise AssertionError(f"prometheus exited with {prom.returncode}")
            url = (f"http://127.0.0.1:{port}/api/v1/query?query="
                   + urllib.request.quote('fxd_requests_total{op="ping",job="fxd"}'))
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    answer = json.load(r)
            except OSError:
                return None  # not listening yet
            results = answer.get("data", {}).get("result", [])
            return results[0]["value"][1] if results and results[0]["value"][1] == str(pings) else None

        value = wait_for("Prometheus to hold the pings fxd counted", query, deadline=60)
        up = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query=up", timeout=5).read().decode()
        assert '"value":[' in up and '"1"]' in up, up
        print(f"prometheus (127.0.0.1:{port}) scraped fxd: fxd_requests_total{{op=\"ping\"}} = {value}")
    finally:
        prom.send_signal(signal.SIGTERM)
        try:
            prom.wait(30)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        log.close()
        d.stop()


def case_chromium(fxd, folder, out):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise Skip("chromium is not installed")
    d = Daemon(fxd, folder)
    try:
        drive_traffic(d, folder)
        url = f"http://127.0.0.1:{d.admin}/status"
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--window-size=1100,1250"]

        def run(extra, page_seconds):
            # The page's own time (its 2 s polls) runs ahead of the clock for page_seconds before the output.
            profile = tempfile.mkdtemp(prefix="chromium-", dir=folder)
            return subprocess.run([chromium, *flags, f"--virtual-time-budget={page_seconds * 1000}",
                                   f"--user-data-dir={profile}", *extra, url],
                                  capture_output=True, text=True, timeout=120)

        dom = run(["--dump-dom"], 5)
        assert dom.returncode == 0, dom.stderr[-3000:]
        console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert not console, "console messages:\n" + "\n".join(console)
        html = dom.stdout
        assert re.search(r'id="state" class="state">serving<', html), "the page does not say serving"
        row = re.search(r"<tr><td>ping</td><td>(\d+)</td>", html)
        assert row and int(row.group(1)) >= 4, "the ops table lacks the pings"

        os.makedirs(out, exist_ok=True)
        png = os.path.join(out, "status_page.png")
        # Pings and echoes while the screenshot's page polls, so its rates and chart have something to show.
        stop = threading.Event()

        def traffic():
            with d.client() as c:
                while not stop.is_set():
                    c.ping()
                    c.echo(b"status page")
                    time.sleep(0.005)

        driver = threading.Thread(target=traffic)
        driver.start()
        try:
            shot = run([f"--screenshot={png}"], 9)
        finally:
            stop.set()
            driver.join()
        assert shot.returncode == 0 and os.path.getsize(png) > 10_000, shot.stderr[-3000:]
        console = [line for line in shot.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert not console, "console messages:\n" + "\n".join(console)
        print(f"chromium: /status rendered without console errors; screenshot {png}")
    finally:
        d.stop()


def case_journal(fxd, folder, _out):
    log_path = os.path.join(folder, "fxd.log")
    open(log_path, "wb").close()
    st = os.stat(log_path)
    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    d = Daemon(fxd, folder, sets=["log.level=debug"], env=env)
    d.stop()
    lines = [line for line in d.log().splitlines() if line]
    assert lines and all(re.match(r"<[2-7]>", line) for line in lines), lines
    assert any(line.startswith("<6>fxd ") and "listening" in line for line in lines), lines
    assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", line) for line in lines), lines

    # The same variable, but stderr is another file (a child's redirection): unchanged text lines.
    other = os.path.join(folder, "other")
    os.makedirs(other)
    d = Daemon(fxd, other, env=env)
    d.stop()
    lines = [line for line in d.log().splitlines() if line]
    assert lines and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \w+ ", line) for line in lines), lines
    print("journal: priority prefixes under JOURNAL_STREAM, plain lines elsewhere")


CASES = {"endpoints": case_endpoints, "tls": case_tls, "promtool": case_promtool, "prometheus": case_prometheus,
         "chromium": case_chromium, "journal": case_journal}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in CASES:
        print(f"usage: {sys.argv[0]} {'|'.join(CASES)} FXD [OUT_DIR]", file=sys.stderr)
        return 2
    case, fxd = sys.argv[1], os.path.abspath(sys.argv[2])
    out = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else os.getcwd()
    with tempfile.TemporaryDirectory(prefix=f"fxd-ops-{case}-") as folder:
        try:
            CASES[case](fxd, folder, out)
        except (AssertionError, OSError):
            for log in ("fxd.log", "prometheus.log"):
                path = os.path.join(folder, log)
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        print(f"---- {log} (last 4000 characters)\n{f.read()[-4000:]}")
            raise
        except Skip as e:
            print(f"skipped: {e}")
            return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
