#!/usr/bin/env python3
"""Several fxd instances as one service: one PostgreSQL server (started by
scripts/lib/postgres.sh, Debian's postgresql-15 binaries) and one storage
folder shared by every instance.

    cluster_test.py CASE FXD_BINARY

Cases: accounts, resume, race, delete, backoff, outage, kill9, import,
balancer. Exit status 0 pass, 1 fail, 77 skipped (PostgreSQL 15 or HAProxy
not installed). Every wait has a deadline; nothing asserts a time.
"""

import glob
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))
from harness import (DEADLINE, PASSWORD, ROOT, Daemon, FxClient, FxError, Skip, header_frame,  # noqa: E402
                     expect_error, run_main, wait_for)

POSTGRES_SH = os.path.join(ROOT, "scripts", "lib", "postgres.sh")
HAPROXY_SH = os.path.join(ROOT, "scripts", "lib", "haproxy.sh")
MIB = 1 << 20


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Postgres:
    """A private PostgreSQL server in a folder the postgres account can reach."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fxd-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.url = self._script("start")

    def _script(self, command):
        r = subprocess.run([POSTGRES_SH, command, self.dir], capture_output=True, text=True, timeout=DEADLINE)
        if r.returncode == 77:
            raise Skip("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
        if r.returncode != 0:
            raise AssertionError(f"postgres.sh {command} failed: {r.stderr}")
        return r.stdout.strip()

    def stop(self):
        self._script("stop")

    def start(self):
        self._script("start")

    def wipe(self):
        subprocess.run([POSTGRES_SH, "wipe", self.dir], capture_output=True, timeout=DEADLINE)


class Cluster:
    """count fxd instances on one PostgreSQL and one storage folder."""

    def __init__(self, fxd, count=2, sets=()):
        self.work = tempfile.mkdtemp(prefix="fxd-cluster-")
        self.storage = os.path.join(self.work, "storage")
        os.mkdir(self.storage, 0o700)
        self.pg = Postgres()
        # The URL comes from the environment, as an operator keeps it out of the config file.
        os.environ["FXD_DATABASE_URL"] = self.pg.url
        self.fxd = fxd
        common = ["database.sweep_interval_s=0.3", "database.connect_timeout_s=2", *sets]
        self.nodes = [Daemon(fxd, self.storage, os.path.join(self.work, f"fxd{i}.log"), common) for i in range(count)]
        for node in self.nodes:
            node.start()

    def client(self, index, user="alice"):
        c = FxClient(port=self.nodes[index].tcp, timeout=DEADLINE)
        if user:
            c.login(user, PASSWORD)
        return c

    def fxd_command(self, *args, password=None):
        return subprocess.run([self.fxd, "--set", f"storage.dir={self.storage}", *args], capture_output=True,
                              text=True, input=password, timeout=DEADLINE)

    def blob_sizes(self, user):
        """Sizes of the user's temporary upload files in the shared folder."""
        return sorted(os.path.getsize(p) for p in glob.glob(os.path.join(self.storage, "users", user, ".blob-*")))

    def close(self):
        for node in self.nodes:
            if node.alive():
                node.kill()
        self.pg.wipe()
        shutil.rmtree(self.work, ignore_errors=True)


def with_cluster(fxd, body, count=2, sets=(), register=("alice",)):
    cluster = Cluster(fxd, count, sets)
    try:
        for user in register:
            with cluster.client(0, user=None) as c:
                c.register(user, PASSWORD)
        body(cluster)
    except AssertionError:
        for node in cluster.nodes:
            print(f"--- log of instance on port {node.tcp} ---\n{node.log()[-3000:]}")
        raise
    finally:
        cluster.close()


def readyz(node):
    """The admin listener's /readyz: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", node.admin, timeout=DEADLINE)
    try:
        conn.request("GET", "/readyz")
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def resume_partial(client, work, name, data, at_most):
    """Waits until client's instance sees a partial of name (at most `at_most`
    bytes), then resumes the upload of data from there; returns the partial."""
    held = wait_for(f"a partial of {name}", lambda: (client.stat(name) or {}).get("partial", 0))
    assert 0 < held <= at_most, held
    done = client.upload(write_file(os.path.join(work, name), data))
    assert done["resumed_from"] == held and done["sha256"] == sha256(data), done
    return held


def cut_upload(client, name, data, sent):
    """Starts an upload of data as name, sends only its first `sent` bytes, then hangs up."""
    client.send_raw(header_frame({"op": "upload", "id": 900, "name": name, "size": len(data),
                                  "sha256": sha256(data)}) + data[:sent])
    client.close()


# -- cases --------------------------------------------------------------------

def case_accounts(fxd):
    def body(cluster):
        # Made on one instance, known on the other, and to the command line.
        with cluster.client(1) as c:
            assert c.whoami() == "alice"
        users = cluster.fxd_command("user", "list")
        assert users.returncode == 0 and users.stdout.split() == ["alice"], users
        # A password changed by the operator ends logins on every instance.
        on_a, on_b = cluster.client(0), cluster.client(1)
        assert on_a.list() == [] and on_b.list() == []
        # A remembered login made on one instance logs in on the other.
        with cluster.client(0, user=None) as c:
            token = c.request("login", user="alice", password=PASSWORD, remember=True)[0]["token"]
        with FxClient(port=cluster.nodes[1].tcp, timeout=DEADLINE) as c:
            assert c.request("login", user="alice", token=token)[0]["user"] == "alice"
        changed = cluster.fxd_command("user", "passwd", "alice", password="a-new-password\n")
        assert changed.returncode == 0, changed
        expect_error("unauthorized", on_a.list)
        expect_error("unauthorized", on_b.list)
        on_a.close()
        on_b.close()
        with FxClient(port=cluster.nodes[1].tcp, timeout=DEADLINE) as c:
            # The token was revoked with the password.
            expect_error("bad_credentials", lambda: c.request("login", user="alice", token=token))
            c.login("alice", "a-new-password")
        status = cluster.fxd_command("db", "status")
        assert status.returncode == 0 and "users: 1" in status.stdout and "***" in status.stdout, status
        assert cluster.pg.url.split(":")[2].split("@")[0] not in status.stdout, "the password was printed"
    with_cluster(fxd, body)


def case_resume(fxd):
    def body(cluster):
        data = os.urandom(6 * MIB + 123)
        cut_upload(cluster.client(0), "big.bin", data, 2 * MIB)
        with cluster.client(1) as c:
            resume_partial(c, cluster.work, "big.bin", data, 2 * MIB)
        with cluster.client(0) as c:
            info = c.stat("big.bin")
            assert info["exists"] and info["sha256"] == sha256(data) and info["partial"] == 0, info
            c.download("big.bin", os.path.join(cluster.work, "back.bin"))
        with open(os.path.join(cluster.work, "back.bin"), "rb") as f:
            assert f.read() == data
    with_cluster(fxd, body)


def case_race(fxd):
    def body(cluster):
        versions = [os.urandom(8 * MIB) for _ in range(4)]
        paths = []
        for i, data in enumerate(versions):
            paths.append(write_file(os.path.join(cluster.work, f"v{i}"), data))
        results = [None] * len(versions)

        def send(i):
            try:
                with cluster.client(i % 2) as c:
                    results[i] = c.upload(paths[i], name="same.bin", resume=False)
            except FxError as e:
                results[i] = e

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(versions))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
        assert any(isinstance(r, dict) for r in results), results
        with cluster.client(1) as c:
            info = c.stat("same.bin")
            winners = [i for i, data in enumerate(versions) if sha256(data) == info["sha256"]]
            assert len(winners) == 1 and info["size"] == 8 * MIB, (info, results)
            out = os.path.join(cluster.work, "got")
            c.download("same.bin", out)
        with open(out, "rb") as f:
            assert f.read() == versions[winners[0]], "the bytes are not one whole version"
        assert os.listdir(os.path.join(cluster.storage, "users", "alice")) == ["same.bin"]
    with_cluster(fxd, body)


def case_delete(fxd):
    def body(cluster):
        path = write_file(os.path.join(cluster.work, "doomed.txt"), b"short-lived\n")
        with cluster.client(0) as a, cluster.client(1) as b:
            a.upload(path)
            assert [f["name"] for f in b.list()] == ["doomed.txt"]
            b.delete("doomed.txt")
            assert a.stat("doomed.txt") is None and a.list() == []
            expect_error("not_found", a.download, "doomed.txt", os.path.join(cluster.work, "x"))
    with_cluster(fxd, body)


def case_backoff(fxd):
    def body(cluster):
        # Three failures spread over two instances use up the pair's allowance on both.
        for i in range(3):
            with FxClient(port=cluster.nodes[i % 2].tcp, timeout=DEADLINE) as c:
                expect_error("bad_credentials", c.login, "alice", "wrong-password")
        for node in cluster.nodes:
            with FxClient(port=node.tcp, timeout=DEADLINE) as c:
                expect_error("rate_limited", c.login, "alice", PASSWORD)
        # Registrations per address are shared the same way.
        made = 0
        for i in range(4):
            with FxClient(port=cluster.nodes[i % 2].tcp, timeout=DEADLINE) as c:
                try:
                    c.register(f"user{i}", PASSWORD)
                    made += 1
                except FxError as e:
                    assert e.code == "rate_limited", e
        assert made == 2, made
    with_cluster(fxd, body, sets=["auth.max_failures=3", "auth.lockout_s=600", "auth.max_registrations_per_address=3"])


def case_outage(fxd):
    def body(cluster):
        data = os.urandom(4 * MIB)
        # An upload in flight when the database goes away.
        flying = cluster.client(0)
        flying.send_raw(header_frame({"op": "upload", "id": 7, "name": "flight.bin", "size": len(data),
                                      "sha256": sha256(data)}) + data[:MIB])
        wait_for("the upload's first MiB stored", lambda: cluster.blob_sizes("alice") == [MIB])
        cluster.pg.stop()
        flying.send_raw(data[MIB:])
        reply, _ = flying.read_reply()
        assert reply["status"] == "error" and reply["code"] == "unavailable", reply
        with FxClient(port=cluster.nodes[1].tcp, timeout=DEADLINE) as c:
            expect_error("unavailable", c.login, "alice", PASSWORD)
            assert c.echo(b"still here") == b"STILL HERE"
        # Probes see it too: not ready, and why.
        status, body = readyz(cluster.nodes[1])
        assert status == 503 and "database" in body, (status, body)
        # The connection that got `unavailable` is still usable.
        flying.ping()
        cluster.pg.start()

        def logged_in_again():
            # Each instance may still be waiting out its reconnect backoff (up to 5 s).
            try:
                return cluster.client(1)
            except FxError as e:
                assert e.code == "unavailable", e
                return None
        wait_for("/readyz ready again", lambda: readyz(cluster.nodes[1])[0] == 200)
        with wait_for("a login once the database is back", logged_in_again) as c:
            def settled():
                info = c.stat("flight.bin")
                return info and (info["exists"] or info["partial"] == len(data))
            wait_for("the interrupted upload kept once the database is back", settled)
            path = write_file(os.path.join(cluster.work, "flight.bin"), data)
            done = c.upload(path)
            assert done["sha256"] == sha256(data), done
            out = os.path.join(cluster.work, "flight.back")
            c.download("flight.bin", out)
        with open(out, "rb") as f:
            assert f.read() == data
        flying.close()
    with_cluster(fxd, body)


def case_kill9(fxd):
    def body(cluster):
        data = os.urandom(5 * MIB)
        victim = cluster.client(0)
        victim.send_raw(header_frame({"op": "upload", "id": 3, "name": "orphan.bin", "size": len(data),
                                      "sha256": sha256(data)}) + data[:3 * MIB])
        with cluster.client(1) as c:
            wait_for("the bytes sent stored", lambda: cluster.blob_sizes("alice") == [3 * MIB])
            cluster.nodes[0].kill9()
            # The dead instance's upload becomes a partial the other one resumes.
            resume_partial(c, cluster.work, "orphan.bin", data, 3 * MIB)
        victim.close()
        assert "kept" in cluster.nodes[1].log() and "as a partial" in cluster.nodes[1].log()
    with_cluster(fxd, body)


def case_import(fxd):
    """A single-host install moves into PostgreSQL with its users, files and partials."""
    work = tempfile.mkdtemp(prefix="fxd-import-")
    storage = os.path.join(work, "storage")
    os.mkdir(storage, 0o700)
    saved = os.environ.pop("FXD_DATABASE_URL", None)
    single = Daemon(fxd, storage, os.path.join(work, "single.log"))
    pg = None
    try:
        single.start()
        data = os.urandom(3 * MIB)
        with FxClient(port=single.tcp, timeout=DEADLINE) as c:
            c.register("alice", PASSWORD)
            c.login("alice", PASSWORD)
            path = write_file(os.path.join(work, "kept.bin"), b"kept across the move\n")
            c.upload(path)
        c = FxClient(port=single.tcp, timeout=DEADLINE)
        c.login("alice", PASSWORD)
        cut_upload(c, "half.bin", data, MIB)
        with FxClient(port=single.tcp, timeout=DEADLINE) as c:
            c.login("alice", PASSWORD)
            wait_for("the partial", lambda: (c.stat("half.bin") or {}).get("partial", 0) == MIB)
        single.stop()

        pg = Postgres()
        imported = subprocess.run([fxd, "--set", f"storage.dir={storage}", "db", "import-sqlite",
                                   os.path.join(storage, "fxd.db")], capture_output=True, text=True,
                                  timeout=DEADLINE, env=dict(os.environ, FXD_DATABASE_URL=pg.url))
        assert imported.returncode == 0 and "imported 1 user(s), 1 file(s) and 1 partial" in imported.stdout, imported
        again = subprocess.run([fxd, "--set", f"storage.dir={storage}", "db", "import-sqlite",
                                os.path.join(storage, "fxd.db")], capture_output=True, text=True,
                               timeout=DEADLINE, env=dict(os.environ, FXD_DATABASE_URL=pg.url))
        assert again.returncode == 1 and "only fills an empty database" in again.stderr, again

        os.environ["FXD_DATABASE_URL"] = pg.url
        moved = Daemon(fxd, storage, os.path.join(work, "moved.log")).start()
        with FxClient(port=moved.tcp, timeout=DEADLINE) as c:
            c.login("alice", PASSWORD)  # the password hash came along
            assert c.stat("kept.bin")["exists"]
            assert c.stat("half.bin")["partial"] == MIB
            path = write_file(os.path.join(work, "half.bin"), data)
            assert c.upload(path)["resumed_from"] == MIB
        moved.stop()
    finally:
        if single.alive():
            single.kill()
        if pg:
            pg.wipe()
        if saved is not None:
            os.environ["FXD_DATABASE_URL"] = saved
        shutil.rmtree(work, ignore_errors=True)


class FromAddress(FxClient):
    """A client whose connections come from a chosen loopback address."""

    source = "127.0.0.2"

    def _connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout,
                                        source_address=(self.source, 0))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._broken = False


def case_balancer(fxd):
    """Three instances behind HAProxy (round robin, PROXY protocol v2)."""
    if not os.path.exists(HAPROXY_SH):
        raise Skip("scripts/lib/haproxy.sh is not part of this tree")

    def body(cluster):
        work = os.path.join(cluster.work, "haproxy")
        os.mkdir(work)
        backends = [f"127.0.0.1:{node.tcp}" for node in cluster.nodes]
        started = subprocess.run([HAPROXY_SH, "start", "--dir", work, "--proxy", "v2", *backends],
                                 capture_output=True, text=True, timeout=DEADLINE)
        if started.returncode == 77:
            raise Skip("haproxy is not installed")
        assert started.returncode == 0, started
        port = int(started.stdout.split()[-1])
        try:
            data = os.urandom(2 * MIB)
            path = write_file(os.path.join(cluster.work, "through.bin"), data)
            # Each connection may land on another instance; the service is one.
            with FromAddress(port=port, timeout=DEADLINE) as c:
                c.register("alice", PASSWORD)
            cut = FromAddress(port=port, timeout=DEADLINE)
            cut.login("alice", PASSWORD)
            cut_upload(cut, "through.bin", data, MIB)
            for _ in range(3):
                with FromAddress(port=port, timeout=DEADLINE) as c:
                    c.login("alice", PASSWORD)
                    done = c.upload(path)
                    assert done["sha256"] == sha256(data), done
            for _ in range(3):
                with FromAddress(port=port, timeout=DEADLINE) as c:
                    c.login("alice", PASSWORD)
                    assert c.stat("through.bin")["sha256"] == sha256(data)
            served = [node.log().count('login: user="alice"') for node in cluster.nodes]
            assert all(n >= 1 for n in served), served
            # Behind the balancer each instance sees the client's own address
            # (127.0.0.2), not the balancer's (127.0.0.1).
            for node in cluster.nodes:
                assert 'login: user="alice" addr=127.0.0.2' in node.log(), node.log()[-2000:]
                assert 'addr=127.0.0.1' not in node.log(), node.log()[-2000:]
        finally:
            subprocess.run([HAPROXY_SH, "stop", "--dir", work], capture_output=True, timeout=DEADLINE)
    # Every connection from 127.0.0.1 (the balancer's) must begin with a PROXY header.
    with_cluster(fxd, body, count=3, sets=["proxy.trusted=127.0.0.1/32"], register=())


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in CASES:
        print(f"usage: cluster_test.py {{{','.join(CASES)}}} FXD_BINARY", file=sys.stderr)
        return 2
    case, fxd = sys.argv[1], sys.argv[2]
    return run_main(lambda: CASES[case](fxd))


if __name__ == "__main__":
    sys.exit(main())
