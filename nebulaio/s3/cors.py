"""CORS: Put/Get/DeleteBucketCors, the preflight OPTIONS request, and the headers of actual requests.

A bucket's configuration is stored as parsed rules with a revision fixed by the proposer;
each worker compiles a bucket's rules once per revision (`CorsRules`), so a request with an
Origin header costs one bucket read and a walk over the compiled rules, and a request
without one costs nothing.

As on S3: the first rule matching the Origin, the method (Access-Control-Request-Method when
sent) and, for a preflight, every requested header answers; an actual request that no rule
matches is served without CORS headers, a preflight is refused with 403.
"""

from __future__ import annotations

from nebulaio.engine.errors import S3Error
from nebulaio.s3 import xml
from nebulaio.s3.body import read_body, require_integrity_check
from nebulaio.util.ids import version_id

METHODS = frozenset(("GET", "PUT", "HEAD", "POST", "DELETE"))
MAX_RULES = 100
MAX_ID_LENGTH = 255
MAX_AGE_LIMIT = 2**31 - 1
# Repeatable elements of a CORSRule and the stored rule's field for each, in S3's order.
LIST_ELEMENTS = {
    "AllowedHeader": "headers",
    "AllowedMethod": "methods",
    "AllowedOrigin": "origins",
    "ExposeHeader": "expose",
}
# Caches of request-dependent answers must tell requests apart by these headers.
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
# A worker keeps the compiled rules of at most this many buckets.
MAX_CACHED_BUCKETS = 4096
XML_TYPE = "application/xml"


# -- the CORSConfiguration document --------------------------------------------------------


def _invalid(message: str) -> S3Error:
    return S3Error("InvalidRequest", message)


def _parse_rule(node) -> dict:
    """One CORSRule as stored: lists under LIST_ELEMENTS' names, "id" and "max_age" when given."""
    rule: dict = {field: [] for field in LIST_ELEMENTS.values()}
    for child in node:
        text = child.text or ""
        field = LIST_ELEMENTS.get(child.tag)
        if field is not None:
            rule[field].append(text)
        elif child.tag == "ID" and "id" not in rule:
            if len(text) > MAX_ID_LENGTH:
                raise S3Error("InvalidArgument", "ID length should not exceed allowed limit of 255")
            rule["id"] = text
        elif child.tag == "MaxAgeSeconds" and "max_age" not in rule:
            seconds = text.strip()
            if not (seconds.isascii() and seconds.isdigit() and int(seconds) <= MAX_AGE_LIMIT):
                raise S3Error("MalformedXML")
            rule["max_age"] = int(seconds)
        else:
            raise S3Error("MalformedXML")
    if not rule["origins"] or not rule["methods"]:
        raise S3Error("MalformedXML")
    for method in rule["methods"]:
        if method not in METHODS:
            raise _invalid(f"Found unsupported HTTP method in CORS config. Unsupported method is {method}")
    for origin in rule["origins"]:
        if origin.count("*") > 1:
            raise _invalid(f'AllowedOrigin "{origin}" can not have more than one wildcard.')
    for header in rule["headers"]:
        if header.count("*") > 1:
            raise _invalid(f'AllowedHeader "{header}" can not have more than one wildcard.')
    for header in rule["expose"]:
        if "*" in header:
            raise _invalid(
                f'ExposeHeader "{header}" contains wildcard. We currently do not support wildcard for ExposeHeader.'
            )
    return {name: value for name, value in rule.items() if value != []}


def parse_configuration(body: bytes) -> list[dict]:
    """The rules of a CORSConfiguration document, in order.

    Raises:
        S3Error: MalformedXML for a document that is not 1 to 100 well-formed CORSRules, each
            with an AllowedOrigin and an AllowedMethod; InvalidRequest for a method S3 does
            not allow, more than one `*` in an origin or allowed header, or `*` in an exposed
            header; InvalidArgument for an ID over 255 characters.
    """
    tree = xml.parse(body, "CORSConfiguration")
    if not 1 <= len(tree) <= MAX_RULES:
        raise S3Error("MalformedXML")
    rules = []
    for node in tree:
        if node.tag != "CORSRule":
            raise S3Error("MalformedXML")
        rules.append(_parse_rule(node))
    return rules


def configuration_document(rules: list[dict]) -> bytes:
    parts = []
    for rule in rules:
        parts.append("<CORSRule>")
        if "id" in rule:
            parts.append(f"<ID>{xml.escape(rule['id'])}</ID>")
        for element, field in LIST_ELEMENTS.items():
            parts.extend(f"<{element}>{xml.escape(value)}</{element}>" for value in rule.get(field, ()))
        if "max_age" in rule:
            parts.append(f"<MaxAgeSeconds>{rule['max_age']:d}</MaxAgeSeconds>")
        parts.append("</CORSRule>")
    return xml.document("CORSConfiguration", "".join(parts))


# -- matching ------------------------------------------------------------------------------


def _pattern(text: str) -> tuple[str, str | None]:
    """(text, None) for an exact match, (head, tail) for `head*tail` (`*` matches any run, even none)."""
    head, star, tail = text.partition("*")
    return (head, tail) if star else (text, None)


def _matches(pattern: tuple[str, str | None], value: str) -> bool:
    head, tail = pattern
    if tail is None:
        return value == head
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


class CompiledRule:
    """A stored rule made ready to match: patterns split once, fixed response headers joined once."""

    __slots__ = ("origins", "methods", "headers", "fixed_headers")

    def __init__(self, rule: dict):
        self.origins = tuple((origin, _pattern(origin)) for origin in rule["origins"])
        self.methods = frozenset(rule["methods"])
        self.headers = tuple(_pattern(header.lower()) for header in rule.get("headers", ()))
        fixed = {"access-control-allow-methods": ", ".join(rule["methods"])}
        if rule.get("expose"):
            fixed["access-control-expose-headers"] = ", ".join(rule["expose"])
        if "max_age" in rule:
            fixed["access-control-max-age"] = str(rule["max_age"])
        fixed["vary"] = VARY
        self.fixed_headers = fixed

    def allowed_origin(self, origin: str, method: str, requested_headers: list[str]) -> str | None:
        """Access-Control-Allow-Origin's value when this rule allows the request, else None.

        `requested_headers` are lower-case; each must match an AllowedHeader.
        """
        if method not in self.methods:
            return None
        allowed = next((text for text, pattern in self.origins if _matches(pattern, origin)), None)
        if allowed is None:
            return None
        for name in requested_headers:
            if not any(_matches(pattern, name) for pattern in self.headers):
                return None
        return "*" if allowed == "*" else origin

    def answer(self, headers: dict, allow_origin: str) -> None:
        """Add this rule's CORS headers to the response's (lower-case) `headers`."""
        headers["access-control-allow-origin"] = allow_origin
        if allow_origin != "*":
            headers["access-control-allow-credentials"] = "true"
        headers.update(self.fixed_headers)


def first_match(
    rules: tuple[CompiledRule, ...], origin: str, method: str, requested_headers: list[str]
) -> tuple[CompiledRule, str] | None:
    """The first rule that allows the request, with its Access-Control-Allow-Origin value."""
    for rule in rules:
        allow_origin = rule.allowed_origin(origin, method, requested_headers)
        if allow_origin is not None:
            return rule, allow_origin
    return None


def requested_headers(value: str | None) -> list[str]:
    """The names of an Access-Control-Request-Headers value, lower-cased, in the order sent."""
    if not value:
        return []
    return [name for name in (part.strip().lower() for part in value.split(",")) if name]


class CorsRules:
    """A worker's compiled rules, per bucket, valid while the bucket's stored revision is unchanged."""

    __slots__ = ("_compiled",)

    def __init__(self) -> None:
        self._compiled: dict[str, tuple[str, tuple[CompiledRule, ...]]] = {}

    def of(self, bucket: dict) -> tuple[CompiledRule, ...] | None:
        """The compiled rules of a bucket record, or None when it has no CORS configuration."""
        stored = bucket.get("cors")
        if stored is None:
            return None
        cached = self._compiled.get(bucket["name"])
        if cached is not None and cached[0] == stored["revision"]:
            return cached[1]
        rules = tuple(CompiledRule(rule) for rule in stored["rules"])
        if len(self._compiled) >= MAX_CACHED_BUCKETS:
            self._compiled.clear()
        self._compiled[bucket["name"]] = (stored["revision"], rules)
        return rules


# -- handlers ------------------------------------------------------------------------------


def _bucket(api, name: str | None) -> dict | None:
    if name is None:
        return None
    try:
        return api.layer.bucket(name)
    except S3Error:
        return None


def put_bucket_cors(api, request, resp) -> None:
    require_integrity_check(request)
    rules = parse_configuration(read_body(request, api.request_timeout))
    api.layer.configure_bucket(request.bucket, "cors", {"revision": version_id(), "rules": rules})


def get_bucket_cors(api, request, resp) -> None:
    stored = api.layer.bucket(request.bucket).get("cors")
    if stored is None:
        raise S3Error("NoSuchCORSConfiguration", BucketName=request.bucket)
    resp.content_type = XML_TYPE
    resp.data = configuration_document(stored["rules"])


def delete_bucket_cors(api, request, resp) -> None:
    api.layer.configure_bucket(request.bucket, "cors", None)
    resp.status = 204


def preflight(api, request, resp) -> None:
    """OPTIONS on a bucket or object: answered from the bucket's rules, without authentication.

    Raises:
        S3Error: BadRequest without an Origin, or (on a bucket with rules) without a valid
            Access-Control-Request-Method; AccessForbidden (403) when the bucket does not
            exist, has no rules, or no rule allows the request.
    """
    headers = request.headers
    origin = headers.get("origin")
    if origin is None:
        raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
    method = headers.get("access-control-request-method")
    shown_method = method or "OPTIONS"
    bucket = _bucket(api, request.bucket)
    if bucket is None:
        raise S3Error("AccessForbidden", "CORSResponse: Bucket not found", Method=shown_method, ResourceType="BUCKET")
    rules = api.cors.of(bucket)
    if rules is None:
        raise S3Error(
            "AccessForbidden",
            "CORSResponse: CORS is not enabled for this bucket.",
            Method=shown_method,
            ResourceType="BUCKET",
        )
    if method not in METHODS:
        raise S3Error("BadRequest", f"Invalid Access-Control-Request-Method: {method or 'null'}")
    requested = requested_headers(headers.get("access-control-request-headers"))
    found = first_match(rules, origin, method, requested)
    if found is None:
        raise S3Error("AccessForbidden", Method=method, ResourceType="OBJECT" if request.key else "BUCKET")
    rule, allow_origin = found
    rule.answer(resp._headers, allow_origin)
    if requested:
        resp._headers["access-control-allow-headers"] = ", ".join(requested)


def annotate(api, request, resp) -> None:
    """Add CORS headers to the answer (success or error) of a request that carries an Origin.

    Nothing is added when the bucket does not exist, has no rules, or no rule matches.
    """
    bucket = _bucket(api, request.bucket)
    rules = None if bucket is None else api.cors.of(bucket)
    if rules is None:
        return
    headers = request.headers
    method = headers.get("access-control-request-method") or request.method
    found = first_match(rules, headers["origin"], method, [])
    if found is not None:
        found[0].answer(resp._headers, found[1])
