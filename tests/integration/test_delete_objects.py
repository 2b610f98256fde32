"""DeleteObjects (POST ?delete) against a real node: verbose and quiet results, per-key
errors, the 1000-key limit, the integrity check S3 requires, and one raft entry per request.
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ElementTree
from xml.sax.saxutils import escape

import pytest
from botocore.exceptions import ClientError
from conftest import wait_for

from nebulaio.cluster.ipc import SupervisorClient
from nebulaio.storage.layout import DataLayout

INLINE_THRESHOLD = 16 * 1024
NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"
S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def delete_body(keys, quiet: bool = False, versions: dict | None = None) -> bytes:
    versions = versions or {}
    objects = "".join(
        f"<Object><Key>{escape(key)}</Key>"
        + (f"<VersionId>{versions[key]}</VersionId>" if key in versions else "")
        + "</Object>"
        for key in keys
    )
    quiet_xml = "<Quiet>true</Quiet>" if quiet else ""
    return f'<Delete xmlns="{S3_XMLNS}">{quiet_xml}{objects}</Delete>'.encode()


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def post_delete(raw, bucket: str, body: bytes, headers: dict | None = None):
    headers = {"Content-MD5": content_md5(body)} if headers is None else headers
    return raw("POST", f"/{bucket}?delete", body=body, headers=headers)


def stored_files(node, bucket: str) -> list:
    return [f for f in (node.data / "objects" / bucket).rglob("*") if f.is_file()]


def keys_in(s3, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_boto3_delete_objects_verbose(s3, node, bucket):
    for key, size in (("small", 10), ("large", 3 * INLINE_THRESHOLD), ("dir/nested", 1)):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * size)
    s3.put_object(Bucket=bucket, Key="kept", Body=b"k")
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ("small", "large", "dir/nested", "never-existed")]}
    )
    assert [d["Key"] for d in result["Deleted"]] == ["small", "large", "dir/nested", "never-existed"]
    assert "Errors" not in result
    assert keys_in(s3, bucket) == ["kept"]
    wait_for(lambda: not stored_files(node, bucket), 10.0, "the deleted file's bytes to be released")


def test_boto3_delete_objects_quiet(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}], "Quiet": True})
    assert "Deleted" not in result
    assert "Errors" not in result
    assert keys_in(s3, bucket) == []


def test_result_document_lists_keys_in_request_order(raw, s3, bucket):
    keys = ["z", "a & <b>", "m/ü"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    response = post_delete(raw, bucket, delete_body(keys))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{NAMESPACE}DeleteResult"
    assert [d.findtext(f"{NAMESPACE}Key") for d in root] == keys
    assert keys_in(s3, bucket) == []


def test_per_key_errors_do_not_stop_the_others(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="good", Body=b"x")
    s3.put_object(Bucket=bucket, Key="null-version", Body=b"x")
    body = delete_body(
        ["good", "k" * 1025, "versioned", "null-version"],
        versions={"versioned": "3HL4kqtJlcpXroDTDmJ", "null-version": "null"},
    )
    response = post_delete(raw, bucket, body)
    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.content)
    outcomes = [
        (e.tag.removeprefix(NAMESPACE), e.findtext(f"{NAMESPACE}Key"), e.findtext(f"{NAMESPACE}Code")) for e in root
    ]
    assert outcomes == [
        ("Deleted", "good", None),
        ("Error", "k" * 1025, "KeyTooLongError"),
        ("Error", "versioned", "InvalidArgument"),
        ("Deleted", "null-version", None),
    ]
    assert root[2].findtext(f"{NAMESPACE}VersionId") == "3HL4kqtJlcpXroDTDmJ"
    assert root[3].findtext(f"{NAMESPACE}VersionId") == "null"
    assert keys_in(s3, bucket) == []


def test_quiet_mode_still_reports_errors(raw, bucket):
    response = post_delete(raw, bucket, delete_body(["fine", "k" * 1025], quiet=True))
    root = ElementTree.fromstring(response.content)
    assert [e.tag.removeprefix(NAMESPACE) for e in root] == ["Error"]


def test_a_thousand_keys_is_one_raft_entry(raw, s3, node, bucket):
    keys = [f"key-{n:04d}" for n in range(1000)]
    for key in keys[:20]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    client = SupervisorClient(DataLayout(str(node.data)).ipc_socket)
    before = client.call({"type": "status"})["applied_index"]
    response = post_delete(raw, bucket, delete_body(keys, quiet=True))
    assert response.status_code == 200, response.text
    assert client.call({"type": "status"})["applied_index"] - before == 1
    assert keys_in(s3, bucket) == []


def test_more_than_a_thousand_keys_is_malformed(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="key-0", Body=b"x")
    response = post_delete(raw, bucket, delete_body([f"key-{n}" for n in range(1001)]))
    assert response.status_code == 400
    assert b"<Code>MalformedXML</Code>" in response.content
    assert keys_in(s3, bucket) == ["key-0"]


@pytest.mark.parametrize(
    "body",
    [b"", b"not xml", b"<Delete/>", b"<Delete><Object><VersionId>1</VersionId></Object></Delete>", b"<Other/>"],
    ids=["empty", "garbage", "no-objects", "no-key", "wrong-root"],
)
def test_malformed_bodies(raw, bucket, body):
    response = post_delete(raw, bucket, body)
    assert response.status_code == 400
    assert b"<Code>MalformedXML</Code>" in response.content


def test_an_integrity_header_is_required(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    response = post_delete(raw, bucket, delete_body(["a"]), headers={})
    assert response.status_code == 400
    assert b"<Code>InvalidRequest</Code>" in response.content
    assert b"Content-MD5" in response.content
    assert keys_in(s3, bucket) == ["a"]


def test_a_wrong_digest_deletes_nothing(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    response = post_delete(raw, bucket, delete_body(["a"]), headers={"Content-MD5": content_md5(b"other")})
    assert response.status_code == 400
    assert b"<Code>BadDigest</Code>" in response.content
    crc = {"x-amz-checksum-crc32": "AAAAAA=="}
    assert b"<Code>BadDigest</Code>" in post_delete(raw, bucket, delete_body(["a"]), headers=crc).content
    assert keys_in(s3, bucket) == ["a"]


def test_missing_bucket(s3):
    with pytest.raises(ClientError) as caught:
        s3.delete_objects(Bucket="no-such-bucket-for-delete", Delete={"Objects": [{"Key": "a"}]})
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"
