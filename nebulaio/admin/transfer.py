"""`nebulaio admin bucket import DIR BUCKET` and `export BUCKET DIR`: a directory tree to and
from a bucket through the S3 API, as any S3 client would, with a progress bar.

Bodies are streamed in pieces both ways (a file is never read whole), so a tree of any size
moves in constant memory. Requests are signed with Signature V4 for the key pair given; the
payload is sent unsigned (`UNSIGNED-PAYLOAD`), its integrity checked by the ETag (MD5) the
node answers.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from defusedxml import ElementTree

from nebulaio.admin.progress import Progress, human_size
from nebulaio.console.signer import Signer, encode
from nebulaio.util.sigv4spec import UNSIGNED_PAYLOAD

DEFAULT_S3_URL = "http://127.0.0.1:9000"
PIECE = 1 << 20
TIMEOUT = 60.0
S3_NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class TransferFailed(Exception):
    """What stopped an import or export, for the user."""


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    region: str


class S3Client:
    """Signed requests to one S3 endpoint over one kept-alive connection."""

    def __init__(self, url: str, credentials: Credentials):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise TransferFailed(f"Not an S3 address: {url!r} (http://HOST:PORT or https://HOST:PORT).")
        self._https = parsed.scheme == "https"
        self._host = parsed.netloc
        self._signer = Signer(credentials.access_key, credentials.secret_key, credentials.region)
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, timeout=TIMEOUT)
        return self._connection

    def send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] = (),
        length: int = 0,
        body: Iterator[bytes] = (),
    ) -> http.client.HTTPResponse:
        """A request whose body (`length` bytes from `body`) is streamed; the response is unread."""
        headers = self._signer.headers(
            method, path, list(query), {"host": self._host, "content-length": str(length)}, UNSIGNED_PAYLOAD
        )
        target = path + ("?" + "&".join(f"{encode(k)}={encode(v)}" for k, v in query) if query else "")
        connection = self._connect()
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders()
            for piece in body:
                connection.send(piece)
            return connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise TransferFailed(f"Cannot reach {self._host}: {error}") from error

    def checked(self, response: http.client.HTTPResponse, what: str) -> http.client.HTTPResponse:
        """The response if it is a success; else its S3 error, read, as a TransferFailed."""
        if response.status < 300:
            return response
        document = response.read()
        try:
            root = ElementTree.fromstring(document)
            problem = f"{root.findtext('Message')} ({root.findtext('Code')}, HTTP {response.status})"
        except ElementTree.ParseError:
            problem = f"HTTP {response.status}"
        raise TransferFailed(f"{what}: {problem}")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def object_path(bucket: str, key: str = "") -> str:
    return "/" + encode(bucket) + ("/" + encode(key, safe="/") if key else "")


def _pieces(fh, length: int, progress: Progress, md5) -> Iterator[bytes]:
    left = length
    while left:
        piece = fh.read(min(PIECE, left))
        if not piece:
            raise TransferFailed(f"{fh.name} shrank while it was sent.")
        left -= len(piece)
        md5.update(piece)
        progress.advance(len(piece))
        yield piece


def local_files(directory: str) -> list[tuple[str, str, int]]:
    """(path, key below the directory with `/` separators, size) of every file, in key order."""
    if not os.path.isdir(directory):
        raise TransferFailed(f"{directory} is not a directory.")
    found = []
    for root, directories, names in os.walk(directory):
        directories.sort()
        for name in names:
            path = os.path.join(root, name)
            if os.path.isfile(path):
                key = os.path.relpath(path, directory).replace(os.sep, "/")
                found.append((path, key, os.path.getsize(path)))
    return sorted(found, key=lambda item: item[1])


def import_tree(client: S3Client, directory: str, bucket: str, prefix: str = "", stream=None) -> str:
    """PUT every file below `directory` as `prefix` + its relative path; each ETag is checked."""
    files = local_files(directory)
    progress = Progress(len(files), sum(size for _, _, size in files), stream)
    for path, key, size in files:
        md5 = hashlib.md5()
        with open(path, "rb") as fh:
            response = client.send(
                "PUT", object_path(bucket, prefix + key), length=size, body=_pieces(fh, size, progress, md5)
            )
        client.checked(response, f"PUT {prefix + key}")
        response.read()
        if response.getheader("ETag", "").strip('"') != md5.hexdigest():
            raise TransferFailed(f"PUT {prefix + key}: the node stored other bytes than were sent (ETag mismatch).")
        progress.file_done()
    progress.draw(last=True)
    return f"imported {len(files)} files ({human_size(progress.total)}) from {directory} into bucket {bucket}"


def list_objects(client: S3Client, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
    """(key, size) of every object under `prefix`, a page of ListObjectsV2 at a time."""
    token = None
    while True:
        query = [("list-type", "2"), ("prefix", prefix)] + ([("continuation-token", token)] if token else [])
        response = client.checked(client.send("GET", object_path(bucket), query), f"listing bucket {bucket}")
        root = ElementTree.fromstring(response.read())
        for item in root.iter(S3_NAMESPACE + "Contents"):
            yield item.findtext(S3_NAMESPACE + "Key"), int(item.findtext(S3_NAMESPACE + "Size"))
        if root.findtext(S3_NAMESPACE + "IsTruncated") != "true":
            return
        token = root.findtext(S3_NAMESPACE + "NextContinuationToken")


def local_path(directory: str, relative: str) -> str | None:
    """Where a key's file goes below `directory`, or None for a key that would leave it."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
        return None
    target = os.path.realpath(os.path.join(directory, *parts))
    return target if target.startswith(os.path.realpath(directory) + os.sep) else None


def export_tree(client: S3Client, bucket: str, directory: str, prefix: str = "", stream=None) -> str:
    """GET every object under `prefix` into `directory` (the key less the prefix as its path);
    a key that names no file below the directory is refused, nothing written for it."""
    objects = list(list_objects(client, bucket, prefix))
    progress = Progress(len(objects), sum(size for _, size in objects), stream)
    os.makedirs(directory, exist_ok=True)
    skipped = []
    for key, size in objects:
        relative = key[len(prefix) :]
        target = local_path(directory, relative)
        if target is None or relative.endswith("/"):
            skipped.append(key)
            progress.advance(size)
            progress.file_done()
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        response = client.checked(client.send("GET", object_path(bucket, key)), f"GET {key}")
        _receive(response, target, progress)
        progress.file_done()
    progress.draw(last=True)
    done = len(objects) - len(skipped)
    summary = f"exported {done} objects ({human_size(progress.total)}) from bucket {bucket} into {directory}"
    if skipped:
        shown = ", ".join(repr(key) for key in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        summary += f"; {len(skipped)} skipped, their keys name no file below it: {shown}"
    return summary


def _receive(response: http.client.HTTPResponse, target: str, progress: Progress) -> None:
    """The body into `target`, through a partial file renamed once complete."""
    partial = target + ".part"
    try:
        with open(partial, "wb") as fh:
            while piece := response.read(PIECE):
                fh.write(piece)
                progress.advance(len(piece))
        os.replace(partial, target)
    except (OSError, http.client.HTTPException) as error:
        raise TransferFailed(f"Cannot write {target}: {error}") from error
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def credentials(args, environ=os.environ) -> Credentials:
    access_key = args.access_key or environ.get("AWS_ACCESS_KEY_ID")
    secret_key = args.secret_key or environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        raise TransferFailed(
            "Give the S3 key pair: --access-key and --secret-key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
        )
    return Credentials(access_key, secret_key, args.region or environ.get("AWS_DEFAULT_REGION") or "us-east-1")


def run(args, transfer: Callable[[S3Client], str]) -> str:
    client = S3Client(args.s3_url or os.environ.get("NEBULAIO_S3_URL") or DEFAULT_S3_URL, credentials(args))
    try:
        return transfer(client)
    finally:
        client.close()
