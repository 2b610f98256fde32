"""Calls to other nodes' internal endpoint: store, read, assemble and remove object files, hand
a voter's own removal to a peer, and fetch an image of a peer's metadata replica.

Every call goes to a peer's inter-node listener (its advertised internal address), is signed
with the cluster secret and a fresh nonce (see `signing`), and names a file as the data layout
does (objects/<bucket>/<key hash>/<file>), or a node by its id. A stored file's SHA-256 travels
signed with it, and the peer checks it before the file takes its place. Bodies move in
fixed-size pieces (sendfile out, chunked reads in), never whole in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ssl
import threading
import time

import orjson

from nebulaio.cluster import signing
from nebulaio.config import split_address
from nebulaio.meta.snapshot import image_digest
from nebulaio.storage.integrity import HASH_FIELD
from nebulaio.util.fileread import pieces
from nebulaio.util.purposekeys import KeyRing

INTERNAL_PREFIX = "/internal/v1/"
FILES_PATH = INTERNAL_PREFIX + "files/"
ASSEMBLE_PATH = INTERNAL_PREFIX + "assemble/"
PING_PATH = INTERNAL_PREFIX + "ping"
NODES_PATH = INTERNAL_PREFIX + "nodes/"
REPLICA_PATH = INTERNAL_PREFIX + "metadata/replica/"
IMAGES_PATH = INTERNAL_PREFIX + "metadata/images/"
PEER_TIMEOUT = 10.0
"""Seconds a peer may stay silent (connecting, receiving or answering) before it counts as failed."""
PING_TIMEOUT = 1.0
"""Seconds a peer has to answer a ping before it counts as down."""
REMOVAL_TIMEOUT = 60.0
"""Seconds a peer may take to carry out a node's removal (a leader's handover and two log entries)."""
IMAGE_TIMEOUT = 600.0
"""Seconds a peer may take to write an image of its metadata replica (a copy at disk speed)."""
IMAGE_ATTEMPTS = 5
"""Reads of an image in a row that may fail without receiving a byte before its fetch gives up."""
IMAGE_RETRY_PAUSE = 0.5
READ_CHUNK = 1024 * 1024
PEER_ERRORS = (OSError, http.client.HTTPException)
STALE_ERRORS = (ConnectionError, ssl.SSLEOFError)
"""How a call fails on a connection the peer closed while it was idle."""
IDLE_SECONDS = 20.0
"""Seconds a connection to a peer stays open for the next call: less than the 30 s a node keeps
an idle connection (gunicorn.conf.py's keepalive)."""
IDLE_PER_PEER = 32
"""Idle connections kept to one peer at most: more than a node's transfer threads use at once."""
EXPECTED_DIGEST_HEADER = "x-nebulaio-expect-xxh3"
"""A read's expected integrity digest of the whole file: a holder whose copy differs refuses."""


class PeerError(Exception):
    """A peer could not be reached (`status` None), or refused the call (`status`, its HTTP status)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def file_path(bucket: str, hashed: str, name: str) -> str:
    return f"{FILES_PATH}{bucket}/{hashed}/{name}"


def node_path(node_id: str) -> str:
    """A node's address on the internal endpoint: its id in hex, so any id makes one path
    segment that the signature covers as sent."""
    return NODES_PATH + node_id.encode("utf-8", "surrogatepass").hex()


class PeerClient:
    """Signed calls from this node (`node_id`) to its peers' internal endpoints."""

    __slots__ = ("_keys", "_node_id", "_tls", "_idle", "_lock")

    def __init__(self, keys: KeyRing, node_id: str, tls: ssl.SSLContext | None = None):
        """`keys`: the cluster secrets' peer-signing keys (the current one signs)."""
        self._keys = keys
        self._node_id = node_id
        self._tls = tls
        self._idle: dict[str, list[tuple[http.client.HTTPConnection, float]]] = {}
        """Connections calls left open, by peer address, with when each was left (the last is newest)."""
        self._lock = threading.Lock()

    def _connect(self, address: str, timeout: float) -> http.client.HTTPConnection:
        host, port = split_address(address)
        if self._tls is None:
            return http.client.HTTPConnection(host, port, timeout=timeout)
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)

    def _send_head(
        self,
        conn: http.client.HTTPConnection,
        address: str,
        method: str,
        path: str,
        headers: dict[str, str],
        content_hash: str = "",
    ) -> None:
        conn.putrequest(method, path, skip_accept_encoding=True)
        headers.update(
            signing.sign(self._keys.current, method, path, self._node_id, time.time(), address, content_hash)
        )
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()

    def _start(
        self,
        address: str,
        method: str,
        path: str,
        headers: dict[str, str],
        timeout: float = PEER_TIMEOUT,
    ) -> http.client.HTTPConnection:
        """Connect and send a signed request's head; the caller reads the answer and closes."""
        conn = self._connect(address, timeout)
        try:
            self._send_head(conn, address, method, path, headers)
        except BaseException:
            conn.close()
            raise
        return conn

    def _idle_connection(self, address: str, timeout: float) -> http.client.HTTPConnection | None:
        """A connection to `address` a call before this one left open, fit for another call."""
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(address)
            while idle:
                conn, since = idle.pop()
                if now - since < IDLE_SECONDS:
                    conn.timeout = timeout
                    conn.sock.settimeout(timeout)
                    return conn
                conn.close()
        return None

    def _keep(self, address: str, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(address, [])
            if len(idle) < IDLE_PER_PEER:
                idle.append((conn, time.monotonic()))
                return
        conn.close()

    def _call(
        self,
        address: str,
        method: str,
        path: str,
        body: bytes = b"",
        send_file=None,
        timeout: float = PEER_TIMEOUT,
        content_hash: str = "",
    ) -> bytes:
        """A request that expects 200, 201 or 204; its answer's body. Raises PeerError otherwise.

        `send_file` (fd, size) streams a file's first bytes as the body with sendfile;
        `content_hash`, the body's SHA-256, is signed with it for the peer to check. The call
        goes over a connection an earlier one left open when there is one: a peer closes an
        idle connection only between requests, so a call that finds it closed (a connection
        error before any answer) is made again, once, on a new one.
        """
        size = len(body) if send_file is None else send_file[1]

        def exchange(conn: http.client.HTTPConnection) -> tuple[http.client.HTTPResponse, bytes]:
            try:
                self._send_head(conn, address, method, path, {"content-length": str(size)}, content_hash)
                if send_file is not None:
                    _send_file(conn.sock, *send_file)
                elif body:
                    conn.send(body)
                response = conn.getresponse()
                return response, response.read()
            except BaseException:
                conn.close()
                raise

        conn = self._idle_connection(address, timeout)
        answered = None
        try:
            if conn is not None:
                with contextlib.suppress(*STALE_ERRORS):
                    answered = exchange(conn)
            if answered is None:
                conn = self._connect(address, timeout)
                answered = exchange(conn)
        except PEER_ERRORS as exc:
            raise PeerError(f"{method} {path} on {address}: {exc!r}") from exc
        response, answer = answered
        if response.will_close:
            conn.close()
        else:
            self._keep(address, conn)
        if response.status not in (200, 201, 204):
            raise PeerError(f"{method} {path} on {address}: {_refusal(response, answer)}", response.status)
        return answer

    def store(
        self, address: str, bucket: str, hashed: str, name: str, body: bytes | tuple[int, int], digest: str
    ) -> None:
        """Have a peer make `body` its durable copy of `name`: bytes, or the first `size` bytes
        of an open file (fd, size), sent with sendfile. `digest` is its `content_digest`: the
        peer keeps nothing that does not match it."""
        path = file_path(bucket, hashed, name)
        if isinstance(body, tuple):
            self._call(address, "PUT", path, send_file=body, content_hash=digest)
        else:
            self._call(address, "PUT", path, body, content_hash=digest)

    def ping(self, address: str) -> None:
        """Raises PeerError unless the peer's internal endpoint answers within PING_TIMEOUT."""
        self._call(address, "GET", PING_PATH, timeout=PING_TIMEOUT)

    def remove(self, address: str, bucket: str, hashed: str, name: str) -> None:
        self._call(address, "DELETE", file_path(bucket, hashed, name))

    def assemble(
        self, address: str, bucket: str, hashed: str, name: str, parts: list[tuple[str, int, str | None]]
    ) -> str:
        """Have a peer build `name` from part files it holds: (part file, size, its recorded
        digest), in order; returns the integrity digest of what it built."""
        answer = self._call(address, "POST", f"{ASSEMBLE_PATH}{bucket}/{hashed}/{name}", orjson.dumps({"parts": parts}))
        try:
            return orjson.loads(answer)[HASH_FIELD]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise PeerError(f"assembling {name} on {address}: no digest in the answer") from exc

    def remove_node(self, address: str, node_id: str) -> None:
        """Have a peer carry out the removal of `node_id` from the cluster."""
        self._call(address, "DELETE", node_path(node_id), timeout=REMOVAL_TIMEOUT)

    def read(
        self,
        address: str,
        bucket: str,
        hashed: str,
        name: str,
        start: int,
        length: int,
        want_hash: bool = False,
        expected: str | None = None,
    ):
        """(connection, answer, content hash) streaming `length` bytes of `name` from `start`;
        the caller closes both. With `want_hash` the content hash is the SHA-256 of the whole
        file as the peer signed it (else None). With `expected` (the file's recorded integrity
        digest) a peer whose copy does not match refuses (409) before sending a byte."""
        headers = {} if expected is None else {EXPECTED_DIGEST_HEADER: expected}
        return self._read_range(address, file_path(bucket, hashed, name), start, length, want_hash, headers)

    def _read_range(
        self, address: str, path: str, start: int, length: int, want_hash: bool = False, headers: dict | None = None
    ):
        headers = dict(headers or (), range=f"bytes={start}-{start + length - 1}")
        if want_hash:
            headers[signing.HASH_WANTED_HEADER] = "sha256"
        try:
            conn = self._start(address, "GET", path, headers)
            try:
                response = conn.getresponse()
            except BaseException:
                conn.close()
                raise
        except PEER_ERRORS as exc:
            raise PeerError(f"reading {path} on {address}: {exc!r}") from exc
        if response.status != 206:
            conn.close()
            raise PeerError(f"reading {path} on {address}: {response.status} {response.reason}")
        if not want_hash:
            return conn, response, None
        content_hash = response.getheader(signing.CONTENT_HASH_HEADER, "")
        given = response.getheader(signing.SIGNATURE_HEADER, "")
        if not signing.answer_is_signed(self._keys.keys, headers[signing.NONCE_HEADER], content_hash, given):
            conn.close()
            raise PeerError(f"reading {path} on {address}: the answer's SHA-256 is not signed with the cluster secret")
        return conn, response, content_hash

    def fetch_image(self, address: str, at_least: int, path: str) -> dict:
        """Fetch into `path` an image of a peer's metadata replica applied up to raft index
        `at_least` or later; the peer's description of it ("index": the raft index applied in it).

        The peer writes the image once and serves it in ranges: a read that breaks is resumed
        from the last byte received, so a lost connection costs a retry, not the bytes already
        here. The image is checked against its digest before anything maps it.
        """
        image = orjson.loads(self._call(address, "POST", f"{REPLICA_PATH}{at_least}", timeout=IMAGE_TIMEOUT))
        image_path = IMAGES_PATH + image["id"]
        try:
            with open(path, "wb") as target:
                failed = 0
                while target.tell() < image["size"]:
                    received = target.tell()
                    try:
                        self._read_into(address, image_path, target, image["size"])
                    except PeerError:
                        if target.tell() > received:
                            failed = 0  # it got further: resume at once
                            continue
                        failed += 1
                        if failed >= IMAGE_ATTEMPTS:
                            raise
                        time.sleep(IMAGE_RETRY_PAUSE)
        finally:
            with contextlib.suppress(PeerError):
                self._call(address, "DELETE", image_path)
        if image_digest(path) != image["digest"]:
            raise PeerError(f"the image fetched from {address} does not match its digest")
        return image

    def _read_into(self, address: str, path: str, target, size: int) -> None:
        """Append the bytes of `path` from `target`'s length up to `size` to `target`."""
        offset = target.tell()
        conn, response, _ = self._read_range(address, path, offset, size - offset)
        try:
            while offset < size:
                try:
                    data = response.read(min(READ_CHUNK, size - offset))
                except PEER_ERRORS as exc:
                    raise PeerError(f"reading {path} on {address}: {exc!r}") from exc
                if not data:
                    raise PeerError(f"reading {path} on {address}: the answer ended at byte {offset}")
                target.write(data)
                offset += len(data)
        finally:
            response.close()
            conn.close()


def _send_file(sock, fd: int, size: int) -> None:
    """Send a file's first `size` bytes: with sendfile on a plain socket, in pread pieces
    through TLS.

    NOTE: never by the file's offset: one descriptor serves every holder's copy at once, and
    socket.sendfile on a TLS socket falls back to seek and read on it, so concurrent copies
    took each other's bytes (a copy came short, or mixed).
    """
    if not isinstance(sock, ssl.SSLSocket):
        if size:
            with open(fd, "rb", buffering=0, closefd=False) as source:
                sock.sendfile(source, 0, size)
        return
    for chunk in pieces(fd, size):
        sock.sendall(chunk)


def content_digest(body: bytes | bytearray | tuple[int, int]) -> str:
    """The hex SHA-256 a stored file is sent with: of bytes, or of an open file's first `size`
    bytes (fd, size), read with pread so the descriptor's offset stays where sendfile wants it."""
    if not isinstance(body, tuple):
        return hashlib.sha256(body).hexdigest()
    fd, size = body
    digest = hashlib.sha256()
    for chunk in pieces(fd, size):
        digest.update(chunk)
    return digest.hexdigest()


def _refusal(response: http.client.HTTPResponse, answer: bytes) -> str:
    """A peer's refusal in words: its status and what its JSON error says, if anything."""
    try:
        error = orjson.loads(answer)
        said = error.get("description") or error.get("title")
    except (orjson.JSONDecodeError, AttributeError):
        said = None
    return f"{response.status} {said or response.reason}"


def peer_tls(config: dict) -> ssl.SSLContext | None:
    """How this node connects to its peers' inter-node listeners (one cluster, one setting).

    With internal_tls_* set (mTLS): it presents its own node certificate, and trusts a peer
    whose certificate the cluster's CA signed, whatever name it carries (peers are reached by
    address; the CA, made for the cluster, signs nothing but its nodes). Else, when the node
    serves TLS (tls_cert): a peer's certificate is trusted when it is this node's own or signed
    by it. Else plain HTTP.
    """
    if config["internal_tls_ca"]:
        context = ssl.create_default_context(cafile=config["internal_tls_ca"])
        context.load_cert_chain(config["internal_tls_cert"], config["internal_tls_key"])
    elif config["tls_cert"] and config["tls_key"]:
        context = ssl.create_default_context(cafile=config["tls_cert"])
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    else:
        return None
    context.check_hostname = False
    return context


def listener_tls(config: dict) -> ssl.SSLContext | None:
    """The server side of the inter-node listener with mTLS: this node's certificate, and only
    clients presenting a certificate the cluster's CA signed (None without internal_tls_*)."""
    if not config["internal_tls_ca"]:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=config["internal_tls_ca"])
    context.load_cert_chain(config["internal_tls_cert"], config["internal_tls_key"])
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class HolderStream:
    """A byte range of a file read from the first holder that answers; when one fails midway
    the rest is read from the next holder, from where the first stopped.

    Readable in blocks (a WSGI file wrapper), without a fileno: gunicorn then sends what
    read() returns.

    PERF: read() returns up to READ_CHUNK bytes whatever smaller block it is asked for
    (Falcon asks for 8 KiB): the WSGI server writes whatever it gets, and a 1 MiB piece costs
    one call where 8 KiB blocks cost 128.
    """

    __slots__ = (
        "_client",
        "_addresses",
        "_file",
        "_offset",
        "_left",
        "_conn",
        "_response",
        "_verified",
        "_expected",
        "content_hash",
    )

    def __init__(
        self,
        client: PeerClient,
        addresses: list[str],
        file: tuple[str, str, str],
        start: int,
        length: int,
        verified: bool = False,
        expected: str | None = None,
    ):
        """`verified`: every holder read from signs the SHA-256 of its whole file (`content_hash`),
        and one whose hash differs from the first's is not read from. `expected`: the file's
        recorded integrity digest, which a holder checks its copy against before answering."""
        self._client = client
        self._expected = expected
        self._addresses = iter(addresses)
        self._file = file
        self._offset = start
        self._left = length
        self._verified = verified
        self.content_hash = None
        self._conn = self._response = None
        if length:
            self._connect()

    def _connect(self) -> None:
        failures = []
        for address in self._addresses:
            try:
                conn, response, content_hash = self._client.read(
                    address, *self._file, self._offset, self._left, self._verified, self._expected
                )
            except PeerError as exc:
                failures.append(str(exc))
                continue
            if self.content_hash is not None and content_hash != self.content_hash:
                response.close()
                conn.close()
                failures.append(f"{address} holds other bytes (SHA-256 {content_hash})")
                continue
            self._conn, self._response, self.content_hash = conn, response, content_hash
            return
        raise PeerError("no holder answered: " + "; ".join(failures))

    def read(self, size: int = -1) -> bytes:
        while self._left > 0:
            try:
                data = self._response.read(min(self._left, READ_CHUNK))
                if not data:
                    raise http.client.IncompleteRead(b"", self._left)
            except PEER_ERRORS:
                self.close()
                self._connect()
                continue
            self._offset += len(data)
            self._left -= len(data)
            return data
        return b""

    def close(self) -> None:
        if self._conn is not None:
            self._response.close()
            self._conn.close()
            self._conn = self._response = None
