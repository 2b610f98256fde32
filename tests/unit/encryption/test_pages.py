"""Sealed pages: any range of any layout of segments reads back as the plaintext, and a page
altered, moved or cut short does not verify."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nebulaio.encryption.pages import PAGE, CorruptPage, PageSealer, PlainRange, seal_bytes, sealed_size, segment_key

KEY = bytes(range(32))


def sealed(segments: list[bytes], salts: list[str]) -> tuple[bytes, list[tuple[int, bytes]]]:
    keys = [segment_key(KEY, salt) for salt in salts]
    return b"".join(seal_bytes(key, data) for key, data in zip(keys, segments, strict=True)), [
        (len(data), key) for data, key in zip(segments, keys, strict=True)
    ]


class Greedy:
    """A stream that returns more than it is asked for, as a holder's stream does."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(max(size, 0) + 100_000)

    def close(self) -> None:
        pass


def read_range(blob: bytes, layout, start: int, length: int, block: int = 8191, stream=io.BytesIO) -> bytes:
    plain = PlainRange(lambda offset, size: stream(blob[offset : offset + size]), layout, start, length)
    out = b""
    while chunk := plain.read(block):
        out += chunk
    plain.close()
    return out


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.sampled_from([0, 1, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE + 7]), min_size=1, max_size=3),
    data=st.data(),
    stream=st.sampled_from([io.BytesIO, Greedy]),
)
def test_every_range_reads_back(sizes, data, stream):
    segments = [os.urandom(size) for size in sizes]
    blob, layout = sealed(segments, [os.urandom(16).hex() for _ in sizes])
    assert len(blob) == sum(sealed_size(size) for size in sizes)
    whole = b"".join(segments)
    start = data.draw(st.integers(0, len(whole)))
    length = data.draw(st.integers(0, len(whole) - start))
    assert read_range(blob, layout, start, length, stream=stream) == whole[start : start + length]


@given(pieces=st.lists(st.integers(0, 3 * PAGE), max_size=4))
@settings(max_examples=30, deadline=None)
def test_sealing_in_pieces_of_any_size_is_sealing_whole(pieces):
    data = os.urandom(sum(pieces))
    sealer = PageSealer(KEY)
    out, offset = b"", 0
    for piece in pieces:
        out += sealer.seal(data[offset : offset + piece])
        offset += piece
    out += sealer.finish()
    assert read_range(out, [(len(data), KEY)], 0, len(data)) == data


def test_an_altered_page_does_not_verify():
    data = os.urandom(3 * PAGE)
    blob = bytearray(seal_bytes(KEY, data))
    blob[PAGE + 100] ^= 1
    assert read_range(bytes(blob), [(len(data), KEY)], 0, 10) == data[:10]  # the page before is whole
    with pytest.raises(CorruptPage):
        read_range(bytes(blob), [(len(data), KEY)], PAGE, 10)


def test_an_object_cut_at_a_page_boundary_does_not_verify():
    data = os.urandom(2 * PAGE)
    blob = seal_bytes(KEY, data)
    first_page_only = blob[: sealed_size(PAGE)]
    with pytest.raises(CorruptPage):  # its last page was sealed as "not the last"
        read_range(first_page_only, [(PAGE, KEY)], 0, PAGE)


def test_a_wrong_key_does_not_verify():
    blob = seal_bytes(KEY, b"secret")
    with pytest.raises(CorruptPage):
        read_range(blob, [(6, os.urandom(32))], 0, 6)
