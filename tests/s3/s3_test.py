#!/usr/bin/env python3
"""fxd with storage.backend "s3" against a real S3 server: Ceph's RADOS
Gateway started for this run by scripts/lib/ceph-s3.sh, and for the cases with
several instances a private PostgreSQL (scripts/lib/postgres.sh).

    s3_test.py CASE FXD_BINARY [local]

Cases: roundtrip, replace, resume_other_instance, kill9, race, mismatch,
outage, sweep, tls, credentials. The bucket is looked into behind fxd's back with
s3_direct.py (a client of its own, sharing no code with fxd's). With `local`,
the first six run on the local backend instead (no gateway; instances share
one storage folder), so that both backends answer the client alike; only the
partial differs: every byte received locally, whole parts on S3. Exit status 0
pass, 1 fail, 77 skipped (the ceph packages or PostgreSQL 15 missing). Every
wait has a deadline; nothing asserts a time.
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fault"))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
from harness import (DEADLINE, PASSWORD, ROOT, Daemon, FxClient, FxError, Skip, header_frame,  # noqa: E402
                     expect_error, run_main, sha256, wait_for)
from cluster_test import Postgres, readyz, write_file  # noqa: E402
from s3_direct import S3Direct  # noqa: E402

CEPH_S3_SH = os.path.join(ROOT, "scripts", "lib", "ceph-s3.sh")
MIB = 1 << 20
PART = 5 * MIB  # s3.part_bytes in every case: the smallest S3 allows
BUCKET = "fxd-test"
PREFIX = "run/"  # s3.prefix: what fxd writes lives under it, what the tests plant outside must stay
BLOB_KEY = re.compile(r"^run/blobs/[0-9a-f]{32}$")
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_SHARED_CREDENTIALS_FILE")


class Gateway:
    """A private Ceph cluster with the S3 gateway, in a folder of its own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fxd-ceph-", dir="/tmp")
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise

    def _script(self, command):
        r = subprocess.run([CEPH_S3_SH, command, self.dir], capture_output=True, text=True, timeout=300)
        if r.returncode == 77:
            raise Skip("the ceph packages are not installed (scripts/setup.sh --test)")
        if r.returncode != 0:
            raise AssertionError(f"ceph-s3.sh {command} failed ({r.returncode}): {r.stderr[-3000:]}")
        return r.stdout

    def start(self):
        self.env = dict(line.split("=", 1) for line in self._script("start").split())

    def kill(self):
        """Every Ceph daemon SIGKILLed at once: the store dies mid-request."""
        self._script("kill")

    def signal_gateway(self, signo):
        """Sends signo to radosgw alone (SIGSTOP: a store that accepts and never answers)."""
        with open(os.path.join(self.dir, "run", "rgw.a.started-pid")) as f:
            pid = int(f.read())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert b"radosgw" in f.read(), "the gateway's pid file names another process"
        os.kill(pid, signo)

    def destroy(self):
        subprocess.run([CEPH_S3_SH, "destroy", self.dir], capture_output=True, timeout=300)
        shutil.rmtree(self.dir, ignore_errors=True)

    def direct(self, tls=False):
        return S3Direct(self.env["S3_TLS_ENDPOINT" if tls else "S3_ENDPOINT"], BUCKET, self.env["S3_ACCESS_KEY"],
                        self.env["S3_SECRET_KEY"], self.env["S3_REGION"],
                        ca_file=self.env["S3_CA_FILE"] if tls else None)


class Setup:
    """One gateway and bucket; fxd instances on it (SQLite, or with `postgres`
    one PostgreSQL they all share); the work folder; cleanup of all of it.
    With backend "local": no gateway (s3 is None), one storage folder shared."""

    def __init__(self, fxd, postgres=False, backend="s3"):
        self.fxd = fxd
        self.backend = backend
        self.work = tempfile.mkdtemp(prefix="fxd-s3-")
        self.nodes = []
        self.pg = None
        self.gateway = None
        self.s3 = None
        self.saved_env = {k: os.environ.get(k) for k in AWS_VARIABLES + ("FXD_DATABASE_URL", "HOME")}
        try:
            if backend == "s3":
                self.gateway = Gateway()
                self.s3 = self.gateway.direct()
                self.s3.create_bucket()  # fxd does not create it
            if postgres:
                self.pg = Postgres()
                os.environ["FXD_DATABASE_URL"] = self.pg.url
            else:
                os.environ.pop("FXD_DATABASE_URL", None)
            if self.gateway:
                self.use_credentials(self.gateway.env["S3_ACCESS_KEY"], self.gateway.env["S3_SECRET_KEY"])
        except BaseException:
            self.close()
            raise

    @staticmethod
    def use_credentials(access, secret):
        """The keys fxd will find in its environment (None: no AWS_* variable at all)."""
        for name in AWS_VARIABLES:
            os.environ.pop(name, None)
        if access is not None:
            os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = access, secret

    def s3_sets(self, endpoint=None, extra=()):
        if self.backend == "local":
            return ["database.sweep_interval_s=0.3", *extra]
        env = self.gateway.env
        return ["storage.backend=s3", f"s3.endpoint={endpoint or env['S3_ENDPOINT']}", f"s3.bucket={BUCKET}",
                f"s3.region={env['S3_REGION']}", f"s3.prefix={PREFIX}", f"s3.part_bytes={PART}",
                "database.sweep_interval_s=0.3", *extra]

    def instance(self, extra=(), endpoint=None, start=True):
        """A new fxd on the gateway; each has a storage folder of its own (SQLite
        lives there when there is no PostgreSQL: the bytes are in the bucket).
        On the local backend they share one, as a cluster must."""
        index = len(self.nodes)
        storage = os.path.join(self.work, "storage" if self.backend == "local" else f"storage{index}")
        os.makedirs(storage, 0o700, exist_ok=True)
        node = Daemon(self.fxd, storage, os.path.join(self.work, f"fxd{index}.log"), self.s3_sets(endpoint, extra))
        self.nodes.append(node)
        return node.start() if start else node

    def client(self, node, user="alice"):
        c = FxClient(port=node.tcp, timeout=DEADLINE)
        if user:
            c.login(user, PASSWORD)
        return c

    def register(self, node, user="alice"):
        with self.client(node, user=None) as c:
            c.register(user, PASSWORD)

    def path(self, name, data):
        return write_file(os.path.join(self.work, name), data)

    def blobs(self):
        """{key: size} of fxd's objects in the bucket."""
        return self.s3.objects(PREFIX + "blobs/")

    def kept(self, sent):
        """What a cut upload keeps of `sent` bytes: whole parts on S3, every byte locally."""
        return sent // PART * PART if self.s3 else sent

    def wait_stored(self, sent):
        """Waits until an upload under way has stored what a cut would keep of `sent` bytes."""
        if self.s3:
            upload_in_bucket(self, sent // PART)
            return
        folder = os.path.join(self.work, "storage", "users", "alice")
        wait_for(f"{sent} bytes written", lambda: sent in [os.path.getsize(p)
                                                            for p in glob.glob(os.path.join(folder, ".blob-*"))])

    def check_bucket(self, sizes):
        """On S3: one object per file version of these sizes, named as docs/s3.md
        says, and no multipart upload left over."""
        if not self.s3:
            return
        wait_for("no multipart upload left", lambda: self.s3.uploads(PREFIX) == [])
        blobs = self.blobs()
        assert all(BLOB_KEY.match(k) for k in blobs), blobs
        assert sorted(blobs.values()) == sorted(sizes), blobs

    def close(self):
        for node in self.nodes:
            node.kill()
        if self.pg:
            self.pg.wipe()
        if self.gateway:
            self.gateway.destroy()
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.work, ignore_errors=True)


def with_setup(fxd, body, postgres=False, backend="s3"):
    setup = Setup(fxd, postgres, backend)
    try:
        body(setup)
    except Exception:
        for node in setup.nodes:
            print(f"--- log of fxd on port {node.tcp} ---\n{node.log(since_start=False)[-3000:]}")
        raise
    finally:
        setup.close()


# -- helpers on the wire --------------------------------------------------------

def download_at(client, name, offset):
    """A raw download from offset: (reply header, body)."""
    header, body = client.call("download", name=name, offset=offset)
    assert header["status"] == "ok", header
    return header, body


def downloaded(setup, client, name):
    out = os.path.join(setup.work, name + ".back")
    client.download(name, out, resume=False)
    with open(out, "rb") as f:
        data = f.read()
    os.remove(out)
    return data


def downloaded_or_none(setup, client, name):
    try:
        return downloaded(setup, client, name)
    except FxError as e:
        assert e.code == "storage_unavailable", e
        return None


def start_upload(client, name, data, sent, request_id=900):
    """Sends an upload's header and its first `sent` bytes, nothing more."""
    client.send_raw(header_frame({"op": "upload", "id": request_id, "name": name, "size": len(data),
                                  "sha256": sha256(data)}) + data[:sent])


def held_partial(client, name):
    info = client.stat(name)
    return info["partial"] if info else 0


def upload_in_bucket(setup, min_parts, known=()):
    """Waits for a multipart upload under the prefix, not one of `known`, with
    at least min_parts parts stored; returns (key, upload id)."""
    def found():
        for key, upload_id in setup.s3.uploads(PREFIX):
            if upload_id not in known and len(setup.s3.parts(key, upload_id)) >= min_parts:
                return key, upload_id
        return None
    return wait_for(f"a multipart upload with {min_parts} part(s) stored", found)


def resume(client, setup, name, data, expected_offset):
    done = client.upload(setup.path(name, data), name=name)
    assert done["resumed_from"] == expected_offset and done["sha256"] == sha256(data), done


def the_store_named(body):
    return any(word in body.lower() for word in ("s3", "object store", "bucket"))


# -- cases ----------------------------------------------------------------------

def case_roundtrip(fxd, backend="s3"):
    """Sizes around the part size, whole and ranged downloads, one object each."""
    def body(setup):
        # Uploads may be larger than 10000 parts here, so that S3's own limit is what refuses.
        node = setup.instance(extra=[f"limits.max_upload_bytes={20000 * PART}"])
        setup.register(node)
        files = {"empty.bin": b"", "small.bin": os.urandom(MIB + 7), "one_part.bin": os.urandom(PART),
                 "parts_and_tail.bin": os.urandom(3 * PART + 12345)}
        with setup.client(node) as c:
            for name, data in files.items():
                done = c.upload(setup.path(name, data))
                assert done["sha256"] == sha256(data) and done["resumed_from"] == 0, done
            assert {f["name"]: f["size"] for f in c.list()} == {n: len(d) for n, d in files.items()}
            for name, data in files.items():
                info = c.stat(name)
                assert info["exists"] and info["size"] == len(data) and info["sha256"] == sha256(data), info
                assert info["partial"] == 0, info
                assert downloaded(setup, c, name) == data, name
            big = files["parts_and_tail.bin"]
            # Inside a part, on a part boundary, inside the tail, at the very end.
            for offset in (1, PART - 1, PART, 2 * PART + 3, 3 * PART, 3 * PART + 12344, len(big)):
                header, got = download_at(c, "parts_and_tail.bin", offset)
                assert header["total"] == len(big) and header["sha256"] == sha256(big), header
                assert header["size"] == len(big) - offset and got == big[offset:], offset
            header, got = download_at(c, "small.bin", 100)
            assert got == files["small.bin"][100:]
            # Past the end is refused as for the local backend.
            bad, _ = c.call("download", name="small.bin", offset=MIB + 8)
            assert bad["status"] == "error" and bad["code"] == "bad_offset", bad
        if backend == "s3":
            # A size that needs more than the 10000 parts S3 takes: refused before
            # any byte moves; the daemon goes on serving.
            with setup.client(node) as probe:
                probe.send_raw(header_frame({"op": "upload", "id": 5, "name": "huge.bin", "size": 10000 * PART + 1}))
                refused, _ = probe.read_reply()
            assert refused["status"] == "error" and refused["code"] == "body_too_large", refused
            with setup.client(node) as c:
                assert c.stat("huge.bin") is None
        setup.check_bucket([len(d) for d in files.values()])
        # The catalog and the bucket outlive the process.
        node.stop()
        node.start()
        with setup.client(node) as c:
            for name, data in files.items():
                assert downloaded(setup, c, name) == data, name
    with_setup(fxd, body, backend=backend)


def case_replace(fxd, backend="s3"):
    """A new version is served at once; the old one's object goes; delete empties the bucket."""
    def body(setup):
        node = setup.instance()
        setup.register(node)
        old, new = os.urandom(PART + 5), os.urandom(2 * PART + 1)
        with setup.client(node) as c:
            c.upload(setup.path("doc.bin", old))
            old_keys = set(setup.blobs()) if setup.s3 else set()
            c.upload(setup.path("doc.bin", new))
            info = c.stat("doc.bin")
            assert info["sha256"] == sha256(new) and info["size"] == len(new), info
            assert downloaded(setup, c, "doc.bin") == new
            if setup.s3:
                assert len(old_keys) == 1, old_keys
                wait_for("the old version's object deleted", lambda: not old_keys & set(setup.blobs()))
                setup.check_bucket([len(new)])
            c.delete("doc.bin")
            # The catalog row goes at once ...
            assert c.stat("doc.bin") is None and c.list() == []
            expect_error("not_found", c.download, "doc.bin", os.path.join(setup.work, "gone"))
            # ... and the object after it.
            if setup.s3:
                wait_for("the deleted file's object gone", lambda: setup.blobs() == {})
        setup.check_bucket([])
    with_setup(fxd, body, backend=backend)


def case_resume_other_instance(fxd, backend="s3"):
    """Two instances, one PostgreSQL, one bucket: cut on A, whole parts seen and resumed on B."""
    def body(setup):
        a, b = setup.instance(), setup.instance()
        setup.register(a)
        data = os.urandom(3 * PART + 1000)
        sent = 2 * PART + MIB  # two whole parts and some of the third
        kept = setup.kept(sent)
        cut = setup.client(a)
        start_upload(cut, "big.bin", data, sent)
        setup.wait_stored(sent)
        cut.close()
        with setup.client(b) as c:
            wait_for(f"B to see a partial of {kept} bytes", lambda: held_partial(c, "big.bin") == kept)
            if kept != sent:
                # The bytes after the last whole part were not kept: resuming from where
                # the client stopped is refused and names what is held.
                # (The header alone: the refusal comes before the body, which would pass
                # limits.max_discard_bytes and end the connection.)
                with setup.client(b) as probe:
                    probe.send_raw(header_frame({"op": "upload", "id": 8, "name": "big.bin", "size": len(data),
                                                 "offset": sent, "sha256": sha256(data)}))
                    refused, _ = probe.read_reply()
                assert refused["status"] == "error" and refused["code"] == "bad_offset", refused
                assert refused["partial"] == kept, refused
            # The partial's offset with another size is not a resume of it: refused,
            # and the partial stays as it was.
            with setup.client(b) as probe:
                probe.send_raw(header_frame({"op": "upload", "id": 9, "name": "big.bin", "size": len(data) + 1,
                                             "offset": kept}))
                refused, _ = probe.read_reply()
            assert refused["status"] == "error" and refused["code"] == "bad_offset", refused
            assert refused["partial"] == kept, refused
            assert held_partial(c, "big.bin") == kept
            resume(c, setup, "big.bin", data, kept)
        with setup.client(a) as c:
            info = c.stat("big.bin")
            assert info["exists"] and info["sha256"] == sha256(data) and info["partial"] == 0, info
            assert downloaded(setup, c, "big.bin") == data
            header, got = download_at(c, "big.bin", kept - 10)
            assert got == data[kept - 10:], header
        setup.check_bucket([len(data)])
    with_setup(fxd, body, postgres=True, backend=backend)


def case_kill9(fxd, backend="s3"):
    """An instance killed mid-upload: its whole parts become a partial the other instance resumes."""
    def body(setup):
        a, b = setup.instance(), setup.instance()
        setup.register(a)
        data = os.urandom(3 * PART + 77)
        victim = setup.client(a)
        sent = 2 * PART + MIB
        start_upload(victim, "orphan.bin", data, sent)
        setup.wait_stored(sent)
        a.kill9()
        victim.close()
        with setup.client(b) as c:
            # B's sweep takes over the dead instance's upload. On S3 both parts are
            # in the bucket; the catalog may have recorded the second one or not
            # when the process died, so the partial is one or two whole parts.
            held = wait_for("B to keep the dead instance's upload as a partial", lambda: held_partial(c, "orphan.bin"))
            assert held in ((PART, 2 * PART) if setup.s3 else (sent,)), held
            resume(c, setup, "orphan.bin", data, held)
            assert downloaded(setup, c, "orphan.bin") == data
        setup.check_bucket([len(data)])
    with_setup(fxd, body, postgres=True, backend=backend)


def case_race(fxd, backend="s3"):
    """Four uploads of one name racing on two instances: one whole version, one object; a delete seen everywhere."""
    def body(setup):
        a, b = setup.instance(), setup.instance()
        setup.register(a)
        versions = [os.urandom(2 * PART + 1000 * i) for i in range(4)]
        paths = [setup.path(f"v{i}", data) for i, data in enumerate(versions)]
        results = [None] * len(versions)

        def send(i):
            try:
                with setup.client((a, b)[i % 2]) as c:
                    results[i] = c.upload(paths[i], name="same.bin", resume=False)
            except FxError as e:
                results[i] = e

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(versions))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
        assert any(isinstance(r, dict) for r in results), results
        print("note: outcomes", ["ok" if isinstance(r, dict) else getattr(r, "code", r) for r in results])
        with setup.client(b) as c:
            info = c.stat("same.bin")
            winners = [i for i, data in enumerate(versions) if sha256(data) == info["sha256"]]
            assert len(winners) == 1 and info["size"] == len(versions[winners[0]]), (info, results)
            assert downloaded(setup, c, "same.bin") == versions[winners[0]], "the bytes are not one whole version"
        # The losers' objects go (in the background): one object, of the winner's size.
        if setup.s3:
            wait_for("one object left", lambda: len(setup.blobs()) == 1)
        setup.check_bucket([len(versions[winners[0]])])
        with setup.client(a) as on_a, setup.client(b) as on_b:
            on_b.delete("same.bin")
            assert on_a.stat("same.bin") is None and on_a.list() == []
            expect_error("not_found", on_a.download, "same.bin", os.path.join(setup.work, "gone"))
        if setup.s3:
            wait_for("the deleted file's object gone", lambda: setup.blobs() == {})
    with_setup(fxd, body, postgres=True, backend=backend)


def case_mismatch(fxd, backend="s3"):
    """A wrong SHA-256 publishes nothing and leaves nothing in the bucket."""
    def body(setup):
        node = setup.instance()
        setup.register(node)
        with setup.client(node) as c:
            for name, data in (("small.bin", os.urandom(MIB)), ("parts.bin", os.urandom(2 * PART + 77))):
                e = expect_error("checksum_mismatch", c.upload, setup.path(name, data), name, False,
                                 None, sha256(b"other bytes"))
                assert e.header.get("code") == "checksum_mismatch"
                assert c.stat(name) is None, c.stat(name)
            c.ping()
            # A resume whose whole file does not match: the partial it continued goes too.
            data = os.urandom(2 * PART + 5)
            kept = setup.kept(PART + 100)
            cut = setup.client(node)
            start_upload(cut, "resumed.bin", data, PART + 100)
            setup.wait_stored(PART + 100)
            cut.close()
            wait_for(f"a partial of {kept} bytes", lambda: held_partial(c, "resumed.bin") == kept)
            wrong = bytearray(data)
            wrong[-1] ^= 1
            # (A resumed upload's "size" is the whole file's, not the body's: sent as it is.)
            c.send_raw(header_frame({"op": "upload", "id": 40, "name": "resumed.bin", "size": len(data),
                                     "offset": kept, "sha256": sha256(data)}) + bytes(wrong[kept:]))
            refused, _ = c.read_reply()
            assert refused["status"] == "error" and refused["code"] == "checksum_mismatch", refused
            assert c.stat("resumed.bin") is None
            assert c.list() == []
        setup.check_bucket([])
    with_setup(fxd, body, backend=backend)


def case_outage(fxd):
    """The gateway frozen (s3.request_timeout_s), then killed mid-upload and
    mid-download, then started again."""
    def body(setup):
        a, b = setup.instance(["s3.request_timeout_s=3"]), setup.instance(["s3.request_timeout_s=3"])
        setup.register(a)
        ready = os.urandom(PART + 1)
        large = os.urandom(48 * MIB + 3)  # more than every socket buffer between the gateway and the test
        flight = os.urandom(3 * PART + 500)
        with setup.client(a) as c:
            c.upload(setup.path("ready.bin", ready))
            c.upload(setup.path("large.bin", large))
            # A store that accepts and never answers: the request's deadline gives up.
            setup.gateway.signal_gateway(signal.SIGSTOP)
            try:
                expect_error("storage_unavailable", c.download, "ready.bin", os.path.join(setup.work, "x"))
                expect_error("storage_unavailable", c.upload, setup.path("stalled.bin", b"z" * 1000))
                c.ping()
            finally:
                setup.gateway.signal_gateway(signal.SIGCONT)
            assert c.stat("stalled.bin") is None
            wait_for("ready.bin served again", lambda: downloaded_or_none(setup, c, "ready.bin") == ready)
        done_uploads = {uid for _, uid in setup.s3.uploads(PREFIX)}
        # A download under way, read a little then left waiting ...
        reader = setup.client(a)
        rss_before = a.rss_kib()
        reader.send_raw(header_frame({"op": "download", "id": 5, "name": "large.bin"}))
        header = reader._read_header()
        assert header["status"] == "ok" and header["size"] == len(large), header
        first = reader._recv_exact(MIB)
        # A client that stops reading holds the store back (TCP), not fxd's memory:
        # a second lets a daemon that read ahead fill up (the gateway sends
        # hundreds of MiB/s), and it would then hold most of the 48 MiB object.
        time.sleep(1)
        grown = a.rss_kib() - rss_before
        assert grown < 24 * 1024, f"fxd grew by {grown} KiB while a client did not read a 48 MiB download"
        # ... and an upload with two whole parts stored.
        flying = setup.client(a)
        start_upload(flying, "flight.bin", flight, 2 * PART + MIB, request_id=7)
        upload_in_bucket(setup, 2, known=done_uploads)
        setup.gateway.kill()

        # The rest of the upload's body: the third part cannot be stored.
        sender_error = []

        def send_rest():
            try:
                flying.send_raw(flight[2 * PART + MIB:])
            except OSError as e:
                sender_error.append(e)
        sender = threading.Thread(target=send_rest)
        sender.start()
        reply, _ = flying.read_reply()
        sender.join(DEADLINE)
        assert reply["status"] == "error" and reply["code"] == "storage_unavailable", reply
        assert not sender_error, sender_error
        flying.ping()  # the connection is kept

        # The download in flight is cut: the connection closes before the last byte.
        got = len(first)
        reader._sock.settimeout(DEADLINE)
        try:
            while True:
                chunk = reader._sock.recv(1 << 16)
                if not chunk:
                    break
                got += len(chunk)
        except ConnectionResetError:
            pass  # a reset ends it as well as a close
        except TimeoutError:
            raise AssertionError(f"the download stalled after {got} bytes with the connection left open") from None
        assert got < len(large), "the whole object arrived although the gateway was killed mid-download"
        reader.close()

        with setup.client(a) as c:
            err = expect_error("storage_unavailable", c.download, "ready.bin", os.path.join(setup.work, "x"))
            assert err.header.get("code") == "storage_unavailable"
            c.ping()
            assert c.echo(b"still here") == b"STILL HERE"
            assert {f["name"] for f in c.list()} == {"ready.bin", "large.bin"}
            assert held_partial(c, "flight.bin") == 2 * PART
            counted = c.stats()["errors"]["by_code"].get("storage_unavailable", 0)
            assert counted >= 2, c.stats()["errors"]
        with setup.client(b) as c:
            assert held_partial(c, "flight.bin") == 2 * PART
        status, text = wait_for("/readyz to report the store", lambda: (lambda r: r[0] == 503 and r)(readyz(a)))
        assert the_store_named(text), text

        setup.gateway.start()
        wait_for("/readyz ready again", lambda: readyz(a)[0] == 200)
        with setup.client(b) as c:
            resume(c, setup, "flight.bin", flight, 2 * PART)
        with setup.client(a) as c:
            assert downloaded(setup, c, "flight.bin") == flight
            assert downloaded(setup, c, "ready.bin") == ready
            header, got = download_at(c, "large.bin", len(large) - PART - 1)
            assert got == large[-PART - 1:], header
        flying.close()
    with_setup(fxd, body, postgres=True)


def case_sweep(fxd):
    """Orphans under the prefix are swept after storage.partial_ttl_s; what is known or outside stays."""
    def body(setup):
        s3 = setup.s3
        orphan = PREFIX + "blobs/" + os.urandom(16).hex()
        foreign = PREFIX + "blobs/" + os.urandom(16).hex()
        s3.put_object(orphan, b"no catalog row names me")
        foreign_id = s3.create_upload(foreign)
        s3.upload_part(foreign, foreign_id, 1, b"a part nobody will finish")
        # Outside the prefix: another tenant's, never fxd's to touch.
        s3.put_object("elsewhere/keep.txt", b"not fxd's")
        outside_id = s3.create_upload("elsewhere/upload.bin")
        node = setup.instance(["storage.partial_ttl_s=2", "s3.request_timeout_s=2"])
        setup.register(node)
        kept = os.urandom(PART + 3)
        with setup.client(node) as c:
            c.upload(setup.path("kept.bin", kept))
            (kept_key,) = [k for k in setup.blobs() if k != orphan]
            # A partial left to expire: its multipart upload must be aborted with it.
            stale = os.urandom(2 * PART)
            cut = setup.client(node)
            start_upload(cut, "stale.bin", stale, PART + 100)
            _, stale_id = upload_in_bucket(setup, 1, known={foreign_id})
            cut.close()
            wait_for("the expired partial removed", lambda: c.stat("stale.bin") is None)
            wait_for("its multipart upload aborted",
                     lambda: stale_id not in {uid for _, uid in s3.uploads(PREFIX)})
            wait_for("the foreign multipart upload aborted",
                     lambda: foreign_id not in {uid for _, uid in s3.uploads(PREFIX)})
            wait_for("the orphan object deleted", lambda: orphan not in setup.blobs())
            # Published bytes are not orphans.
            assert set(setup.blobs()) == {kept_key}, setup.blobs()
            assert downloaded(setup, c, "kept.bin") == kept
            # A delete while the store does not answer: the row goes at once, the
            # object's delete fails in the background, and the sweep takes it later.
            c.upload(setup.path("doomed.bin", b"d" * 1000))
            (doomed_key,) = set(setup.blobs()) - {kept_key}
            setup.gateway.signal_gateway(signal.SIGSTOP)
            try:
                c.delete("doomed.bin")
                assert c.stat("doomed.bin") is None and [f["name"] for f in c.list()] == ["kept.bin"]
                node.wait_log("could not delete object")
            finally:
                setup.gateway.signal_gateway(signal.SIGCONT)
            wait_for("the deleted file's object swept", lambda: doomed_key not in setup.blobs())
            assert set(setup.blobs()) == {kept_key}, setup.blobs()
        assert s3.get_object("elsewhere/keep.txt") == b"not fxd's"
        assert ("elsewhere/upload.bin", outside_id) in s3.uploads("elsewhere/")
    with_setup(fxd, body)


def case_tls(fxd):
    """The gateway over https with its private CA in s3.ca_file; refused without it."""
    def body(setup):
        env = setup.gateway.env
        node = setup.instance([f"s3.ca_file={env['S3_CA_FILE']}"], endpoint=env["S3_TLS_ENDPOINT"])
        setup.register(node)
        data = os.urandom(2 * PART + 99)
        with setup.client(node) as c:
            c.upload(setup.path("secure.bin", data))
            assert downloaded(setup, c, "secure.bin") == data
            header, got = download_at(c, "secure.bin", PART + 1)
            assert got == data[PART + 1:], header
        assert list(setup.gateway.direct(tls=True).objects(PREFIX + "blobs/").values()) == [len(data)]

        # Without the CA the gateway's certificate is not trusted: the store is
        # unavailable (or fxd refuses to start), nothing is stored, nothing crashes.
        distrusting = setup.instance(endpoint=env["S3_TLS_ENDPOINT"], start=False)
        refused_at_start = start_or_exit_status(distrusting)
        print(f"note: without s3.ca_file fxd {'serves' if refused_at_start is None else 'exits'}")
        if refused_at_start is None:
            with setup.client(distrusting) as c:
                expect_error("storage_unavailable", c.upload, setup.path("plain.bin", b"x" * 1000))
                expect_error("storage_unavailable", c.download, "secure.bin", os.path.join(setup.work, "y"))
                c.ping()
            assert distrusting.alive()
            status, text = wait_for("/readyz to report the store",
                                    lambda: (lambda r: r[0] == 503 and r)(readyz(distrusting)))
            assert the_store_named(text), text
        else:
            assert refused_at_start > 0, f"fxd died by signal {-refused_at_start}"
        assert list(setup.blobs().values()) == [len(data)]
    with_setup(fxd, body, postgres=True)


def start_or_exit_status(node):
    """Starts node; None when it serves, else the exit status it stopped with."""
    try:
        node.start()
        return None
    except AssertionError:
        return node.proc.wait(DEADLINE)


def run_fxd(setup, extra, env_changes):
    """fxd started in the foreground with backend s3; (exit status, stderr). Killed if it starts serving."""
    storage = os.path.join(setup.work, "probe")
    os.makedirs(storage, 0o700, exist_ok=True)
    args = [setup.fxd, "--set", "tcp.port=0", "--set", "udp.port=0", "--set", "admin.port=0",
            "--set", f"storage.dir={storage}"]
    for pair in setup.s3_sets(extra=extra):
        args += ["--set", pair]
    env = dict(os.environ)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    try:
        r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=20)
        return r.returncode, r.stderr
    except subprocess.TimeoutExpired as e:
        return None, (e.stderr or b"").decode(errors="replace")


def case_credentials(fxd):
    """Credentials missing (exit 2, named), from a shared-credentials file and profile, and wrong; no bucket."""
    def body(setup):
        env = setup.gateway.env
        home = os.path.join(setup.work, "home")  # no ~/.aws/credentials to fall back on
        os.mkdir(home)
        bare = {name: None for name in AWS_VARIABLES}
        bare["HOME"] = home
        status, err = run_fxd(setup, [], bare)
        assert status == 2 and "credential" in err.lower(), (status, err)
        missing_file = os.path.join(setup.work, "no-such-credentials")
        status, err = run_fxd(setup, [f"s3.credentials_file={missing_file}"], bare)
        assert status == 2 and "no-such-credentials" in err, (status, err)

        # The shared-credentials file, in the profile AWS_PROFILE names.
        creds = write_file(os.path.join(setup.work, "credentials"), (
            "[default]\naws_access_key_id = WRONGWRONGWRONGWRONG\naws_secret_access_key = wrong\n\n"
            f"[fxd-test]\naws_access_key_id = {env['S3_ACCESS_KEY']}\n"
            f"aws_secret_access_key = {env['S3_SECRET_KEY']}\n").encode())
        os.chmod(creds, 0o600)
        setup.use_credentials(None, None)
        os.environ["HOME"] = home
        os.environ["AWS_PROFILE"] = "fxd-test"
        from_file = setup.instance([f"s3.credentials_file={creds}"])
        setup.register(from_file)
        data = os.urandom(PART + 1)
        with setup.client(from_file) as c:
            c.upload(setup.path("signed.bin", data))
            assert downloaded(setup, c, "signed.bin") == data
        assert "WRONGWRONG" not in from_file.log() and env["S3_SECRET_KEY"] not in from_file.log()
        from_file.stop()

        # A wrong secret: refused by the store, reported, never a crash.
        setup.use_credentials(env["S3_ACCESS_KEY"], "not-the-secret-key-at-all-0000000000000")
        wrong = setup.instance(start=False)
        refused_at_start = start_or_exit_status(wrong)
        print(f"note: with a wrong secret fxd {'serves' if refused_at_start is None else 'exits'}")
        if refused_at_start is None:
            setup.register(wrong, "bob")
            with setup.client(wrong, "bob") as c:
                refused, _ = c.call("upload", body=b"y" * 1000, name="denied.bin", size=1000)
                assert refused["status"] == "error" and refused["code"] == "storage_unavailable", refused
                assert refused.get("message"), refused
                c.ping()
            assert wrong.alive()
        else:
            assert refused_at_start > 0, f"fxd died by signal {-refused_at_start}"
            assert the_store_named(wrong.log()), wrong.log()
        assert "not-the-secret-key" not in wrong.log(since_start=False)
        assert list(setup.blobs().values()) == [len(data)]

        # A bucket that does not exist is not made by fxd: the store is unavailable.
        setup.use_credentials(env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"])
        bucketless = setup.instance(["s3.bucket=no-such-bucket"], start=False)
        refused_at_start = start_or_exit_status(bucketless)
        print(f"note: with no bucket fxd {'serves' if refused_at_start is None else 'exits'}")
        if refused_at_start is None:
            setup.register(bucketless, "carol")
            with setup.client(bucketless, "carol") as c:
                expect_error("storage_unavailable", c.upload, setup.path("nowhere.bin", b"n" * 1000))
                c.ping()
            status, text = wait_for("/readyz to report the store",
                                    lambda: (lambda r: r[0] == 503 and r)(readyz(bucketless)))
            assert the_store_named(text), text
        else:
            assert refused_at_start > 0, f"fxd died by signal {-refused_at_start}"
        missing = S3Direct(env["S3_ENDPOINT"], "no-such-bucket", env["S3_ACCESS_KEY"], env["S3_SECRET_KEY"])
        assert missing.request("HEAD", ok=(200, 404))[0] == 404, "fxd created the bucket"
    with_setup(fxd, body)


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}
LOCAL_TOO = ("roundtrip", "replace", "resume_other_instance", "kill9", "race", "mismatch")


def main():
    args = sys.argv[1:]
    local = args[2:] == ["local"]
    if len(args) not in (2, 3) or args[0] not in CASES or (len(args) == 3 and not (local and args[0] in LOCAL_TOO)):
        print(f"usage: s3_test.py {{{','.join(CASES)}}} FXD_BINARY [local]  (local: {', '.join(LOCAL_TOO)})",
              file=sys.stderr)
        return 2
    case, fxd = args[0], args[1]
    if local:
        return run_main(lambda: CASES[case](fxd, backend="local"))
    return run_main(lambda: CASES[case](fxd))


if __name__ == "__main__":
    sys.exit(main())
