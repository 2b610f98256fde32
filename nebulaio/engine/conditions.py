"""Preconditions of reads and copies: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since.

One rule serves GET and HEAD (`REQUEST_CONDITIONS`) and CopyObject's source
(`COPY_SOURCE_CONDITIONS`, the x-amz-copy-source-if-* headers). It follows RFC 9110's order
with S3's precedence: a true If-Match makes If-Unmodified-Since irrelevant, and a present
If-None-Match makes If-Modified-Since irrelevant. So If-Match true with If-Unmodified-Since
false is a 200, and If-None-Match false with If-Modified-Since true is a 304.

Conditional writes (If-None-Match: * and If-Match on PutObject) are decided elsewhere, at
apply time, because only the replica's writer sees the state a write lands on.
"""

from __future__ import annotations

from nebulaio.util.timefmt import parse_http_date

__all__ = ["COPY_SOURCE_CONDITIONS", "NOT_MODIFIED", "PRECONDITION_FAILED", "REQUEST_CONDITIONS", "evaluate"]

NOT_MODIFIED = 304
PRECONDITION_FAILED = 412

# (if-match, if-none-match, if-modified-since, if-unmodified-since) header names.
REQUEST_CONDITIONS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
COPY_SOURCE_CONDITIONS = tuple(f"x-amz-copy-source-{name}" for name in REQUEST_CONDITIONS)

# The Condition element of S3's PreconditionFailed error names the header as S3 spells it.
CONDITION_NAMES = {
    "if-match": "If-Match",
    "if-none-match": "If-None-Match",
    "if-modified-since": "If-Modified-Since",
    "if-unmodified-since": "If-Unmodified-Since",
}
CONDITION_NAMES.update({f"x-amz-copy-source-{name}": f"x-amz-copy-source-{name}" for name in REQUEST_CONDITIONS})


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-Match / If-None-Match list (`"a", W/"b"` or `*`) names the bare hex `etag`.

    Quotes are optional, as S3 accepts them either way; a weak tag compares by its value.
    """
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tag = tag.strip('"')
        if tag == "*" or tag == etag:
            return True
    return False


def _modified_after(mtime_ms: int, header: str) -> bool | None:
    """Whether the object changed after the header's date (to the second); None if it is no date."""
    since = parse_http_date(header)
    if since is None:
        return None
    return mtime_ms // 1000 > since


def evaluate(etag: str, mtime_ms: int, headers: dict, names: tuple[str, str, str, str]) -> tuple[int, str] | None:
    """None when the request may proceed, else (NOT_MODIFIED or PRECONDITION_FAILED, condition).

    `names` are the four header names to read (REQUEST_CONDITIONS or COPY_SOURCE_CONDITIONS);
    `condition` is the one that failed, spelled for S3's error document. A date that does not
    parse is ignored, as RFC 9110 says. A copy answers NOT_MODIFIED as 412 too.
    """
    if_match, if_none_match, if_modified_since, if_unmodified_since = names
    match = headers.get(if_match)
    if match is not None:
        if not etag_matches(match, etag):
            return PRECONDITION_FAILED, CONDITION_NAMES[if_match]
    else:
        unmodified = headers.get(if_unmodified_since)
        if unmodified is not None and _modified_after(mtime_ms, unmodified):
            return PRECONDITION_FAILED, CONDITION_NAMES[if_unmodified_since]
    none_match = headers.get(if_none_match)
    if none_match is not None:
        if etag_matches(none_match, etag):
            return NOT_MODIFIED, CONDITION_NAMES[if_none_match]
        return None
    modified = headers.get(if_modified_since)
    if modified is not None and _modified_after(mtime_ms, modified) is False:
        return NOT_MODIFIED, CONDITION_NAMES[if_modified_since]
    return None
