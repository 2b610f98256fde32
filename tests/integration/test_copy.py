"""CopyObject against a real node: same and cross bucket, COPY / REPLACE metadata, the
x-amz-copy-source-if-* preconditions, copies onto themselves, and sources being replaced
while they are copied.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError
from conftest import wait_for

from nebulaio.util.timefmt import http_date, parse_http_date

INLINE_THRESHOLD = 16 * 1024
SIZES = {"empty": 0, "inline": 100, "file": 3 * INLINE_THRESHOLD, "multi-mib": 6 * 1024 * 1024 + 3}
OTHER_ETAG = '"0123456789abcdef0123456789abcdef"'
NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def body_of(size: int) -> bytes:
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def etag_of(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def code_of(caught) -> str:
    return caught.value.response["Error"]["Code"]


def status_of(caught) -> int:
    return caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def stored_files(node, bucket: str) -> list:
    return [f for f in (node.data / "objects" / bucket).rglob("*") if f.is_file()]


def shifted(date: str, seconds: int) -> str:
    return http_date(int((parse_http_date(date) + seconds) * 1000))


@pytest.fixture
def other_bucket(s3):
    name = f"copy-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    yield name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_copy_keeps_bytes_etag_and_metadata(s3, node, bucket, size):
    data = body_of(size)
    s3.put_object(
        Bucket=bucket, Key="src", Body=data, ContentType="text/x-src", CacheControl="no-cache", Metadata={"a": "1"}
    )
    result = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert result["CopyObjectResult"]["ETag"] == etag_of(data)
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == data
    assert got["ETag"] == etag_of(data)
    assert (got["ContentType"], got["CacheControl"], got["Metadata"]) == ("text/x-src", "no-cache", {"a": "1"})
    assert got["LastModified"] == result["CopyObjectResult"]["LastModified"]
    # Each file-backed version has its own file: deleting the source leaves the copy whole.
    assert len(stored_files(node, bucket)) == (2 if size > INLINE_THRESHOLD else 0)
    s3.delete_object(Bucket=bucket, Key="src")
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data


def test_copy_of_a_multipart_object_keeps_its_bytes_and_etag(s3, bucket):
    parts = [body_of(5 * 1024 * 1024), b"tail"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key="src")["UploadId"]
    etags = [
        s3.upload_part(Bucket=bucket, Key="src", UploadId=upload, PartNumber=number, Body=part)["ETag"]
        for number, part in enumerate(parts, start=1)
    ]
    completed = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="src",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]},
    )
    result = s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src")
    assert result["CopyObjectResult"]["ETag"] == completed["ETag"]
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"".join(parts)


@pytest.mark.parametrize("size", [100, 3 * INLINE_THRESHOLD], ids=["inline", "file"])
def test_copy_across_buckets(s3, bucket, other_bucket, size):
    data = body_of(size)
    s3.put_object(Bucket=bucket, Key="dir/src", Body=data)
    s3.copy_object(Bucket=other_bucket, Key="dir/dst", CopySource=f"{bucket}/dir/src")
    assert s3.get_object(Bucket=other_bucket, Key="dir/dst")["Body"].read() == data
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=other_bucket)["Contents"]] == ["dir/dst"]


def test_copy_replace_takes_the_requests_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"data", ContentType="text/old", Metadata={"old": "1"})
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        ContentType="text/new",
        ContentLanguage="fr",
        Metadata={"new": "2"},
    )
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert (head["ContentType"], head["ContentLanguage"], head["Metadata"]) == ("text/new", "fr", {"new": "2"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"old": "1"}


def test_copy_directive_ignores_the_requests_metadata(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"data", Metadata={"old": "1"})
    s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src", Metadata={"new": "2"})
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"old": "1"}


def test_copy_onto_itself_needs_replace(s3, node, bucket):
    data = body_of(3 * INLINE_THRESHOLD)
    s3.put_object(Bucket=bucket, Key="k", Body=data, Metadata={"gen": "1"})
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket=bucket, Key="k", CopySource=f"{bucket}/k")
    assert (status_of(caught), code_of(caught)) == (400, "InvalidRequest")
    assert "copy an object to itself" in caught.value.response["Error"]["Message"]
    s3.copy_object(Bucket=bucket, Key="k", CopySource=f"{bucket}/k", MetadataDirective="REPLACE", Metadata={"gen": "2"})
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Metadata"] == {"gen": "2"}
    assert got["Body"].read() == data
    wait_for(lambda: len(stored_files(node, bucket)) == 1, 10.0, "the replaced version's file to be released")


@pytest.mark.parametrize(
    "key", ["with space", "plus+sign", "question?mark", "ünïcödé/ключ", "percent%20literal", "a&b=c"]
)
def test_copy_source_keys_are_percent_decoded(s3, bucket, key):
    s3.put_object(Bucket=bucket, Key=key, Body=b"odd")
    s3.copy_object(Bucket=bucket, Key=key + "-copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key=key + "-copy")["Body"].read() == b"odd"


def test_copy_result_document(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"data")
    response = raw("PUT", f"/{bucket}/dst", headers={"x-amz-copy-source": f"/{bucket}/src"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{NAMESPACE}CopyObjectResult"
    assert root.find(f"{NAMESPACE}ETag").text == etag_of(b"data")
    assert root.find(f"{NAMESPACE}LastModified").text.endswith(".000Z")


def test_copy_source_version_null_is_the_current_object(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"data")
    response = raw("PUT", f"/{bucket}/dst", headers={"x-amz-copy-source": f"{bucket}/src?versionId=null"})
    assert response.status_code == 200, response.text
    malformed = f"{bucket}/src?versionId=3HL4kqtJlcpXroDTDmJ"
    response = raw("PUT", f"/{bucket}/dst", headers={"x-amz-copy-source": malformed})
    assert response.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in response.content


@pytest.mark.parametrize("source", ["just-a-bucket", "/just-a-bucket/", "/"])
def test_copy_source_without_a_key_is_invalid(raw, bucket, source):
    response = raw("PUT", f"/{bucket}/dst", headers={"x-amz-copy-source": source})
    assert response.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in response.content


def test_unknown_metadata_directive(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"data")
    headers = {"x-amz-copy-source": f"{bucket}/src", "x-amz-metadata-directive": "MERGE"}
    response = raw("PUT", f"/{bucket}/dst", headers=headers)
    assert response.status_code == 400
    assert b"<Code>InvalidArgument</Code>" in response.content


def test_missing_sources(s3, bucket):
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/nope")
    assert (status_of(caught), code_of(caught)) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource="no-such-bucket-for-copy/k")
    assert code_of(caught) == "NoSuchBucket"
    s3.put_object(Bucket=bucket, Key="src", Body=b"data")
    with pytest.raises(ClientError) as caught:
        s3.copy_object(Bucket="no-such-bucket-for-copy", Key="dst", CopySource=f"{bucket}/src")
    assert code_of(caught) == "NoSuchBucket"


# -- x-amz-copy-source-if-* ------------------------------------------------------------------


@pytest.fixture
def source(s3, bucket):
    """(bucket, ETag, Last-Modified) of a source object named "src"."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"source bytes")
    head = s3.head_object(Bucket=bucket, Key="src")
    return bucket, head["ETag"], head["ResponseMetadata"]["HTTPHeaders"]["last-modified"]


def copy_with(s3, bucket: str, **conditions) -> str:
    try:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src", **conditions)
    except ClientError as exc:
        return f"{exc.response['ResponseMetadata']['HTTPStatusCode']} {exc.response['Error']['Code']}"
    return "200"


def test_copy_source_if_match(s3, source):
    bucket, etag, _ = source
    assert copy_with(s3, bucket, CopySourceIfMatch=etag) == "200"
    assert copy_with(s3, bucket, CopySourceIfMatch=OTHER_ETAG) == "412 PreconditionFailed"


def test_copy_source_if_none_match(s3, source):
    bucket, etag, _ = source
    assert copy_with(s3, bucket, CopySourceIfNoneMatch=OTHER_ETAG) == "200"
    assert copy_with(s3, bucket, CopySourceIfNoneMatch=etag) == "412 PreconditionFailed"


def test_copy_source_if_modified_since(raw, source):
    bucket, _, modified = source
    for date, status in ((shifted(modified, -1), 200), (modified, 412), (shifted(modified, 60), 412)):
        headers = {"x-amz-copy-source": f"{bucket}/src", "x-amz-copy-source-if-modified-since": date}
        assert raw("PUT", f"/{bucket}/dst", headers=headers).status_code == status, date


def test_copy_source_if_unmodified_since(raw, source):
    bucket, _, modified = source
    for date, status in ((modified, 200), (shifted(modified, -1), 412)):
        headers = {"x-amz-copy-source": f"{bucket}/src", "x-amz-copy-source-if-unmodified-since": date}
        response = raw("PUT", f"/{bucket}/dst", headers=headers)
        assert response.status_code == status, date
    assert b"<Condition>x-amz-copy-source-if-unmodified-since</Condition>" in response.content


def test_copy_source_if_match_true_wins_over_if_unmodified_since_false(raw, source):
    bucket, etag, modified = source
    headers = {
        "x-amz-copy-source": f"{bucket}/src",
        "x-amz-copy-source-if-match": etag,
        "x-amz-copy-source-if-unmodified-since": shifted(modified, -1),
    }
    assert raw("PUT", f"/{bucket}/dst", headers=headers).status_code == 200


def test_copy_source_if_none_match_false_with_if_modified_since_true_is_412(raw, source):
    bucket, etag, modified = source
    headers = {
        "x-amz-copy-source": f"{bucket}/src",
        "x-amz-copy-source-if-none-match": etag,
        "x-amz-copy-source-if-modified-since": shifted(modified, -1),
    }
    assert raw("PUT", f"/{bucket}/dst", headers=headers).status_code == 412


def test_copy_with_a_destination_condition(s3, source):
    bucket, _, _ = source
    assert copy_with(s3, bucket, IfNoneMatch="*") == "200"
    assert copy_with(s3, bucket, IfNoneMatch="*") == "412 PreconditionFailed"


def test_a_failed_precondition_leaves_no_bytes_behind(s3, node, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=body_of(3 * INLINE_THRESHOLD))
    assert copy_with(s3, bucket, CopySourceIfMatch=OTHER_ETAG) == "412 PreconditionFailed"
    assert len(stored_files(node, bucket)) == 1
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="dst")


# -- consistency -----------------------------------------------------------------------------


def test_a_copy_is_one_whole_version_while_the_source_is_replaced(node, s3, bucket):
    """The source file is opened before the copy starts: an overwrite cannot tear it."""
    size = 8 * 1024 * 1024
    versions = [bytes([n]) * size for n in range(4)]
    etags = {etag_of(v): v for v in versions}
    s3.put_object(Bucket=bucket, Key="src", Body=versions[0])
    stop = threading.Event()
    writer_client = node.client()

    def overwrite() -> None:
        n = 1
        while not stop.is_set():
            writer_client.put_object(Bucket=bucket, Key="src", Body=versions[n % len(versions)])
            n += 1

    writer = threading.Thread(target=overwrite)
    writer.start()
    try:
        for n in range(6):
            s3.copy_object(Bucket=bucket, Key=f"dst{n}", CopySource=f"{bucket}/src")
    finally:
        stop.set()
        writer.join()
    for n in range(6):
        got = s3.get_object(Bucket=bucket, Key=f"dst{n}")
        data = got["Body"].read()
        assert etags.get(got["ETag"]) == data, f"copy {n} is not one whole version"


def test_copy_source_header_percent_encoded_by_hand(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="a b/ü", Body=b"data")
    headers = {"x-amz-copy-source": quote(f"/{bucket}/a b/ü")}
    assert raw("PUT", f"/{bucket}/dst", headers=headers).status_code == 200
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"data"
