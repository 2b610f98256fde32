"""The pure steps of AWS Signature V4 that signing and verifying share.

The S3 layer verifies requests with them (`nebulaio.s3.sigv4`) and the console signs its S3
calls with them (`nebulaio.console.signer`), so each step of the specification exists once and
AWS's published test vectors check the one copy.

NOTE: texts may hold characters that stand for raw bytes (a WSGI layer decodes the request
line as latin-1 and re-decodes it as UTF-8 with "surrogateescape"); `to_bytes` gives the
original bytes back, so what is hashed is what was on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from functools import lru_cache

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_PRESIGNED_EXPIRES = 7 * 24 * 3600

_SIGNING_KEY_CACHE_SIZE = 512


def scope(date: str, region: str) -> str:
    """The credential scope of a day (`YYYYMMDD`) in one region, for S3."""
    return f"{date}/{region}/{SERVICE}/{TERMINATOR}"


def canonical_request(
    method: str,
    uri: str,
    query: str,
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload: str,
) -> str:
    """The request as the signer saw it; a signed header the request lacks reads as empty."""
    lines = [method, uri, query]
    get = headers.get
    for name in signed_headers:
        lines.append(f"{name}:{' '.join(get(name, '').split())}")
    lines.append("")
    lines.append(";".join(signed_headers))
    lines.append(payload)
    return "\n".join(lines)


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(to_bytes(canonical)).hexdigest()}"


@lru_cache(maxsize=_SIGNING_KEY_CACHE_SIZE)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The day's key for one region and service; cached since every request of a day reuses it."""
    key = hmac.digest(to_bytes("AWS4" + secret), to_bytes(date), "sha256")
    key = hmac.digest(key, to_bytes(region), "sha256")
    key = hmac.digest(key, to_bytes(service), "sha256")
    return hmac.digest(key, TERMINATOR.encode(), "sha256")


def sign(key: bytes, text: str) -> str:
    """Hex HMAC-SHA256: the signature of a request, a chunk or a trailer."""
    return hmac.digest(key, to_bytes(text), "sha256").hex()


def to_bytes(text: str) -> bytes:
    """UTF-8, giving back the original bytes that 'surrogateescape' stood in for."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
