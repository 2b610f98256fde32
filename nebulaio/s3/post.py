"""PostObject: an HTML form uploads a file straight to a bucket, allowed by a signed policy.

The steps, in S3's order: read the fields before the file; expand `${filename}` in the key;
verify the signature of the policy; check the policy against the fields; stream the file into
the object layer, held to the policy's content-length-range; answer as the form asks
(a redirect, or status 200, 201 with a PostResponse document, or 204).

A form without credentials is the anonymous principal's: it needs no policy, and lands only
where the bucket's ACL or policy lets everyone write (a public-write bucket), as in S3.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote, urlencode, urlsplit

from nebulaio.engine.errors import S3Error
from nebulaio.engine.names import check_object_key
from nebulaio.s3 import access, encryption, sigv4, xml
from nebulaio.s3.acl import check_canned_acl, ownership
from nebulaio.s3.body import RequestPayload
from nebulaio.s3.formdata import MultipartForm, boundary_of, missing_field
from nebulaio.s3.objects import META_PREFIX, content_fields
from nebulaio.s3.postpolicy import check_policy, parse_policy
from nebulaio.s3.versioning import written_version_header

# S3 refuses more than 20 KB of form before the file's content.
MAX_FORM_BYTES = 20 * 1024
FILENAME_VARIABLE = "${filename}"
REDIRECT_FIELDS = ("success_action_redirect", "redirect")
STATUS_FIELD = "success_action_status"
SUCCESS_STATUSES = {"200": 200, "201": 201, "204": 204}
DEFAULT_STATUS = 204
REDIRECT_STATUS = 303
REDIRECT_SCHEMES = ("http", "https")
XML_TYPE = "application/xml"
CREDENTIAL_FIELD = "AWSAccessKeyId"
"""What S3 names missing when a form carries a policy but no credentials to sign it."""
# Form fields become response headers of every GET of the object: values without line breaks
# or controls, metadata names that are HTTP tokens.
HEADER_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+", re.ASCII)


class FormFile:
    """The form's file as the object layer reads a body (see `engine.objects.Payload`).

    Its size is known only at its end, so the policy's content-length-range is held while
    it streams: too large stops the upload at once, too small refuses it before the commit.
    """

    __slots__ = ("size", "_form", "_range", "_received")

    def __init__(self, form: MultipartForm, length_range: tuple[int, int] | None):
        self.size = None
        self._form = form
        self._range = length_range
        self._received = 0

    def read(self, size: int) -> bytes:
        chunk = self._form.read(size)
        self._received += len(chunk)
        if self._range is not None and self._received > self._range[1]:
            raise S3Error(
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
                MaxSizeAllowed=str(self._range[1]),
            )
        return chunk

    def finish(self, md5_digest: bytes) -> dict:
        if self._range is not None and self._received < self._range[0]:
            raise S3Error(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
                ProposedSize=str(self._received),
                MinSizeAllowed=str(self._range[0]),
            )
        return {}


def post_object(api, request, resp) -> None:
    boundary = boundary_of(request.headers.get("content-type", ""))
    body = RequestPayload(request.environ, request.headers, None, api.request_timeout)
    form = MultipartForm(body.read, boundary)
    fields = form.read_fields(MAX_FORM_BYTES)
    if form.filename is None:
        raise S3Error("IncorrectNumberOfFilesInPostRequest")
    if "key" not in fields:
        raise missing_field("key")
    key = fields["key"] = fields["key"].replace(FILENAME_VARIABLE, form.filename)
    lookups = api.iam.lookups()
    signing = sigv4.authenticate_form(fields, lookups.secret_for)
    if signing is None and "policy" in fields:
        raise missing_field(CREDENTIAL_FIELD)
    access.identify(request, lookups, signing)
    access.authorize_key(api, request, "PostObject", key)
    length_range = None
    if signing is not None:
        policy = parse_policy(fields["policy"])
        check_policy(policy, fields, request.bucket, time.time())
        length_range = policy.length_range
    check_object_key(key)
    stored = content_fields(fields)
    stored.update(ownership(api, request, check_canned_acl(fields.get("acl"))))
    _check_headers(stored)
    sealing = encryption.new_key(api, request, key, fields)
    body = FormFile(form, length_range)
    record = api.layer.commit(api.layer.propose_put(request.bucket, key, body, stored, None, sealing, event="Post"))
    written_version_header(resp, record)
    encryption.answer_headers(resp, record)
    _answer(request, resp, fields, key, record["etag"])


def _check_headers(stored: dict) -> None:
    """Refuse content headers and metadata that could not travel in a response header."""
    for name in stored["meta"]:
        if TOKEN.fullmatch(name) is None:
            raise S3Error(
                "InvalidArgument",
                "A metadata field's name is not a valid header name.",
                ArgumentName=META_PREFIX + name,
                ArgumentValue="",
            )
    values = [("content-type", stored["ctype"]), *stored["headers"].items(), *stored["meta"].items()]
    for name, value in values:
        if HEADER_UNSAFE.search(value):
            raise S3Error(
                "InvalidArgument",
                "A form field that is stored as a header holds a control character.",
                ArgumentName=name,
                ArgumentValue=value[:256],
            )


def _answer(request, resp, fields: dict, key: str, etag: str) -> None:
    headers = resp._headers
    quoted_etag = f'"{etag}"'
    location = _object_url(request, key)
    headers["etag"] = quoted_etag
    headers["location"] = location
    redirect = next((fields[name] for name in REDIRECT_FIELDS if fields.get(name)), None)
    if redirect is not None and _is_redirect_url(redirect):
        separator = "&" if "?" in redirect else "?"
        query = urlencode({"bucket": request.bucket, "key": key, "etag": quoted_etag}, quote_via=quote)
        headers["location"] = redirect + separator + query
        resp.status = REDIRECT_STATUS
        return
    status = SUCCESS_STATUSES.get(fields.get(STATUS_FIELD, ""), DEFAULT_STATUS)
    resp.status = status
    if status == 201:
        resp.content_type = XML_TYPE
        resp.data = xml.post_response(location, request.bucket, key, etag)


def _is_redirect_url(value: str) -> bool:
    """S3 ignores a redirect that is not an absolute http(s) URL (nor an ASCII one, here)."""
    if not value.isascii() or HEADER_UNSAFE.search(value):
        return False
    parts = urlsplit(value)
    return parts.scheme.lower() in REDIRECT_SCHEMES and bool(parts.netloc)


def _object_url(request, key: str) -> str:
    """The new object's URL, in the addressing style the request used."""
    scheme = request.environ.get("wsgi.url_scheme", "http")
    host = quote(request.headers.get("host", ""), safe=":[]")
    path = quote(key, safe="/~")
    if not request.virtual_host:
        path = f"{quote(request.bucket, safe='')}/{path}"
    return f"{scheme}://{host}/{path}"
