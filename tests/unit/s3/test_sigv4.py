"""Request authentication against AWS's vectors, AWS's S3 examples, and botocore's own signers."""

import contextlib
import hashlib
import json
import time
from calendar import timegm
from functools import cache
from pathlib import Path
from urllib.parse import quote, urlsplit

import botocore.auth
import botocore.config
import botocore.credentials
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.s3 import sigv4

GOLDEN = Path(__file__).resolve().parents[2] / "conformance" / "sigv4"
SUITE = json.loads((GOLDEN / "aws_sigv4_suite.json").read_text(encoding="utf-8"))
EXAMPLES = json.loads((GOLDEN / "aws_s3_examples.json").read_text(encoding="utf-8"))
EXAMPLES_NOW = timegm(time.strptime(EXAMPLES["now"], "%Y%m%dT%H%M%SZ"))

ACCESS_KEY = "AKIDNEBULATEST"
SECRET_KEY = "nebula/secret+key=="
SECRETS = {ACCESS_KEY: SECRET_KEY, EXAMPLES["access_key"]: EXAMPLES["secret_key"]}
ENDPOINT = "http://127.0.0.1:9000"
CREDENTIALS = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)


def wire(request) -> dict:
    """The arguments the HTTP layer passes for a request botocore signed."""
    split = urlsplit(request.url)
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    headers.setdefault("host", split.netloc)
    return {"method": request.method, "raw_path": split.path, "raw_query": split.query, "headers": headers}


def verify(request: dict, now: float | None = None, **extra):
    return sigv4.authenticate(secret_for=SECRETS.get, now=time.time() if now is None else now, **request, **extra)


def assert_code(code: str, request: dict, now: float | None = None, **extra) -> S3Error:
    with pytest.raises(S3Error) as caught:
        verify(request, now, **extra)
    assert caught.value.code == code, caught.value
    return caught.value


# --- AWS's Signature V4 test suite, step by step -------------------------------------------


@pytest.mark.parametrize("case", SUITE["cases"], ids=lambda case: case["name"])
def test_aws_sigv4_suite(case):
    headers: dict[str, str] = {}
    for name, value in case["headers"]:
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    payload = hashlib.sha256(case["body"].encode()).hexdigest()
    canonical = sigv4.canonical_request(
        case["method"],
        sigv4.canonical_uri(case["path"]),
        sigv4.canonical_query(sigv4.query_pairs(case["query"])),
        headers,
        case["signed_headers"].split(";"),
        payload,
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == case["canonical_request_sha256"], canonical
    scope = f"{SUITE['amz_date'][:8]}/{SUITE['region']}/{SUITE['service']}/aws4_request"
    to_sign = sigv4.string_to_sign(SUITE["amz_date"], scope, canonical)
    assert to_sign.splitlines()[:3] == ["AWS4-HMAC-SHA256", SUITE["amz_date"], scope]
    key = sigv4.signing_key(SUITE["secret_key"], SUITE["amz_date"][:8], SUITE["region"], SUITE["service"])
    assert sigv4.sign(key, to_sign) == case["signature"]


def test_canonical_uri_encodes_once_and_keeps_dots_and_slashes():
    assert sigv4.canonical_uri("/b/a b+c%2Bd") == "/b/a%20b%2Bc%2Bd"
    assert sigv4.canonical_uri("//a/../b/./c//") == "//a/../b/./c//"
    assert sigv4.canonical_uri("/b/%e2%82%ac~") == "/b/%E2%82%AC~"
    assert sigv4.canonical_uri("/b/\u20ac") == "/b/%E2%82%AC"
    raw = "/b/\udce2\udc82\udcac"  # the same bytes, as latin-1 decoding with surrogateescape leaves them
    assert sigv4.canonical_uri(raw) == "/b/%E2%82%AC"


def test_canonical_query_sorts_and_encodes_names_and_values():
    pairs = sigv4.query_pairs("uploads&b=2&a=%7e+x&a=1&&c=%2f")
    assert sigv4.canonical_query(pairs) == "a=1&a=~%2Bx&b=2&c=%2F&uploads="
    assert sigv4.canonical_query(sigv4.query_pairs("X-Amz-Signature=f&a=1"), skip="X-Amz-Signature") == "a=1"


# --- AWS's S3 worked examples, end to end --------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES["requests"], ids=lambda example: example["name"])
def test_aws_s3_examples(example):
    request = {key: example[key] for key in ("method", "headers")}
    request.update(raw_path=example["path"], raw_query=example["query"])
    ctx = verify(request, EXAMPLES_NOW)
    assert ctx.version == 4
    assert ctx.access_key == EXAMPLES["access_key"]
    assert ctx.scope == "20130524/us-east-1/s3/aws4_request"
    assert ctx.amz_date == "20130524T000000Z"
    assert ctx.signing_key == sigv4.signing_key(EXAMPLES["secret_key"], "20130524", "us-east-1", "s3")
    if "body" in example:
        assert ctx.payload == hashlib.sha256(example["body"].encode()).hexdigest()
    if "authorization" in example["headers"]:
        assert ctx.seed_signature == example["headers"]["authorization"].rsplit("=", 1)[1]
    else:
        assert ctx.presigned and ctx.payload == sigv4.UNSIGNED_PAYLOAD


def example_request(name: str) -> dict:
    example = next(example for example in EXAMPLES["requests"] if example["name"] == name)
    return {
        "method": example["method"],
        "raw_path": example["path"],
        "raw_query": example["query"],
        "headers": dict(example["headers"]),
    }


def test_presigned_example_expires_after_its_lifetime():
    request = example_request("Presigned GET Object")
    assert verify(request, EXAMPLES_NOW + 86400)
    error = assert_code("AccessDenied", request, EXAMPLES_NOW + 86401)
    assert error.message == "Request has expired"
    assert error.fields["X-Amz-Expires"] == "86400"
    assert_code("AccessDenied", request, EXAMPLES_NOW - sigv4.MAX_SKEW_SECONDS - 1)


def test_header_signature_must_be_within_fifteen_minutes():
    request = example_request("GET Object with Range")
    assert verify(request, EXAMPLES_NOW + sigv4.MAX_SKEW_SECONDS)
    assert verify(request, EXAMPLES_NOW - sigv4.MAX_SKEW_SECONDS)
    error = assert_code("RequestTimeTooSkewed", request, EXAMPLES_NOW + sigv4.MAX_SKEW_SECONDS + 1)
    assert error.fields["RequestTime"] == "20130524T000000Z"
    assert_code("RequestTimeTooSkewed", request, EXAMPLES_NOW - sigv4.MAX_SKEW_SECONDS - 1)


def test_signature_mismatch_reports_what_aws_reports():
    request = example_request("GET Object with Range")
    request["headers"]["range"] = "bytes=0-10"
    error = assert_code("SignatureDoesNotMatch", request, EXAMPLES_NOW)
    assert error.fields["AWSAccessKeyId"] == EXAMPLES["access_key"]
    assert error.fields["SignatureProvided"].startswith("f0e8bdb8")
    assert "range:bytes=0-10" in error.fields["CanonicalRequest"]
    assert error.fields["StringToSign"].startswith("AWS4-HMAC-SHA256\n20130524T000000Z\n")
    assert error.fields["StringToSignBytes"].startswith("41 57 53 34")
    assert "CanonicalRequestBytes" in error.fields


# --- errors on requests that are wrong in one way ------------------------------------------


def signed(
    method="GET", url=ENDPOINT + "/bucket/key", headers=None, data=b"", signer=botocore.auth.S3SigV4Auth, **kwargs
):
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=data)
    if signer in (botocore.auth.HmacV1Auth, botocore.auth.HmacV1QueryAuth):
        signer(CREDENTIALS, **kwargs).add_auth(request)
        if signer is botocore.auth.HmacV1QueryAuth:
            # The presigned URL carries what was signed; its user sends no other header.
            return {**wire(request), "headers": {"host": urlsplit(url).netloc}}
    else:
        signer(CREDENTIALS, "s3", kwargs.pop("region", "us-east-1"), **kwargs).add_auth(request)
    return wire(request)


def test_anonymous_request_is_none():
    assert (
        verify({"method": "GET", "raw_path": "/b/k", "raw_query": "list-type=2&x-id=3", "headers": {"host": "h"}})
        is None
    )


def test_unknown_access_key():
    request = signed()
    request["headers"]["authorization"] = request["headers"]["authorization"].replace(ACCESS_KEY, "AKIDUNKNOWN")
    assert assert_code("InvalidAccessKeyId", request).fields["AWSAccessKeyId"] == "AKIDUNKNOWN"


@pytest.mark.parametrize("region", ["us-east-1", "auto", "eu-central-9", "nebula"])
def test_any_region_is_accepted(region):
    assert verify(signed(region=region)).scope.split("/")[1] == region
    assert (
        verify(signed(signer=botocore.auth.S3SigV4QueryAuth, region=region, expires=60)).scope.split("/")[1] == region
    )


def test_service_must_be_s3():
    request = AWSRequest(
        method="GET", url=ENDPOINT + "/bucket/key", headers={"X-Amz-Content-SHA256": sigv4.EMPTY_SHA256}
    )
    botocore.auth.SigV4Auth(CREDENTIALS, "iam", "us-east-1").add_auth(request)
    request = wire(request)
    assert "incorrect service" in assert_code("AuthorizationHeaderMalformed", request).message


def test_header_and_query_auth_together_is_refused():
    request = signed(signer=botocore.auth.S3SigV4QueryAuth, expires=60)
    request["headers"]["authorization"] = signed()["headers"]["authorization"]
    assert_code("InvalidRequest", request)


def test_missing_content_sha256_and_bad_values():
    request = signed()
    del request["headers"]["x-amz-content-sha256"]
    request["headers"]["authorization"] = request["headers"]["authorization"].replace(";x-amz-content-sha256", "")
    assert "x-amz-content-sha256" in assert_code("InvalidRequest", request).message
    request = signed()
    request["headers"]["x-amz-content-sha256"] = "not-a-hash"
    assert assert_code("InvalidArgument", request).fields["ArgumentValue"] == "not-a-hash"


def test_unsigned_amz_headers_are_refused():
    request = signed()
    request["headers"]["x-amz-copy-source"] = "/other/key"
    assert assert_code("AccessDenied", request).fields["HeadersNotSigned"] == "x-amz-copy-source"


def test_missing_date_and_unsupported_scheme():
    request = signed()
    del request["headers"]["x-amz-date"]
    request["headers"]["authorization"] = request["headers"]["authorization"].replace(";x-amz-date", "")
    assert (
        assert_code("AccessDenied", request).message == "AWS authentication requires a valid Date or x-amz-date header"
    )
    request["headers"]["authorization"] = "Bearer token"
    assert assert_code("InvalidArgument", request).fields["ArgumentName"] == "Authorization"


@pytest.mark.parametrize(
    ("expires", "message"),
    [("604801", "less than a week"), ("-1", "non-negative"), ("soon", "should be a number")],
)
def test_presigned_expires_bounds(expires, message):
    request = signed(signer=botocore.auth.S3SigV4QueryAuth, expires=60)
    request["raw_query"] = request["raw_query"].replace("X-Amz-Expires=60", f"X-Amz-Expires={expires}")
    assert message in assert_code("AuthorizationQueryParametersError", request).message


def test_presigned_missing_parameter_and_bad_algorithm():
    request = signed(signer=botocore.auth.S3SigV4QueryAuth, expires=60)
    without_date = dict(
        request, raw_query="&".join(p for p in request["raw_query"].split("&") if not p.startswith("X-Amz-Date"))
    )
    assert_code("AuthorizationQueryParametersError", without_date)
    other = dict(request, raw_query=request["raw_query"].replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"))
    assert_code("AuthorizationQueryParametersError", other)


def test_v4_with_date_header_instead_of_amz_date():
    request = signed(headers={"Date": "now"})
    assert "x-amz-date" not in request["headers"]
    assert verify(request).version == 4


def test_v2_presigned_expiry():
    request = signed(signer=botocore.auth.HmacV1QueryAuth, expires=60)
    assert verify(request).version == 2
    assert assert_code("AccessDenied", request, time.time() + 120).message == "Request has expired"


def test_v2_header_skew():
    request = signed(signer=botocore.auth.HmacV1Auth)
    assert_code("RequestTimeTooSkewed", request, time.time() + sigv4.MAX_SKEW_SECONDS + 60)


def test_v2_virtual_hosted_request_signs_the_bucket_in_the_path():
    request = AWSRequest(method="GET", url="http://bucket.localhost:9000/photos/cat.jpg?acl")
    request.auth_path = "/bucket/photos/cat.jpg"
    botocore.auth.HmacV1Auth(CREDENTIALS).add_auth(request)
    request = wire(request)
    assert verify(request, virtual_host_bucket="bucket").version == 2
    assert_code("SignatureDoesNotMatch", request)


# --- botocore's signers, and every one-character change to what they signed ----------------

SIGNERS = {
    "v4-header": {"signer": botocore.auth.S3SigV4Auth},
    "v4-presigned": {"signer": botocore.auth.S3SigV4QueryAuth, "expires": 300},
    "v2-header": {"signer": botocore.auth.HmacV1Auth},
    "v2-presigned": {"signer": botocore.auth.HmacV1QueryAuth, "expires": 300},
}
REQUESTS = {
    "get": {"url": ENDPOINT + "/bucket/a%20key/%2B%25~x"},
    "put": {
        "method": "PUT",
        "url": ENDPOINT + "/bucket/k?partNumber=2&uploadId=abc%2Fdef",
        "headers": {
            "Content-Type": "text/plain",
            "X-Amz-Meta-Color": "blue  green",
            "Content-MD5": "XrY7u+Ae7tCTyyK7j1rNww==",
        },
        "data": b"hello world",
    },
    "list": {"url": ENDPOINT + "/bucket?versions&prefix=a%2Fb&delimiter=%2F"},
}


def mutations(text: str):
    """Every string that differs from `text` in exactly one character."""
    for index, char in enumerate(text):
        yield text[:index] + ("Y" if char in "zZ" else "Z") + text[index + 1 :]


@pytest.mark.parametrize("request_name", REQUESTS)
@pytest.mark.parametrize("signer_name", SIGNERS)
def test_botocore_signed_requests_verify_and_every_mutation_fails(signer_name, request_name):
    presigned = signer_name.endswith("presigned")
    shape = {name: value for name, value in REQUESTS[request_name].items() if not (presigned and name == "data")}
    request = signed(**shape, **SIGNERS[signer_name])
    ctx = verify(request)
    assert ctx.access_key == ACCESS_KEY
    assert ctx.version == (4 if signer_name.startswith("v4") else 2)
    assert ctx.presigned == presigned

    def rejected(**changes):
        changed = {**request, **changes}
        with pytest.raises(S3Error):
            verify(changed)

    for path in mutations(request["raw_path"]):
        rejected(raw_path=path)
    if not (signer_name.startswith("v2") and request_name == "list"):  # V2 signs only sub-resources
        for query in mutations(request["raw_query"]):
            rejected(raw_query=query)
    headers = request["headers"]
    if "authorization" in headers:
        for authorization in mutations(headers["authorization"]):
            rejected(headers={**headers, "authorization": authorization})
    signed_names = [name for name in headers if name not in ("authorization", "host", "expect")]
    if signer_name.startswith("v4"):
        signed_names.append("host")
    for name in signed_names:
        for value in mutations(headers[name]):
            rejected(headers={**headers, name: value})


# --- botocore clients end to end: what boto3 users actually send ---------------------------


class _EmptyBody:
    def stream(self, **_):
        return iter([b""])


@cache
def client(signature_version: str | None = None):
    """A botocore S3 client whose requests are captured instead of sent."""
    config = botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    if signature_version:
        config = config.merge(botocore.config.Config(signature_version=signature_version))
    s3 = botocore.session.get_session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    )
    s3.meta.events.register("before-send.s3", _capture)
    return s3


_CAPTURED: list = []


def _capture(request, **_):
    _CAPTURED.append(request)
    return AWSResponse(request.url, 200, {}, _EmptyBody())


def sent(s3, operation: str, **params) -> dict:
    getattr(s3, operation)(**params)
    return wire(_CAPTURED.pop())


def presigned(s3, operation: str, **params) -> dict:
    split = urlsplit(s3.generate_presigned_url(operation, Params=params))
    return {"method": "GET", "raw_path": split.path, "raw_query": split.query, "headers": {"host": split.netloc}}


def test_default_presigned_url_is_signature_v2_and_verifies():
    request = presigned(client(), "get_object", Bucket="bucket", Key="a b/c+d", ResponseContentType="text/plain")
    assert "AWSAccessKeyId=" in request["raw_query"]
    assert verify(request).version == 2
    request = presigned(client("s3v4"), "get_object", Bucket="bucket", Key="a b/c+d", ResponseContentType="text/plain")
    assert "X-Amz-Credential=" in request["raw_query"]
    assert verify(request).version == 4


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("put_object", {"Bucket": "bucket", "Key": "dir/file.txt", "Body": b"hello", "Metadata": {"k": "v  w"}}),
        ("list_objects_v2", {"Bucket": "bucket", "Prefix": "a/b", "Delimiter": "/", "StartAfter": "a b"}),
        ("create_multipart_upload", {"Bucket": "bucket", "Key": "big"}),
        ("upload_part", {"Bucket": "bucket", "Key": "big", "UploadId": "id/+=", "PartNumber": 3, "Body": b"x"}),
        ("delete_objects", {"Bucket": "bucket", "Delete": {"Objects": [{"Key": "a"}]}}),
        ("put_object_tagging", {"Bucket": "bucket", "Key": "k", "Tagging": {"TagSet": [{"Key": "a", "Value": "b"}]}}),
        ("copy_object", {"Bucket": "bucket", "Key": "k", "CopySource": {"Bucket": "src", "Key": "a b"}}),
        ("head_object", {"Bucket": "bucket", "Key": "k", "VersionId": "v1", "Range": "bytes=0-9"}),
    ],
)
def test_botocore_client_requests_verify(signature_version, operation, params):
    request = sent(client(signature_version), operation, **params)
    ctx = verify(request)
    assert ctx.version == (4 if signature_version == "s3v4" else 2)
    if ctx.version == 4:
        assert ctx.payload == request["headers"]["x-amz-content-sha256"]


KEY_PIECES = st.sampled_from(
    ["//", "../", "./", " ", "+", "%", "%20", "%2F", "a", "\u00e9", "\u20ac", "~", "?", "#", "&", "=", ";", "*", "\x7f"]
)
KEYS = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
    st.lists(KEY_PIECES, min_size=1, max_size=12).map("".join),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=KEYS, signature_version=st.sampled_from(["s3v4", "s3"]))
def test_any_key_signed_by_botocore_verifies(key, signature_version):
    s3 = client(signature_version)
    assert verify(sent(s3, "head_object", Bucket="bucket", Key=key)).access_key == ACCESS_KEY
    assert verify(presigned(s3, "get_object", Bucket="bucket", Key=key)).access_key == ACCESS_KEY


@settings(max_examples=50, deadline=None)
@given(key=KEYS)
def test_any_key_signed_by_the_bare_signers_verifies(key):
    url = f"{ENDPOINT}/bucket/{quote(key.encode(), safe='/~')}"
    for shape in SIGNERS.values():
        assert verify(signed(url=url, **shape)).access_key == ACCESS_KEY


# --- garbage only ever raises S3Error ------------------------------------------------------

GARBAGE = st.text(st.characters(), max_size=80) | st.sampled_from(
    ["", "\udc80\udcff", "\ud800", "%", "%zz", "%E2%82", "=", ";", "/", ","]
)
NOW = 1_795_700_000.0
AMZ_NOW = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(NOW))


def _component(name: str, value):
    return st.one_of(st.just(f"{name}={value}"), GARBAGE.map(lambda text: f"{name}={text}"), GARBAGE)


CREDENTIAL = st.one_of(
    st.just(f"{ACCESS_KEY}/{AMZ_NOW[:8]}/us-east-1/s3/aws4_request"),
    st.lists(GARBAGE, max_size=6).map("/".join),
)
AUTHORIZATION = st.one_of(
    GARBAGE,
    st.builds(
        lambda prefix, text: prefix + text, st.sampled_from(["AWS4-HMAC-SHA256 ", "AWS ", "AWS4-HMAC-SHA256"]), GARBAGE
    ),
    st.builds(
        lambda credential, signed_headers, signature, separator: (
            "AWS4-HMAC-SHA256 "
            + separator.join([f"Credential={credential}", f"SignedHeaders={signed_headers}", f"Signature={signature}"])
        ),
        CREDENTIAL,
        st.one_of(st.just("host;x-amz-content-sha256;x-amz-date"), GARBAGE),
        st.one_of(st.just("0" * 64), GARBAGE),
        st.sampled_from([", ", ",", " , "]),
    ),
    st.builds(lambda key, signature: f"AWS {key}:{signature}", GARBAGE, GARBAGE),
)
QUERY_NAMES = st.sampled_from(
    [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "AWSAccessKeyId",
        "Signature",
        "Expires",
        "uploads",
        "versionId",
        "x-amz-acl",
        "X%2DAmz-Date",
    ]
)
QUERY_VALUES = st.one_of(
    GARBAGE,
    st.sampled_from(["AWS4-HMAC-SHA256", AMZ_NOW, "60", "604800", "-5", "host", ACCESS_KEY, "0" * 64, "9999999999"]),
    CREDENTIAL,
)
QUERIES = st.lists(st.tuples(QUERY_NAMES, QUERY_VALUES, st.booleans()), max_size=8).map(
    lambda items: "&".join(
        f"{name}={quote(value, errors='surrogatepass') if encode else value}" for name, value, encode in items
    )
)


@settings(max_examples=200, deadline=None)
@given(
    authorization=st.one_of(st.none(), AUTHORIZATION),
    raw_query=st.one_of(QUERIES, GARBAGE),
    raw_path=st.one_of(st.just("/bucket/key"), GARBAGE),
    amz_date=st.one_of(st.none(), st.just(AMZ_NOW), GARBAGE),
    date=st.one_of(st.none(), st.just(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(NOW))), GARBAGE),
    payload=st.one_of(st.none(), st.just(sigv4.EMPTY_SHA256), st.sampled_from(sorted(sigv4.STREAMING_MODES)), GARBAGE),
)
def test_garbage_only_raises_s3_error(authorization, raw_query, raw_path, amz_date, date, payload):
    headers = {"host": "127.0.0.1:9000"}
    for name, value in (
        ("authorization", authorization),
        ("x-amz-date", amz_date),
        ("date", date),
        ("x-amz-content-sha256", payload),
    ):
        if value is not None:
            headers[name] = value
    try:
        result = sigv4.authenticate("GET", raw_path, raw_query, headers, SECRETS.get, NOW)
    except S3Error:
        return
    assert result is None or isinstance(result, sigv4.SigningContext)


@settings(max_examples=200, deadline=None)
@given(
    signer_name=st.sampled_from(sorted(SIGNERS)),
    position=st.integers(min_value=0),
    garbage=GARBAGE,
    encode=st.booleans(),
)
def test_garbage_in_one_field_of_a_signed_request_only_raises_s3_error(signer_name, position, garbage, encode):
    """Every field valid but one, so that the garbage reaches the later steps too."""
    request = signed(url=ENDPOINT + "/bucket/key?versionId=1", **SIGNERS[signer_name])
    headers = dict(request["headers"])
    fields = [("query", index) for index in range(request["raw_query"].count("&") + 1)]
    fields += [("header", name) for name in headers]
    if "authorization" in headers:
        fields += [("component", index) for index in range(3)]
    kind, which = fields[position % len(fields)]
    value = quote(garbage, errors="surrogatepass") if encode else garbage
    if kind == "query":
        parts = request["raw_query"].split("&")
        parts[which] = parts[which].partition("=")[0] + "=" + value
        request["raw_query"] = "&".join(parts)
    elif kind == "header":
        headers[which] = garbage
    else:
        scheme, _, rest = headers["authorization"].partition(" ")
        components = rest.split(", ")
        if which < len(components):
            components[which] = components[which].partition("=")[0] + "=" + garbage
        headers["authorization"] = f"{scheme} {', '.join(components)}"
    with contextlib.suppress(S3Error):
        sigv4.authenticate(secret_for=SECRETS.get, now=time.time(), **{**request, "headers": headers})
