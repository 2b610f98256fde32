"""Range headers read as S3 reads them: one range, forgiving syntax, 416 only when unsatisfiable."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.s3.ranges import parse_range

UNSATISFIABLE = "unsatisfiable"


def reference(first: int | None, last: int | None, size: int):
    """What S3 does with `bytes=<first>-<last>` (None for an empty side), spelled out case by case."""
    if first is None and last is None:
        return None
    if first is None:
        if last == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - last), size - 1
    if first >= size:
        return UNSATISFIABLE
    if last is None:
        return first, size - 1
    if last < first:
        return None
    return first, min(last, size - 1)


def outcome(header: str, size: int):
    try:
        return parse_range(header, size)
    except S3Error as error:
        assert error.code == "InvalidRange"
        assert error.status == 416
        assert error.fields == {"ActualObjectSize": str(size), "RangeRequested": header}
        return UNSATISFIABLE


positions = st.none() | st.integers(min_value=0, max_value=2**70)
sizes = st.integers(min_value=0, max_value=10_000) | st.integers(min_value=0, max_value=2**64)


@given(first=positions, last=positions, size=sizes)
def test_single_ranges_agree_with_the_reference(first, last, size):
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    assert outcome(header, size) == reference(first, last, size)


@given(first=positions, last=positions, size=st.integers(min_value=1, max_value=10_000))
def test_a_satisfiable_range_lies_inside_the_object(first, last, size):
    header = f"bytes={'' if first is None else first}-{'' if last is None else last}"
    result = outcome(header, size)
    if isinstance(result, tuple):
        start, end = result
        assert 0 <= start <= end < size


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-499", 2000, (0, 499)),
        ("bytes=500-", 2000, (500, 1999)),
        ("bytes=-500", 2000, (1500, 1999)),
        ("bytes=-5000", 2000, (0, 1999)),
        ("bytes=1900-5000", 2000, (1900, 1999)),
        ("bytes=1999-1999", 2000, (1999, 1999)),
        ("BYTES=0-0", 2000, (0, 0)),
        (" bytes=1-2 ", 2000, (1, 2)),
    ],
)
def test_satisfiable_ranges(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=0-1,4-5",  # S3 serves one range; a list is ignored, not refused
        "bytes=5-2",
        "bytes=-",
        "bytes=",
        "bytes=a-b",
        "bytes=+1-2",
        "bytes=1-2-3",
        "bytes 1-2",
        "items=0-5",
        "bytes=١-٢",  # non-ASCII digits
    ],
)
def test_headers_s3_ignores(header):
    assert parse_range(header, 100) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=100-", 100),
        ("bytes=100-200", 100),
        ("bytes=-0", 100),
        ("bytes=0-", 0),
        ("bytes=-1", 0),
        ("bytes=0-0", 0),
    ],
)
def test_unsatisfiable_ranges_are_invalid_range(header, size):
    with pytest.raises(S3Error) as caught:
        parse_range(header, size)
    assert caught.value.code == "InvalidRange"
    assert caught.value.fields == {"ActualObjectSize": str(size), "RangeRequested": header}
