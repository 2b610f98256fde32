"""A multipart object's parts: UploadPartCopy, partNumber reads, GetObjectAttributes and
composite checksums, against a real node. Raw HTTP where boto3 hides the wire."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from xml.etree import ElementTree

import crc32c
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from test_multipart import MIB, PART, S3_NS, error_code, multipart_etag


def multipart_object(s3, bucket: str, key: str, parts: list[bytes], algorithm: str | None = None) -> dict:
    """Upload `parts` as one object (with the checksum `algorithm` if given); the Complete answer."""
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    listed = []
    for number, body in enumerate(parts, start=1):
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, **extra)
        entry = {"PartNumber": number, "ETag": answer["ETag"]}
        if algorithm:
            name = f"Checksum{algorithm}"
            entry[name] = answer[name]
        listed.append(entry)
    return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed})


# -- UploadPartCopy ------------------------------------------------------------------------


def test_upload_part_copy_whole_and_ranged(s3, raw, bucket):
    source = os.urandom(PART + 1000)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    s3.put_object(Bucket=bucket, Key="small", Body=b"inline bytes")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="joined")["UploadId"]
    whole = s3.upload_part_copy(
        Bucket=bucket, Key="joined", UploadId=upload_id, PartNumber=1, CopySource={"Bucket": bucket, "Key": "source"}
    )["CopyPartResult"]
    assert whole["ETag"] == f'"{hashlib.md5(source).hexdigest()}"'
    ranged = s3.upload_part_copy(
        Bucket=bucket,
        Key="joined",
        UploadId=upload_id,
        PartNumber=2,
        CopySource=f"{bucket}/source",
        CopySourceRange=f"bytes=10-{PART + 9}",
    )["CopyPartResult"]
    assert ranged["ETag"] == f'"{hashlib.md5(source[10 : PART + 10]).hexdigest()}"'
    response = raw(
        "PUT",
        f"/{bucket}/joined?partNumber=3&uploadId={upload_id}",
        headers={"x-amz-copy-source": f"/{bucket}/small", "x-amz-copy-source-range": "bytes=0-5"},
    )
    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.content)
    assert root.tag == S3_NS + "CopyPartResult"
    assert root.findtext(S3_NS + "ETag") == f'"{hashlib.md5(b"inline").hexdigest()}"'
    assert root.findtext(S3_NS + "LastModified").endswith(".000Z")
    parts = s3.list_parts(Bucket=bucket, Key="joined", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(source)), (2, PART), (3, 6)]
    listed = [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="joined", UploadId=upload_id, MultipartUpload={"Parts": listed}
    )
    assert done["ETag"] == multipart_etag(source, source[10 : PART + 10], b"inline")
    assert s3.get_object(Bucket=bucket, Key="joined")["Body"].read() == source + source[10 : PART + 10] + b"inline"


def test_upload_part_copy_refusals(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="source", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="target")["UploadId"]
    target = f"/{bucket}/target?partNumber=1&uploadId={upload_id}"

    def copy(**headers) -> tuple[int, str]:
        response = raw("PUT", target, headers={"x-amz-copy-source": f"/{bucket}/source", **headers})
        return response.status_code, response.text

    for bad in ("bytes=5-2", "bytes=3-", "bytes=-3", "0-2", "bytes=0-1,3-4"):
        status, text = copy(**{"x-amz-copy-source-range": bad})
        assert status == 400 and "<Code>InvalidArgument</Code>" in text, (bad, text)
    for past_the_end in ("bytes=0-10", "bytes=10-12"):
        status, text = copy(**{"x-amz-copy-source-range": past_the_end})
        assert status == 416 and "<Code>InvalidRange</Code>" in text, (past_the_end, text)
    status, text = copy(**{"x-amz-copy-source-if-match": '"nope"'})
    assert status == 412 and "<Code>PreconditionFailed</Code>" in text
    status, text = copy(**{"x-amz-copy-source-if-none-match": f'"{hashlib.md5(b"0123456789").hexdigest()}"'})
    assert status == 412
    status, _ = copy(**{"x-amz-copy-source-if-modified-since": "Sat, 01 Jan 2000 00:00:00 GMT"})
    assert status == 200
    missing = raw("PUT", target, headers={"x-amz-copy-source": f"/{bucket}/missing"})
    assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
    no_upload = raw(
        "PUT", f"/{bucket}/target?partNumber=1&uploadId={'0' * 32}", headers={"x-amz-copy-source": f"/{bucket}/source"}
    )
    assert no_upload.status_code == 404 and "<Code>NoSuchUpload</Code>" in no_upload.text
    assert [p["Size"] for p in s3.list_parts(Bucket=bucket, Key="target", UploadId=upload_id)["Parts"]] == [10]
    s3.abort_multipart_upload(Bucket=bucket, Key="target", UploadId=upload_id)


def test_managed_copy_of_a_large_object_uses_part_copies(s3, bucket):
    body = os.urandom(20 * MIB + 123)
    s3.put_object(Bucket=bucket, Key="large", Body=body)
    config = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4)
    s3.copy({"Bucket": bucket, "Key": "large"}, bucket, "large-copy", Config=config)
    head = s3.head_object(Bucket=bucket, Key="large-copy")
    assert head["ETag"] == multipart_etag(body[: 8 * MIB], body[8 * MIB : 16 * MIB], body[16 * MIB :])
    assert s3.get_object(Bucket=bucket, Key="large-copy")["Body"].read() == body


# -- partNumber on GET and HEAD -------------------------------------------------------------


@pytest.fixture
def three_parts(s3, bucket):
    parts = [os.urandom(PART), os.urandom(PART), b"the last part"]
    multipart_object(s3, bucket, "parts.bin", parts)
    return bucket, parts


def test_get_and_head_one_part(s3, raw, three_parts):
    bucket, parts = three_parts
    for number, expected in enumerate(parts, start=1):
        got = s3.get_object(Bucket=bucket, Key="parts.bin", PartNumber=number)
        assert got["Body"].read() == expected
        assert got["PartsCount"] == 3 and got["ContentLength"] == len(expected)
        start = sum(map(len, parts[: number - 1]))
        assert got["ContentRange"] == f"bytes {start}-{start + len(expected) - 1}/{sum(map(len, parts))}"
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    head = s3.head_object(Bucket=bucket, Key="parts.bin", PartNumber=2)
    assert (head["PartsCount"], head["ContentLength"], head["ResponseMetadata"]["HTTPStatusCode"]) == (3, PART, 206)
    assert "PartsCount" not in s3.head_object(Bucket=bucket, Key="parts.bin")

    beyond = raw("GET", f"/{bucket}/parts.bin?partNumber=4")
    assert beyond.status_code == 416 and "<Code>InvalidPartNumber</Code>" in beyond.text
    assert raw("HEAD", f"/{bucket}/parts.bin?partNumber=4").status_code == 416
    both = raw("GET", f"/{bucket}/parts.bin?partNumber=1", headers={"Range": "bytes=0-1"})
    assert both.status_code == 400 and "<Code>InvalidRequest</Code>" in both.text
    for bad in ("0", "10001", "x"):
        response = raw("GET", f"/{bucket}/parts.bin?partNumber={bad}")
        assert response.status_code == 400 and "<Code>InvalidArgument</Code>" in response.text


def test_part_one_of_a_single_part_object_is_all_of_it(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="plain", Body=b"plain bytes")
    got = raw("GET", f"/{bucket}/plain?partNumber=1")
    assert (got.status_code, got.content) == (200, b"plain bytes")
    assert "x-amz-mp-parts-count" not in got.headers
    beyond = raw("GET", f"/{bucket}/plain?partNumber=2")
    assert beyond.status_code == 416 and "<Code>InvalidPartNumber</Code>" in beyond.text


def test_download_by_parts(s3, three_parts, tmp_path):
    """A client that fetches a multipart object part by part gets it whole."""
    bucket, parts = three_parts
    count = s3.head_object(Bucket=bucket, Key="parts.bin", PartNumber=1)["PartsCount"]
    fetched = b"".join(
        s3.get_object(Bucket=bucket, Key="parts.bin", PartNumber=n)["Body"].read() for n in range(1, count + 1)
    )
    assert fetched == b"".join(parts)


# -- GetObjectAttributes --------------------------------------------------------------------

EVERY_ATTRIBUTE = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def test_attributes_of_a_plain_object(s3, bucket):
    body = b"attributes"
    crc = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    s3.put_object(Bucket=bucket, Key="plain", Body=body, ChecksumAlgorithm="CRC32")
    got = s3.get_object_attributes(Bucket=bucket, Key="plain", ObjectAttributes=EVERY_ATTRIBUTE)
    assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest()
    assert got["Checksum"] == {"ChecksumCRC32": crc, "ChecksumType": "FULL_OBJECT"}
    assert "ObjectParts" not in got
    assert (got["StorageClass"], got["ObjectSize"]) == ("STANDARD", len(body))
    assert got["LastModified"] == s3.head_object(Bucket=bucket, Key="plain")["LastModified"]
    only_size = s3.get_object_attributes(Bucket=bucket, Key="plain", ObjectAttributes=["ObjectSize"])
    assert "ETag" not in only_size and only_size["ObjectSize"] == len(body)


def test_attributes_refusals(s3, raw, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for header in ({}, {"x-amz-object-attributes": "ETag,Colour"}, {"x-amz-object-attributes": ","}):
        response = raw("GET", f"/{bucket}/k?attributes", headers=header)
        assert response.status_code == 400 and "<Code>InvalidArgument</Code>" in response.text, header
    with pytest.raises(ClientError) as excinfo:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert error_code(excinfo) == "NoSuchKey"
    bad_max = raw("GET", f"/{bucket}/k?attributes", headers={"x-amz-object-attributes": "ETag", "x-amz-max-parts": "x"})
    assert bad_max.status_code == 400


def test_attributes_of_a_multipart_object_without_checksums(s3, three_parts):
    bucket, _ = three_parts
    got = s3.get_object_attributes(Bucket=bucket, Key="parts.bin", ObjectAttributes=EVERY_ATTRIBUTE)
    assert got["ObjectParts"]["TotalPartsCount"] == 3
    assert "Parts" not in got["ObjectParts"] and "Checksum" not in got
    assert got["ObjectSize"] == 2 * PART + len(b"the last part")


# -- composite checksums --------------------------------------------------------------------

DIGESTS = {
    "CRC32": lambda data: zlib.crc32(data).to_bytes(4, "big"),
    "CRC32C": lambda data: crc32c.crc32c(data).to_bytes(4, "big"),
    "SHA1": lambda data: hashlib.sha1(data).digest(),
    "SHA256": lambda data: hashlib.sha256(data).digest(),
}


def composite(algorithm: str, parts: list[bytes]) -> str:
    digest = DIGESTS[algorithm]
    whole = digest(b"".join(digest(part) for part in parts))
    return f"{base64.b64encode(whole).decode()}-{len(parts)}"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_composite_checksum_round_trips(s3, bucket, algorithm):
    parts = [os.urandom(PART), b"tail of the object"]
    name = f"Checksum{algorithm}"
    done = multipart_object(s3, bucket, "summed", parts, algorithm)
    expected = composite(algorithm, parts)
    assert done[name] == expected and done["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="summed", ChecksumMode="ENABLED")
    assert (head[name], head["ChecksumType"]) == (expected, "COMPOSITE")
    got = s3.get_object(Bucket=bucket, Key="summed", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"".join(parts) and got[name] == expected
    part = s3.get_object(Bucket=bucket, Key="summed", PartNumber=2, ChecksumMode="ENABLED")
    assert part["Body"].read() == parts[1]
    assert part[name] == base64.b64encode(DIGESTS[algorithm](parts[1])).decode()

    attributes = s3.get_object_attributes(Bucket=bucket, Key="summed", ObjectAttributes=EVERY_ATTRIBUTE, MaxParts=1)
    assert attributes["Checksum"] == {name: expected, "ChecksumType": "COMPOSITE"}
    object_parts = attributes["ObjectParts"]
    assert (object_parts["TotalPartsCount"], object_parts["IsTruncated"], object_parts["MaxParts"]) == (2, True, 1)
    assert [(p["PartNumber"], p["Size"]) for p in object_parts["Parts"]] == [(1, PART)]
    rest = s3.get_object_attributes(
        Bucket=bucket,
        Key="summed",
        ObjectAttributes=["ObjectParts"],
        PartNumberMarker=object_parts["NextPartNumberMarker"],
    )["ObjectParts"]
    assert not rest["IsTruncated"]
    assert [(p["PartNumber"], p["Size"], p[name]) for p in rest["Parts"]] == [
        (2, len(parts[1]), base64.b64encode(DIGESTS[algorithm](parts[1])).decode())
    ]


def test_completion_refuses_a_wrong_part_checksum(s3, raw, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")["UploadId"]
    etag = s3.upload_part(
        Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"part", ChecksumAlgorithm="SHA256"
    )["ETag"]
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    body = (
        f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>"
        f"<ChecksumSHA256>{wrong}</ChecksumSHA256></Part></CompleteMultipartUpload>"
    )
    response = raw("POST", f"/{bucket}/k?uploadId={upload_id}", body.encode())
    assert response.status_code == 400 and "<Code>InvalidPart</Code>" in response.text
    crc = raw(
        "PUT",
        f"/{bucket}/k?partNumber=2&uploadId={upload_id}",
        b"x",
        headers={"x-amz-checksum-crc32": base64.b64encode(zlib.crc32(b"x").to_bytes(4, "big")).decode()},
    )
    assert crc.status_code == 400 and "<Code>InvalidRequest</Code>" in crc.text
    s3.abort_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id)


def test_part_copy_into_a_checksummed_upload(s3, bucket):
    source = os.urandom(PART)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="CRC32C")["UploadId"]
    copied = s3.upload_part_copy(
        Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, CopySource=f"{bucket}/source"
    )["CopyPartResult"]
    assert copied["ChecksumCRC32C"] == base64.b64encode(DIGESTS["CRC32C"](source)).decode()
    listed = [{"PartNumber": 1, "ETag": copied["ETag"], "ChecksumCRC32C": copied["ChecksumCRC32C"]}]
    done = s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={"Parts": listed})
    assert done["ChecksumCRC32C"] == composite("CRC32C", [source])


def test_managed_upload_with_a_checksum_algorithm(s3, bucket, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(12 * MIB))
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(str(source), bucket, "managed", ExtraArgs={"ChecksumAlgorithm": "SHA256"}, Config=config)
    data = source.read_bytes()
    expected = composite("SHA256", [data[:PART], data[PART : 2 * PART], data[2 * PART :]])
    assert s3.head_object(Bucket=bucket, Key="managed", ChecksumMode="ENABLED")["ChecksumSHA256"] == expected
    target = tmp_path / "target.bin"
    s3.download_file(bucket, "managed", str(target))
    assert target.read_bytes() == data
