"""Request checksums match the published check values and botocore's own checksums."""

import base64

import pytest
from botocore.httpchecksum import Crc32Checksum, Sha1Checksum, Sha256Checksum
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.util.checksums import ALGORITHMS, new_checksum

# The CRC catalogue's check values: the checksum of b"123456789".
CHECK_VALUES = {"crc32": 0xCBF43926, "crc32c": 0xE3069283}
BOTOCORE = {"crc32": Crc32Checksum, "sha1": Sha1Checksum, "sha256": Sha256Checksum}


@pytest.mark.parametrize("name", sorted(CHECK_VALUES))
def test_crc_check_values(name):
    checksum = new_checksum(name)
    checksum.update(b"123456789")
    assert checksum.b64digest() == base64.b64encode(CHECK_VALUES[name].to_bytes(4, "big")).decode()


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
        if name in BOTOCORE:
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


@pytest.mark.parametrize("name", ["crc64nvme", "md5", "", "sha512"])
def test_unsupported_algorithms_are_s3_errors(name):
    with pytest.raises(S3Error) as caught:
        new_checksum(name)
    assert caught.value.code == "InvalidArgument"
