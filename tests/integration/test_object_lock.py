"""Object lock against a real node, through boto3: buckets created with lock, the bucket's
configuration and default retention, retention and legal hold on versions (set by PutObject,
CopyObject, CreateMultipartUpload or their own calls), and every deletion and change the lock
refuses, with and without x-amz-bypass-governance-retention.

Versions kept under COMPLIANCE retention cannot be removed before it ends: the tests that make
them give them short or distant retain-until dates and leave what they cannot delete behind.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from conftest import allow, wait_for

LOCKED_MESSAGE = "Access Denied because object protected by object lock."
MISSING_LOCK_MESSAGE = "Bucket is missing Object Lock Configuration"
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def error_of(caught) -> tuple[int, str]:
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def in_future(**delta) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


@pytest.fixture
def locked_bucket(s3):
    """A fresh bucket created with object lock; afterwards every version that is no longer
    held (legal holds lifted, governance bypassed) is deleted, and the bucket if it is empty."""
    name = f"lock-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    listing = s3.list_object_versions(Bucket=name)
    for item in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
        version = {"Bucket": name, "Key": item["Key"], "VersionId": item["VersionId"]}
        try:
            s3.put_object_legal_hold(**version, LegalHold={"Status": "OFF"})
        except ClientError:
            pass  # a delete marker
        try:
            s3.delete_object(**version, BypassGovernanceRetention=True)
        except ClientError:
            pass  # held under COMPLIANCE retention: it stays
    try:
        s3.delete_bucket(Bucket=name)
    except ClientError:
        pass


def retention_of(s3, bucket: str, key: str, version: str | None = None) -> dict:
    extra = {} if version is None else {"VersionId": version}
    return s3.get_object_retention(Bucket=bucket, Key=key, **extra)["Retention"]


# -- the bucket ------------------------------------------------------------------------------


def test_bucket_created_with_lock_is_versioned_and_keeps_it(s3, locked_bucket):
    assert s3.get_bucket_versioning(Bucket=locked_bucket)["Status"] == "Enabled"
    configuration = s3.get_object_lock_configuration(Bucket=locked_bucket)["ObjectLockConfiguration"]
    assert configuration == {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_versioning(Bucket=locked_bucket, VersioningConfiguration={"Status": "Suspended"})
    assert error_of(caught) == (409, "InvalidBucketState")
    assert s3.get_bucket_versioning(Bucket=locked_bucket)["Status"] == "Enabled"


def test_default_retention_round_trips_and_can_be_removed(s3, locked_bucket):
    for rule in ({"Mode": "GOVERNANCE", "Days": 3}, {"Mode": "COMPLIANCE", "Years": 2}):
        configuration = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}}
        s3.put_object_lock_configuration(Bucket=locked_bucket, ObjectLockConfiguration=configuration)
        assert s3.get_object_lock_configuration(Bucket=locked_bucket)["ObjectLockConfiguration"] == configuration
    s3.put_object_lock_configuration(Bucket=locked_bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    configuration = s3.get_object_lock_configuration(Bucket=locked_bucket)["ObjectLockConfiguration"]
    assert configuration == {"ObjectLockEnabled": "Enabled"}


def test_lock_needs_versioning_enabled_and_then_stays(s3, bucket):
    with pytest.raises(ClientError) as caught:
        s3.get_object_lock_configuration(Bucket=bucket)
    assert error_of(caught) == (404, "ObjectLockConfigurationNotFoundError")
    enabled = {"ObjectLockEnabled": "Enabled"}
    with pytest.raises(ClientError) as caught:
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=enabled)
    assert error_of(caught) == (409, "InvalidBucketState")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    with pytest.raises(ClientError) as caught:
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=enabled)
    assert error_of(caught) == (409, "InvalidBucketState")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=enabled)
    assert s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"] == enabled
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert error_of(caught) == (409, "InvalidBucketState")
    assert "versioning state cannot be changed" in caught.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("<ObjectLockEnabled>Disabled</ObjectLockEnabled>", "MalformedXML"),
        ("", "MalformedXML"),
        ("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule></Rule>", "MalformedXML"),
        ("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>SOFT</Mode>"
         "<Days>1</Days></DefaultRetention></Rule>", "MalformedXML"),
        ("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode>"
         "<Days>1</Days><Years>1</Years></DefaultRetention></Rule>", "MalformedXML"),
        ("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode>"
         "</DefaultRetention></Rule>", "MalformedXML"),
        ("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode>"
         "<Days>one</Days></DefaultRetention></Rule>", "MalformedXML"),
        ("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode>"
         "<Days>0</Days></DefaultRetention></Rule>", "InvalidRetentionPeriod"),
        ("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode>"
         "<Years>-1</Years></DefaultRetention></Rule>", "InvalidRetentionPeriod"),
        ("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode>"
         "<Years>101</Years></DefaultRetention></Rule>", "InvalidArgument"),
    ],
)  # fmt: skip
def test_invalid_lock_configurations_are_refused(s3, locked_bucket, raw, document, code):
    body = f'<ObjectLockConfiguration xmlns="{XMLNS}">{document}</ObjectLockConfiguration>'.encode()
    response = raw("PUT", f"/{locked_bucket}?object-lock", body, {"Content-MD5": content_md5(body)})
    assert response.status_code == 400
    assert f"<Code>{code}</Code>".encode() in response.content
    assert s3.get_object_lock_configuration(Bucket=locked_bucket)["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled"
    }


def test_lock_configuration_needs_an_integrity_check(locked_bucket, raw):
    body = f'<ObjectLockConfiguration xmlns="{XMLNS}"><ObjectLockEnabled>Enabled</ObjectLockEnabled>'
    response = raw("PUT", f"/{locked_bucket}?object-lock", (body + "</ObjectLockConfiguration>").encode())
    assert response.status_code == 400
    assert b"<Code>InvalidRequest</Code>" in response.content


# -- retention and legal hold set by uploads -------------------------------------------------


def test_default_retention_applies_to_new_versions(s3, locked_bucket):
    rule = {"Mode": "GOVERNANCE", "Days": 2}
    s3.put_object_lock_configuration(
        Bucket=locked_bucket,
        ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}},
    )
    s3.put_object(Bucket=locked_bucket, Key="by-days", Body=b"x")
    head = s3.head_object(Bucket=locked_bucket, Key="by-days")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert timedelta(days=2) <= head["ObjectLockRetainUntilDate"] - head["LastModified"] < timedelta(days=2, seconds=1)
    assert "ObjectLockLegalHoldStatus" not in head

    rule = {"Mode": "GOVERNANCE", "Years": 1}
    s3.put_object_lock_configuration(
        Bucket=locked_bucket,
        ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}},
    )
    s3.put_object(Bucket=locked_bucket, Key="by-years", Body=b"x")
    head = s3.head_object(Bucket=locked_bucket, Key="by-years")
    created = head["LastModified"]
    a_year_later = created.replace(year=created.year + 1) if (created.month, created.day) != (2, 29) else None
    if a_year_later is not None:
        assert timedelta(0) <= head["ObjectLockRetainUntilDate"] - a_year_later < timedelta(seconds=1)
    retention = retention_of(s3, locked_bucket, "by-years")
    assert retention == {"Mode": "GOVERNANCE", "RetainUntilDate": head["ObjectLockRetainUntilDate"]}

    until = in_future(hours=1).replace(microsecond=0)
    s3.put_object(
        Bucket=locked_bucket, Key="named", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until
    )
    assert retention_of(s3, locked_bucket, "named") == {"Mode": "GOVERNANCE", "RetainUntilDate": until}


def test_put_object_sets_retention_and_legal_hold(s3, locked_bucket):
    until = in_future(hours=1).replace(microsecond=0)
    version = s3.put_object(
        Bucket=locked_bucket,
        Key="k",
        Body=b"locked",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        ObjectLockLegalHoldStatus="ON",
    )["VersionId"]
    for response in (
        s3.head_object(Bucket=locked_bucket, Key="k"),
        s3.get_object(Bucket=locked_bucket, Key="k", VersionId=version),
    ):
        assert response["ObjectLockMode"] == "GOVERNANCE"
        assert response["ObjectLockRetainUntilDate"] == until
        assert response["ObjectLockLegalHoldStatus"] == "ON"
    assert retention_of(s3, locked_bucket, "k", version) == {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    assert s3.get_object_legal_hold(Bucket=locked_bucket, Key="k")["LegalHold"] == {"Status": "ON"}


def test_lock_headers_need_a_bucket_with_lock(s3, bucket):
    until = in_future(hours=1)
    for extra in (
        {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": until},
        {"ObjectLockLegalHoldStatus": "ON"},
    ):
        with pytest.raises(ClientError) as caught:
            s3.put_object(Bucket=bucket, Key="k", Body=b"x", **extra)
        assert error_of(caught) == (400, "InvalidRequest")
        assert caught.value.response["Error"]["Message"] == MISSING_LOCK_MESSAGE
    with pytest.raises(ClientError) as caught:
        s3.create_multipart_upload(Bucket=bucket, Key="k", ObjectLockLegalHoldStatus="ON")
    assert error_of(caught) == (400, "InvalidRequest")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    calls = [
        lambda: s3.get_object_retention(Bucket=bucket, Key="k"),
        lambda: s3.get_object_legal_hold(Bucket=bucket, Key="k"),
        lambda: s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"}),
        lambda: s3.put_object_retention(
            Bucket=bucket, Key="k", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until}
        ),
    ]
    for call in calls:
        with pytest.raises(ClientError) as caught:
            call()
        assert error_of(caught) == (400, "InvalidRequest")
        assert caught.value.response["Error"]["Message"] == MISSING_LOCK_MESSAGE


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-amz-object-lock-mode": "GOVERNANCE"}, "must both be supplied"),
        ({"x-amz-object-lock-retain-until-date": "2099-01-01T00:00:00Z"}, "must both be supplied"),
        (
            {"x-amz-object-lock-mode": "SOFT", "x-amz-object-lock-retain-until-date": "2099-01-01T00:00:00Z"},
            "Unknown wormMode directive.",
        ),
        (
            {"x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": "2001-01-01T00:00:00Z"},
            "The retain until date must be in the future!",
        ),
        (
            {"x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": "tomorrow"},
            "ISO 8601",
        ),
        ({"x-amz-object-lock-legal-hold": "MAYBE"}, "Legal Hold must be either of 'ON' or 'OFF'"),
    ],
)
def test_invalid_lock_headers_are_refused(s3, locked_bucket, raw, headers, message):
    body = b"data"
    response = raw("PUT", f"/{locked_bucket}/k", body, dict(headers, **{"Content-MD5": content_md5(body)}))
    assert response.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in response.content
    assert message.encode() in response.content
    assert "Versions" not in s3.list_object_versions(Bucket=locked_bucket)


def test_put_with_lock_headers_needs_an_integrity_check(s3, locked_bucket, raw):
    headers = {"x-amz-object-lock-mode": "GOVERNANCE", "x-amz-object-lock-retain-until-date": "2099-01-01T00:00:00Z"}
    response = raw("PUT", f"/{locked_bucket}/k", b"data", headers)
    assert response.status_code == 400
    assert b"<Code>InvalidRequest</Code>" in response.content
    assert b"Content-MD5 OR x-amz-checksum- HTTP header is required" in response.content
    response = raw("PUT", f"/{locked_bucket}/k", b"data", dict(headers, **{"Content-MD5": content_md5(b"data")}))
    assert response.status_code == 200
    head = s3.head_object(Bucket=locked_bucket, Key="k")
    assert head["ObjectLockRetainUntilDate"] == datetime(2099, 1, 1, tzinfo=UTC)


def test_copy_is_locked_as_it_asks_not_as_its_source(s3, locked_bucket):
    until = in_future(hours=1).replace(microsecond=0)
    s3.put_object(
        Bucket=locked_bucket,
        Key="source",
        Body=b"x",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        ObjectLockLegalHoldStatus="ON",
    )
    source = {"Bucket": locked_bucket, "Key": "source"}
    s3.copy_object(Bucket=locked_bucket, Key="plain", CopySource=source)
    head = s3.head_object(Bucket=locked_bucket, Key="plain")
    assert "ObjectLockMode" not in head and "ObjectLockLegalHoldStatus" not in head
    later = in_future(hours=2).replace(microsecond=0)
    s3.copy_object(
        Bucket=locked_bucket,
        Key="held",
        CopySource=source,
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=later,
        ObjectLockLegalHoldStatus="OFF",
    )
    head = s3.head_object(Bucket=locked_bucket, Key="held")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("GOVERNANCE", later)
    assert head["ObjectLockLegalHoldStatus"] == "OFF"


def test_multipart_upload_gets_the_lock_it_was_created_with(s3, locked_bucket):
    until = in_future(hours=1).replace(microsecond=0)
    upload = s3.create_multipart_upload(
        Bucket=locked_bucket,
        Key="big",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=until,
        ObjectLockLegalHoldStatus="ON",
    )["UploadId"]
    part = s3.upload_part(Bucket=locked_bucket, Key="big", UploadId=upload, PartNumber=1, Body=b"part")
    s3.complete_multipart_upload(
        Bucket=locked_bucket,
        Key="big",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    head = s3.head_object(Bucket=locked_bucket, Key="big")
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("GOVERNANCE", until)
    assert head["ObjectLockLegalHoldStatus"] == "ON"


# -- deletion ------------------------------------------------------------------------------------


def test_governance_holds_a_version_unless_bypassed(s3, locked_bucket):
    until = in_future(hours=1)
    version = s3.put_object(
        Bucket=locked_bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until
    )["VersionId"]
    with pytest.raises(ClientError) as caught:
        s3.delete_object(Bucket=locked_bucket, Key="k", VersionId=version)
    assert error_of(caught) == (403, "AccessDenied")
    assert caught.value.response["Error"]["Message"] == LOCKED_MESSAGE
    # A delete without a version only hides it behind a delete marker; an overwrite is a new version.
    marker = s3.delete_object(Bucket=locked_bucket, Key="k")
    assert marker["DeleteMarker"] is True
    newer = s3.put_object(Bucket=locked_bucket, Key="k", Body=b"y")["VersionId"]
    listing = s3.list_object_versions(Bucket=locked_bucket)
    assert [v["VersionId"] for v in listing["Versions"]] == [newer, version]
    s3.delete_object(Bucket=locked_bucket, Key="k", VersionId=marker["VersionId"])
    s3.delete_object(Bucket=locked_bucket, Key="k", VersionId=version, BypassGovernanceRetention=True)
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=locked_bucket)["Versions"]] == [newer]


def test_compliance_holds_a_version_whatever_the_request(s3, locked_bucket):
    until = in_future(days=1).replace(microsecond=0)
    version = s3.put_object(
        Bucket=locked_bucket, Key="k", Body=b"x", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until
    )["VersionId"]
    for bypass in (False, True):
        with pytest.raises(ClientError) as caught:
            s3.delete_object(Bucket=locked_bucket, Key="k", VersionId=version, BypassGovernanceRetention=bypass)
        assert error_of(caught) == (403, "AccessDenied")
    refused = [
        {"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(hours=1)},
        {"Mode": "GOVERNANCE", "RetainUntilDate": until},
        {"Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(days=1)},
        {},
    ]
    for retention in refused:
        with pytest.raises(ClientError) as caught:
            s3.put_object_retention(Bucket=locked_bucket, Key="k", Retention=retention, BypassGovernanceRetention=True)
        assert error_of(caught) == (403, "AccessDenied")
        assert retention_of(s3, locked_bucket, "k") == {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    extended = until + timedelta(days=1)
    s3.put_object_retention(
        Bucket=locked_bucket, Key="k", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": extended}
    )
    assert retention_of(s3, locked_bucket, "k") == {"Mode": "COMPLIANCE", "RetainUntilDate": extended}


def test_governance_retention_changes_only_with_bypass(s3, locked_bucket):
    until = in_future(hours=2).replace(microsecond=0)
    version = s3.put_object(
        Bucket=locked_bucket, Key="k", Body=b"x", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until
    )["VersionId"]
    shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": until - timedelta(hours=1)}
    stricter = {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    for retention in (shorter, stricter, {}):
        with pytest.raises(ClientError) as caught:
            s3.put_object_retention(Bucket=locked_bucket, Key="k", VersionId=version, Retention=retention)
        assert error_of(caught) == (403, "AccessDenied")
    longer = {"Mode": "GOVERNANCE", "RetainUntilDate": until + timedelta(hours=1)}
    s3.put_object_retention(Bucket=locked_bucket, Key="k", VersionId=version, Retention=longer)
    assert retention_of(s3, locked_bucket, "k") == longer
    s3.put_object_retention(Bucket=locked_bucket, Key="k", Retention=shorter, BypassGovernanceRetention=True)
    assert retention_of(s3, locked_bucket, "k") == shorter
    s3.put_object_retention(Bucket=locked_bucket, Key="k", Retention={}, BypassGovernanceRetention=True)
    with pytest.raises(ClientError) as caught:
        s3.get_object_retention(Bucket=locked_bucket, Key="k")
    assert error_of(caught) == (404, "NoSuchObjectLockConfiguration")
    assert "ObjectLockMode" not in s3.head_object(Bucket=locked_bucket, Key="k")
    s3.delete_object(Bucket=locked_bucket, Key="k", VersionId=version)


def test_retention_refusals(s3, locked_bucket, raw):
    s3.put_object(Bucket=locked_bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as caught:
        s3.put_object_retention(
            Bucket=locked_bucket, Key="k", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": in_future(days=-1)}
        )
    assert error_of(caught) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as caught:
        s3.put_object_retention(
            Bucket=locked_bucket, Key="missing", Retention={"Mode": "GOVERNANCE", "RetainUntilDate": in_future(days=1)}
        )
    assert error_of(caught) == (404, "NoSuchKey")
    for document in (
        "<Mode>GOVERNANCE</Mode>",
        "<Mode>SOFT</Mode><RetainUntilDate>2099-01-01T00:00:00Z</RetainUntilDate>",
        "<Mode>GOVERNANCE</Mode><RetainUntilDate>soon</RetainUntilDate>",
    ):
        body = f'<Retention xmlns="{XMLNS}">{document}</Retention>'.encode()
        response = raw("PUT", f"/{locked_bucket}/k?retention", body, {"Content-MD5": content_md5(body)})
        assert response.status_code == 400
        assert b"<Code>MalformedXML</Code>" in response.content
    body = f'<LegalHold xmlns="{XMLNS}"><Status>MAYBE</Status></LegalHold>'.encode()
    response = raw("PUT", f"/{locked_bucket}/k?legal-hold", body, {"Content-MD5": content_md5(body)})
    assert b"<Code>MalformedXML</Code>" in response.content
    with pytest.raises(ClientError) as caught:
        s3.get_object_retention(Bucket=locked_bucket, Key="k")
    assert error_of(caught) == (404, "NoSuchObjectLockConfiguration")


def test_legal_hold_keeps_a_version_until_lifted(s3, locked_bucket):
    first = s3.put_object(Bucket=locked_bucket, Key="k", Body=b"1")["VersionId"]
    s3.put_object(Bucket=locked_bucket, Key="k", Body=b"2")
    with pytest.raises(ClientError) as caught:
        s3.get_object_legal_hold(Bucket=locked_bucket, Key="k", VersionId=first)
    assert error_of(caught) == (404, "NoSuchObjectLockConfiguration")
    s3.put_object_legal_hold(Bucket=locked_bucket, Key="k", VersionId=first, LegalHold={"Status": "ON"})
    assert s3.get_object_legal_hold(Bucket=locked_bucket, Key="k", VersionId=first)["LegalHold"] == {"Status": "ON"}
    assert "ObjectLockLegalHoldStatus" not in s3.head_object(Bucket=locked_bucket, Key="k")
    assert s3.head_object(Bucket=locked_bucket, Key="k", VersionId=first)["ObjectLockLegalHoldStatus"] == "ON"
    for bypass in (False, True):
        with pytest.raises(ClientError) as caught:
            s3.delete_object(Bucket=locked_bucket, Key="k", VersionId=first, BypassGovernanceRetention=bypass)
        assert error_of(caught) == (403, "AccessDenied")
    s3.put_object_legal_hold(Bucket=locked_bucket, Key="k", VersionId=first, LegalHold={"Status": "OFF"})
    assert s3.get_object_legal_hold(Bucket=locked_bucket, Key="k", VersionId=first)["LegalHold"] == {"Status": "OFF"}
    s3.delete_object(Bucket=locked_bucket, Key="k", VersionId=first)


def test_delete_objects_reports_each_locked_version(s3, locked_bucket):
    held = s3.put_object(
        Bucket=locked_bucket,
        Key="held",
        Body=b"x",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=in_future(hours=1),
    )["VersionId"]
    free = s3.put_object(Bucket=locked_bucket, Key="free", Body=b"x")["VersionId"]
    objects = [{"Key": "held", "VersionId": held}, {"Key": "free", "VersionId": free}, {"Key": "held"}]
    result = s3.delete_objects(Bucket=locked_bucket, Delete={"Objects": objects})
    assert result["Errors"] == [{"Key": "held", "VersionId": held, "Code": "AccessDenied", "Message": LOCKED_MESSAGE}]
    deleted = {(entry["Key"], entry.get("VersionId")) for entry in result["Deleted"]}
    assert deleted == {("free", free), ("held", None)}
    result = s3.delete_objects(
        Bucket=locked_bucket, Delete={"Objects": [{"Key": "held", "VersionId": held}]}, BypassGovernanceRetention=True
    )
    assert "Errors" not in result
    assert result["Deleted"] == [{"Key": "held", "VersionId": held}]


def test_expired_retention_lets_the_version_go(s3, locked_bucket):
    until = in_future(seconds=2)
    version = s3.put_object(
        Bucket=locked_bucket, Key="k", Body=b"x", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until
    )["VersionId"]
    with pytest.raises(ClientError) as caught:
        s3.delete_object(Bucket=locked_bucket, Key="k", VersionId=version)
    assert error_of(caught) == (403, "AccessDenied")
    # botocore sends a header date to the second: the version is held until the date stored.
    held_until = retention_of(s3, locked_bucket, "k")["RetainUntilDate"]

    def deleted() -> bool:
        try:
            s3.delete_object(Bucket=locked_bucket, Key="k", VersionId=version)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "AccessDenied"
            return False
        return True

    wait_for(deleted, timeout=30, what="the retention to expire", interval=0.2)
    assert datetime.now(UTC) >= held_until
    assert "Versions" not in s3.list_object_versions(Bucket=locked_bucket)


def test_a_bypass_needs_its_own_permission_in_delete_object_and_delete_objects(s3, locked_bucket, new_user):
    version = s3.put_object(
        Bucket=locked_bucket,
        Key="k",
        Body=b"x",
        ObjectLockMode="GOVERNANCE",
        ObjectLockRetainUntilDate=in_future(hours=1),
    )["VersionId"]
    deletes = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    objects = f"arn:aws:s3:::{locked_bucket}/*"
    _, deleter, _ = new_user(allow(deletes, objects))
    with pytest.raises(ClientError) as caught:
        deleter.delete_object(Bucket=locked_bucket, Key="k", VersionId=version, BypassGovernanceRetention=True)
    assert error_of(caught) == (403, "AccessDenied")
    batch = {"Objects": [{"Key": "k", "VersionId": version}]}
    answer = deleter.delete_objects(Bucket=locked_bucket, Delete=batch, BypassGovernanceRetention=True)
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("k", "AccessDenied")] and "Deleted" not in answer
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=locked_bucket)["Versions"]] == [version]
    bypassing = [*deletes, "s3:BypassGovernanceRetention"]
    _, trusted, _ = new_user(allow(bypassing, objects))
    answer = trusted.delete_objects(Bucket=locked_bucket, Delete=batch, BypassGovernanceRetention=True)
    assert [(d["Key"], d["VersionId"]) for d in answer["Deleted"]] == [("k", version)] and "Errors" not in answer
