#!/usr/bin/env python3
"""Soak test: N clients hammer one fxd with every op for T seconds, each
keeping its own record of what its files must contain; at the end every
stored byte is checked against those records.

Usage: soak.py [--clients N] [--seconds T] [--seed S] FXD_BINARY
  --clients  client threads, each with its own user (default 8)
  --seconds  how long to run (default: $FXD_SOAK_SECONDS, else 100)
  --seed     random seed (default: from the clock; printed)

Each client mixes echo (0-64 KiB) over TCP, ping and echo over UDP, upload
(0-4 MiB), download (whole or from an offset), stat, list, delete,
logout/whoami/login, stats and hello, and disconnects on purpose: uploads cut
mid-body (then the partial is checked and sometimes resumed), echoes and
downloads dropped mid-way (some with RST), frames closed half-way. An upload
counts as stored only once its ok reply has arrived; a cut upload leaves the
old version in the record.

Exit status 0 when nothing was lost or corrupted, no unexpected error reply
or broken connection occurred and the daemon stayed up (and exited 0 on
SIGTERM); 1 otherwise.
"""
import argparse
import collections
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))

from harness import (DEADLINE, PASSWORD, Daemon, FxError, connect, frame, header_frame,  # noqa: E402
                     integrity_check, logged_in, read_reply, register_users, reset_close, sha256, stats,
                     supported_sets, udp_call, wait_for)

KIB, MIB = 1024, 1024 * 1024
NAMES = [f"f{i}.bin" for i in range(6)]

# Relative weights of the ops each client picks from.
WEIGHTS = {
    "echo": 12, "udp_ping": 4, "udp_echo": 4, "upload": 14, "download": 10, "download_offset": 3,
    "stat": 8, "list": 6, "delete": 4, "session": 3, "stats": 3, "hello": 3, "resume": 4,
    "drop_echo": 2, "drop_download": 2, "half_frame": 2,
}


def upload_size(rng):
    kind = rng.random()
    if kind < 0.05:
        return 0
    if kind < 0.35:
        return rng.randint(1, 4 * KIB)
    if kind < 0.75:
        return rng.randint(4 * KIB, 256 * KIB)
    return rng.randint(256 * KIB, 4 * MIB)


class client(threading.Thread):
    def __init__(self, idx, d, seconds, seed, folder):
        super().__init__(daemon=True)
        self.d, self.seconds = d, seconds
        self.user = f"soak{idx:02d}"
        self.rng = random.Random(seed * 1009 + idx)
        self.tmp = os.path.join(folder, f"{self.user}.upload")
        self.files = {}      # name -> bytes the server must hold (its last acknowledged upload)
        self.partials = {}   # name -> (bytes of the cut upload, bytes sent before the cut)
        self.unsure = set()  # names whose state an unexpected failure left unknown
        self.ops = collections.Counter()
        self.expected = collections.Counter()    # error codes the record predicted
        self.unexpected = collections.Counter()  # error codes or failures it did not
        self.failures = []
        self.cuts = self.resumes = 0
        self.udp_lost = 0
        self.fx = None
        self.logged_in = False

    # -- helpers -----------------------------------------------------------------

    def fail(self, what):
        self.failures.append(f"{self.user}: {what}")

    def connect(self):
        if self.fx:
            self.fx.close()
        self.fx = logged_in(self.d.tcp, self.user)
        self.logged_in = True

    def raw_login(self):
        """A plain socket logged in as the client's user, with nothing left unread."""
        s = connect(self.d.tcp)
        s.sendall(frame({"op": "login", "user": self.user, "password": PASSWORD}))
        reply, _ = read_reply(s)
        if reply.get("status") != "ok":
            s.close()
            raise FxError("login", reply)
        return s

    def error(self, e, expected_code=None):
        if expected_code is not None and e.code == expected_code:
            self.expected[e.code] += 1
        else:
            self.unexpected[e.code] += 1
            self.fail(f"{e.op}: unexpected {e.code}: {e.header}")

    def wait_partial(self, name, held):
        """After a cut, the daemon keeps the bytes once it has seen the close: wait until stat says so."""
        def seen():
            info = self.fx.stat(name)
            return info is not None and info["partial"] == held

        try:
            wait_for(f"{self.user}/{name} to show partial {held}", seen, deadline=DEADLINE, period=0.02)
            return True
        except AssertionError as e:
            info = self.fx.stat(name)
            self.unexpected["wrong_partial"] += 1
            self.fail(f"{e}; stat says {info}")
            self.partials.pop(name, None)
            self.unsure.add(name)
            return False

    # -- ops -----------------------------------------------------------------------

    def op_echo(self):
        data = self.rng.randbytes(self.rng.randint(0, 64 * KIB))
        if self.fx.echo(data) != data.upper():
            self.unexpected["echo_mismatch"] += 1
            self.fail("echo came back wrong")

    def op_udp_ping(self):
        try:
            udp_call("127.0.0.1", self.d.udp, "ping", b"", timeout=2)
        except TimeoutError:
            self.udp_lost += 1

    def op_udp_echo(self):
        data = self.rng.randbytes(self.rng.randint(0, 1200))
        try:
            _, body = udp_call("127.0.0.1", self.d.udp, "echo", data, timeout=2)
            if body != data.upper():
                self.unexpected["udp_echo_mismatch"] += 1
                self.fail("udp echo came back wrong")
        except TimeoutError:
            self.udp_lost += 1

    def op_upload(self):
        name = self.rng.choice(NAMES)
        data = self.rng.randbytes(upload_size(self.rng))
        if len(data) >= 2 and self.rng.random() < 0.05:
            return self.cut_upload(name, data)
        try:
            header, _ = self.fx.request("upload", data, name=name, sha256=sha256(data))
        except FxError as e:
            return self.error(e)
        if header.get("sha256") != sha256(data) or header.get("total") != len(data):
            self.unexpected["upload_reply"] += 1
            self.fail(f"upload reply does not describe the bytes sent: {header}")
        self.files[name] = data
        self.partials.pop(name, None)  # publishing a fresh upload drops the name's partial

    def cut_upload(self, name, data):
        """Half a body, then the client goes away (FIN: every byte sent reaches the daemon)."""
        self.ops["upload_cut"] += 1
        self.cuts += 1
        sent = self.rng.randint(1, len(data) - 1)
        s = self.raw_login()
        try:
            s.sendall(header_frame({"op": "upload", "name": name, "size": len(data), "sha256": sha256(data)})
                      + data[:sent])
        finally:
            s.close()
        self.partials[name] = (data, sent)  # the old version of the name stays in self.files
        self.wait_partial(name, sent)

    def op_resume(self):
        if not self.partials:
            self.ops["resume"] -= 1
            self.ops["stat"] += 1
            return self.op_stat()
        name = self.rng.choice(sorted(self.partials))
        data, held = self.partials[name]
        with open(self.tmp, "wb") as f:
            f.write(data)
        try:
            result = self.fx.upload(self.tmp, name=name)
        except FxError as e:
            return self.error(e)
        if result["resumed_from"] != held:
            self.unexpected["resume_offset"] += 1
            self.fail(f"resume of {name} started at {result['resumed_from']}, the partial was {held}")
        self.resumes += 1
        self.files[name] = data
        del self.partials[name]

    def op_download(self, with_offset=False):
        name = self.rng.choice(NAMES)
        if name in self.unsure:
            return
        want = self.files.get(name)
        offset = self.rng.randint(0, len(want)) if with_offset and want is not None else 0
        try:
            header, body = self.fx.request("download", name=name, **({"offset": offset} if offset else {}))
        except FxError as e:
            return self.error(e, "not_found" if want is None else None)
        if want is None:
            self.unexpected["download_of_missing"] += 1
            return self.fail(f"download of {name} succeeded, but it should not exist: {header}")
        if body != want[offset:] or header.get("sha256") != sha256(want) or header.get("total") != len(want):
            self.unexpected["download_mismatch"] += 1
            self.fail(f"download of {name} (offset {offset}) does not match the record: {header}")

    def op_download_offset(self):
        self.op_download(with_offset=True)

    def op_stat(self):
        name = self.rng.choice(NAMES)
        if name in self.unsure:
            return
        want = self.files.get(name)
        held = self.partials[name][1] if name in self.partials else 0
        try:
            info = self.fx.stat(name)
        except FxError as e:
            return self.error(e)
        if want is None and not held:
            if info is not None:
                self.unexpected["stat_of_missing"] += 1
                self.fail(f"stat of {name}: {info}, but neither a file nor a partial should exist")
            else:
                self.expected["not_found"] += 1
            return
        ok = info is not None and info["partial"] == held and info["exists"] == (want is not None)
        if ok and want is not None:
            ok = info["size"] == len(want) and info["sha256"] == sha256(want)
        if not ok:
            self.unexpected["stat_mismatch"] += 1
            self.fail(f"stat of {name}: {info}; record: file {None if want is None else len(want)}, partial {held}")

    def op_list(self):
        listed = {f["name"]: f["size"] for f in self.fx.list()}
        want = {n: len(b) for n, b in self.files.items()}
        for name in self.unsure:
            listed.pop(name, None)
            want.pop(name, None)
        if listed != want:
            self.unexpected["list_mismatch"] += 1
            self.fail(f"list {listed} differs from the record {want}")

    def op_delete(self):
        name = self.rng.choice(NAMES)
        existed = name in self.files or name in self.partials
        try:
            self.fx.delete(name)
            if not existed and name not in self.unsure:
                self.unexpected["delete_of_missing"] += 1
                self.fail(f"delete of {name} ok, but nothing of that name should exist")
        except FxError as e:
            if name in self.unsure and e.code == "not_found":
                self.expected[e.code] += 1
            else:
                self.error(e, None if existed else "not_found")
        self.files.pop(name, None)
        self.partials.pop(name, None)
        self.unsure.discard(name)

    def op_session(self):
        self.fx.logout()
        self.logged_in = False
        if self.fx.whoami() is not None:
            self.unexpected["whoami"] += 1
            self.fail("whoami after logout is not null")
        try:
            self.fx.list()
            self.unexpected["list_logged_out"] += 1
            self.fail("list worked after logout")
        except FxError as e:
            self.error(e, "unauthorized")
        self.fx.login(self.user, PASSWORD)
        self.logged_in = True
        if self.fx.whoami() != self.user:
            self.unexpected["whoami"] += 1
            self.fail("whoami after login is not the user")

    def op_stats(self):
        s = self.fx.stats()
        if s["connections"]["open"] < 1 or "files" not in s:
            self.unexpected["stats"] += 1
            self.fail(f"odd stats: {s}")

    def op_hello(self):
        if "upload" not in self.fx.hello().get("ops", []):
            self.unexpected["hello"] += 1
            self.fail("hello does not offer upload")

    def op_drop_echo(self):
        """An echo whose body stops half-way on a logged-in connection, which then goes away (FIN or RST)."""
        size = self.rng.randint(2, 64 * KIB)
        s = self.raw_login()
        s.sendall(header_frame({"op": "echo", "size": size}) + b"y" * (size // 2))
        reset_close(s) if self.rng.random() < 0.5 else s.close()

    def op_drop_download(self):
        """A download whose reply is never read: closed with unread bytes, so the kernel sends RST."""
        name = self.rng.choice(sorted(self.files) or NAMES)
        s = self.raw_login()
        s.sendall(frame({"op": "download", "name": name}))
        if self.rng.random() < 0.5:
            s.recv(1)
        reset_close(s) if self.rng.random() < 0.5 else s.close()

    def op_half_frame(self):
        """Half a header on a side connection, closed with FIN or RST."""
        raw = header_frame({"op": "ping", "id": self.rng.randint(0, 1 << 30)})
        s = connect(self.d.tcp)
        s.sendall(raw[:self.rng.randint(1, len(raw) - 1)])
        reset_close(s) if self.rng.random() < 0.5 else s.close()

    # -- the loop --------------------------------------------------------------------

    def run(self):
        ops, weights = zip(*WEIGHTS.items())
        end = time.monotonic() + self.seconds
        try:
            self.connect()
        except Exception as e:  # noqa: BLE001 - reported, the run fails
            self.fail(f"could not log in: {e!r}")
            return
        try:
            self.loop(ops, weights, end)
        finally:
            if self.fx:
                self.fx.close()

    def loop(self, ops, weights, end):
        while time.monotonic() < end:
            op = self.rng.choices(ops, weights)[0]
            self.ops[op] += 1
            try:
                getattr(self, f"op_{op}")()
            except FxError as e:
                self.error(e)
            except (OSError, ValueError) as e:
                self.unexpected["connection"] += 1
                self.fail(f"{op}: {e!r}")
                if op in ("upload", "resume", "delete"):
                    self.unsure.update(NAMES)  # whatever that op did is unknown now
                try:
                    self.connect()
                except OSError as again:
                    self.fail(f"cannot reconnect: {again!r}")
                    return
            except Exception:  # noqa: BLE001 - a bug in the test itself: report it
                self.fail(f"{op}: test error\n{traceback.format_exc()}")
                return
            if len(self.failures) > 50:
                return

    # -- the final check -------------------------------------------------------------

    def verify(self):
        """Every byte in the record is on the server, nothing else is. Returns (files, bytes, lost, corrupt)."""
        lost = corrupt = 0
        with logged_in(self.d.tcp, self.user) as fx:
            listed = {f["name"]: f["size"] for f in fx.list()}
            for name, want in sorted(self.files.items()):
                if name in self.unsure:
                    continue
                if name not in listed:
                    lost += len(want)
                    self.fail(f"final: {name} ({len(want)} bytes) is missing")
                    continue
                header, body = fx.request("download", name=name)
                if body != want or header.get("sha256") != sha256(want) or listed[name] != len(want):
                    corrupt += len(want)
                    self.fail(f"final: {name} differs: {len(body)} bytes, sha256 {sha256(body)}, "
                              f"record {len(want)} bytes, sha256 {sha256(want)}")
            for name in sorted(set(listed) - set(self.files) - self.unsure):
                self.fail(f"final: {name} is listed but was deleted or never stored")
            for name, (_, held) in sorted(self.partials.items()):
                info = fx.stat(name)
                if info is None or info["partial"] != held:
                    self.fail(f"final: partial of {name} should be {held} bytes, stat says {info}")
        checked = [n for n in self.files if n not in self.unsure]
        return len(checked), sum(len(self.files[n]) for n in checked), lost, corrupt


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("FXD_SOAK_SECONDS", "100")))
    parser.add_argument("--seed", type=int, default=int(time.time() * 1000) % 1000000)
    parser.add_argument("fxd")
    args = parser.parse_args()
    fxd = os.path.abspath(args.fxd)
    print(f"soak: {args.clients} clients for {args.seconds:.0f} s, seed {args.seed}")
    folder = tempfile.mkdtemp(prefix="fxd-soak-")
    sets = supported_sets(fxd, ["limits.max_connections_per_address=100000"])
    d = Daemon(fxd, os.path.join(folder, "var"), os.path.join(folder, "fxd.log"), sets)
    failed = []
    try:
        d.start()
        users = [f"soak{i:02d}" for i in range(args.clients)]
        register_users(d.tcp, users)
        wait_for("the set-up connections to close", lambda: stats(d.tcp)["connections"]["open"] == 1)
        time.sleep(0.5)  # and the last one, which asked
        start_fds, start_rss = d.fd_count(), d.rss_kib()
        clients = [client(i, d, args.seconds, args.seed, folder) for i in range(args.clients)]
        began = time.monotonic()
        for c in clients:
            c.start()
        died = False
        while any(c.is_alive() for c in clients):
            time.sleep(1)
            if not d.alive():
                died = True
                break
            if time.monotonic() - began > args.seconds + 600:
                failed.append("clients did not finish within 10 minutes of the end")
                break
        ran = time.monotonic() - began
        if died:
            failed.append(f"fxd died (exit status {d.proc.returncode}) after {ran:.0f} s")
        end_fds, end_rss = (d.fd_count(), d.rss_kib()) if d.alive() else (None, None)

        files = stored = lost = corrupt = 0
        if not died:
            wait_for("the clients' connections to close", lambda: stats(d.tcp)["connections"]["open"] == 1,
                     deadline=60, period=0.5)
            try:  # the last stats connection may still be closing
                wait_for("fxd's fds to return to the start count", lambda: d.fd_count() == start_fds, deadline=10)
            except AssertionError:
                pass
            settled_fds = d.fd_count()
            for c in clients:
                if c.is_alive():
                    continue
                n, b, lo, co = c.verify()
                files, stored, lost, corrupt = files + n, stored + b, lost + lo, corrupt + co
            s = stats(d.tcp)
        ops = sum((c.ops for c in clients), collections.Counter())
        expected = sum((c.expected for c in clients), collections.Counter())
        unexpected = sum((c.unexpected for c in clients), collections.Counter())
        failures = [f for c in clients for f in c.failures]
        print(f"ran {ran:.0f} s: {sum(ops.values())} ops")
        print("ops by op: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
        print(f"uploads cut mid-body {sum(c.cuts for c in clients)}, resumed {sum(c.resumes for c in clients)}; "
              f"udp datagrams without a reply {sum(c.udp_lost for c in clients)}")
        print("expected errors by code: " + (", ".join(f"{k} {v}" for k, v in sorted(expected.items())) or "none"))
        print("unexpected errors: " + (", ".join(f"{k} {v}" for k, v in sorted(unexpected.items())) or "none"))
        print(f"final check: {files} files, {stored} bytes verified; lost {lost} bytes, corrupted {corrupt} bytes")
        if not died:
            print(f"fxd: VmRSS {start_rss} KiB at start, {end_rss} KiB at the end; open fds {start_fds} at start, "
                  f"{end_fds} at the end of the load, {settled_fds} once the clients had gone")
            print(f"fxd stats: connections.total {s['connections']['total']}, requests "
                  f"{sum(s['requests'].values())}, errors {json.dumps({k: v for k, v in s['errors']['by_code'].items() if v})}, "
                  f"files {json.dumps(s['files'])}, udp {json.dumps(s['udp'])}")
            d.stop()
            check = integrity_check(os.path.join(folder, "var", "fxd.db"))
            print(f"fxd exited 0 on SIGTERM; PRAGMA integrity_check: {check}")
            if check != ["ok"]:
                failed.append(f"integrity_check: {check}")
        udp_total = ops["udp_ping"] + ops["udp_echo"]
        if udp_total and sum(c.udp_lost for c in clients) > max(5, udp_total // 10):
            failed.append("more than 10% of the UDP requests got no reply")
        failed += failures
        if lost or corrupt:
            failed.append(f"lost {lost} bytes, corrupted {corrupt} bytes")
    except AssertionError as e:
        failed.append(str(e))
    finally:
        d.kill()
    if failed:
        print(f"FAIL: {len(failed)} problem(s)")
        for f in failed[:40]:
            print("  " + f)
        with open(os.path.join(folder, "fxd.log"), errors="replace") as f:
            lines = f.readlines()
        print("--- fxd.log, warnings and errors ---")
        print("".join([line for line in lines if " info " not in line][-40:]))
        print(f"kept {folder}")
        return 1
    shutil.rmtree(folder, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
