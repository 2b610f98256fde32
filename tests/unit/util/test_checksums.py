"""Request checksums match the published check values and botocore's own checksums."""

import base64

import pytest
from botocore.httpchecksum import (
    Crc32Checksum,
    CrtCrc32cChecksum,
    CrtCrc64NvmeChecksum,
    CrtXxhash3Checksum,
    CrtXxhash64Checksum,
    CrtXxhash128Checksum,
    Sha1Checksum,
    Sha256Checksum,
    Sha512Checksum,
)
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.util.checksums import ALGORITHMS, composite_checksum, full_object_checksum, new_checksum

# The CRC catalogue's check values: the checksum of b"123456789".
CHECK_VALUES = {"crc32": 0xCBF43926, "crc32c": 0xE3069283, "crc64nvme": 0xAE8B14860A799888}
BOTOCORE = {
    "crc32": Crc32Checksum,
    "crc32c": CrtCrc32cChecksum,
    "crc64nvme": CrtCrc64NvmeChecksum,
    "sha1": Sha1Checksum,
    "sha256": Sha256Checksum,
    "sha512": Sha512Checksum,
    "xxhash64": CrtXxhash64Checksum,
    "xxhash3": CrtXxhash3Checksum,
    "xxhash128": CrtXxhash128Checksum,
}


@pytest.mark.parametrize("name", sorted(CHECK_VALUES))
def test_crc_check_values(name):
    checksum = new_checksum(name)
    checksum.update(b"123456789")
    assert checksum.digest() == CHECK_VALUES[name].to_bytes(len(checksum.digest()), "big")
    assert len(checksum.digest()) == (8 if name == "crc64nvme" else 4)


def test_empty_input():
    assert new_checksum("crc32").b64digest() == "AAAAAA=="
    assert new_checksum("sha256").b64digest() == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


@given(pieces=st.lists(st.binary(max_size=300), max_size=6))
def test_incremental_updates_match_botocore(pieces):
    for name in ALGORITHMS:
        ours = new_checksum(name.upper())
        for piece in pieces:
            ours.update(piece)
        whole = new_checksum(name)
        whole.update(b"".join(pieces))
        assert ours.b64digest() == whole.b64digest()
        if name in BOTOCORE:  # botocore has no MD5 checksum: it sends Content-MD5
            theirs = BOTOCORE[name]()
            theirs.update(b"".join(pieces))
            assert ours.b64digest() == theirs.b64digest()


def test_memoryview_input():
    for name in ALGORITHMS:
        checksum = new_checksum(name)
        checksum.update(memoryview(b"abc"))
        reference = new_checksum(name)
        reference.update(b"abc")
        assert checksum.b64digest() == reference.b64digest()


@pytest.mark.parametrize("name", ["crc64", "", "sha3", "xxhash32"])
def test_unsupported_algorithms_are_s3_errors(name):
    with pytest.raises(S3Error) as caught:
        new_checksum(name)
    assert caught.value.code == "InvalidArgument"


def _b64(name: str, data: bytes) -> str:
    checksum = new_checksum(name)
    checksum.update(data)
    return checksum.b64digest()


@given(pieces=st.lists(st.binary(max_size=3000), min_size=1, max_size=6))
def test_full_object_checksum_is_the_checksum_of_the_joined_parts(pieces):
    for name in ("crc32", "crc32c", "crc64nvme"):
        combined = full_object_checksum(name, [_b64(name, piece) for piece in pieces], [len(p) for p in pieces])
        assert combined == _b64(name, b"".join(pieces))


def test_composite_checksum_is_the_checksum_of_the_part_checksums():
    parts = [b"first", b"second"]
    digests = b"".join(base64.b64decode(_b64("sha256", part)) for part in parts)
    assert composite_checksum("sha256", [_b64("sha256", part) for part in parts]) == f"{_b64('sha256', digests)}-2"
