"""Retries that apply once: a command proposed again under its request id answers what it
answered the first time, and a CompleteMultipartUpload sent again answers the same ETag."""

from __future__ import annotations

import uuid

import pytest

from nebulaio.cluster.ipc import SupervisorClient
from nebulaio.storage.layout import DataLayout
from nebulaio.util.ids import command_id, now_ms, version_id

PART_SIZE = 5 * 1024 * 1024


@pytest.fixture
def supervisor(node):
    """A worker's connection to the node's supervisor, to propose commands as a worker does."""
    return SupervisorClient(DataLayout(str(node.data)).ipc_socket)


def propose_twice(supervisor, command: dict) -> tuple[dict, dict]:
    """Propose `command` twice under one request id, as a worker retrying an unconfirmed entry."""
    command = {**command, "request_id": command_id(), "requested": now_ms()}
    return tuple(supervisor.call({"type": "submit", "command": command}) for _ in range(2))


def record(key: str, body: bytes) -> dict:
    return {
        "key": key,
        "vid": version_id(),
        "size": len(body),
        "etag": "0" * 32,
        "mtime": now_ms(),
        "ctype": "application/octet-stream",
        "headers": {},
        "meta": {},
        "checksums": {},
        "inline": True,
    }


def test_a_command_proposed_twice_under_one_request_id_applies_once(supervisor, s3):
    bucket = f"idem-{uuid.uuid4().hex[:12]}"
    create = {"op": "bucket.create", "bucket": bucket, "owner": "root", "created": now_ms(), "region": "us-east-1"}
    assert propose_twice(supervisor, create) == ({"status": "ok"}, {"status": "ok"})
    fresh = supervisor.submit(create, None, 30.0)
    assert fresh == {"status": "BucketAlreadyOwnedByYou"}  # a new request id applies for itself
    s3.delete_bucket(Bucket=bucket)


def test_a_retried_conditional_put_answers_its_200(supervisor, s3, bucket):
    put = {"op": "object.put", "bucket": bucket, "record": record("k", b"x"), "condition": {"if-none-match": "*"}}
    first, again = propose_twice(supervisor, put)
    assert first["status"] == again["status"] == "ok"
    retried_elsewhere = {**put, "record": record("k", b"y")}  # another version under another id
    assert supervisor.submit(retried_elsewhere, None, 30.0)["status"] == "PreconditionFailed"
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 1


def test_a_retried_delete_objects_answers_its_per_key_results(supervisor, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    delete = {"op": "object.delete_many", "bucket": bucket, "objects": [["a", None], ["b", None]], "mtime": now_ms()}
    first, again = propose_twice(supervisor, delete)
    assert first == again and [result["marker"] for result in first["deleted"]] == [True, True]
    markers = s3.list_object_versions(Bucket=bucket)["DeleteMarkers"]
    assert sorted(marker["Key"] for marker in markers) == ["a", "b"]  # one marker each, not two


def test_complete_multipart_upload_sent_twice_answers_the_same_etag(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    parts = []
    for number, fill in ((1, b"a"), (2, b"b")):
        size = PART_SIZE if number == 1 else 10
        etag = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=number, Body=fill * size)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    answers = [
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload={"Parts": parts})
        for _ in range(2)
    ]
    assert answers[0]["ETag"] == answers[1]["ETag"] and answers[0]["ETag"].endswith('-2"')
    assert answers[0]["VersionId"] == answers[1]["VersionId"]
    assert [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]] == [answers[0]["VersionId"]]
    assert s3.get_object(Bucket=bucket, Key="big")["ContentLength"] == PART_SIZE + 10
    with pytest.raises(s3.exceptions.NoSuchUpload):  # another part list is not the same completion
        s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload_id, MultipartUpload={"Parts": parts[:1]})
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)
