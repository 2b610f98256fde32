"""CORS against a real node: Put/Get/DeleteBucketCors and their validation, unauthenticated
preflight OPTIONS requests, and the CORS headers of actual (signed) requests, errors included.
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ElementTree

import pytest
import requests
from botocore.exceptions import ClientError

VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-max-age",
    "vary",
)
NOT_ALLOWED = (
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
    "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted "
    "by the resource's CORS spec."
)
APP = "https://app.example.com"
ANY_GET = (
    b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
    b"</CORSRule></CORSConfiguration>"
)


def rule(origins, methods, **extra) -> dict:
    return {"AllowedOrigins": list(origins), "AllowedMethods": list(methods), **extra}


def put_cors(s3, bucket: str, *rules) -> None:
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": list(rules)})


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def put_cors_xml(raw, bucket: str, body: bytes):
    return raw("PUT", f"/{bucket}?cors", body=body, headers={"Content-MD5": content_md5(body)})


def options(node, path: str, headers: dict | None = None) -> requests.Response:
    """An unauthenticated request, as a browser sends its preflight."""
    return requests.options(node.s3_url + path, headers=headers or {}, timeout=30)


def preflight(node, path: str, origin: str = APP, method: str = "GET", request_headers: str | None = None):
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if request_headers is not None:
        headers["Access-Control-Request-Headers"] = request_headers
    return options(node, path, headers)


def cors_headers(response) -> dict:
    return {name: response.headers[name] for name in CORS_HEADERS if name in response.headers}


def assert_error(response, status: int, code: str) -> ElementTree.Element:
    assert response.status_code == status, response.content
    root = ElementTree.fromstring(response.content)
    assert root.findtext("Code") == code, response.content
    return root


def client_error(caught) -> tuple[int, str, str]:
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


# -- the configuration ---------------------------------------------------------------------------


def test_cors_configuration_round_trip(s3, bucket):
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_cors(Bucket=bucket)
    assert client_error(caught) == (404, "NoSuchCORSConfiguration", "The CORS configuration does not exist")
    rules = [
        {
            "ID": "uploads",
            "AllowedHeaders": ["Authorization", "x-amz-*"],
            "AllowedMethods": ["PUT", "POST"],
            "AllowedOrigins": ["https://*.example.com", "http://test.com:80"],
            "ExposeHeaders": ["ETag", "x-amz-request-id"],
            "MaxAgeSeconds": 3000,
        },
        {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]},
    ]
    response = s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == rules
    put_cors(s3, bucket, rule(["https://other.example"], ["DELETE"]))
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == [rule(["https://other.example"], ["DELETE"])]
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_cors(Bucket=bucket)
    assert client_error(caught)[:2] == (404, "NoSuchCORSConfiguration")
    assert s3.delete_bucket_cors(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_cors_accepts_a_hundred_rules_and_an_empty_origin(s3, bucket):
    rules = [rule([f"https://{i}.example"], ["GET"]) for i in range(99)] + [rule([""], ["HEAD"])]
    put_cors(s3, bucket, *rules)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == rules


@pytest.mark.parametrize(
    "bad_rule,code,message",
    [
        (
            rule(["*"], ["PATCH"]),
            "InvalidRequest",
            "Found unsupported HTTP method in CORS config. Unsupported method is PATCH",
        ),
        (
            rule(["*"], ["OPTIONS"]),
            "InvalidRequest",
            "Found unsupported HTTP method in CORS config. Unsupported method is OPTIONS",
        ),
        (
            rule(["*"], ["get"]),
            "InvalidRequest",
            "Found unsupported HTTP method in CORS config. Unsupported method is get",
        ),
        (
            rule(["http://*.*.com"], ["GET"]),
            "InvalidRequest",
            'AllowedOrigin "http://*.*.com" can not have more than one wildcard.',
        ),
        (
            rule(["*"], ["GET"], AllowedHeaders=["x-*-*"]),
            "InvalidRequest",
            'AllowedHeader "x-*-*" can not have more than one wildcard.',
        ),
        (
            rule(["*"], ["GET"], ExposeHeaders=["x-amz-*"]),
            "InvalidRequest",
            'ExposeHeader "x-amz-*" contains wildcard. We currently do not support wildcard for ExposeHeader.',
        ),
        (
            rule(["*"], ["GET"], ID="i" * 256),
            "InvalidArgument",
            "ID length should not exceed allowed limit of 255",
        ),
    ],
)
def test_put_cors_refusals_keep_the_old_configuration(s3, bucket, bad_rule, code, message):
    kept = rule([APP], ["GET"])
    put_cors(s3, bucket, kept)
    with pytest.raises(ClientError) as caught:
        put_cors(s3, bucket, rule(["*"], ["GET"]), bad_rule)
    assert client_error(caught) == (400, code, message)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == [kept]


def test_put_cors_with_more_than_a_hundred_rules(s3, bucket):
    with pytest.raises(ClientError) as caught:
        put_cors(s3, bucket, *[rule(["*"], ["GET"])] * 101)
    assert client_error(caught)[:2] == (400, "MalformedXML")


@pytest.mark.parametrize(
    "body",
    [
        b"<CORSConfiguration/>",
        b"<CORSConfiguration><CORSRule/></CORSConfiguration>",
        b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
        b"<MaxAgeSeconds>soon</MaxAgeSeconds></CORSRule></CORSConfiguration>",
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
        b"<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds></CORSRule></CORSConfiguration>",
        b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
        b"<Unknown/></CORSRule></CORSConfiguration>",
        b"<CORSConfiguration><Rule/></CORSConfiguration>",
        b"<CORS><CORSRule/></CORS>",
        b"<CORSConfiguration>",
    ],
)
def test_put_cors_malformed_documents(raw, bucket, body):
    assert_error(put_cors_xml(raw, bucket, body), 400, "MalformedXML")


def test_put_cors_needs_an_integrity_check(raw, bucket):
    body = ANY_GET
    assert_error(raw("PUT", f"/{bucket}?cors", body=body), 400, "InvalidRequest")
    assert put_cors_xml(raw, bucket, body).status_code == 200


def test_put_cors_over_64_kib_is_refused(raw, bucket):
    origins = "".join(f"<AllowedOrigin>https://{i:06d}.example.com</AllowedOrigin>" for i in range(2500))
    body = f"<CORSConfiguration><CORSRule>{origins}<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
    assert_error(put_cors_xml(raw, bucket, body.encode()), 400, "MaxMessageLengthExceeded")


def test_cors_operations_on_missing_bucket(raw):
    body = ANY_GET
    assert_error(raw("GET", "/no-such-bucket-cors?cors"), 404, "NoSuchBucket")
    assert_error(put_cors_xml(raw, "no-such-bucket-cors", body), 404, "NoSuchBucket")
    assert_error(raw("DELETE", "/no-such-bucket-cors?cors"), 404, "NoSuchBucket")


# -- preflight ---------------------------------------------------------------------------------------


def test_preflight_answers_from_the_first_matching_rule(node, s3, bucket):
    put_cors(
        s3,
        bucket,
        rule([APP], ["PUT"], AllowedHeaders=["Content-Type", "x-amz-*"], ExposeHeaders=["ETag"], MaxAgeSeconds=600),
        rule([APP], ["GET", "PUT"], AllowedHeaders=["*"]),
    )
    response = preflight(node, f"/{bucket}/photo.jpg", method="PUT", request_headers="x-amz-meta-a,Content-Type")
    assert response.status_code == 200
    assert response.content == b""
    assert cors_headers(response) == {
        "access-control-allow-origin": APP,
        "access-control-allow-methods": "PUT",
        "access-control-allow-headers": "x-amz-meta-a, content-type",
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "ETag",
        "access-control-max-age": "600",
        "vary": VARY,
    }
    # A header the first rule does not allow falls through to the second.
    response = preflight(node, f"/{bucket}/photo.jpg", method="PUT", request_headers="Cache-Control")
    assert cors_headers(response) == {
        "access-control-allow-origin": APP,
        "access-control-allow-methods": "GET, PUT",
        "access-control-allow-headers": "cache-control",
        "access-control-allow-credentials": "true",
        "vary": VARY,
    }
    response = preflight(node, f"/{bucket}", method="GET")
    assert response.status_code == 200
    assert "access-control-allow-headers" not in response.headers


def test_preflight_with_wildcard_origin_answers_star_without_credentials(node, s3, bucket):
    put_cors(s3, bucket, rule(["*"], ["GET", "HEAD"]))
    response = preflight(node, f"/{bucket}/k", origin="http://random:1234")
    assert response.status_code == 200
    assert cors_headers(response) == {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET, HEAD",
        "vary": VARY,
    }


@pytest.mark.parametrize(
    "origin,allowed",
    [
        ("http://a.example.com", True),
        ("http://deep.sub.example.com", True),
        ("http://.example.com", True),
        ("https://a.example.com", False),
        ("http://a.example.com:8080", False),
        ("http://a.example.com/", False),
        ("http://example.com", False),
        ("HTTP://A.EXAMPLE.COM", False),
    ],
)
def test_preflight_origin_wildcard(node, s3, bucket, origin, allowed):
    put_cors(s3, bucket, rule(["http://*.example.com"], ["GET"]))
    response = preflight(node, f"/{bucket}/k", origin=origin)
    assert response.status_code == (200 if allowed else 403)
    assert response.headers.get("access-control-allow-origin") == (origin if allowed else None)


@pytest.mark.parametrize(
    "requested,allowed",
    [
        ("x-amz-date", True),
        ("X-AMZ-Meta-Anything, x-amz-content-sha256", True),
        ("x-amz-date,authorization", True),
        ("content-type", False),
        ("x-amz-date, content-type", False),
        ("", True),
    ],
)
def test_preflight_every_requested_header_must_be_allowed(node, s3, bucket, requested, allowed):
    put_cors(s3, bucket, rule([APP], ["PUT"], AllowedHeaders=["x-amz-*", "Authorization"]))
    response = preflight(node, f"/{bucket}/k", method="PUT", request_headers=requested)
    assert response.status_code == (200 if allowed else 403)
    if not allowed:
        assert cors_headers(response) == {}


def test_preflight_refused_when_no_rule_matches(node, s3, bucket):
    put_cors(s3, bucket, rule([APP], ["GET"]))
    for path, resource in ((f"/{bucket}/k", "OBJECT"), (f"/{bucket}", "BUCKET")):
        response = preflight(node, path, method="DELETE")
        root = assert_error(response, 403, "AccessForbidden")
        assert root.findtext("Message") == NOT_ALLOWED
        assert (root.findtext("Method"), root.findtext("ResourceType")) == ("DELETE", resource)
        assert cors_headers(response) == {}
    assert preflight(node, f"/{bucket}/k", origin="https://evil.example").status_code == 403


def test_preflight_without_configuration_or_bucket(node, bucket):
    root = assert_error(preflight(node, f"/{bucket}/k", method="PUT"), 403, "AccessForbidden")
    assert root.findtext("Message") == "CORSResponse: CORS is not enabled for this bucket."
    assert (root.findtext("Method"), root.findtext("ResourceType")) == ("PUT", "BUCKET")
    root = assert_error(options(node, f"/{bucket}/k", {"Origin": APP}), 403, "AccessForbidden")
    assert root.findtext("Method") == "OPTIONS"
    root = assert_error(preflight(node, "/no-such-bucket-cors/k"), 403, "AccessForbidden")
    assert root.findtext("Message") == "CORSResponse: Bucket not found"


def test_preflight_needs_origin_and_method(node, s3, bucket):
    root = assert_error(options(node, f"/{bucket}/k"), 400, "BadRequest")
    assert root.findtext("Message") == "Insufficient information. Origin request header needed."
    assert_error(options(node, f"/{bucket}/k", {"Access-Control-Request-Method": "GET"}), 400, "BadRequest")
    put_cors(s3, bucket, rule(["*"], ["GET"]))
    root = assert_error(options(node, f"/{bucket}/k", {"Origin": APP}), 400, "BadRequest")
    assert root.findtext("Message") == "Invalid Access-Control-Request-Method: null"
    root = assert_error(preflight(node, f"/{bucket}/k", method="PATCH"), 400, "BadRequest")
    assert root.findtext("Message") == "Invalid Access-Control-Request-Method: PATCH"


def test_preflight_ignores_the_query_and_credentials(node, s3, bucket):
    put_cors(s3, bucket, rule([APP], ["PUT"]))
    presigned = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    path = presigned[len(node.s3_url) :]
    response = preflight(node, path, method="PUT")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    bogus = {"Authorization": "AWS4-HMAC-SHA256 Credential=nobody/20200101/us-east-1/s3/aws4_request, Signature=0"}
    response = options(node, f"/{bucket}/k?uploads", {"Origin": APP, "Access-Control-Request-Method": "PUT", **bogus})
    assert response.status_code == 200


def test_preflight_follows_configuration_changes(node, s3, bucket):
    put_cors(s3, bucket, rule([APP], ["GET"]))
    # Every worker compiles and caches the rules: make them all see the first configuration.
    for _ in range(8):
        assert preflight(node, f"/{bucket}/k").status_code == 200
    put_cors(s3, bucket, rule(["https://other.example"], ["GET"]))
    for _ in range(8):
        assert preflight(node, f"/{bucket}/k").status_code == 403
        assert preflight(node, f"/{bucket}/k", origin="https://other.example").status_code == 200
    s3.delete_bucket_cors(Bucket=bucket)
    for _ in range(8):
        root = assert_error(preflight(node, f"/{bucket}/k", origin="https://other.example"), 403, "AccessForbidden")
        assert root.findtext("Message") == "CORSResponse: CORS is not enabled for this bucket."


# -- actual requests -------------------------------------------------------------------------------


def test_actual_request_with_matching_origin_gets_cors_headers(raw, s3, bucket):
    put_cors(s3, bucket, rule([APP], ["GET", "HEAD"], ExposeHeaders=["ETag", "x-amz-meta-a"], MaxAgeSeconds=60))
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    expected = {
        "access-control-allow-origin": APP,
        "access-control-allow-methods": "GET, HEAD",
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "ETag, x-amz-meta-a",
        "access-control-max-age": "60",
        "vary": VARY,
    }
    response = raw("GET", f"/{bucket}/k", headers={"Origin": APP})
    assert response.status_code == 200 and response.content == b"data"
    assert cors_headers(response) == expected
    assert cors_headers(raw("HEAD", f"/{bucket}/k", headers={"Origin": APP})) == expected
    # Errors carry them too.
    response = raw("GET", f"/{bucket}/missing", headers={"Origin": APP})
    assert_error(response, 404, "NoSuchKey")
    assert cors_headers(response) == expected


def test_actual_request_without_match_gets_no_cors_headers(raw, s3, bucket):
    put_cors(s3, bucket, rule([APP], ["GET"]))
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert cors_headers(raw("GET", f"/{bucket}/k")) == {}
    assert cors_headers(raw("GET", f"/{bucket}/k", headers={"Origin": "https://evil.example"})) == {}
    # The rule does not allow PUT: the request is served, without CORS headers.
    response = raw("PUT", f"/{bucket}/k", body=b"new", headers={"Origin": APP})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"new"
    # Access-Control-Request-Method, when sent, is the method matched.
    headers = {"Origin": APP, "Access-Control-Request-Method": "PUT"}
    assert cors_headers(raw("GET", f"/{bucket}/k", headers=headers)) == {}


def test_actual_request_wildcard_origin_and_headers_not_checked(raw, s3, bucket):
    put_cors(s3, bucket, rule(["*"], ["PUT"]))
    response = raw(
        "PUT", f"/{bucket}/k", body=b"x", headers={"Origin": APP, "Access-Control-Request-Headers": "x-not-allowed"}
    )
    assert response.status_code == 200
    assert cors_headers(response) == {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "PUT",
        "vary": VARY,
    }


def test_refused_signature_still_gets_cors_headers(node, s3, bucket):
    put_cors(s3, bucket, rule([APP], ["GET"]))
    response = requests.get(f"{node.s3_url}/{bucket}/k", headers={"Origin": APP}, timeout=30)
    assert_error(response, 403, "AccessDenied")
    assert response.headers["access-control-allow-origin"] == APP


def test_bucket_without_configuration_gets_no_cors_headers(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    assert cors_headers(raw("GET", f"/{bucket}/k", headers={"Origin": APP})) == {}
    assert cors_headers(raw("GET", "/no-such-bucket-cors/k", headers={"Origin": APP})) == {}
