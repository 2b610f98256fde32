"""Object bytes sealed in fixed-size pages, so a range read opens only the pages it needs.

A stream of plaintext is cut into PAGE-byte pages; each is sealed with AES-256-GCM under the
segment's key, with the page number as the nonce and, as associated data, whether it is the
segment's last page (a stream cut short at a page boundary does not verify). A sealed page is
its ciphertext and 16-byte tag, so where a page lives in the file follows from its number.

An object is one segment, or one per part for a multipart upload. A segment's key is the
object's data key itself (a PUT: every data key is fresh) or, for a part, HMAC-SHA256 of the
upload's data key and the part's own random salt: a part uploaded again under the same number
never reuses a (key, nonce) pair.
"""

from __future__ import annotations

import hmac
import io
from collections.abc import Callable, Generator, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PAGE = 64 * 1024
TAG = 16
SEALED_PAGE = PAGE + TAG
LAST = b"\x01"
NOT_LAST = b"\x00"


class CorruptPage(ValueError):
    """A sealed page that does not verify: altered, truncated, or sealed under another key."""


def sealed_size(size: int) -> int:
    """The bytes on disk of a segment of `size` plaintext bytes."""
    return size + -(-size // PAGE) * TAG


def segment_key(data_key: bytes, salt: str) -> bytes:
    """The key a segment is sealed under (see the module's docstring); `salt` is hex, "" for none."""
    return data_key if not salt else hmac.digest(data_key, bytes.fromhex(salt), "sha256")


def _nonce(page: int) -> bytes:
    return page.to_bytes(12, "big")


class PageSealer:
    """Seals a stream written in pieces of any size; `seal` returns the whole pages ready so far.

    A full page is held back until more bytes come, because only `finish` knows which page is
    the last one.
    """

    __slots__ = ("_aead", "_pending", "_page", "size")

    def __init__(self, key: bytes):
        self._aead = AESGCM(key)
        self._pending = bytearray()
        self._page = 0
        self.size = 0

    def seal(self, data) -> bytes:
        self._pending += data
        self.size += len(data)
        if len(self._pending) <= PAGE:
            return b""
        sealed = []
        whole = (len(self._pending) - 1) // PAGE * PAGE
        with memoryview(self._pending) as view:
            for start in range(0, whole, PAGE):
                sealed.append(self._aead.encrypt(_nonce(self._page), view[start : start + PAGE], NOT_LAST))
                self._page += 1
        del self._pending[:whole]
        return b"".join(sealed)

    def finish(self) -> bytes:
        """The last page (nothing for an empty stream)."""
        if not self._pending:
            return b""
        last = self._aead.encrypt(_nonce(self._page), bytes(self._pending), LAST)
        self._pending.clear()
        return last


def seal_bytes(key: bytes, data) -> bytes:
    sealer = PageSealer(key)
    return sealer.seal(data) + sealer.finish()


SealedReader = Callable[[int, int], object]
"""(start, length) of the sealed bytes -> a readable (read(size), close())."""


class PlainRange:
    """A plaintext byte range of a sealed object, read page by page (never the whole object).

    `segments` are (plaintext size, segment key) in order; `on_close` runs once it is closed
    (the body it reads from is closed with it). It has no fileno(), so the server sends what
    read() returns, never the file itself.
    """

    __slots__ = ("_chunks", "_open", "_on_close")

    def __init__(
        self,
        read_sealed: SealedReader,
        segments: list[tuple[int, bytes]],
        start: int,
        length: int,
        on_close: Callable[[], None] | None = None,
    ):
        self._on_close = on_close
        self._open = None
        end = start + length  # exclusive
        plan = []
        plain_offset = sealed_offset = 0
        for size, key in segments:
            if length and plain_offset < end and start < plain_offset + size:
                first = max(start - plain_offset, 0) // PAGE
                last = (min(end, plain_offset + size) - plain_offset - 1) // PAGE
                plan.append((plain_offset, sealed_offset, size, key, first, last))
            plain_offset += size
            sealed_offset += sealed_size(size)
        if plan:
            # NOTE: opened here, not on the first read, so a holder that cannot be reached is
            # refused before the answer's headers are sent
            sealed_start = plan[0][1] + plan[0][4] * SEALED_PAGE
            _, last_offset, last_size, _, _, last_page = plan[-1]
            sealed_end = last_offset + min(sealed_size(last_size), (last_page + 1) * SEALED_PAGE)
            self._open = read_sealed(sealed_start, sealed_end - sealed_start)
        self._chunks = self._decrypt(plan, start, end)

    def _decrypt(self, plan: list, start: int, end: int) -> Iterator[bytes]:
        """The plaintext of [start, end), page by page, from one read of the sealed bytes that
        hold it (its pages are contiguous, across segments too)."""
        if not plan:
            return
        sealed_pages = _pages(self._open)
        next(sealed_pages)
        for plain_offset, _, size, key, first, last in plan:
            aead = AESGCM(key)
            final_page = (size - 1) // PAGE
            for page in range(first, last + 1):
                sealed = sealed_pages.send(min(SEALED_PAGE, size - page * PAGE + TAG))
                try:
                    plain = aead.decrypt(_nonce(page), sealed, LAST if page == final_page else NOT_LAST)
                except InvalidTag:
                    raise CorruptPage(f"page {page} does not verify") from None
                page_start = plain_offset + page * PAGE
                yield plain[max(start - page_start, 0) : min(end - page_start, len(plain))]

    def read(self, size: int = -1) -> bytes:
        """The next decrypted piece (up to a page), whatever smaller block is asked for; all
        that is left when `size` is negative.

        PERF: the WSGI server writes whatever it gets (as for a holder's stream), and one
        page in one call costs less than the 8 KiB blocks Falcon asks for.
        """
        if size is None or size < 0:
            return b"".join(self._chunks)
        return next(self._chunks, b"")

    def close(self) -> None:
        try:
            self._chunks.close()
            if self._open is not None:
                self._open.close()
                self._open = None
        finally:
            if self._on_close is not None:
                self._on_close()
                self._on_close = None


def _pages(readable) -> Generator[bytes, int, None]:
    """Sealed pages of the sizes sent in, from a readable that may return more or fewer bytes
    than asked (a holder's stream returns whole network blocks)."""
    held = bytearray()
    size = yield b""
    while True:
        while len(held) < size:
            chunk = readable.read(size - len(held))
            if not chunk:
                raise CorruptPage("the sealed object ends early")
            held += chunk
        page = bytes(held[:size])
        del held[:size]
        size = yield page


def object_segments(record: dict, data_key: bytes) -> list[tuple[int, bytes]]:
    """(plaintext size, key) of each segment of a sealed object's record."""
    salts = record["sse"].get("salts")
    if salts is None:
        return [(record["size"], data_key)]
    return [(size, segment_key(data_key, salt)) for size, salt in zip(record["part_sizes"], salts, strict=True)]


def open_plain(body, record: dict, data_key: bytes, start: int, length: int) -> PlainRange:
    """A plaintext range of a sealed object whose bytes are `body`: held in memory (inline) or
    a body of the data plane (range(start, length) readable), closed with the range."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        held = bytes(body)

        def read_sealed(offset: int, size: int):
            return io.BytesIO(held[offset : offset + size])

        return PlainRange(read_sealed, object_segments(record, data_key), start, length)
    return PlainRange(body.range, object_segments(record, data_key), start, length, body.close)
