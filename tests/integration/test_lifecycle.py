"""Bucket lifecycle on real nodes: the three calls and their errors through boto3 and raw
requests, then the sweeper expiring objects and aborting uploads on a node whose "day" is a
second long and whose passes run every tenth of a second.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from conftest import wait_for

S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
SWEEP_TIMEOUT = 30.0
MINIMUM_SIZE = "all_storage_classes_128K"


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def error_of(call, **kwargs) -> tuple[int, str]:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    response = refused.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def keys_in(s3, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


# --- Put / Get / Delete ----------------------------------------------------------------

RULES = [
    {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}},
    {
        "ID": "tagged big",
        "Filter": {
            "And": {
                "Prefix": "data/",
                "Tags": [{"Key": "class", "Value": "scratch"}, {"Key": "team", "Value": "a&b"}],
                "ObjectSizeGreaterThan": 1024,
                "ObjectSizeLessThan": 1048576,
            }
        },
        "Status": "Disabled",
        "Expiration": {"Date": datetime(2030, 1, 1, tzinfo=UTC)},
    },
    {
        "ID": "uploads",
        "Filter": {},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 10, "NewerNoncurrentVersions": 3},
    },
    {
        "ID": "markers",
        "Filter": {"ObjectSizeLessThan": 10},
        "Status": "Enabled",
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    },
]


def test_put_get_delete_round_trip(s3, bucket):
    put = s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": RULES})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert put["TransitionDefaultMinimumObjectSize"] == MINIMUM_SIZE
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["Rules"] == RULES
    assert got["TransitionDefaultMinimumObjectSize"] == MINIMUM_SIZE
    deleted = s3.delete_bucket_lifecycle(Bucket=bucket)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert error_of(s3.get_bucket_lifecycle_configuration, Bucket=bucket) == (404, "NoSuchLifecycleConfiguration")
    assert s3.delete_bucket_lifecycle(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_a_put_replaces_the_whole_configuration(s3, bucket):
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": RULES})
    only = [{"ID": "one", "Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 1}}]
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": only},
        TransitionDefaultMinimumObjectSize="varies_by_storage_class",
    )
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["Rules"] == only
    assert got["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"


def test_legacy_rule_prefix_and_generated_ids(s3, bucket):
    rules = [{"Prefix": "tmp/", "Status": "Enabled", "Expiration": {"Days": 2}}]
    s3.put_bucket_lifecycle(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rule.pop("ID")
    assert rule == rules[0]


def test_get_without_configuration(s3, bucket, raw):
    response = raw("GET", f"/{bucket}?lifecycle")
    assert response.status_code == 404
    assert "<Code>NoSuchLifecycleConfiguration</Code>" in response.text
    assert f"<BucketName>{bucket}</BucketName>" in response.text


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_missing_bucket(raw, method):
    body = lifecycle_document(RULE_OK)
    response = raw(method, f"/no-such-{uuid.uuid4().hex[:12]}?lifecycle", body=body, headers=md5_header(body))
    assert response.status_code == 404
    assert "<Code>NoSuchBucket</Code>" in response.text


# --- raw documents: what S3 refuses and how --------------------------------------------

RULE_OK = "<Rule><ID>r</ID><Filter><Prefix>p/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"  # noqa: E501


def lifecycle_document(*rules: str) -> bytes:
    return f'<LifecycleConfiguration xmlns="{S3_XMLNS}">{"".join(rules)}</LifecycleConfiguration>'.encode()


def md5_header(body: bytes) -> dict:
    return {"Content-MD5": content_md5(body)}


def rule(inner: str, rule_id: str = "r", status: str = "Enabled") -> str:
    return f"<Rule><ID>{rule_id}</ID>{inner}<Status>{status}</Status></Rule>"


EXPIRE = "<Expiration><Days>1</Days></Expiration>"
ALL = "<Filter></Filter>"


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"not xml", 400, "MalformedXML"),
        (b"", 400, "MalformedXML"),
        (b"<Other/>", 400, "MalformedXML"),
        (lifecycle_document(), 400, "MalformedXML"),
        (lifecycle_document(*[rule(ALL + EXPIRE, rule_id=str(i)) for i in range(1001)]), 400, "MalformedXML"),
        (lifecycle_document(RULE_OK, RULE_OK), 400, "InvalidArgument"),
        (lifecycle_document(rule(ALL + EXPIRE, rule_id="a" * 256)), 400, "InvalidArgument"),
        (lifecycle_document(rule(ALL + EXPIRE, status="enabled")), 400, "MalformedXML"),
        (lifecycle_document("<Rule><ID>r</ID><Filter/>" + EXPIRE + "</Rule>"), 400, "MalformedXML"),
        (lifecycle_document(rule("<Prefix>a</Prefix>" + ALL + EXPIRE)), 400, "MalformedXML"),
        (lifecycle_document(rule(EXPIRE)), 400, "MalformedXML"),
        (lifecycle_document(rule("<Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter>" + EXPIRE)), 400, "MalformedXML"),  # noqa: E501
        (lifecycle_document(rule("<Filter><And><Prefix>a</Prefix></And></Filter>" + EXPIRE)), 400, "MalformedXML"),
        (lifecycle_document(rule("<Filter><And><ObjectSizeGreaterThan>9</ObjectSizeGreaterThan><ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter>" + EXPIRE)), 400, "InvalidArgument"),  # noqa: E501
        (lifecycle_document(rule("<Filter><And><Tag><Key>k</Key></Tag><Tag><Key>k</Key></Tag></And></Filter>" + EXPIRE)), 400, "InvalidRequest"),  # noqa: E501
        (lifecycle_document(rule("<Filter><Prefix>" + "a" * 1025 + "</Prefix></Filter>" + EXPIRE)), 400, "InvalidRequest"),  # noqa: E501
        (lifecycle_document(rule("<Filter><Tag><Key>" + "k" * 129 + "</Key></Tag></Filter>" + EXPIRE)), 400, "InvalidRequest"),  # noqa: E501
        (lifecycle_document(rule(ALL + "<Expiration><Days>0</Days></Expiration>")), 400, "InvalidArgument"),
        (lifecycle_document(rule(ALL + "<Expiration><Days>one</Days></Expiration>")), 400, "MalformedXML"),
        (lifecycle_document(rule(ALL + "<Expiration><Days>2147483648</Days></Expiration>")), 400, "MalformedXML"),
        (lifecycle_document(rule(ALL + "<Expiration><Date>2020-01-01T10:00:00Z</Date></Expiration>")), 400, "InvalidArgument"),  # noqa: E501
        (lifecycle_document(rule(ALL + "<Expiration><Date>20200101</Date></Expiration>")), 400, "MalformedXML"),
        (lifecycle_document(rule(ALL + "<Expiration><Days>1</Days><Date>2020-01-01</Date></Expiration>")), 400, "MalformedXML"),  # noqa: E501
        (lifecycle_document(rule(ALL + "<Expiration></Expiration>")), 400, "MalformedXML"),
        (lifecycle_document(rule(ALL)), 400, "InvalidRequest"),
        (lifecycle_document(rule(ALL + "<NoncurrentVersionExpiration></NoncurrentVersionExpiration>")), 400, "MalformedXML"),  # noqa: E501
        (lifecycle_document(rule(ALL + "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>")), 501, "NotImplemented"),  # noqa: E501
        (lifecycle_document(rule("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>")), 400, "InvalidRequest"),  # noqa: E501
        (lifecycle_document(rule("<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>")), 400, "InvalidRequest"),  # noqa: E501
        (lifecycle_document(rule(ALL + EXPIRE + "<Bogus/>")), 400, "MalformedXML"),
    ],
)  # fmt: skip
def test_refused_documents(raw, bucket, body, status, code):
    response = raw("PUT", f"/{bucket}?lifecycle", body=body, headers=md5_header(body))
    assert response.status_code == status, response.text
    assert f"<Code>{code}</Code>" in response.text
    assert raw("GET", f"/{bucket}?lifecycle").status_code == 404


def test_an_integrity_check_is_required(raw, bucket):
    body = lifecycle_document(RULE_OK)
    response = raw("PUT", f"/{bucket}?lifecycle", body=body)
    assert response.status_code == 400
    assert "<Code>InvalidRequest</Code>" in response.text
    response = raw("PUT", f"/{bucket}?lifecycle", body=body, headers={"Content-MD5": content_md5(b"other")})
    assert response.status_code == 400
    assert "<Code>BadDigest</Code>" in response.text
    response = raw("PUT", f"/{bucket}?lifecycle", body=body, headers=md5_header(body))
    assert response.status_code == 200, response.text
    assert response.headers["x-amz-transition-default-minimum-object-size"] == MINIMUM_SIZE


def test_bad_minimum_size_header(raw, bucket):
    body = lifecycle_document(RULE_OK)
    headers = {**md5_header(body), "x-amz-transition-default-minimum-object-size": "tiny"}
    response = raw("PUT", f"/{bucket}?lifecycle", body=body, headers=headers)
    assert response.status_code == 400
    assert "<Code>InvalidArgument</Code>" in response.text


# --- the sweeper ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweeping(node_factory):
    """A node that sweeps every 0.1 s and counts a day as one second."""
    return node_factory(extra_env={"NEBULAIO_LIFECYCLE_INTERVAL": "0.1", "NEBULAIO_LIFECYCLE_DAY_SECONDS": "1"})


@pytest.fixture
def swept(sweeping):
    """(client, bucket) on the sweeping node; the bucket is emptied and removed afterwards."""
    client = sweeping.client()
    name = f"lc-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=name)
    yield client, name
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for key in keys_in(client, name):
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)


def test_a_date_in_the_past_expires_matching_keys_only(swept, sweeping):
    client, bucket = swept
    bodies = {
        "old/big": b"x" * 40_000,  # file-backed: its bytes are released too
        "old/small": b"x",
        "other/big": b"x" * 40_000,
        "off/big": b"x" * 40_000,
    }
    for key, body in bodies.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    past = datetime(2020, 1, 1, tzinfo=UTC)
    rules = [
        {
            "ID": "old big",
            "Filter": {"And": {"Prefix": "old/", "ObjectSizeGreaterThan": 100}},
            "Status": "Enabled",
            "Expiration": {"Date": past},
        },
        {"ID": "off", "Filter": {"Prefix": "off/"}, "Status": "Disabled", "Expiration": {"Date": past}},
    ]
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    wait_for(lambda: "old/big" not in keys_in(client, bucket), SWEEP_TIMEOUT, "old/big to expire")
    # The pass that removed old/big judged every other key too (off/ sorts before old/).
    assert keys_in(client, bucket) == ["off/big", "old/small", "other/big"]
    files = sweeping.data / "objects" / bucket
    wait_for(lambda: sum(1 for f in files.rglob("*") if f.is_file()) == 2, SWEEP_TIMEOUT, "old/big's file to go")


def test_a_days_rule_expires_objects_once_they_are_old_enough(swept):
    client, bucket = swept
    client.put_object(Bucket=bucket, Key="days/a", Body=b"a")
    client.put_object(Bucket=bucket, Key="keep/a", Body=b"a")
    rules = [{"ID": "days", "Filter": {"Prefix": "days/"}, "Status": "Enabled", "Expiration": {"Days": 1}}]
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    wait_for(lambda: keys_in(client, bucket) == ["keep/a"], SWEEP_TIMEOUT, "days/a to expire")
    client.put_object(Bucket=bucket, Key="days/b", Body=b"b")
    wait_for(lambda: keys_in(client, bucket) == ["keep/a"], SWEEP_TIMEOUT, "days/b to expire")


def test_incomplete_uploads_are_aborted(swept):
    client, bucket = swept
    client.create_multipart_upload(Bucket=bucket, Key="tmp/upload")
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="tmp/with-part")["UploadId"]
    client.upload_part(Bucket=bucket, Key="tmp/with-part", UploadId=upload_id, PartNumber=1, Body=b"p" * 1000)
    client.create_multipart_upload(Bucket=bucket, Key="keep/upload")
    rules = [
        {
            "ID": "abort",
            "Filter": {"Prefix": "tmp/"},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
    ]
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})

    def open_uploads():
        return [upload["Key"] for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    wait_for(lambda: open_uploads() == ["keep/upload"], SWEEP_TIMEOUT, "the tmp/ uploads to be aborted")
    assert error_of(client.list_parts, Bucket=bucket, Key="tmp/with-part", UploadId=upload_id) == (404, "NoSuchUpload")


def test_deleting_the_configuration_stops_expiry(swept):
    client, bucket = swept
    client.put_object(Bucket=bucket, Key="a", Body=b"a")
    rules = [{"ID": "all", "Filter": {}, "Status": "Enabled", "Expiration": {"Date": datetime(2020, 1, 1, tzinfo=UTC)}}]
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    wait_for(lambda: keys_in(client, bucket) == [], SWEEP_TIMEOUT, "a to expire")
    client.delete_bucket_lifecycle(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="b", Body=b"b")
    # A bucket without rules is left alone: a pass that starts after b was written expires
    # another bucket's key, and b is still there.
    other = f"lc-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=other)
    try:
        client.put_object(Bucket=other, Key="x", Body=b"x")
        client.put_bucket_lifecycle_configuration(Bucket=other, LifecycleConfiguration={"Rules": rules})
        wait_for(lambda: keys_in(client, other) == [], SWEEP_TIMEOUT, "the other bucket's key to expire")
        assert keys_in(client, bucket) == ["b"]
    finally:
        client.delete_bucket(Bucket=other)
