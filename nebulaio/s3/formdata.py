"""multipart/form-data bodies (RFC 7578), read as a stream: fields into memory, the file never.

A browser upload (POST Object) carries its form fields first and the file last. The fields
before the file are small and read whole, within a byte budget; the file's content is handed
out chunk by chunk as the body arrives, so an upload of any size costs a fixed amount of memory.
Whatever follows the file is never read: S3 ignores fields after the file.
"""

from __future__ import annotations

from collections.abc import Callable

from nebulaio.engine.errors import S3Error

__all__ = ["FILE_FIELD", "MultipartForm", "boundary_of", "missing_field"]

FILE_FIELD = "file"
READ_CHUNK = 1024 * 1024
# RFC 2046: a boundary is 1 to 70 characters.
MAX_BOUNDARY = 70
CRLF = b"\r\n"
HEADER_END = b"\r\n\r\n"
CLOSE_MARK = b"--"
TRANSPORT_PADDING = b" \t"
FORM_TYPE = "multipart/form-data"
ENCLOSURE_CONDITION = "Bucket POST must be of the enclosure-type multipart/form-data"


def _malformed(detail: str) -> S3Error:
    return S3Error(
        "MalformedPOSTRequest", f"The body of your POST request is not well-formed multipart/form-data: {detail}"
    )


def missing_field(name: str) -> S3Error:
    """S3's refusal of a form that lacks a field it needs before the file (`name` as S3 spells it)."""
    return S3Error(
        "InvalidArgument",
        f"Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields.",
        ArgumentName=name,
        ArgumentValue="",
    )


def boundary_of(content_type: str) -> bytes:
    """The boundary named by a multipart/form-data Content-Type.

    Raises:
        S3Error: PreconditionFailed for another content type (as S3 answers it);
            MalformedPOSTRequest for a missing or invalid boundary.
    """
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != FORM_TYPE:
        raise S3Error("PreconditionFailed", Condition=ENCLOSURE_CONDITION)
    for name, value in _parameters(parameters):
        if name == "boundary":
            if not 0 < len(value) <= MAX_BOUNDARY or not value.isascii():
                break
            return value.encode("ascii")
    raise _malformed("no valid boundary in the Content-Type.")


def _parameters(text: str) -> list[tuple[str, str]]:
    """`; name=value; name="quoted value"` pairs of a header, names lower-cased.

    Quoted values may escape a character with a backslash; browsers percent-encode instead,
    which is kept as it is.
    """
    pairs = []
    position = 0
    length = len(text)
    while position < length:
        while position < length and text[position] in "; \t":
            position += 1
        equals = text.find("=", position)
        if equals < 0:
            break
        name = text[position:equals].strip().lower()
        position = equals + 1
        if position < length and text[position] == '"':
            position += 1
            value = []
            while position < length and text[position] != '"':
                if text[position] == "\\" and position + 1 < length:
                    position += 1
                value.append(text[position])
                position += 1
            position += 1
            pairs.append((name, "".join(value)))
        else:
            end = text.find(";", position)
            end = length if end < 0 else end
            pairs.append((name, text[position:end].strip()))
            position = end
    return pairs


class MultipartForm:
    """One multipart/form-data body: `read_fields` up to the file, then `read` the file's bytes.

    Field names are case-insensitive (S3 reads them so) and kept lower-cased.
    """

    __slots__ = ("_read", "_buffer", "_delimiter", "_in_part", "_consumed", "_chunk", "filename", "file_type")

    def __init__(self, read: Callable[[int], bytes], boundary: bytes, chunk: int = READ_CHUNK):
        self._read = read
        self._chunk = chunk
        # NOTE: a CRLF before the body makes the first delimiter look like every other one.
        self._buffer = bytearray(CRLF)
        self._delimiter = CRLF + b"--" + boundary
        self._in_part = False
        self._consumed = -len(CRLF)
        self.filename: str | None = None
        self.file_type: str | None = None

    def read_fields(self, limit: int) -> dict[str, str]:
        """The fields before the file, by lower-cased name; `filename` tells whether a file came.

        Raises:
            S3Error: MaxPostPreDataLengthExceeded when the body before the file's content is
                over `limit` bytes; MalformedPOSTRequest for a body that breaks the format;
                InvalidArgument for a field given twice.
        """
        fields: dict[str, str] = {}
        self._skip_preamble(limit)
        while self._next_part(limit):
            name, filename, content_type = self._part_headers(limit)
            if name == FILE_FIELD:
                self.filename = filename or ""
                self.file_type = content_type
                return fields
            if name in fields:
                raise S3Error(
                    "InvalidArgument",
                    f"Bucket POST must not contain the field {name!r} more than once.",
                    ArgumentName=name,
                    ArgumentValue=fields[name][:256],
                )
            value = bytearray()
            while piece := self.read(self._chunk):
                value += piece
                self._check_budget(limit)
            try:
                fields[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise _malformed(f"the field {name!r} is not UTF-8.") from None
        return fields

    def read(self, size: int) -> bytes:
        """Up to `size` bytes of the current part's content; b"" once it ends.

        Raises:
            S3Error: MalformedPOSTRequest when the body ends before the part's delimiter.
        """
        if not self._in_part:
            return b""
        buffer = self._buffer
        delimiter = self._delimiter
        while True:
            at = buffer.find(delimiter)
            if at == 0:
                self._take(len(delimiter))
                self._in_part = False
                return b""
            if at > 0:
                return self._take(min(at, size))
            # Bytes that cannot be the start of a delimiter split across reads are content.
            safe = len(buffer) - len(delimiter) + 1
            if safe > 0:
                return self._take(min(safe, size))
            if not self._fill():
                raise _malformed("the body ended inside a part.")

    # -- the parts of the format ------------------------------------------------------------

    def _skip_preamble(self, limit: int) -> None:
        """Drop whatever precedes the first delimiter (RFC 2046 allows a preamble)."""
        self._in_part = True
        while self.read(self._chunk):
            self._check_budget(limit)

    def _next_part(self, limit: int) -> bool:
        """After a delimiter: True when a part follows, False at the close delimiter."""
        while len(self._buffer) < len(CLOSE_MARK):
            if not self._fill():
                raise _malformed("the body ended after a delimiter.")
        if self._buffer.startswith(CLOSE_MARK):
            return False
        line = self._line(limit)
        if line.strip(TRANSPORT_PADDING):
            raise _malformed("a delimiter is followed by more than padding.")
        return True

    def _part_headers(self, limit: int) -> tuple[str, str | None, str | None]:
        """(lower-cased field name, filename, content type) of the part that starts here."""
        disposition = None
        content_type = None
        while line := self._line(limit):
            name, colon, value = line.partition(b":")
            if not colon:
                raise _malformed("a part header has no colon.")
            try:
                text = value.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise _malformed("a part header is not UTF-8.") from None
            header = name.strip().lower()
            if header == b"content-disposition":
                disposition = text
            elif header == b"content-type":
                content_type = text
        if disposition is None:
            raise _malformed("a part has no Content-Disposition.")
        kind, _, parameters = disposition.partition(";")
        if kind.strip().lower() != "form-data":
            raise _malformed("a part is not form-data.")
        named = dict(_parameters(parameters))
        if "name" not in named:
            raise _malformed("a part has no name.")
        self._in_part = True
        return named["name"].lower(), named.get("filename"), content_type

    def _line(self, limit: int) -> bytes:
        """The next CRLF-terminated line, without its CRLF."""
        while (end := self._buffer.find(CRLF)) < 0:
            if len(self._buffer) + self._consumed > limit:
                raise S3Error("MaxPostPreDataLengthExceeded", MaxPostPreDataLengthBytes=str(limit))
            if not self._fill():
                raise _malformed("the body ended inside part headers.")
        line = self._take(end + len(CRLF))[: -len(CRLF)]
        self._check_budget(limit)
        return line

    # -- the buffer -------------------------------------------------------------------------

    def _fill(self) -> bool:
        chunk = self._read(self._chunk)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def _take(self, size: int) -> bytes:
        # PERF: deleting from the front of a bytearray moves its start, not its bytes.
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._consumed += size
        return taken

    def _check_budget(self, limit: int) -> None:
        if self._consumed > limit:
            raise S3Error("MaxPostPreDataLengthExceeded", MaxPostPreDataLengthBytes=str(limit))
