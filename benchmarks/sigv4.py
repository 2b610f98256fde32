"""AWS Signature V4 header auth: the load generator's cut-down signer, and a general one.

Signer: every request signs the same three headers (a copy adds its x-amz-copy-source) and an
unsigned payload, so a signature costs one SHA-256 and one HMAC; the signing key is derived
once per day and the timestamp once per second. sign_target signs any request as given (the
fuzz campaign and the tests' raw requests), and chunk_signature its aws-chunked chunks.
"""

import hashlib
import hmac
import time
from urllib.parse import quote, unquote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNED_HEADERS = "host;x-amz-content-sha256;x-amz-date"
ALGORITHM = "AWS4-HMAC-SHA256"

Headers = tuple[tuple[str, str], ...]


def encode_path(path: str) -> str:
    """S3's URI encoding of a path: every byte but the unreserved ones and '/'."""
    return quote(path, safe="/")


def canonical_query(params: dict[str, str]) -> str:
    """Sorted, fully encoded query string; being canonical it also serves as the request's query."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in sorted(params.items()))


class Signer:
    """Signs requests for one set of credentials."""

    __slots__ = (
        "access_key",
        "secret_key",
        "region",
        "service",
        "_second",
        "_amz_date",
        "_day",
        "_signing_key",
        "_scope",
        "_credential",
    )

    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1", service: str = "s3"):
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.service = service
        self._second = -1
        self._amz_date = ""
        self._day = ""
        self._signing_key = b""
        self._scope = ""
        self._credential = ""

    def _refresh_clock(self, now: float) -> None:
        second = int(now)
        if second == self._second:
            return
        self._second = second
        self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        day = self._amz_date[:8]
        if day != self._day:
            self._day = day
            key = hmac.digest(("AWS4" + self.secret_key).encode(), day.encode(), "sha256")
            for part in (self.region, self.service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._signing_key = key
            self._scope = f"{day}/{self.region}/{self.service}/aws4_request"
            self._credential = (
                f"{ALGORITHM} Credential={self.access_key}/{self._scope}, SignedHeaders={SIGNED_HEADERS}, Signature="
            )

    def sign(
        self, method: str, path: str, query: str, host: str, now: float | None = None, headers: Headers = ()
    ) -> tuple[str, str]:
        """Returns (x-amz-date, Authorization) for an already encoded path and canonical query.

        `headers` are further (lower-case name, value) pairs to sign, e.g. x-amz-copy-source:
        S3 refuses an x-amz-* header that is not signed.
        """
        self._refresh_clock(time.time() if now is None else now)
        amz_date = self._amz_date
        credential = self._credential
        if headers:
            signed = dict(headers, host=host)
            signed.update({"x-amz-content-sha256": UNSIGNED_PAYLOAD, "x-amz-date": amz_date})
            names = sorted(signed)
            canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
            signed_names = ";".join(names)
            credential = credential.replace(SIGNED_HEADERS, signed_names)
        else:
            canonical_headers = f"host:{host}\nx-amz-content-sha256:{UNSIGNED_PAYLOAD}\nx-amz-date:{amz_date}\n"
            signed_names = SIGNED_HEADERS
        canonical_request = f"{method}\n{path}\n{query}\n{canonical_headers}\n{signed_names}\n{UNSIGNED_PAYLOAD}"
        string_to_sign = (
            f"{ALGORITHM}\n{amz_date}\n{self._scope}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        signature = hmac.new(self._signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        return amz_date, credential + signature


class V4Signature:
    """The headers of one SigV4-signed request, and what aws-chunked bodies chain from."""

    __slots__ = ("amz_date", "headers", "scope", "signature", "signing_key")

    def __init__(self, headers: dict, signing_key: bytes, signature: str, amz_date: str, scope: str):
        self.headers = headers
        self.signing_key = signing_key
        self.signature = signature
        self.amz_date = amz_date
        self.scope = scope


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = []
    for item in filter(None, query.split("&")):
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def signing_key(secret_key: str, day: str, region: str, service: str = "s3") -> bytes:
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def sign_target(
    method: str,
    host: str,
    target: str,
    headers: dict,
    payload_hash: str,
    access_key: str,
    secret_key: str,
    when: float | None = None,
    region: str = "us-east-1",
) -> V4Signature:
    """Sign a request whose target (path and optional query) is already percent-encoded.

    Written from AWS's specification, not from the server's code, so a caller signs what a
    real client would even where botocore gives no control (a chosen date, payload hash or chunk).
    """
    path, _, query = target.partition("?")
    stamp = time.gmtime(time.time() if when is None else when)
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", stamp)
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    signed = {k.lower(): str(v).strip() for k, v in headers.items()}
    signed.update({"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash})
    names = sorted(signed)
    header_lines = "".join(f"{name}:{signed[name]}\n" for name in names)
    canonical = "\n".join([method, path, _canonical_query(query), header_lines, ";".join(names), payload_hash])
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = signing_key(secret_key, amz_date[:8], region)
    signature = _hmac(key, to_sign).hex()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return V4Signature(signed, key, signature, amz_date, scope)


def chunk_signature(signature: V4Signature, previous: str, chunk: bytes) -> str:
    """The signature of one aws-chunked chunk, chained from the previous one (the seed first)."""
    to_sign = (
        f"AWS4-HMAC-SHA256-PAYLOAD\n{signature.amz_date}\n{signature.scope}\n{previous}\n{EMPTY_SHA256}\n"
        f"{hashlib.sha256(chunk).hexdigest()}"
    )
    return hmac.new(signature.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()


def presign_target(
    method: str,
    host: str,
    path: str,
    access_key: str,
    secret_key: str,
    expires: int,
    when: float | None = None,
    region: str = "us-east-1",
) -> str:
    """The query string of a presigned URL (SigV4 query auth) for an already encoded `path`."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if when is None else when))
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    params = {
        "X-Amz-Algorithm": ALGORITHM,
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    query = "&".join(f"{name}={quote(value, safe='-_.~')}" for name, value in sorted(params.items()))
    canonical = "\n".join([method, path, query, f"host:{host}\n", "host", UNSIGNED_PAYLOAD])
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = _hmac(signing_key(secret_key, amz_date[:8], region), to_sign).hex()
    return f"{query}&X-Amz-Signature={signature}"
