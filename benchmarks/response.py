"""Incremental HTTP/1.1 response parser for the load generator.

It keeps a body only when asked (listings) or when it is an error document; other bodies are
counted, never copied.
"""

_HEAD, _LENGTH, _UNTIL_EOF, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _DONE = range(8)
_NO_BODY_STATUSES = frozenset((204, 304))


class ResponseError(ValueError):
    """The peer sent something that is not an HTTP/1.1 response."""


class ResponseParser:
    """Feed bytes until `feed` returns True; then status, headers and body describe the response."""

    __slots__ = (
        "status",
        "headers",
        "body_length",
        "keep_alive",
        "_chunks",
        "_head_only",
        "_keep_body",
        "_pending",
        "_state",
        "_remaining",
    )

    def __init__(self) -> None:
        self._pending = b""
        self.begin(head_only=False, keep_body=False)

    def begin(self, head_only: bool, keep_body: bool) -> None:
        """Expects the next response; head_only for HEAD requests, whose responses carry no body."""
        self.status = 0
        self.headers: dict[bytes, bytes] = {}
        self.body_length = 0
        self.keep_alive = True
        self._chunks: list[bytes] = []
        self._head_only = head_only
        self._keep_body = keep_body
        self._state = _HEAD
        self._remaining = 0

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)

    def feed(self, data: bytes) -> bool:
        """Consumes data; True once the response is complete (bytes past it wait for the next one)."""
        if self._pending:
            data = self._pending + data
            self._pending = b""
        pos, end = 0, len(data)
        while True:
            state = self._state
            if state == _LENGTH or state == _CHUNK_DATA or state == _UNTIL_EOF:
                take = end - pos if state == _UNTIL_EOF else min(self._remaining, end - pos)
                if take:
                    if self._keep_body:
                        self._chunks.append(data[pos : pos + take])
                    self.body_length += take
                    pos += take
                    if state != _UNTIL_EOF:
                        self._remaining -= take
                if state == _UNTIL_EOF or self._remaining:
                    return False
                self._state = _DONE if state == _LENGTH else _CHUNK_END
            elif state == _HEAD:
                blank = data.find(b"\r\n\r\n", pos)
                if blank < 0:
                    self._pending = data[pos:]
                    return False
                self._parse_head(data[pos:blank])
                pos = blank + 4
            elif state == _CHUNK_SIZE or state == _TRAILERS:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    self._pending = data[pos:]
                    return False
                line = data[pos:eol]
                pos = eol + 2
                if state == _TRAILERS:
                    if not line:
                        self._state = _DONE
                    continue
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise ResponseError(f"bad chunk size line {line[:40]!r}") from None
                self._remaining = size
                self._state = _CHUNK_DATA if size else _TRAILERS
            elif state == _CHUNK_END:
                if end - pos < 2:
                    self._pending = data[pos:]
                    return False
                if data[pos : pos + 2] != b"\r\n":
                    raise ResponseError("chunk not followed by CRLF")
                pos += 2
                self._state = _CHUNK_SIZE
            if self._state == _DONE:
                if pos < end:
                    self._pending = data[pos:]
                return True

    @property
    def complete(self) -> bool:
        return self._state == _DONE

    def discard(self, available: int) -> int:
        """Counts up to `available` body bytes that need not be seen; returns how many it took.

        PERF: a large GET's body is counted straight from the receive buffer, never copied.
        """
        if self._state != _LENGTH or self._keep_body or self._pending:
            return 0
        take = min(self._remaining, available)
        self._remaining -= take
        self.body_length += take
        if not self._remaining:
            self._state = _DONE
        return take

    def feed_eof(self) -> bool:
        """The peer closed; True if that completes the response (a body delimited by the close)."""
        if self._state == _UNTIL_EOF:
            self._state = _DONE
            return True
        return False

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            raise ResponseError(f"bad status line {status_line[:40]!r}")
        try:
            status = int(status_line[9:12])
        except ValueError:
            raise ResponseError(f"bad status line {status_line[:40]!r}") from None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            return  # an interim response: the real one follows
        self.status = status
        self.headers = headers
        if status >= 300:
            self._keep_body = True  # error documents are small and say what went wrong
        connection = headers.get(b"connection", b"").lower()
        if status_line[7:8] == b"0":
            self.keep_alive = connection == b"keep-alive"
        else:
            self.keep_alive = connection != b"close"
        if self._head_only or status in _NO_BODY_STATUSES:
            self._state = _DONE
        elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            self._state = _CHUNK_SIZE
        elif b"content-length" in headers:
            try:
                self._remaining = int(headers[b"content-length"])
            except ValueError:
                raise ResponseError("bad Content-Length") from None
            self._state = _LENGTH if self._remaining else _DONE
        else:
            self.keep_alive = False
            self._state = _UNTIL_EOF
