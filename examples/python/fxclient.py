#!/usr/bin/env python3
"""fxclient: a complete client for fxd, using only the Python standard library.

Every operation of the wire contract is a method of :class:`FxClient`; files
are streamed in chunks (never held whole in memory), uploads and downloads
resume where an interrupted one stopped, and both are verified with SHA-256.

    from fxclient import FxClient

    with FxClient("127.0.0.1", 7070) as fx:
        fx.register("alice", "a-long-password")
        fx.login("alice", "a-long-password")
        fx.upload("big.iso")                  # resumes a partial upload
        fx.download("big.iso", "copy.iso")    # resumes copy.iso.part
        print(fx.list())

    print(udp_echo("127.0.0.1", 7071, b"hello"))  # b'HELLO'

Over TLS (the daemon's TLS port, 7443 by default), the same methods:

    FxClient("fxd.example.org", 7443, tls=True)             # the system's CAs
    FxClient("127.0.0.1", 7443, tls=True, cafile="ca.pem",   # a private CA,
             certfile="me.pem", keyfile="me.key")            # mutual TLS

The frame on the wire: a 4-byte big-endian header length, a UTF-8 JSON header
object, then ``header["size"]`` bytes of body. Replies come in request order.

Errors: an error reply raises :class:`FxError` (``.code`` is one of the
contract's stable codes, e.g. ``"not_found"``); a refused connection, a broken
one or a silent server raises :class:`ConnectionError` / :class:`TimeoutError`
(both ``OSError``); a download whose bytes do not match the server's SHA-256
raises :class:`ChecksumError` (and removes the ``.part`` file).
"""
import hashlib
import json
import os
import select
import socket
import ssl
import struct

__all__ = ["FxClient", "FxError", "ChecksumError", "udp_call", "udp_echo", "udp_ping", "udp_exchange",
           "sha256_file", "encode_frame", "encode_header", "decode_frame", "recv_exact", "read_reply",
           "read_reply_header", "CHUNK_SIZE"]

#: Bytes read from or written to a file per step of a transfer.
CHUNK_SIZE = 256 * 1024


class FxError(Exception):
    """The server answered with an error reply.

    Attributes: ``code`` (stable code such as ``"bad_credentials"``),
    ``message`` (text for people), ``op`` and ``header`` (the whole reply header).
    """

    def __init__(self, op, header):
        self.op = op
        self.header = header
        self.code = header.get("code", "")
        self.message = header.get("message", "")
        super().__init__(f"{op}: {self.code}: {self.message}")


class ChecksumError(Exception):
    """Downloaded bytes did not hash to the SHA-256 the server announced."""


# -- frames ----------------------------------------------------------------------
# The one Python codec of the wire: the tests, scripts and examples import it.

def encode_header(header):
    """The length prefix and JSON header, as given: ``header`` carries its own
    ``size`` (for a body sent apart, a resumed upload, or a malformed request)."""
    raw = json.dumps(header).encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def encode_frame(header, body=b""):
    """A whole frame: prefix, header with ``size`` set to the body's length, body."""
    return encode_header(dict(header, size=len(body))) + body


def decode_frame(data):
    """``(header, body)`` of one whole frame held in ``data`` (a datagram).

    Raises ``ValueError`` when ``data`` is not a frame (too short, a header
    length past the end, a header that is not a JSON object)."""
    if len(data) < 4:
        raise ValueError(f"a frame needs a 4-byte prefix; got {len(data)} bytes")
    (length,) = struct.unpack(">I", data[:4])
    if 4 + length > len(data):
        raise ValueError(f"header length {length} runs past the {len(data)} bytes held")
    header = json.loads(data[4:4 + length])
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    return header, data[4 + length:]


def recv_exact(sock, n):
    """Exactly ``n`` bytes from a socket; ``ConnectionError`` if it closes first."""
    parts = []
    while n > 0:
        chunk = sock.recv(min(n, CHUNK_SIZE))
        if not chunk:
            raise ConnectionError("fxd closed the connection")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def read_reply_header(sock):
    """The next reply's header; its body (``header["size"]`` bytes, unless an
    ok reply whose ``size`` is a file's) is left unread."""
    (length,) = struct.unpack(">I", recv_exact(sock, 4))
    return json.loads(recv_exact(sock, length))


def read_reply(sock):
    """The next reply as ``(header, body)``, whatever its status."""
    header = read_reply_header(sock)
    return header, recv_exact(sock, header.get("size", 0))


def sha256_file(path, progress=None):
    """SHA-256 of a file as 64 lowercase hex digits; ``progress(done, total)`` per chunk."""
    total = os.path.getsize(path)
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1024 * 1024)
            if not chunk:
                break
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return h.hexdigest()


def _hash_prefix(path, length):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = length
        while left > 0:
            chunk = f.read(min(left, 1024 * 1024))
            if not chunk:
                raise OSError(f"{path} is shorter than {length} bytes")
            h.update(chunk)
            left -= len(chunk)
    return h


def tls_context(cafile=None, certfile=None, keyfile=None):
    """A client TLS context: the server's certificate checked against cafile
    (or the system's CAs), and our own certificate for mutual TLS."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    return ctx


class FxClient:
    """One TCP connection to fxd, with a method per operation.

    ``timeout`` (seconds) bounds connecting and every wait for the server.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, host="127.0.0.1", port=7070, timeout=10.0, tls=False, cafile=None, certfile=None,
                 keyfile=None, server_hostname=None):
        self.host, self.port, self.timeout = host, port, timeout
        self._tls = tls_context(cafile, certfile, keyfile) if tls else None
        self._server_hostname = server_hostname or host
        self._credentials = None
        self._sock = None
        self._broken = False
        self._next_id = 1
        self._connect()

    # -- connection --------------------------------------------------------

    def _connect(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls is not None:
            try:
                sock = self._tls.wrap_socket(sock, server_hostname=self._server_hostname)
            except BaseException:
                sock.close()
                raise
        self._sock = sock
        self._broken = False

    def reconnect(self):
        """Opens a fresh connection, logging in again if this client had logged in."""
        self.close()
        self._connect()
        if self._credentials:
            self.login(*self._credentials)

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recv_exact(self, n):
        return recv_exact(self._sock, n)

    def _read_header(self):
        return read_reply_header(self._sock)

    def _reply_waiting(self):
        """True when the server has started answering (or closed) without waiting for more."""
        if self._tls is not None:
            # A TLS socket cannot peek; decrypted bytes or a readable socket both mean an answer.
            return self._sock.pending() > 0 or bool(select.select([self._sock], [], [], 0)[0])
        self._sock.setblocking(False)
        try:
            self._sock.recv(1, socket.MSG_PEEK)
            return True
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        finally:
            self._sock.settimeout(self.timeout)

    def _guard(self, fn):
        if self._broken or self._sock is None:
            self.reconnect()
        try:
            return fn()
        except OSError:
            self._broken = True
            raise

    def call(self, op, body=b"", **fields):
        """Sends one request and returns ``(header, body)`` of the reply, whatever its status."""
        header = {"op": op, "id": self._next_id, **fields}  # an id given in fields wins
        self._next_id += 1

        def exchange():
            self._sock.sendall(encode_frame(header, body))
            reply = self._read_header()
            return reply, self._recv_exact(reply.get("size", 0))

        return self._guard(exchange)

    def send_raw(self, data):
        """Sends bytes as they are (for tests: malformed or partial frames, a body sent apart)."""
        self._guard(lambda: self._sock.sendall(data))

    def read_reply(self):
        """The next reply as ``(header, body)``, e.g. after :meth:`send_raw`."""
        return self._guard(lambda: read_reply(self._sock))

    def request(self, op, body=b"", **fields):
        """Like :meth:`call`, but raises :class:`FxError` on an error reply."""
        header, data = self.call(op, body, **fields)
        if header.get("status") != "ok":
            raise FxError(op, header)
        return header, data

    # -- simple ops --------------------------------------------------------

    def ping(self):
        """Checks that the server answers."""
        self.request("ping")

    def hello(self):
        """The server's name, protocol version, ``ops`` list and ``limits``, as a dict."""
        header, _ = self.request("hello")
        return {k: v for k, v in header.items() if k not in ("op", "id", "status", "size")}

    def offers(self, op):
        """True when hello lists the op."""
        return op in self.hello().get("ops", [])

    def echo(self, data):
        """The server's copy of ``data`` (bytes or str) with ASCII a-z upper-cased, as bytes."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        return self.request("echo", data)[1]

    def stats(self):
        """The daemon's counters, as a dict."""
        return json.loads(self.request("stats")[1])

    # -- accounts ----------------------------------------------------------

    def register(self, user, password):
        """Creates an account (user: 1-32 of a-z 0-9 _ . -; password: 8-1024 bytes)."""
        return self.request("register", user=user, password=password)[0]["user"]

    def login(self, user, password):
        """Logs this connection in; remembered so :meth:`reconnect` can log in again."""
        name = self.request("login", user=user, password=password)[0]["user"]
        self._credentials = (user, password)
        return name

    def logout(self):
        self.request("logout")
        self._credentials = None

    def whoami(self):
        """The logged-in user's name, or None."""
        return self.request("whoami")[0].get("user")

    # -- files (login needed) ----------------------------------------------

    def stat(self, name):
        """A dict with ``name``, ``exists``, ``partial`` and, when ``exists``,
        ``size``, ``sha256``, ``mtime``; None when the server holds neither a
        file nor a partial upload of that name."""
        # An ok stat reply has no body: its "size" is the file's size, so
        # only the header is read.
        def exchange():
            self._sock.sendall(encode_frame({"op": "stat", "id": self._next_id, "name": name}))
            reply = self._read_header()
            if reply.get("status") != "ok":
                self._recv_exact(reply.get("size", 0))
            return reply

        self._next_id += 1
        header = self._guard(exchange)
        if header.get("status") != "ok":
            if header.get("code") == "not_found":
                return None
            raise FxError("stat", header)
        info = {"name": header.get("name", name), "exists": bool(header.get("exists")),
                "partial": header.get("partial", 0)}
        if info["exists"]:
            # The file's size: the contract's "size" (the reply then has no
            # body), or "total" from a daemon that keeps "size" for the body length.
            info.update(size=header.get("total", header.get("size", 0)), sha256=header.get("sha256"),
                        mtime=header.get("mtime"))
        return info

    def list(self):
        """Your files: a list of ``{"name", "size", "mtime"}`` sorted by name."""
        return json.loads(self.request("list")[1])

    def delete(self, name):
        self.request("delete", name=name)

    def upload(self, path, name=None, resume=True, progress=None, sha256=None):
        """Streams the file at ``path`` up as ``name`` (default: its base name).

        Sends the file's SHA-256 (computed first unless given) so the server
        stores nothing that does not match. With ``resume``, a partial upload
        the server holds under that name (see :meth:`stat`) is continued from
        its offset; if those bytes turn out not to belong to this file, the
        whole file is sent instead. ``progress(done, total)`` is called after
        every chunk. Returns ``{"name", "size", "sha256", "resumed_from"}``.
        """
        name = name or os.path.basename(path)
        total = os.path.getsize(path)
        sha = sha256 or sha256_file(path)
        offset = 0
        if resume:
            held = self.stat(name)
            if held and 0 < held["partial"] <= total:
                offset = held["partial"]
        for attempt in range(3):
            try:
                return self._upload_once(path, name, total, sha, offset, progress)
            except FxError as e:
                if attempt == 2:
                    raise
                if e.code == "bad_offset" and offset > 0:
                    held = e.header.get("partial", 0)
                    offset = held if resume and 0 < held <= total and held != offset else 0
                elif e.code == "checksum_mismatch" and offset > 0:
                    offset = 0  # the partial held came from other bytes
                else:
                    raise

    def _upload_once(self, path, name, total, sha, offset, progress):
        fields = {"op": "upload", "id": self._next_id, "name": name, "sha256": sha}
        self._next_id += 1
        if offset:
            fields["offset"] = offset

        def exchange():
            # A resumed upload keeps "size" the whole file's; the body is the rest after "offset".
            self._sock.sendall(encode_header(dict(fields, size=total)))
            done = offset
            if progress:
                progress(done, total)
            whole = True
            with open(path, "rb") as f:
                f.seek(offset)
                while done < total:
                    if self._reply_waiting():
                        whole = False  # refused or failed mid-body: read why
                        break
                    chunk = f.read(min(CHUNK_SIZE, total - done))
                    if not chunk:
                        raise OSError(f"{path} became shorter while it was being sent")
                    try:
                        self._sock.sendall(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        whole = False  # refused mid-body: the reply is still readable
                        break
                    done += len(chunk)
                    if progress:
                        progress(done, total)
            if not whole:
                self._broken = True
            reply = self._read_header()
            if reply.get("status") != "ok":
                self._recv_exact(reply.get("size", 0))
                # The server discards a refused body only up to a limit, past
                # which it closes: the next request goes on a fresh connection.
                if total > offset:
                    self._broken = True
                raise FxError("upload", reply)
            # An ok upload reply has no body: its "size" is the whole file's.
            if reply.get("sha256") != sha:
                raise ChecksumError(f"the server stored SHA-256 {reply.get('sha256')}, the file's is {sha}")
            return {"name": reply.get("name", name), "size": total, "sha256": sha, "resumed_from": offset}

        return self._guard(exchange)

    def download(self, name, path=None, resume=True, progress=None):
        """Streams ``name`` into the file ``path`` (default: ``name``).

        Bytes go to ``path + ".part"``, which is renamed to ``path`` once its
        SHA-256 matches the server's. With ``resume``, an existing ``.part`` is
        continued from its length. On a mismatch the ``.part`` is removed and
        :class:`ChecksumError` raised. ``progress(done, total)`` per chunk.
        Returns ``{"name", "path", "size", "sha256", "resumed_from"}``.
        """
        path = path or name
        part = path + ".part"
        for attempt in range(2):
            offset = os.path.getsize(part) if resume and os.path.exists(part) else 0
            h = _hash_prefix(part, offset) if offset else hashlib.sha256()
            fields = {"name": name}
            if offset:
                fields["offset"] = offset

            def begin():
                self._sock.sendall(encode_frame(dict(fields, op="download", id=self._next_id)))
                return self._read_header()

            self._next_id += 1
            header = self._guard(begin)
            if header.get("status") != "ok":
                self._guard(lambda: self._recv_exact(header.get("size", 0)))
                if header.get("code") == "bad_offset" and offset and attempt == 0:
                    os.remove(part)  # longer than the file: it belongs to another version
                    continue
                raise FxError("download", header)
            total, left, expected = header["total"], header["size"], header["sha256"]
            done = offset
            if progress:
                progress(done, total)
            with open(part, "r+b" if offset else "wb") as f:
                f.seek(offset)

                def receive():
                    nonlocal left, done
                    while left > 0:
                        chunk = self._sock.recv(min(left, CHUNK_SIZE))
                        if not chunk:
                            raise ConnectionError("fxd closed the connection in the middle of a download")
                        f.write(chunk)
                        h.update(chunk)
                        left -= len(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)

                self._guard(receive)
                f.flush()
                os.fsync(f.fileno())
            digest = h.hexdigest()
            if digest != expected:
                os.remove(part)
                raise ChecksumError(f"the bytes received hash to {digest}, the server's SHA-256 is {expected}")
            os.replace(part, path)
            return {"name": name, "path": path, "size": total, "sha256": digest, "resumed_from": offset}


# -- UDP -----------------------------------------------------------------------

def udp_call(host, port, op, body=b"", timeout=2.0):
    """One request in one datagram; returns ``(header, body)`` of the reply.

    Raises :class:`FxError` on an error reply and ``TimeoutError`` when no
    reply comes (UDP may drop datagrams: retry if that matters).
    """
    header, data = udp_exchange(host, port, {"op": op}, body, timeout)
    if header.get("status") != "ok":
        raise FxError(op, header)
    return header, data


# fxd answers a datagram only with a reply at most twice its length (so it
# cannot be used to amplify a forged flood): a request padded to this length
# has room for any error reply.
UDP_MIN_REQUEST = 128


def udp_exchange(host, port, header, body=b"", timeout=2.0):
    """One datagram with ``header`` (``size`` set from ``body``) and the reply
    as ``(header, body)``, whatever its status; ``TimeoutError`` when none comes.
    A short request gets a ``pad`` field (which fxd ignores) up to
    ``UDP_MIN_REQUEST`` bytes, so that its reply is not dropped for its size."""
    datagram = encode_frame(header, body)
    if len(datagram) < UDP_MIN_REQUEST:
        datagram = encode_frame(dict(header, pad=" " * (UDP_MIN_REQUEST - len(datagram) - 10)), body)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(datagram, (host, port))
        try:
            data = s.recv(65535)
        except socket.timeout:
            raise TimeoutError(f"no reply over UDP from {host}:{port} within {timeout} s") from None
    return decode_frame(data)


def udp_echo(host, port, data, timeout=2.0):
    """Echo over UDP: ``data`` (bytes or str) back with ASCII a-z upper-cased, as bytes."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return udp_call(host, port, "echo", data, timeout)[1]


def udp_ping(host, port, timeout=2.0):
    """Ping over UDP."""
    udp_call(host, port, "ping", b"", timeout)
