"""AWS Signature V4 as a client computes it: the console signs S3 calls for the logged-in user.

The S3 layer verifies signatures; this module only produces them (header-signed requests and
presigned URLs), so the console talks to the S3 API exactly as any SDK would.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


def encode(text: str, safe: str = "") -> str:
    """S3's URI encoding: every byte but the unreserved characters (and `safe`) percent-encoded."""
    return quote(text, safe="~" + safe)


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{encode(name)}={encode(value)}" for name, value in sorted(pairs))


class Signer:
    """Signs for one access key pair in one region."""

    __slots__ = ("access_key", "_secret", "_region")

    def __init__(self, access_key: str, secret: str, region: str):
        self.access_key = access_key
        self._secret = secret
        self._region = region

    def _scope(self, date: str) -> str:
        return f"{date}/{self._region}/{SERVICE}/aws4_request"

    def _signature(self, amz_date: str, canonical: str) -> str:
        date = amz_date[:8]
        key = ("AWS4" + self._secret).encode()
        for part in (date, self._region, SERVICE, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        text = f"{ALGORITHM}\n{amz_date}\n{self._scope(date)}\n{digest}"
        return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()

    def headers(
        self, method: str, path: str, pairs: list[tuple[str, str]], headers: dict[str, str], payload: str
    ) -> dict[str, str]:
        """`headers` (names in lower case, `host` among them) plus the date, payload hash and Authorization."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        signed = dict(headers, **{"x-amz-date": amz_date, "x-amz-content-sha256": payload})
        names = sorted(signed)
        canonical_headers = "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names)
        signed_names = ";".join(names)
        canonical = f"{method}\n{path}\n{canonical_query(pairs)}\n{canonical_headers}\n{signed_names}\n{payload}"
        signed["authorization"] = (
            f"{ALGORITHM} Credential={self.access_key}/{self._scope(amz_date[:8])}, "
            f"SignedHeaders={signed_names}, Signature={self._signature(amz_date, canonical)}"
        )
        return signed

    def presign(self, host: str, path: str, expires: int) -> str:
        """The query string of a presigned GET of `path` on `host`, valid for `expires` seconds."""
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        pairs = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{self.access_key}/{self._scope(amz_date[:8])}"),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", str(expires)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        canonical = f"GET\n{path}\n{canonical_query(pairs)}\nhost:{host}\n\nhost\n{UNSIGNED_PAYLOAD}"
        return canonical_query(pairs) + "&X-Amz-Signature=" + self._signature(amz_date, canonical)
