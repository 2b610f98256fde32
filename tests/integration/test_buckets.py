"""Bucket operations against a real node: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
GetBucketLocation, as AWS documents them."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

LOCATION_BODY = (
    '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    "<LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>"
)

# Names AWS refuses for a new general purpose bucket, each breaking one rule.
INVALID_NAMES = [
    "ab",  # shorter than 3
    "a" * 64,  # longer than 63
    "UpperCase",
    "under_score",
    "-leading-dash",
    "trailing-dash-",
    ".leading-dot",
    "trailing-dot.",
    "two..dots",
    "192.168.5.4",  # shaped like an IPv4 address
    "xn--reserved-prefix",
    "sthree-reserved",
    "name-s3alias",
    "name--ol-s3",
    "spa%20ce",
    "caf%C3%A9",
]
VALID_NAMES = ["abc", "a" * 63, "with.dots.and-dashes", "0-starts-with-digit", "ends-with-digit-9"]


def fresh_name(prefix: str = "b") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def error_code(exc_info) -> str:
    return exc_info.value.response["Error"]["Code"]


def status_of(exc_info) -> int:
    return exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_list_buckets_shows_created_buckets_sorted_with_owner(s3):
    names = sorted(fresh_name("list") for _ in range(3))
    for name in reversed(names):
        s3.create_bucket(Bucket=name)
    try:
        listed = s3.list_buckets()
        mine = [b["Name"] for b in listed["Buckets"] if b["Name"] in names]
        assert mine == names
        assert [b["Name"] for b in listed["Buckets"]] == sorted(b["Name"] for b in listed["Buckets"])
        assert all(b["CreationDate"].tzinfo is not None for b in listed["Buckets"])
        assert listed["Owner"]["ID"] and listed["Owner"]["DisplayName"]
    finally:
        for name in names:
            s3.delete_bucket(Bucket=name)
    assert not {b["Name"] for b in s3.list_buckets()["Buckets"]} & set(names)


@pytest.mark.parametrize("name", VALID_NAMES)
def test_create_bucket_accepts_valid_names(s3, name):
    s3.create_bucket(Bucket=name)
    try:
        s3.head_bucket(Bucket=name)
    finally:
        s3.delete_bucket(Bucket=name)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_create_bucket_refuses_invalid_names(raw, s3, name):
    response = raw("PUT", f"/{name}")
    assert response.status_code == 400, response.text
    assert b"<Code>InvalidBucketName</Code>" in response.content
    assert all(b["Name"] != name for b in s3.list_buckets()["Buckets"])


def test_creating_an_owned_bucket_again_answers_200_in_us_east_1(s3, bucket):
    # Elsewhere it is 409 BucketAlreadyOwnedByYou (test_aws_answers.py runs a node in eu-west-1).
    s3.put_object(Bucket=bucket, Key="kept", Body=b"kept")
    assert s3.create_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["kept"]


def test_create_bucket_with_matching_location_constraint(raw, s3):
    name = fresh_name()
    response = raw("PUT", f"/{name}", LOCATION_BODY.format("us-east-1").encode())
    assert response.status_code == 200, response.text
    try:
        assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    finally:
        s3.delete_bucket(Bucket=name)


def test_create_bucket_with_other_location_constraint_is_refused(s3):
    name = fresh_name()
    with pytest.raises(ClientError) as caught:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert error_code(caught) == "InvalidLocationConstraint"
    assert status_of(caught) == 400
    assert all(b["Name"] != name for b in s3.list_buckets()["Buckets"])


def test_create_bucket_with_empty_configuration_means_default_region(raw, s3):
    name = fresh_name()
    response = raw("PUT", f"/{name}", b"<CreateBucketConfiguration/>")
    assert response.status_code == 200, response.text
    s3.delete_bucket(Bucket=name)


@pytest.mark.parametrize(
    "body",
    [
        b"<CreateBucketConfiguration><LocationConstraint>us-east-1",
        b"not xml at all",
        b"<WrongRoot><LocationConstraint>us-east-1</LocationConstraint></WrongRoot>",
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "us-east-1">]>'
            b"<CreateBucketConfiguration><LocationConstraint>&e;</LocationConstraint></CreateBucketConfiguration>"
        ),
    ],
    ids=["truncated", "not-xml", "wrong-root", "entity"],
)
def test_create_bucket_with_malformed_body_is_malformed_xml(raw, s3, body):
    name = fresh_name()
    response = raw("PUT", f"/{name}", body)
    assert response.status_code == 400, response.text
    assert b"<Code>MalformedXML</Code>" in response.content
    assert all(b["Name"] != name for b in s3.list_buckets()["Buckets"])


def test_delete_bucket_that_is_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    with pytest.raises(ClientError) as caught:
        s3.delete_bucket(Bucket=bucket)
    assert error_code(caught) == "BucketNotEmpty"
    assert status_of(caught) == 409
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"x"


def test_delete_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(ClientError) as caught:
        s3.delete_bucket(Bucket=fresh_name("missing"))
    assert error_code(caught) == "NoSuchBucket"
    assert status_of(caught) == 404


def test_delete_bucket_answers_204_and_bucket_is_gone(raw, s3):
    name = fresh_name()
    s3.create_bucket(Bucket=name)
    response = raw("DELETE", f"/{name}")
    assert response.status_code == 204
    assert response.content == b""
    with pytest.raises(ClientError) as caught:
        s3.head_bucket(Bucket=name)
    assert status_of(caught) == 404


def test_deleted_bucket_name_can_be_created_again(s3):
    name = fresh_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"old")
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    try:
        assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    finally:
        s3.delete_bucket(Bucket=name)


def test_head_bucket_found(raw, bucket):
    response = raw("HEAD", f"/{bucket}")
    assert response.status_code == 200
    assert response.headers["x-amz-bucket-region"] == "us-east-1"
    assert response.headers["x-amz-request-id"]


def test_head_missing_bucket_is_404_without_body(raw):
    response = raw("HEAD", f"/{fresh_name('missing')}")
    assert response.status_code == 404
    assert response.content == b""
    assert response.headers["x-amz-request-id"]


def test_get_bucket_location_of_default_region(raw, s3, bucket):
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] is None
    response = raw("GET", f"/{bucket}?location")
    assert response.status_code == 200
    assert b"<LocationConstraint" in response.content


def test_get_bucket_location_of_missing_bucket(s3):
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_location(Bucket=fresh_name("missing"))
    assert error_code(caught) == "NoSuchBucket"


def test_operations_on_missing_bucket_are_no_such_bucket(s3):
    name = fresh_name("missing")
    for call in (
        lambda: s3.list_objects_v2(Bucket=name),
        lambda: s3.list_objects(Bucket=name),
        lambda: s3.put_object(Bucket=name, Key="k", Body=b"x"),
        lambda: s3.get_object(Bucket=name, Key="k"),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert error_code(caught) == "NoSuchBucket"
        assert status_of(caught) == 404
    assert all(b["Name"] != name for b in s3.list_buckets()["Buckets"])
