"""The additional checksums S3 clients send in x-amz-checksum-* headers and trailers.

Every algorithm answers `update(data)` and `b64digest()`: the base64 of the big-endian
digest, exactly as the header carries it, so a caller compares two strings.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

import crc32c

from nebulaio.engine.errors import S3Error

ALGORITHMS = ("crc32", "crc32c", "sha1", "sha256")


class _Crc32:
    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = 0

    def update(self, data) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode()


class _Crc32c(_Crc32):
    __slots__ = ()

    def update(self, data) -> None:
        self._value = crc32c.crc32c(data, self._value)


class _Hashlib:
    __slots__ = ("_hash",)

    def __init__(self, name: str) -> None:
        self._hash = hashlib.new(name)

    def update(self, data) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()

    def b64digest(self) -> str:
        return base64.b64encode(self._hash.digest()).decode()


def new_checksum(name: str) -> _Crc32 | _Hashlib:
    """A running checksum for an algorithm name as clients spell it (any case)."""
    algorithm = name.lower()
    if algorithm == "crc32":
        return _Crc32()
    if algorithm == "crc32c":
        return _Crc32c()
    if algorithm in ("sha1", "sha256"):
        return _Hashlib(algorithm)
    raise S3Error(
        "InvalidArgument",
        f"Checksum algorithm {name!r} is not supported; use one of {', '.join(ALGORITHMS)}.",
        ArgumentName="x-amz-checksum-algorithm",
        ArgumentValue=name,
    )
