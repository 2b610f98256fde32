"""HTTP/1.1 request heads and chunked bodies, parsed strictly: what the worker refuses never
reaches an application.

A request head is refused (400) when its request line is not `METHOD TARGET HTTP/1.x`, its
target holds anything but visible ASCII, a field name is not a token, a value holds a control
character, Content-Length is anything but digits (or appears twice with different values), or
Transfer-Encoding is anything but `chunked` (or comes with a Content-Length): the shapes
request smuggling hides in.
"""

from __future__ import annotations

import re

MAX_HEAD = 1 << 20
"""Bytes of a request head: presigned URLs for 1024-byte keys and user metadata are long."""
MAX_FIELDS = 256
MAX_FIELD = 16384
MAX_LENGTH_DIGITS = 64
"""A longer Content-Length is no length; a shorter absurd one is the application's to refuse."""

_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/1\.([01])")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters a head may not hold, but for tab and the CR and LF of line ends."""
_CGI_KEYS = {b"content-type": "CONTENT_TYPE", b"content-length": "CONTENT_LENGTH"}
_NAMES: dict[bytes, tuple[bytes, str | None]] = {}
"""Header names as sent, once found to be tokens: (lowercase, WSGI key or None)."""
_NAMES_KEPT = 1024
_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"expect", b"connection"))
"""Fields that decide how the request is framed and answered."""


class BadRequest(Exception):
    """A request that is not HTTP/1.1 this server takes: answered 400 and the connection closed."""


class RequestHead:
    __slots__ = ("method", "target", "minor", "environ", "length", "chunked", "expect_continue", "keep_alive")

    def __init__(self, method, target, minor, environ, length, chunked, expect_continue, keep_alive):
        self.method = method
        self.target = target
        self.minor = minor
        self.environ = environ
        self.length = length
        self.chunked = chunked
        self.expect_continue = expect_continue
        self.keep_alive = keep_alive


def _field_name(name: bytes) -> tuple[bytes, str | None]:
    """A header name's lowercase form and WSGI key (None for a name with '_', which could pose
    as one with '-'); BadRequest when it is not a token.

    PERF: the caller looks a name up in _NAMES first: a client sends the same few names on
    every request, and a known one skips the token check and the key's construction.
    """
    if not _TOKEN.fullmatch(name):
        raise BadRequest(f"a header name is not a token: {name[:64]!r}")
    lower = name.lower()
    if b"_" in lower:
        key = None
    else:
        key = _CGI_KEYS.get(lower) or "HTTP_" + lower.decode("ascii").upper().replace("-", "_")
    if len(_NAMES) < _NAMES_KEPT:
        _NAMES[name] = (lower, key)
    return lower, key


def parse_head(block: bytes) -> RequestHead:
    """The request in `block`: its head up to (not including) the blank line that ends it."""
    lines = block.split(b"\r\n")
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None:
        raise BadRequest("the request line is not 'METHOD TARGET HTTP/1.x' with a visible-ASCII target")
    # PERF: the whole head at once, not field by field; every CR and LF must be a line end's.
    line_ends = len(lines) - 1
    if block.count(b"\r") != line_ends or block.count(b"\n") != line_ends or _CONTROL.search(block):
        raise BadRequest("a control character in a header field")
    if len(lines) > MAX_FIELDS + 1:
        raise BadRequest(f"more than {MAX_FIELDS} header fields")
    method, target, minor = line.group(1).decode("ascii"), line.group(2).decode("ascii"), int(line.group(3))
    environ: dict = {}
    length = None
    lengths = set()
    transfer_encoding = None
    expect = connection = ""
    for raw in lines[1:]:
        name, colon, value = raw.partition(b":")
        if not colon:
            raise BadRequest(f"a header line is not 'name: value': {raw[:64]!r}")
        if len(raw) > MAX_FIELD:
            raise BadRequest(f"a header field is longer than {MAX_FIELD} bytes")
        name, key = _NAMES.get(name) or _field_name(name)
        value = value.strip(b" \t")
        text = value.decode("latin-1")
        if name in _FRAMING:
            if name == b"content-length":
                if not value.isdigit() or len(value) > MAX_LENGTH_DIGITS:
                    raise BadRequest("Content-Length is not a number")
                lengths.add(int(value))
            elif name == b"transfer-encoding":
                coding = text.lower()
                transfer_encoding = coding if transfer_encoding is None else f"{transfer_encoding}, {coding}"
            elif name == b"expect":
                expect = text.lower()
            else:
                connection = text.lower()
        if key is None:
            continue
        if key in environ:
            if key == "CONTENT_LENGTH":
                continue
            text = f"{environ[key]},{text}"
        environ[key] = text
    if len(lengths) > 1:
        raise BadRequest("two different Content-Length values")
    if lengths:
        length = lengths.pop()
    chunked = False
    if transfer_encoding is not None:
        if transfer_encoding != "chunked":
            raise BadRequest(f"Transfer-Encoding {transfer_encoding!r} is not taken: only 'chunked'")
        if length is not None:
            raise BadRequest("both Content-Length and Transfer-Encoding")
        chunked = True
    if minor == 0:
        keep_alive = "keep-alive" in connection
    else:
        keep_alive = "close" not in connection
    return RequestHead(method, target, minor, environ, length, chunked, expect == "100-continue", keep_alive)


class ChunkedDecoder:
    """An HTTP chunked body fed in pieces as they arrive: `feed` returns the body bytes it
    completed and what follows the body's end (the connection's next request)."""

    __slots__ = ("_pending", "_left", "_state", "done")

    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self):
        self._pending = b""
        self._left = 0
        self._state = self._SIZE
        self.done = False

    def feed(self, data: bytes) -> tuple[list[bytes], bytes]:
        body: list[bytes] = []
        data = self._pending + data if self._pending else data
        self._pending = b""
        position = 0
        end = len(data)
        while position < end and not self.done:
            if self._state == self._DATA:
                take = min(self._left, end - position)
                body.append(data[position : position + take])
                position += take
                self._left -= take
                if not self._left:
                    self._state = self._DATA_END
                continue
            if self._state == self._DATA_END:
                if end - position < 2:
                    self._pending = data[position:]
                    return body, b""
                if data[position : position + 2] != b"\r\n":
                    raise BadRequest("a chunk does not end with CRLF")
                position += 2
                self._state = self._SIZE
                continue
            newline = data.find(b"\r\n", position)
            if newline < 0:
                if end - position > MAX_FIELD:
                    raise BadRequest("a chunk size or trailer line is too long")
                self._pending = data[position:]
                return body, b""
            line = data[position:newline]
            position = newline + 2
            if self._state == self._SIZE:
                size = _CHUNK_SIZE.fullmatch(line)
                if size is None:
                    raise BadRequest("a chunk size is not hexadecimal")
                self._left = int(size.group(1), 16)
                self._state = self._DATA if self._left else self._TRAILER
            elif not line:  # the blank line after the trailers
                self.done = True
        return body, data[position:]
