"""Crash safety: kill -9 of the whole node during PUTs loses no acknowledged object and shows
no partial one; start-up cleans temp/ and orphaned object files; overwrites are atomic."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import S3Connection, wait_for

from nebulaio.storage.objects import key_hash

INLINE_LIMIT = 16 * 1024
WRITERS = 4
ACKED_BEFORE_KILL = 120
KILL_AFTER_SECONDS = 8.0
OLD_MTIME = time.time() - 3600


def _body(rng: random.Random, index: int) -> bytes:
    """Alternately inline-sized and file-backed bodies."""
    size = rng.randint(1, INLINE_LIMIT - 1) if index % 2 else rng.randint(INLINE_LIMIT + 1, 400 * 1024)
    return rng.randbytes(size)


def _object_files(data: Path, bucket: str) -> set[str]:
    root = data / "objects" / bucket
    return {str(p.relative_to(root)) for p in root.glob("*/*")} if root.exists() else set()


def test_kill9_during_puts_loses_nothing_acknowledged(node_factory):
    node = node_factory()
    bucket = f"crash-{uuid.uuid4().hex[:12]}"
    setup = S3Connection(node)
    assert setup.request("PUT", f"/{bucket}")[0] == 200
    setup.close()

    attempted: dict[str, str] = {}
    sizes: dict[str, int] = {}
    acked: dict[str, str] = {}
    lock = threading.Lock()
    killed = threading.Event()

    def write(writer: int) -> None:
        rng = random.Random(writer)
        connection = S3Connection(node, timeout=10)
        for index in range(100_000):
            if killed.is_set():
                return
            key = f"w{writer}/{index:05d}"
            body = _body(rng, index)
            digest = hashlib.md5(body).hexdigest()
            with lock:
                attempted[key] = digest
                sizes[key] = len(body)
            try:
                status, headers, _ = connection.request("PUT", f"/{bucket}/{key}", body)
            except OSError:
                return
            if status == 200:
                assert headers["etag"] == f'"{digest}"'
                with lock:
                    acked[key] = digest

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for t in threads:
        t.start()
    wait_for(lambda: len(acked) >= ACKED_BEFORE_KILL, KILL_AFTER_SECONDS + 30, "acknowledged PUTs")
    os.killpg(node.process.pid, signal.SIGKILL)
    killed.set()
    node.process.wait(10)
    for t in threads:
        t.join(30)
    wait_for(lambda: not node.group_pids(), 10.0, "the killed node's processes to go")

    # Garbage a crash can leave: a body in flight, and bytes no metadata points to.
    temp_leftover = node.data / "temp" / "leftover"
    temp_leftover.write_bytes(b"partial body")
    orphan = node.data / "objects" / bucket / key_hash("never/committed") / "0123456789abcdef"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(os.urandom(INLINE_LIMIT * 2))
    os.utime(orphan, (OLD_MTIME, OLD_MTIME))
    fresh = node.data / "objects" / bucket / key_hash("never/committed") / "fedcba9876543210"
    fresh.write_bytes(b"a PUT in flight")
    future = time.time() + 600  # younger than the coming start: must be left alone
    os.utime(fresh, (future, future))

    node.start()
    assert not any((node.data / "temp").iterdir()), "temp/ was not cleaned at start-up"

    reader = S3Connection(node)
    try:
        for key, digest in acked.items():
            status, _, data = reader.request("GET", f"/{bucket}/{key}")
            assert status == 200, f"acknowledged {key} lost: {status}"
            assert hashlib.md5(data).hexdigest() == digest, f"acknowledged {key} has other bytes"
        for key, digest in attempted.items():
            if key in acked:
                continue
            status, _, data = reader.request("GET", f"/{bucket}/{key}")
            assert status in (200, 404), (key, status)
            if status == 200:
                assert hashlib.md5(data).hexdigest() == digest, f"unacknowledged {key} is partial"
        listed: list[str] = []
        token = ""
        for _ in range(100):
            status, _, page = reader.request("GET", f"/{bucket}?list-type=2{token}")
            assert status == 200
            listed += [part.split(b"</Key>")[0].decode() for part in page.split(b"<Key>")[1:]]
            if b"<NextContinuationToken>" not in page:
                break
            next_token = page.split(b"<NextContinuationToken>")[1].split(b"<")[0].decode()
            token = "&continuation-token=" + next_token.replace("=", "%3D").replace("+", "%2B").replace("/", "%2F")
        assert set(acked) <= set(listed)
        assert set(listed) <= set(attempted)
    finally:
        reader.close()

    wait_for(lambda: not orphan.exists(), 15.0, "the sweep to remove the orphaned object file")
    assert fresh.exists(), "the sweep removed a file younger than the node's start"
    fresh.unlink()
    # Once swept, the object files left are exactly those of the listed file-backed objects.
    file_backed = sum(1 for key in listed if sizes[key] > INLINE_LIMIT)
    assert len(_object_files(node.data, bucket)) == file_backed
    node.stop()


# --- atomic overwrite ---------------------------------------------------------------------

OVERWRITES = 40
READ_SECONDS = 20.0


@pytest.mark.parametrize(
    "sizes", [(3 * 1024 * 1024, 2 * 1024 * 1024 + 7), (1024, 1024 * 1024)], ids=["file-to-file", "inline-to-file"]
)
def test_overwrite_is_seen_whole_old_or_new(node, bucket, sizes):
    """A reader hammering GET while a writer alternates two bodies sees one of them, whole."""
    bodies = [os.urandom(size) for size in sizes]
    digests = {hashlib.md5(body).hexdigest() for body in bodies}
    setup = S3Connection(node)
    assert setup.request("PUT", f"/{bucket}/hot", bodies[0])[0] == 200
    setup.close()
    done = threading.Event()
    seen: list[str] = []
    errors: list[str] = []

    def read() -> None:
        connection = S3Connection(node)
        deadline = time.monotonic() + READ_SECONDS
        while not done.is_set() and time.monotonic() < deadline:
            status, _, data = connection.request("GET", f"/{bucket}/hot")
            digest = hashlib.md5(data).hexdigest()
            if status != 200 or digest not in digests:
                errors.append(f"{status}: {len(data)} bytes {data[:200]!r}")
            seen.append(digest)
        connection.close()

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    writer = S3Connection(node)
    try:
        for index in range(OVERWRITES):
            assert writer.request("PUT", f"/{bucket}/hot", bodies[index % 2])[0] == 200
    finally:
        done.set()
        writer.close()
        for t in readers:
            t.join(READ_SECONDS + 10)
    assert not errors, errors[:5]
    assert len(seen) >= OVERWRITES // 2
    assert set(seen) == digests, "the readers never saw one of the two bodies"
