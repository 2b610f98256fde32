"""The additional checksums S3 clients send in x-amz-checksum-* headers and trailers.

Every algorithm answers `update(data)` and `b64digest()`: the base64 of the big-endian
digest, exactly as the header carries it, so a caller compares two strings.

A multipart object's checksum is one of two types. COMPOSITE is the checksum of the parts'
checksums, suffixed -N; any algorithm but CRC64NVME has it. FULL_OBJECT is the checksum of
the whole object's bytes; only the CRCs have it, because a CRC of two pieces is combined from
the pieces' CRCs and lengths without reading the bytes again.
"""

from __future__ import annotations

import base64
import hashlib
import zlib

import crc32c
import xxhash
from awscrt import checksums as crt

from nebulaio.engine.errors import S3Error

ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256", "sha512", "md5", "xxhash64", "xxhash3", "xxhash128")
COMPOSITE = "COMPOSITE"
FULL_OBJECT = "FULL_OBJECT"
CHECKSUM_TYPES = (COMPOSITE, FULL_OBJECT)
# name: (update(data, value), combine(value1, value2, length2), digest bytes)
_CRCS = {
    "crc32": (zlib.crc32, crt.combine_crc32, 4),
    "crc32c": (crc32c.crc32c, crt.combine_crc32c, 4),
    "crc64nvme": (crt.crc64nvme, crt.combine_crc64nvme, 8),
}
# The digests' constructors; xxhash's digests are big-endian, as S3's.
_DIGESTS = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "md5": hashlib.md5,
    "xxhash64": xxhash.xxh64,
    "xxhash3": xxhash.xxh3_64,
    "xxhash128": xxhash.xxh3_128,
}
# The checksum types each algorithm has for a multipart upload; the first is its default.
MULTIPART_TYPES = {
    "crc32": (COMPOSITE, FULL_OBJECT),
    "crc32c": (COMPOSITE, FULL_OBJECT),
    "crc64nvme": (FULL_OBJECT,),
    **{name: (COMPOSITE,) for name in _DIGESTS},
}


class _Crc:
    __slots__ = ("_update", "_value", "_width")

    def __init__(self, name: str) -> None:
        self._update, _, self._width = _CRCS[name]
        self._value = 0

    def update(self, data) -> None:
        self._value = self._update(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode()


class _Digest:
    __slots__ = ("_hash",)

    def __init__(self, name: str) -> None:
        self._hash = _DIGESTS[name]()

    def update(self, data) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()

    def b64digest(self) -> str:
        return base64.b64encode(self._hash.digest()).decode()


def new_checksum(name: str) -> _Crc | _Digest:
    """A running checksum for an algorithm name as clients spell it (any case)."""
    algorithm = name.lower()
    if algorithm in _CRCS:
        return _Crc(algorithm)
    if algorithm in _DIGESTS:
        return _Digest(algorithm)
    raise S3Error(
        "InvalidArgument",
        f"Checksum algorithm {name[:32]!r} is not supported; use one of {', '.join(ALGORITHMS)}.",
        ArgumentName="x-amz-checksum-algorithm",
        ArgumentValue=name[:64],
    )


def composite_checksum(algorithm: str, part_checksums: list[str]) -> str:
    """A COMPOSITE multipart checksum: the checksum of the parts' checksums, then -N."""
    checksum = new_checksum(algorithm)
    for value in part_checksums:
        checksum.update(base64.b64decode(value))
    return f"{checksum.b64digest()}-{len(part_checksums)}"


def full_object_checksum(algorithm: str, part_checksums: list[str], part_sizes: list[int]) -> str:
    """A FULL_OBJECT multipart checksum: the CRC of all the parts' bytes, from theirs."""
    _, combine, width = _CRCS[algorithm]
    value = 0
    for checksum, size in zip(part_checksums, part_sizes, strict=True):
        value = combine(value, int.from_bytes(base64.b64decode(checksum), "big"), size)
    return base64.b64encode(value.to_bytes(width, "big")).decode()
