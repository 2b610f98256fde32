"""Bucket lifecycle on real nodes: the three calls and their errors through boto3 and raw
requests, then the sweeper expiring objects, noncurrent versions and delete markers and
aborting uploads on a node whose "day" is a second long and whose passes run every tenth of
a second.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from conftest import empty_bucket, wait_for

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
    client.delete_bucket_lifecycle(Bucket=name)
    for upload in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    # A pass that read the rules before they went can still add a delete marker: go again.
    wait_for(lambda: removed(client, name), SWEEP_TIMEOUT, f"{name} to be emptied and removed")


def removed(client, bucket: str) -> bool:
    empty_bucket(client, bucket)
    try:
        client.delete_bucket(Bucket=bucket)
    except ClientError as refused:
        if refused.response["Error"]["Code"] != "BucketNotEmpty":
            raise
        return False
    return True


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


# --- the sweeper in versioned buckets ---------------------------------------------------

PAST = datetime(2020, 1, 1, tzinfo=UTC)
SENTINEL_RULE = {"ID": "sentinel", "Filter": {"Prefix": "sentinel/"}, "Status": "Enabled", "Expiration": {"Date": PAST}}


def configure(client, bucket: str, *rules: dict) -> None:
    """Install `rules`, and the sentinel rule `wait_for_a_whole_pass` relies on."""
    rules = [*rules, SENTINEL_RULE]
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


def wait_for_a_whole_pass(client, bucket: str) -> None:
    """Return once a pass has walked all of `bucket` after this call began.

    The pass that expires sentinel/0 read the bucket after it was written, and went on to
    the bucket's history; sentinel/1, written once sentinel/0 is gone, can only be expired by
    a later pass, so that first one is over.
    """
    for n in range(2):
        key = f"sentinel/{n}"
        client.put_object(Bucket=bucket, Key=key, Body=b"")
        wait_for(lambda key=key: key not in keys_in(client, bucket), SWEEP_TIMEOUT, f"{key} to expire")


def enable_versioning(client, bucket: str, status: str = "Enabled") -> None:
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def history(client, bucket: str, prefix: str) -> list[tuple[str, str, bool]]:
    """(key, version id or "marker", is latest) under `prefix`, each key's latest first.

    boto3 returns versions and delete markers in separate lists, each in S3's order; the
    tests never keep a delete marker that is not its key's latest.
    """
    listed = client.list_object_versions(Bucket=bucket, Prefix=prefix)
    items = [(v["Key"], v["VersionId"], v["IsLatest"]) for v in listed.get("Versions", [])]
    items += [(m["Key"], "marker", m["IsLatest"]) for m in listed.get("DeleteMarkers", [])]
    return sorted(items, key=lambda item: (item[0], not item[2]))


def put_versions(client, bucket: str, key: str, count: int) -> list[str]:
    """Write `count` versions of `key`; their ids, oldest first."""
    return [client.put_object(Bucket=bucket, Key=key, Body=f"v{n}".encode())["VersionId"] for n in range(count)]


def test_expiry_adds_delete_markers_in_versioned_buckets(swept):
    client, bucket = swept
    enable_versioning(client, bucket)
    [kept] = put_versions(client, bucket, "days/k", 1)
    configure(
        client, bucket, {"ID": "days", "Filter": {"Prefix": "days/"}, "Status": "Enabled", "Expiration": {"Days": 1}}
    )
    expected = [("days/k", "marker", True), ("days/k", kept, False)]
    wait_for(lambda: history(client, bucket, "days/") == expected, SWEEP_TIMEOUT, "days/k to get a delete marker")
    # The marker hides a version, so it is not an expired object delete marker: it stays.
    wait_for_a_whole_pass(client, bucket)
    assert history(client, bucket, "days/") == expected
    marker = client.list_object_versions(Bucket=bucket, Prefix="days/")["DeleteMarkers"][0]
    assert error_of(client.get_object, Bucket=bucket, Key="days/k") == (404, "NoSuchKey")
    assert marker["VersionId"] != "null"


def test_expiry_in_a_suspended_bucket_adds_a_null_delete_marker(swept):
    client, bucket = swept
    enable_versioning(client, bucket)
    [kept] = put_versions(client, bucket, "old/k", 1)
    enable_versioning(client, bucket, "Suspended")
    assert "VersionId" not in client.put_object(Bucket=bucket, Key="old/k", Body=b"null")
    configure(
        client, bucket, {"ID": "old", "Filter": {"Prefix": "old/"}, "Status": "Enabled", "Expiration": {"Date": PAST}}
    )
    expected = [("old/k", "marker", True), ("old/k", kept, False)]
    wait_for(lambda: history(client, bucket, "old/") == expected, SWEEP_TIMEOUT, "the null version to be replaced")
    marker = client.list_object_versions(Bucket=bucket, Prefix="old/")["DeleteMarkers"][0]
    assert marker["VersionId"] == "null"


def test_noncurrent_versions_expire_days_after_they_were_replaced(swept):
    client, bucket = swept
    enable_versioning(client, bucket)
    *_, newest = put_versions(client, bucket, "nc/k", 3)
    configure(
        client,
        bucket,
        {
            "ID": "nc",
            "Filter": {"Prefix": "nc/"},
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
    )
    wait_for(lambda: history(client, bucket, "nc/") == [("nc/k", newest, True)], SWEEP_TIMEOUT, "v0 and v1 to expire")
    assert client.get_object(Bucket=bucket, Key="nc/k")["Body"].read() == b"v2"


def test_newer_noncurrent_versions_are_kept(swept):
    client, bucket = swept
    enable_versioning(client, bucket)
    ids = put_versions(client, bucket, "nc/k", 5)
    client.delete_object(Bucket=bucket, Key="nc/gone")  # a marker alone: not a noncurrent version
    rule = {
        "ID": "nc",
        "Filter": {"Prefix": "nc/"},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 2},
    }
    configure(client, bucket, rule)
    expected = [("nc/gone", "marker", True), *(("nc/k", vid, vid == ids[-1]) for vid in reversed(ids[2:]))]
    wait_for(lambda: history(client, bucket, "nc/") == expected, SWEEP_TIMEOUT, "all but two noncurrent versions to go")
    wait_for_a_whole_pass(client, bucket)
    assert history(client, bucket, "nc/") == expected


def test_expired_object_delete_markers_are_removed(swept):
    client, bucket = swept
    enable_versioning(client, bucket)
    [alone] = put_versions(client, bucket, "dm/alone", 1)
    client.delete_object(Bucket=bucket, Key="dm/alone")
    client.delete_object(Bucket=bucket, Key="dm/alone", VersionId=alone)
    [hidden] = put_versions(client, bucket, "dm/hidden", 1)
    client.delete_object(Bucket=bucket, Key="dm/hidden")
    rule = {
        "ID": "dm",
        "Filter": {"Prefix": "dm/"},
        "Status": "Enabled",
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    }
    configure(client, bucket, rule)
    expected = [("dm/hidden", "marker", True), ("dm/hidden", hidden, False)]
    wait_for(lambda: history(client, bucket, "dm/") == expected, SWEEP_TIMEOUT, "the lone delete marker to go")
    # Once its version is gone, the other marker is alone too.
    client.delete_object(Bucket=bucket, Key="dm/hidden", VersionId=hidden)
    wait_for(lambda: history(client, bucket, "dm/") == [], SWEEP_TIMEOUT, "the second marker to go")


def test_tag_filters_reach_the_tags_objects_carry(swept):
    client, bucket = swept
    client.put_object(Bucket=bucket, Key="t/tagged", Body=b"x", Tagging="class=scratch&team=a")
    client.put_object(Bucket=bucket, Key="t/other", Body=b"x", Tagging="class=keep")
    client.put_object(Bucket=bucket, Key="t/later", Body=b"x")
    rule = {
        "ID": "tags",
        "Filter": {"Tag": {"Key": "class", "Value": "scratch"}},
        "Status": "Enabled",
        "Expiration": {"Date": PAST},
    }
    configure(client, bucket, rule)
    wait_for(lambda: "t/tagged" not in keys_in(client, bucket), SWEEP_TIMEOUT, "the tagged object to expire")
    wait_for_a_whole_pass(client, bucket)
    assert keys_in(client, bucket) == ["t/later", "t/other"]
    client.put_object_tagging(Bucket=bucket, Key="t/later", Tagging={"TagSet": [{"Key": "class", "Value": "scratch"}]})
    wait_for(lambda: keys_in(client, bucket) == ["t/other"], SWEEP_TIMEOUT, "the object tagged later to expire")


def test_noncurrent_tag_filters_judge_each_versions_tags(swept):
    client, bucket = swept
    enable_versioning(client, bucket)
    scratch = client.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="class=scratch")["VersionId"]
    plain = client.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    current = client.put_object(Bucket=bucket, Key="k", Body=b"3", Tagging="class=scratch")["VersionId"]
    rule = {
        "ID": "tags",
        "Filter": {"And": {"Prefix": "k", "Tags": [{"Key": "class", "Value": "scratch"}]}},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
    }
    configure(client, bucket, rule)
    expected = [("k", current, True), ("k", plain, False)]
    wait_for(lambda: history(client, bucket, "k") == expected, SWEEP_TIMEOUT, f"version {scratch} to expire")
    wait_for_a_whole_pass(client, bucket)
    assert history(client, bucket, "k") == expected


def test_lifecycle_skips_versions_object_lock_protects(swept):
    client, bucket = swept
    enable_versioning(client, bucket)
    client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    held = client.put_object(Bucket=bucket, Key="lock/k", Body=b"held", ObjectLockLegalHoldStatus="ON")["VersionId"]
    newest = put_versions(client, bucket, "lock/k", 2)[-1]
    configure(
        client,
        bucket,
        {
            "ID": "nc",
            "Filter": {"Prefix": "lock/"},
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
    )
    expected = [("lock/k", newest, True), ("lock/k", held, False)]
    wait_for(lambda: history(client, bucket, "lock/") == expected, SWEEP_TIMEOUT, "the unlocked version to expire")
    wait_for_a_whole_pass(client, bucket)
    assert history(client, bucket, "lock/") == expected
    client.put_object_legal_hold(Bucket=bucket, Key="lock/k", VersionId=held, LegalHold={"Status": "OFF"})
