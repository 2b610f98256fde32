"""AWS Signature V4 as a client computes it: the console signs S3 calls for the logged-in user.

The S3 layer verifies signatures; this module only produces them (header-signed requests and
presigned URLs), so the console talks to the S3 API exactly as any SDK would. The steps of the
specification come from `nebulaio.util.sigv4spec`, the ones the S3 layer verifies with.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from nebulaio.util.sigv4spec import (
    ALGORITHM,
    SERVICE,
    UNSIGNED_PAYLOAD,
    canonical_request,
    scope,
    sign,
    signing_key,
    string_to_sign,
)


def encode(text: str, safe: str = "") -> str:
    """S3's URI encoding: every byte but the unreserved characters (and `safe`) percent-encoded."""
    return quote(text, safe="~" + safe)


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Decoded name/value pairs, each encoded, sorted."""
    return "&".join(f"{encode(name)}={encode(value)}" for name, value in sorted(pairs))


class Signer:
    """Signs for one access key pair in one region."""

    __slots__ = ("access_key", "_secret", "_region")

    def __init__(self, access_key: str, secret: str, region: str):
        self.access_key = access_key
        self._secret = secret
        self._region = region

    def _signature(self, amz_date: str, canonical: str) -> str:
        date = amz_date[:8]
        key = signing_key(self._secret, date, self._region, SERVICE)
        return sign(key, string_to_sign(amz_date, scope(date, self._region), canonical))

    def headers(
        self, method: str, path: str, pairs: list[tuple[str, str]], headers: dict[str, str], payload: str
    ) -> dict[str, str]:
        """`headers` (names in lower case, `host` among them) plus the date, payload hash and Authorization."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        signed = dict(headers, **{"x-amz-date": amz_date, "x-amz-content-sha256": payload})
        names = sorted(signed)
        canonical = canonical_request(method, path, canonical_query(pairs), signed, names, payload)
        signed["authorization"] = (
            f"{ALGORITHM} Credential={self.access_key}/{scope(amz_date[:8], self._region)}, "
            f"SignedHeaders={';'.join(names)}, Signature={self._signature(amz_date, canonical)}"
        )
        return signed

    def presign(self, host: str, path: str, expires: int) -> str:
        """The query string of a presigned GET of `path` on `host`, valid for `expires` seconds."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        pairs = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{self.access_key}/{scope(amz_date[:8], self._region)}"),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", str(expires)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        query = canonical_query(pairs)
        canonical = canonical_request("GET", path, query, {"host": host}, ["host"], UNSIGNED_PAYLOAD)
        return query + "&X-Amz-Signature=" + self._signature(amz_date, canonical)
