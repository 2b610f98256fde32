"""Versioning against a real node: version ids, delete markers, the null version, suspended
buckets, ListObjectVersions paging, version-aware GET / HEAD / DELETE / copy / batch delete,
and the bytes of deleted versions being freed.
"""

from __future__ import annotations

import os
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError
from conftest import wait_for

INLINE_THRESHOLD = 16 * 1024
NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def enable(s3, bucket: str, status: str = "Enabled") -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def error_of(caught) -> tuple[int, str]:
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def versions_of(raw, bucket: str, max_keys: int = 1000, **query: str) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, is delete marker) of every version, in wire order, page by page.

    Read from the XML itself: botocore splits versions and delete markers into two lists.
    """
    got = []
    markers = {}
    while True:
        arguments = {**query, **markers, "max-keys": max_keys}
        params = "&".join(f"{name}={quote(str(value), safe='')}" for name, value in arguments.items())
        root = ElementTree.fromstring(raw("GET", f"/{bucket}?versions&{params}").content)
        for entry in root:
            if entry.tag in (f"{NAMESPACE}Version", f"{NAMESPACE}DeleteMarker"):
                got.append(
                    (
                        entry.findtext(f"{NAMESPACE}Key"),
                        entry.findtext(f"{NAMESPACE}VersionId"),
                        entry.findtext(f"{NAMESPACE}IsLatest") == "true",
                        entry.tag == f"{NAMESPACE}DeleteMarker",
                    )
                )
        if root.findtext(f"{NAMESPACE}IsTruncated") != "true":
            return got
        markers = {
            "key-marker": root.findtext(f"{NAMESPACE}NextKeyMarker"),
            "version-id-marker": root.findtext(f"{NAMESPACE}NextVersionIdMarker"),
        }


def test_versioning_configuration_round_trips(s3, bucket, raw):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    enable(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    enable(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    bad = b"<VersioningConfiguration><Status>Off</Status></VersioningConfiguration>"
    response = raw("PUT", f"/{bucket}?versioning", bad)
    assert response.status_code == 400
    assert b"<Code>IllegalVersioningConfigurationException</Code>" in response.content
    response = raw("PUT", f"/{bucket}?versioning", b"<NotVersioning/>")
    assert b"<Code>MalformedXML</Code>" in response.content
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_versioning(Bucket="no-such-bucket-here")
    assert error_of(caught) == (404, "NoSuchBucket")


@pytest.mark.parametrize("size", [10, 3 * INLINE_THRESHOLD], ids=["inline", "file"])
def test_every_version_stays_readable(s3, bucket, raw, size):
    enable(s3, bucket)
    bodies = [bytes([n]) * size for n in range(3)]
    ids = [s3.put_object(Bucket=bucket, Key="k", Body=body)["VersionId"] for body in bodies]
    assert len(set(ids)) == 3 and "null" not in ids
    for version_id, body in zip(ids, bodies, strict=True):
        got = s3.get_object(Bucket=bucket, Key="k", VersionId=version_id)
        assert got["Body"].read() == body
        assert got["VersionId"] == version_id
        assert s3.head_object(Bucket=bucket, Key="k", VersionId=version_id)["ContentLength"] == size
        ranged = s3.get_object(Bucket=bucket, Key="k", VersionId=version_id, Range="bytes=1-2")
        assert ranged["Body"].read() == body[1:3]
    current = s3.get_object(Bucket=bucket, Key="k")
    assert (current["Body"].read(), current["VersionId"]) == (bodies[-1], ids[-1])
    assert versions_of(raw, bucket) == [
        ("k", ids[2], True, False),
        ("k", ids[1], False, False),
        ("k", ids[0], False, False),
    ]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_delete_makes_a_marker_that_hides_the_key(s3, bucket, raw):
    enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    response = raw("GET", f"/{bucket}/k")
    assert response.status_code == 404
    assert response.headers["x-amz-delete-marker"] == "true"
    assert response.headers["x-amz-version-id"] == marker
    response = raw("GET", f"/{bucket}/k?versionId={marker}")
    assert response.status_code == 405
    assert response.headers["x-amz-delete-marker"] == "true"
    assert b"<Code>MethodNotAllowed</Code>" in response.content
    assert raw("HEAD", f"/{bucket}/k?versionId={marker}").status_code == 405
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"one"
    assert versions_of(raw, bucket) == [("k", marker, True, True), ("k", first, False, False)]
    # A second delete stacks another marker, as on S3.
    again = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    assert versions_of(raw, bucket)[0] == ("k", again, True, True)
    # Deleting the markers brings the object back.
    for version_id in (again, marker):
        answer = s3.delete_object(Bucket=bucket, Key="k", VersionId=version_id)
        assert answer["DeleteMarker"] is True and answer["VersionId"] == version_id
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"


def test_deleting_versions_frees_their_bytes(node, s3, bucket):
    enable(s3, bucket)
    bodies = [bytes([n]) * 3 * INLINE_THRESHOLD for n in range(3)]
    ids = [s3.put_object(Bucket=bucket, Key="big", Body=body)["VersionId"] for body in bodies]
    objects_dir = node.data / "objects" / bucket

    def files() -> int:
        return sum(len(names) for _, _, names in os.walk(objects_dir))

    assert files() == 3
    s3.delete_object(Bucket=bucket, Key="big", VersionId=ids[2])  # the current one: ids[1] takes over
    assert s3.get_object(Bucket=bucket, Key="big")["VersionId"] == ids[1]
    s3.delete_object(Bucket=bucket, Key="big", VersionId=ids[0])
    wait_for(lambda: files() == 1, 10, "the deleted versions' files to be removed")
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="big", VersionId=ids[0])
    assert error_of(caught) == (404, "NoSuchVersion")


def test_objects_from_before_versioning_are_the_null_version(s3, bucket, raw):
    s3.put_object(Bucket=bucket, Key="k", Body=b"old")
    enable(s3, bucket)
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"new")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"old"
    assert [(v[1], v[2]) for v in versions_of(raw, bucket)] == [(new, True), ("null", False)]


def test_suspended_bucket_overwrites_only_the_null_version(s3, bucket, raw):
    enable(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"kept")["VersionId"]
    enable(s3, bucket, "Suspended")
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"one").get("VersionId", "null") == "null"
    s3.put_object(Bucket=bucket, Key="k", Body=b"two")
    assert [(v[1], v[2]) for v in versions_of(raw, bucket)] == [("null", True), (kept, False)]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"two"
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] == "null"
    assert versions_of(raw, bucket) == [("k", "null", True, True), ("k", kept, False, False)]


def test_version_ids_are_checked(s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="k", VersionId="not-a-version")
    assert error_of(caught) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="k", VersionId="0" * 16)
    assert error_of(caught) == (404, "NoSuchVersion")
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket="no-such-bucket-here", Key="k", VersionId="0" * 16)
    assert error_of(caught) == (404, "NoSuchBucket")


def test_list_object_versions_pages_and_groups(s3, bucket, raw):
    enable(s3, bucket)
    for key in ("a", "b/1", "b/2", "c"):
        for n in range(3):
            s3.put_object(Bucket=bucket, Key=key, Body=bytes([n]))
    s3.delete_object(Bucket=bucket, Key="c")
    whole = versions_of(raw, bucket)
    assert len(whole) == 13
    assert [key for key, *_ in whole] == sorted(key for key, *_ in whole)
    for max_keys in (1, 2, 5):
        assert versions_of(raw, bucket, max_keys) == whole
    paged = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2})
    by_boto = {(v["Key"], v["VersionId"]) for p in paged for v in p.get("Versions", []) + p.get("DeleteMarkers", [])}
    assert by_boto == {(key, version_id) for key, version_id, *_ in whole}
    grouped = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["b/"]
    assert {v["Key"] for v in grouped["Versions"]} == {"a", "c"}
    prefixed = s3.list_object_versions(Bucket=bucket, Prefix="b/", MaxKeys=4)
    assert prefixed["IsTruncated"] is True
    last = prefixed["Versions"][-1]["VersionId"]
    assert (prefixed["NextKeyMarker"], prefixed["NextVersionIdMarker"]) == ("b/2", last)
    rest = s3.list_object_versions(
        Bucket=bucket, Prefix="b/", KeyMarker=prefixed["NextKeyMarker"], VersionIdMarker=prefixed["NextVersionIdMarker"]
    )
    assert len(prefixed["Versions"]) + len(rest["Versions"]) == 6


def test_copy_from_a_version_and_batch_delete_of_versions(s3, bucket):
    enable(s3, bucket)
    old = s3.put_object(Bucket=bucket, Key="src", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": old})
    assert copied["CopySourceVersionId"] == old
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    assert s3.get_object(Bucket=bucket, Key="dst")["VersionId"] == copied["VersionId"]
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "src", "VersionId": old}, {"Key": "dst"}, {"Key": "gone"}]}
    )
    deleted = {(d["Key"], d.get("VersionId")): d for d in result["Deleted"]}
    assert deleted[("src", old)].get("DeleteMarker") is None
    assert deleted[("dst", None)]["DeleteMarker"] is True
    assert deleted[("dst", None)]["DeleteMarkerVersionId"]
    assert deleted[("gone", None)]["DeleteMarker"] is True
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"new"


def test_multipart_completion_makes_a_version(s3, bucket):
    enable(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"small")["VersionId"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=1, Body=b"part")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    )
    assert done["VersionId"] not in (None, first)
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"small"


def test_a_bucket_with_versions_is_not_empty(s3, bucket):
    enable(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")
    with pytest.raises(ClientError) as caught:
        s3.delete_bucket(Bucket=bucket)
    assert error_of(caught) == (409, "BucketNotEmpty")


def test_version_id_is_refused_where_it_means_nothing(raw, bucket):
    response = raw("PUT", f"/{bucket}/k?versionId=null", b"data")
    assert response.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in response.content


def test_part_reads_attributes_and_part_copies_address_versions(s3, bucket):
    enable(s3, bucket)
    old = s3.put_object(Bucket=bucket, Key="src", Body=b"old bytes")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    attributes = s3.get_object_attributes(Bucket=bucket, Key="src", VersionId=old, ObjectAttributes=["ObjectSize"])
    assert (attributes["ObjectSize"], attributes["VersionId"]) == (9, old)
    assert s3.get_object(Bucket=bucket, Key="src", VersionId=old, PartNumber=1)["Body"].read() == b"old bytes"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    copied = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=upload,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src", "VersionId": old},
    )
    assert copied["CopySourceVersionId"] == old
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="dst",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": copied["CopyPartResult"]["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old bytes"
