"""Multipart upload against a real node: every call, its error paths, and where the bytes go.

Parts of 5 MiB (S3's minimum for all but the last) keep the uploads real and the tests quick.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
import zlib
from urllib.parse import quote, unquote_plus
from xml.etree import ElementTree

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from conftest import wait_for

MIB = 1024 * 1024
PART = 5 * MIB
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def files_under(node, bucket: str) -> list[str]:
    """Names of every object and part file of a bucket on the node's disk."""
    found = []
    for _, _, files in os.walk(node.data / "objects" / bucket):
        found.extend(files)
    return found


def wait_for_files(node, bucket: str, count: int, what: str) -> None:
    """The supervisor frees files just after the command applies: wait for it to be done."""
    wait_for(lambda: len(files_under(node, bucket)) == count, 10, what)


def multipart_etag(*parts: bytes) -> str:
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def upload_parts(s3, bucket: str, key: str, upload_id: str, parts: list[bytes]) -> list[dict]:
    listed = []
    for number, body in enumerate(parts, start=1):
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        assert answer["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        listed.append({"PartNumber": number, "ETag": answer["ETag"]})
    return listed


@pytest.fixture
def started(s3, bucket):
    """An open upload of `big.bin` in a fresh bucket: (bucket, key, upload id)."""
    key = "dir/big.bin"
    created = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ContentType="application/x-test", Metadata={"origin": "multipart"}
    )
    assert (created["Bucket"], created["Key"]) == (bucket, key)
    return bucket, key, created["UploadId"]


def test_three_parts_make_one_ordinary_object(node, s3, started):
    bucket, key, upload_id = started
    parts = [os.urandom(PART), os.urandom(PART), os.urandom(123)]
    listed = upload_parts(s3, bucket, key, upload_id, parts)
    assert len(files_under(node, bucket)) == 3
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed})
    assert done["ETag"] == multipart_etag(*parts)
    assert (done["Bucket"], done["Key"]) == (bucket, key)
    assert done["Location"].endswith(f"/{bucket}/dir/big.bin")

    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == b"".join(parts)
    assert got["ETag"] == done["ETag"]
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"origin": "multipart"}
    ranged = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={PART - 2}-{PART + 1}")["Body"].read()
    assert ranged == parts[0][-2:] + parts[1][:2]
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    wait_for_files(node, bucket, 1, "the parts' files to be freed once the object is built")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    # As on AWS, the same completion again (a client's retry) answers as the first did.
    again = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed})
    assert again["ETag"] == done["ETag"]
    with pytest.raises(ClientError) as excinfo:
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed[:2]})
    assert error_code(excinfo) == "NoSuchUpload"


def test_completion_frees_parts_it_does_not_use_and_replaced_parts(node, s3, started):
    bucket, key, upload_id = started
    first = os.urandom(PART)
    upload_parts(s3, bucket, key, upload_id, [os.urandom(PART)])
    listed = upload_parts(s3, bucket, key, upload_id, [first, b"unused second", b"unused third"])
    wait_for_files(node, bucket, 3, "a part uploaded again to free the file it replaces")
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [
        (1, listed[0]["ETag"], PART),
        (2, listed[1]["ETag"], 13),
        (3, listed[2]["ETag"], 12),
    ]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed[:1]})
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == first
    wait_for_files(node, bucket, 1, "completion to free the parts it does not use")


def test_abort_frees_every_part(node, s3, started):
    bucket, key, upload_id = started
    upload_parts(s3, bucket, key, upload_id, [b"a" * 100, b"b" * 200])
    listed = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [(key, upload_id)]
    assert len(files_under(node, bucket)) == 2
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    wait_for_files(node, bucket, 0, "abort to free every part")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    for call in (
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id),
        lambda: s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id),
        lambda: s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "NoSuchUpload"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_unknown_uploads_and_buckets(s3, bucket, started):
    _, key, upload_id = started
    for upload in ("not-an-upload", "0" * 32, upload_id):
        with pytest.raises(ClientError) as excinfo:
            s3.list_parts(Bucket=bucket, Key=key + ("x" if upload == upload_id else ""), UploadId=upload)
        assert error_code(excinfo) == "NoSuchUpload"
    with pytest.raises(ClientError) as excinfo:
        s3.create_multipart_upload(Bucket="no-such-bucket-" + uuid.uuid4().hex[:8], Key="k")
    assert error_code(excinfo) == "NoSuchBucket"
    with pytest.raises(ClientError) as excinfo:
        s3.list_multipart_uploads(Bucket="no-such-bucket-" + uuid.uuid4().hex[:8])
    assert error_code(excinfo) == "NoSuchBucket"


def test_part_numbers_outside_1_to_10000_are_refused(raw, started):
    bucket, key, upload_id = started
    for number in ("0", "10001", "abc", "-1", ""):
        response = raw("PUT", f"/{bucket}/dir/big.bin?partNumber={number}&uploadId={upload_id}", b"x")
        assert response.status_code == 400, response.text
        assert "<Code>InvalidArgument</Code>" in response.text
    response = raw("PUT", f"/{bucket}/dir/big.bin?partNumber=10000&uploadId={upload_id}", b"x")
    assert response.status_code == 200, response.text


def test_completion_refuses_bad_part_lists(s3, started):
    bucket, key, upload_id = started
    listed = upload_parts(s3, bucket, key, upload_id, [b"small first", b"second"])

    def complete(parts):
        with pytest.raises(ClientError) as excinfo:
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
        return excinfo.value.response["Error"]

    assert complete(list(reversed(listed)))["Code"] == "InvalidPartOrder"
    assert complete([{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}])["Code"] == "InvalidPart"
    assert complete([listed[0], {"PartNumber": 3, "ETag": listed[1]["ETag"]}])["Code"] == "InvalidPart"
    assert complete(listed)["Code"] == "EntityTooSmall"
    # A refused list changes nothing: the upload and its parts are still there.
    assert len(s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]) == 2
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed[1:]}
    )
    assert done["ETag"] == multipart_etag(b"second")


def test_completion_body_must_be_a_part_list(raw, started):
    bucket, _, upload_id = started
    target = f"/{bucket}/dir/big.bin?uploadId={upload_id}"
    for body in (b"", b"<CompleteMultipartUpload/>", b"<nonsense", b"<Other><Part/></Other>"):
        response = raw("POST", target, body)
        assert response.status_code == 400, response.text
        assert "<Code>MalformedXML</Code>" in response.text
    part = b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>"
    assert "<Code>MalformedXML</Code>" in raw("POST", target, part).text


def test_list_parts_pages(s3, started):
    bucket, key, upload_id = started
    upload_parts(s3, bucket, key, upload_id, [bytes([n]) * n for n in range(1, 6)])
    first = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2]
    assert first["IsTruncated"] and first["NextPartNumberMarker"] == 2 and first["MaxParts"] == 2
    assert first["Initiator"]["DisplayName"] == first["Owner"]["DisplayName"]
    rest = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=2)
    assert [p["PartNumber"] for p in rest["Parts"]] == [3, 4, 5]
    assert not rest["IsTruncated"]
    paginated = s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key=key, UploadId=upload_id, PaginationConfig={"PageSize": 2}
    )
    assert [p["Size"] for page in paginated for p in page.get("Parts", [])] == [1, 2, 3, 4, 5]


def test_list_uploads_prefix_delimiter_markers(s3, bucket):
    keys = ["a", "a", "b c", "dir/one", "dir/two", "e~"]
    ids = [s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"] for key in keys]
    every = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in every["Uploads"]] == list(zip(keys, ids, strict=True))
    assert not every["IsTruncated"] and every["MaxUploads"] == 1000

    grouped = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in grouped["Uploads"]] == ["a", "a", "b c", "e~"]
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["dir/"]
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket, Prefix="dir/")["Uploads"]] == keys[3:5]

    page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1)
    assert page["IsTruncated"] and (page["NextKeyMarker"], page["NextUploadIdMarker"]) == ("a", ids[0])
    after = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a", UploadIdMarker=ids[0])
    assert [u["UploadId"] for u in after["Uploads"]] == ids[1:]
    after_key = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="a")
    assert [u["UploadId"] for u in after_key["Uploads"]] == ids[2:]
    pages = s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2})
    assert [u["UploadId"] for page in pages for u in page.get("Uploads", [])] == ids
    for key, upload_id in zip(keys, ids, strict=True):
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_list_uploads_arguments(raw, bucket):
    assert raw("GET", f"/{bucket}?uploads&max-uploads=abc").status_code == 400
    assert raw("GET", f"/{bucket}?uploads&encoding-type=other").status_code == 400
    response = raw("GET", f"/{bucket}?uploads&max-uploads=0")
    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.content)
    assert root.tag == S3_NS + "ListMultipartUploadsResult"
    assert root.findtext(S3_NS + "IsTruncated") == "false"


def test_part_checksums_are_verified_and_listed(s3, raw, started):
    bucket, key, upload_id = started
    body = b"checked part"
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=body, ChecksumCRC32=crc)
    assert answer["ChecksumCRC32"] == crc
    assert s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"][0]["ChecksumCRC32"] == crc
    target = f"/{bucket}/dir/big.bin?partNumber=2&uploadId={upload_id}"
    wrong = raw("PUT", target, body, headers={"x-amz-checksum-crc32": "AAAAAA=="})
    assert wrong.status_code == 400 and "<Code>BadDigest</Code>" in wrong.text
    bad_md5 = raw("PUT", target, body, headers={"Content-MD5": base64.b64encode(b"0" * 16).decode()})
    assert bad_md5.status_code == 400 and "<Code>BadDigest</Code>" in bad_md5.text
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]] == [1]


def test_a_bucket_with_only_open_uploads_is_deleted_with_them(node, s3):
    bucket = f"mpu-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    upload_parts(s3, bucket, "k", upload_id, [b"part"])
    s3.delete_bucket(Bucket=bucket)
    wait_for_files(node, bucket, 0, "the deleted bucket's parts to be freed")
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_upload_file_and_download_file_threaded(s3, bucket, tmp_path):
    source = tmp_path / "source.bin"
    with open(source, "wb") as fh:
        for _ in range(40):
            fh.write(os.urandom(MIB))
        fh.write(os.urandom(12345))
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=8)
    s3.upload_file(str(source), bucket, "threaded.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="threaded.bin")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].endswith('-9"')
    target = tmp_path / "target.bin"
    s3.download_file(bucket, "threaded.bin", str(target), Config=config)
    assert target.read_bytes() == source.read_bytes()


def test_an_open_upload_survives_a_restart(node_factory):
    restarted = node_factory()
    s3 = restarted.client()
    s3.create_bucket(Bucket="survivor")
    upload_id = s3.create_multipart_upload(Bucket="survivor", Key="k")["UploadId"]
    first = os.urandom(PART)
    listed = upload_parts(s3, "survivor", "k", upload_id, [first])
    restarted.stop()
    restarted.start()
    s3 = restarted.client()
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="survivor")["Uploads"]] == [upload_id]
    assert len(files_under(restarted, "survivor")) == 1, "the start-up sweep keeps open uploads' parts"
    answer = s3.upload_part(Bucket="survivor", Key="k", UploadId=upload_id, PartNumber=2, Body=b"last")
    listed.append({"PartNumber": 2, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(Bucket="survivor", Key="k", UploadId=upload_id, MultipartUpload={"Parts": listed})
    assert s3.get_object(Bucket="survivor", Key="k")["Body"].read() == first + b"last"


def test_conditional_completion(node, s3, started):
    bucket, key, upload_id = started
    s3.put_object(Bucket=bucket, Key=key, Body=b"already there")
    listed = upload_parts(s3, bucket, key, upload_id, [b"new bytes"])
    with pytest.raises(ClientError) as excinfo:
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}, IfNoneMatch="*"
        )
    assert error_code(excinfo) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"already there"
    wait_for_files(node, bucket, 1, "the refused object's built file to be removed")
    current = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}, IfMatch=current
    )
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"new bytes"


@pytest.mark.parametrize(
    "key",
    ["\0" * 400, "\0é\0€" * 128, "\0" * 1024, "k" * 1024],
    ids=["400 NULs", "NULs and multi-byte characters", "1024 NULs", "1024 letters"],
)
def test_any_key_opens_an_upload_in_a_bucket_with_the_longest_name(s3, raw, key):
    """Every key fits the replica's key limit, however it escapes; the node keeps serving.

    Raw requests where the answer names the key: no XML parser reads a NUL, even escaped.
    """
    bucket = "b" * 63
    path = f"/{bucket}/{quote(key)}"
    s3.create_bucket(Bucket=bucket)
    try:
        created = raw("POST", path + "?uploads")
        assert created.status_code == 200, created.text
        upload_id = re.search(r"<UploadId>(\w+)</UploadId>", created.text).group(1)
        listed = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url")["Uploads"]
        assert [(unquote_plus(u["Key"]), u["UploadId"]) for u in listed] == [(key, upload_id)]
        part = upload_parts(s3, bucket, key, upload_id, [b"tail"])[0]
        body = f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{part['ETag']}</ETag></Part>"
        completed = raw("POST", f"{path}?uploadId={upload_id}", f"{body}</CompleteMultipartUpload>".encode())
        assert completed.status_code == 200, completed.text
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"tail"
        s3.delete_object(Bucket=bucket, Key=key)
    finally:
        s3.delete_bucket(Bucket=bucket)


def test_uploads_of_long_and_nul_keys_list_in_key_order(s3, raw, bucket):
    keys = ["\0" * 300 + "b", "\0" * 300 + "a", "\0" * 199, "\0" * 198 + "x", "x" * 1000 + "b", "x" * 1000 + "a"]
    keys += ["\0" * 198, "é" * 500]
    ids = {}
    for key in keys:
        created = raw("POST", f"/{bucket}/{quote(key)}?uploads")
        ids[key] = re.search(r"<UploadId>(\w+)</UploadId>", created.text).group(1)
    expected = [(key, ids[key]) for key in sorted(keys, key=str.encode)]
    listed, markers = [], {}
    while True:  # botocore's paginator would send the URL-encoded NextKeyMarker as it is
        page = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url", MaxUploads=3, **markers)
        listed += [(unquote_plus(u["Key"]), u["UploadId"]) for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        markers = {"KeyMarker": unquote_plus(page["NextKeyMarker"]), "UploadIdMarker": page["NextUploadIdMarker"]}
    assert listed == expected
    for key in keys:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=ids[key])
