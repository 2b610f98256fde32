"""The Range header of GetObject and HeadObject, read the way Amazon S3 reads it.

S3 serves a single byte range. It is forgiving: a header it cannot read, a range list
(`bytes=0-1,5-6`) or a reversed range (`bytes=5-2`) is ignored and the whole object is
sent with 200, as RFC 9110 allows. Only a range that is well formed but lies outside the
object is refused with 416 InvalidRange: a first byte at or past the end, a zero-length
suffix (`bytes=-0`), or any range of an empty object.
"""

import re

from nebulaio.engine.errors import S3Error

__all__ = ["parse_range"]

# ASCII digits only: int() alone would also take "+5", " 5", "5_0" and other scripts' digits.
BYTE_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.ASCII | re.IGNORECASE)


def _unsatisfiable(header: str, size: int) -> S3Error:
    return S3Error("InvalidRange", ActualObjectSize=str(size), RangeRequested=header)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (first, last) byte positions to send, or None to send the whole object.

    Raises:
        S3Error: InvalidRange when the range cannot be satisfied by an object of `size`.
    """
    if not header:
        return None
    match = BYTE_RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if first_text:
        first = int(first_text)
        if first >= size:
            raise _unsatisfiable(header, size)
        if not last_text:
            return first, size - 1
        last = int(last_text)
        if last < first:
            return None
        return first, min(last, size - 1)
    if not last_text:
        return None
    suffix_length = int(last_text)
    if suffix_length == 0 or size == 0:
        raise _unsatisfiable(header, size)
    return max(size - suffix_length, 0), size - 1
