"""The internal endpoint, /internal/v1/ on the node's own inter-node listener (internal_address,
never the Admin API's): object files between nodes, the removals voters hand to a peer, and
images of the metadata replica for members that catch up.

    PUT    files/<bucket>/<key hash>/<file>      store the body: temp/, check its SHA-256 against
                                                 the signed x-nebulaio-content-sha256, fsync,
                                                 rename, fsync the dir
    GET    files/<bucket>/<key hash>/<file>      read it (Range: bytes=a-b), with sendfile; asked
                                                 (x-nebulaio-hash-wanted), with the whole file's
                                                 SHA-256, signed with the request's nonce; with
                                                 x-nebulaio-expect-xxh3 (its recorded digest),
                                                 409 if this copy does not match it
    DELETE files/<bucket>/<key hash>/<file>      remove a copy a write gave up on
    POST   assemble/<bucket>/<key hash>/<file>   build it from part files held here:
                                                 {"parts": [[part file, size, its recorded
                                                 digest or null], ...]} (409 if a part is damaged);
                                                 answers {"file_xxh3": its integrity digest}
    GET    ping                                  204: this node's data endpoint is up
    DELETE nodes/<node id in hex>                remove that node from the cluster, for a
                                                 voter that cannot carry out its own removal
    POST   metadata/replica/<raft index>         write an image of this node's metadata replica,
                                                 applied up to that index or later (409 if not
                                                 yet): {"id", "index", "size", "digest"}
    GET    metadata/images/<id>                  read it (Range: bytes=a-b), with sendfile
    DELETE metadata/images/<id>                  remove it once fetched

Every call is signed with the cluster secret (`nebulaio.cluster.signing`); an unsigned, badly
signed or replayed call is refused before anything is read or written. Path segments are checked
against the shapes this node itself creates, so no request names a path outside objects/ and
metadata/images/.
"""

from __future__ import annotations

import hashlib
import os
import re
import time

import falcon
import orjson

from nebulaio.cluster import signing
from nebulaio.cluster.peers import (
    ASSEMBLE_PATH,
    EXPECTED_DIGEST_HEADER,
    FILES_PATH,
    IMAGES_PATH,
    NODES_PATH,
    PING_PATH,
    REPLICA_PATH,
    content_digest,
)
from nebulaio.engine.errors import S3Error
from nebulaio.engine.members import Members
from nebulaio.engine.names import BUCKET_NAME_SHAPE
from nebulaio.meta.snapshot import ImageBehind, ImageShelf
from nebulaio.storage.integrity import HASH_FIELD, DamagedPart, FileChecks
from nebulaio.storage.objects import FileRange, ObjectStore
from nebulaio.util.purposekeys import KeyRing

RECEIVE_CHUNK = 1024 * 1024
MAX_ASSEMBLY_DOCUMENT = 1024 * 1024
HASH_SHAPE = re.compile(r"[0-9a-f]{32}", re.ASCII)
# A version id, or a part file: <upload id>.<part number>.<16 hex digits>.
FILE_SHAPE = re.compile(r"[0-9a-f]{32}(?:\.[0-9]{1,5}\.[0-9a-f]{16})?", re.ASCII)
RANGE_SHAPE = re.compile(r"bytes=([0-9]{1,19})-([0-9]{1,19})", re.ASCII)
HEX_SHAPE = re.compile(r"(?:[0-9a-f]{2})+", re.ASCII)
INDEX_SHAPE = re.compile(r"[0-9]{1,19}", re.ASCII)
IMAGE_ID_SHAPE = re.compile(r"[0-9a-f]{32}", re.ASCII)
IMAGE_PATHS = (REPLICA_PATH, IMAGES_PATH)
DIGEST_SHAPE = re.compile(r"[0-9a-f]{16}", re.ASCII)


def _refuse(status: str, reason: str):
    return falcon.HTTPError(status, title=reason)


class Signed:
    """Middleware: every request must carry a valid signature, made for this node, with a nonce
    not seen before; checked before its body is read.

    An image of the replica may be asked of a node by any address that reaches it (a member
    catching up is given the address a dump names): an image is written under a random id and
    served only to a call that names it, so a call replayed to another node gains nothing.
    """

    __slots__ = ("_keys", "_replays", "_address")

    def __init__(self, keys: KeyRing, replays: signing.ReplayCache, address: str):
        self._keys = keys
        self._replays = replays
        self._address = address

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        now = time.time()
        headers = req.headers_lower
        if not signing.verify(self._keys.keys, req.method, req.path, headers, now):
            raise _refuse(falcon.HTTP_403, "the request is not signed with the cluster secret")
        if headers.get(signing.TARGET_HEADER) != self._address and not req.path.startswith(IMAGE_PATHS):
            raise _refuse(falcon.HTTP_403, f"the request was signed for another node, not {self._address}")
        if not self._replays.first_use(headers, now):
            raise _refuse(falcon.HTTP_403, "the request's nonce was already used: a replay")


class _FileResource:
    """A resource addressed like an object file; the address is checked on every call."""

    __slots__ = ("_store",)

    def __init__(self, store: ObjectStore):
        self._store = store

    def _directory(self, bucket: str, hashed: str, name: str) -> str:
        if not (BUCKET_NAME_SHAPE.fullmatch(bucket) and HASH_SHAPE.fullmatch(hashed) and FILE_SHAPE.fullmatch(name)):
            raise _refuse(falcon.HTTP_400, "not an object file's address")
        return self._store.file_dir(bucket, hashed)


def _send_file(req: falcon.Request, resp: falcon.Response, file) -> None:
    """Answer with an open file, or the byte range the request names (206); the answer closes it."""
    try:
        size = file.seek(0, 2)
        start, length = 0, size
        requested = req.get_header("range")
        if requested is not None:
            matched = RANGE_SHAPE.fullmatch(requested)
            if matched is None or int(matched[1]) > int(matched[2]) or int(matched[2]) >= size:
                raise _refuse(falcon.HTTP_416, "the range is not within the file")
            start, length = int(matched[1]), int(matched[2]) - int(matched[1]) + 1
            resp.status = falcon.HTTP_206
        file.seek(0)
        resp.content_length = length
        resp.stream = FileRange(file, start, length)
    except BaseException:
        file.close()
        raise


class Files(_FileResource):
    """One object file."""

    __slots__ = ("_keys", "_checks")

    def __init__(self, store: ObjectStore, keys: KeyRing, checks: FileChecks):
        super().__init__(store)
        self._keys = keys
        self._checks = checks

    def on_put(self, req: falcon.Request, resp: falcon.Response, bucket: str, hashed: str, name: str) -> None:
        directory = self._directory(bucket, hashed, name)
        left = req.content_length
        if left is None:
            raise _refuse(falcon.HTTP_411, "a file is stored with its Content-Length")
        expected = req.headers_lower.get(signing.CONTENT_HASH_HEADER)
        if not expected:
            raise _refuse(falcon.HTTP_400, f"a file is stored with its {signing.CONTENT_HASH_HEADER}")
        received = hashlib.sha256()
        temp = self._store.new_temp()
        try:
            while left:
                chunk = req.bounded_stream.read(min(RECEIVE_CHUNK, left))
                if not chunk:
                    raise _refuse(falcon.HTTP_400, "the body ended early")
                temp.write(chunk)
                received.update(chunk)
                left -= len(chunk)
            if received.hexdigest() != expected:
                raise _refuse(falcon.HTTP_400, "the body does not match its SHA-256: nothing was kept")
            temp.commit_to(directory, name)
        except BaseException:
            temp.abort()
            raise

    def on_get(self, req: falcon.Request, resp: falcon.Response, bucket: str, hashed: str, name: str) -> None:
        directory = self._directory(bucket, hashed, name)
        try:
            file = open(f"{directory}/{name}", "rb", buffering=0)
        except FileNotFoundError:
            raise _refuse(falcon.HTTP_404, "no such file here") from None
        expected = req.get_header(EXPECTED_DIGEST_HEADER)
        if expected is not None:
            damaged = {"bucket": bucket, "hashed": hashed, "file": name, "holders": None, HASH_FIELD: expected}
            try:
                intact = self._checks.intact(file.fileno(), expected, damaged)
            except BaseException:
                file.close()
                raise
            if not intact:
                file.close()
                raise _refuse(falcon.HTTP_409, "this copy does not match the file's recorded digest")
        if req.get_header(signing.HASH_WANTED_HEADER):
            # NOTE: a read pass before the answer, asked only by the repair loop: the copy it
            # renames into place must be the bytes this holder has, whatever the way between.
            try:
                content_hash = content_digest((file.fileno(), os.fstat(file.fileno()).st_size))
            except BaseException:
                file.close()
                raise
            nonce = req.headers_lower[signing.NONCE_HEADER]
            resp.set_header(signing.CONTENT_HASH_HEADER, content_hash)
            resp.set_header(signing.SIGNATURE_HEADER, signing.answer_signature(self._keys.current, nonce, content_hash))
        _send_file(req, resp, file)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, bucket: str, hashed: str, name: str) -> None:
        self._store.remove_file(self._directory(bucket, hashed, name), name)
        resp.status = falcon.HTTP_204


class Assembly(_FileResource):
    """A multipart object built here from the part files this node holds; a part damaged here
    is reported to this node's scrub."""

    __slots__ = ("_checks",)

    def __init__(self, store: ObjectStore, checks: FileChecks):
        super().__init__(store)
        self._checks = checks

    def on_post(self, req: falcon.Request, resp: falcon.Response, bucket: str, hashed: str, name: str) -> None:
        directory = self._directory(bucket, hashed, name)
        length = req.content_length
        if length is None or length > MAX_ASSEMBLY_DOCUMENT:
            raise _refuse(falcon.HTTP_400, "the part list is missing or too large")
        try:
            listed = orjson.loads(req.bounded_stream.read(length))["parts"]
            parts = [(str(part[0]), int(part[1]), None if len(part) < 3 else _digest(part[2])) for part in listed]
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise _refuse(falcon.HTTP_400, f"not a part list: {exc}") from None
        if not all(FILE_SHAPE.fullmatch(part) and size >= 0 for part, size, _ in parts):
            raise _refuse(falcon.HTTP_400, "not a part list")
        try:
            digest = self._store.concatenate(directory, name, parts)
        except FileNotFoundError:
            raise _refuse(falcon.HTTP_404, "a part file is not here") from None
        except EOFError:
            raise _refuse(falcon.HTTP_409, "a part file is shorter than its size") from None
        except DamagedPart as exc:
            expected = next(recorded for part, _, recorded in parts if part == exc.part)
            self._checks.report(
                {"bucket": bucket, "hashed": hashed, "file": exc.part, "holders": None, HASH_FIELD: expected}
            )
            raise _refuse(falcon.HTTP_409, str(exc)) from None
        resp.media = {HASH_FIELD: digest}


def _digest(value) -> str | None:
    """A part's recorded digest as a part list gives it (None: its record has none)."""
    if value is None:
        return None
    if not isinstance(value, str) or not DIGEST_SHAPE.fullmatch(value):
        raise ValueError(f"not a digest: {value!r}")
    return value


class Ping:
    """What a peer asks to learn whether this node can serve and take copies."""

    __slots__ = ()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = falcon.HTTP_204


class Node:
    """A registered node, removed here on behalf of a voter that asks for its own removal."""

    __slots__ = ("_members",)

    def __init__(self, members: Members):
        self._members = members

    def on_delete(self, req: falcon.Request, resp: falcon.Response, hex_id: str) -> None:
        try:
            if not HEX_SHAPE.fullmatch(hex_id):
                raise ValueError(hex_id)
            node_id = bytes.fromhex(hex_id).decode("utf-8", "surrogatepass")
        except ValueError:
            raise _refuse(falcon.HTTP_400, "not a node id in hex") from None
        node = self._members.registered(node_id)
        if node is None:
            raise _refuse(falcon.HTTP_404, f"no node {node_id!r} is registered here")
        try:
            self._members.remove(node)
        except S3Error as exc:
            raise falcon.HTTPError(exc.status, title=exc.code, description=exc.message) from None
        resp.status = falcon.HTTP_204


class Replica:
    """Images of this node's metadata replica, for a member that catches up past the compacted log."""

    __slots__ = ("_shelf",)

    def __init__(self, shelf: ImageShelf):
        self._shelf = shelf

    def on_post(self, req: falcon.Request, resp: falcon.Response, index: str) -> None:
        if not INDEX_SHAPE.fullmatch(index):
            raise _refuse(falcon.HTTP_400, "not a raft index")
        try:
            image = self._shelf.make(int(index))
        except ImageBehind as exc:
            raise _refuse(falcon.HTTP_409, str(exc)) from None
        resp.status = falcon.HTTP_201
        resp.data = orjson.dumps(image)
        resp.content_type = falcon.MEDIA_JSON


class Image:
    """One image written by `Replica`, read in pieces."""

    __slots__ = ("_shelf",)

    def __init__(self, shelf: ImageShelf):
        self._shelf = shelf

    def _path(self, image_id: str) -> str:
        if not IMAGE_ID_SHAPE.fullmatch(image_id):
            raise _refuse(falcon.HTTP_400, "not an image id")
        return self._shelf.path(image_id)

    def on_get(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        try:
            file = open(self._path(image_id), "rb", buffering=0)
        except FileNotFoundError:
            raise _refuse(falcon.HTTP_404, "no such image here") from None
        _send_file(req, resp, file)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, image_id: str) -> None:
        self._path(image_id)
        self._shelf.remove(image_id)
        resp.status = falcon.HTTP_204


def create(
    store: ObjectStore,
    keys: KeyRing,
    replays: signing.ReplayCache,
    address: str,
    members: Members | None = None,
    images: ImageShelf | None = None,
    checks: FileChecks | None = None,
) -> falcon.App:
    """`keys`: the cluster secrets' peer-signing keys; `replays` holds the nonces already served;
    `address` is this node's advertised inter-node address, which calls for it are signed for;
    `members` carries out the removals other voters hand over; `images` serves images of the
    metadata replica (a node without one of them answers 404 on its routes); `checks` verifies
    the copies read against their recorded digests (by default each time, reporting to no one)."""
    app = falcon.App(middleware=[Signed(keys, replays, address)])
    checks = checks or FileChecks(0)
    app.add_route(FILES_PATH + "{bucket}/{hashed}/{name}", Files(store, keys, checks))
    app.add_route(ASSEMBLE_PATH + "{bucket}/{hashed}/{name}", Assembly(store, checks))
    app.add_route(PING_PATH, Ping())
    if members is not None:
        app.add_route(NODES_PATH + "{hex_id}", Node(members))
    if images is not None:
        app.add_route(REPLICA_PATH + "{index}", Replica(images))
        app.add_route(IMAGES_PATH + "{image_id}", Image(images))
    return app
