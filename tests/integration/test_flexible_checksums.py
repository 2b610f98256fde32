"""Flexible checksums on a real node: CRC64NVME and the newer algorithms, FULL_OBJECT and
COMPOSITE multipart checksums, ChecksumMode and partNumber reads, GetObjectAttributes' parts,
CopyObject and listings, and DeleteObjects and configuration documents sent as the AWS C++ SDK
(pyarrow) sends them: a flexible checksum and no Content-MD5.

The expected checksums are computed here over the whole bytes, never from part checksums.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from xml.etree import ElementTree

import crc32c
import pytest
import xxhash
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from conftest import ROOT_PASSWORD, ROOT_USER, S3Connection
from pyarrow import fs as arrow_fs
from test_multipart import MIB, PART, error_code

CRCS = {
    "CRC32": lambda data: zlib.crc32(data).to_bytes(4, "big"),
    "CRC32C": lambda data: crc32c.crc32c(data).to_bytes(4, "big"),
    "CRC64NVME": lambda data: crt.crc64nvme(data).to_bytes(8, "big"),
}
DIGESTS = {
    "SHA512": lambda data: hashlib.sha512(data).digest(),
    "MD5": lambda data: hashlib.md5(data).digest(),
    "XXHASH64": lambda data: xxhash.xxh64(data).digest(),
    "XXHASH3": lambda data: xxhash.xxh3_64(data).digest(),
    "XXHASH128": lambda data: xxhash.xxh3_128(data).digest(),
}
REFERENCES = {
    **CRCS,
    "SHA1": lambda data: hashlib.sha1(data).digest(),
    "SHA256": lambda data: hashlib.sha256(data).digest(),
    **DIGESTS,
}
# botocore computes every algorithm but MD5 (for which it sends Content-MD5).
BOTO3_DIGESTS = ("SHA512", "XXHASH64", "XXHASH3", "XXHASH128")
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


def checksum_of(algorithm: str, data: bytes) -> str:
    return base64.b64encode(REFERENCES[algorithm](data)).decode()


def status(caught) -> int:
    return caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def code_of(text: str) -> str | None:
    return ElementTree.fromstring(text).findtext("Code")


def assert_missing(s3, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as caught:
        s3.head_object(Bucket=bucket, Key=key)
    assert status(caught) == 404


# -- CRC64NVME on a single PUT ----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1000, 3 * MIB + 7], ids=["empty", "small", "file"])
def test_crc64nvme_is_verified_stored_and_answered(s3, bucket, size):
    data = os.urandom(size)
    expected = checksum_of("CRC64NVME", data)
    put = s3.put_object(Bucket=bucket, Key="k", Body=data, ChecksumAlgorithm="CRC64NVME")
    assert put["ChecksumCRC64NVME"] == expected
    for call in (s3.get_object, s3.head_object):
        got = call(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
        assert (got["ChecksumCRC64NVME"], got["ChecksumType"]) == (expected, "FULL_OBJECT")
    assert "ChecksumCRC64NVME" not in s3.head_object(Bucket=bucket, Key="k")
    attributes = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["Checksum"])
    assert attributes["Checksum"] == {"ChecksumCRC64NVME": expected, "ChecksumType": "FULL_OBJECT"}


def test_wrong_crc64nvme_is_bad_digest_and_nothing_stored(raw, s3, bucket):
    data = b"the bytes sent"
    response = raw("PUT", f"/{bucket}/k", data, headers={"x-amz-checksum-crc64nvme": checksum_of("CRC64NVME", b"x")})
    assert (response.status_code, code_of(response.text)) == (400, "BadDigest")
    assert_missing(s3, bucket, "k")
    short = raw("PUT", f"/{bucket}/k", data, headers={"x-amz-checksum-crc64nvme": checksum_of("CRC32", data)})
    assert (short.status_code, code_of(short.text)) == (400, "BadDigest")
    assert_missing(s3, bucket, "k")


@pytest.mark.parametrize("algorithm", BOTO3_DIGESTS)
def test_newer_algorithms_from_boto3(s3, bucket, algorithm):
    data = os.urandom(2 * MIB + 1)
    expected = checksum_of(algorithm, data)
    name = f"Checksum{algorithm}"
    put = s3.put_object(Bucket=bucket, Key="k", Body=data, ChecksumAlgorithm=algorithm)
    assert (put[name], put["ChecksumType"]) == (expected, "FULL_OBJECT")
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got[name] == expected


@pytest.mark.parametrize("algorithm", sorted(DIGESTS))
def test_newer_algorithms_in_a_header(raw, s3, bucket, algorithm):
    data = b"checked with a newer algorithm"
    header = f"x-amz-checksum-{algorithm.lower()}"
    wrong = raw("PUT", f"/{bucket}/k", data, headers={header: checksum_of(algorithm, b"other")})
    assert (wrong.status_code, code_of(wrong.text)) == (400, "BadDigest")
    assert_missing(s3, bucket, "k")
    right = raw("PUT", f"/{bucket}/k", data, headers={header: checksum_of(algorithm, data)})
    assert right.status_code == 200 and right.headers[header] == checksum_of(algorithm, data)
    got = raw("HEAD", f"/{bucket}/k", headers={"x-amz-checksum-mode": "ENABLED"})
    assert (got.headers[header], got.headers["x-amz-checksum-type"]) == (checksum_of(algorithm, data), "FULL_OBJECT")


# -- DeleteObjects with a flexible checksum and no Content-MD5 -------------------------------


def _delete_document(*keys: str) -> bytes:
    objects = "".join(f"<Object><Key>{key}</Key></Object>" for key in keys)
    return f"<Delete><Quiet>true</Quiet>{objects}</Delete>".encode()


def _keys(s3, bucket: str) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_delete_objects_with_only_a_crc64nvme_header(raw, s3, bucket):
    """The AWS C++ SDK's request: x-amz-sdk-checksum-algorithm and the checksum header."""
    for key in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    body = _delete_document("a")
    wrong = raw(
        "POST",
        f"/{bucket}?delete",
        body,
        headers={
            "x-amz-sdk-checksum-algorithm": "CRC64NVME",
            "x-amz-checksum-crc64nvme": checksum_of("CRC64NVME", b""),
        },
    )
    assert (wrong.status_code, code_of(wrong.text)) == (400, "BadDigest")
    assert _keys(s3, bucket) == ["a", "b"]
    bare = raw("POST", f"/{bucket}?delete", body)
    assert (bare.status_code, code_of(bare.text)) == (400, "InvalidRequest")
    assert "Content-MD5" in bare.text
    for headers in (
        {"x-amz-checksum-crc64nvme": checksum_of("CRC64NVME", body)},
        {"x-amz-sdk-checksum-algorithm": "CRC64NVME", "x-amz-checksum-crc64nvme": checksum_of("CRC64NVME", body)},
    ):
        s3.put_object(Bucket=bucket, Key="a", Body=b"x")
        response = raw("POST", f"/{bucket}?delete", body, headers=headers)
        assert response.status_code == 200, response.text
        assert _keys(s3, bucket) == ["b"]


def test_pyarrow_deletes_a_directory(node, s3, bucket):
    """pyarrow (the AWS C++ SDK) sends DeleteObjects with a CRC64NVME checksum and no Content-MD5."""
    for index in range(3):
        s3.put_object(Bucket=bucket, Key=f"dir/{index}", Body=b"x")
    s3.put_object(Bucket=bucket, Key="kept", Body=b"x")
    filesystem = arrow_fs.S3FileSystem(
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
        endpoint_override=node.s3_url,
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=False,
    )
    filesystem.delete_dir_contents(f"{bucket}/dir")
    # pyarrow leaves the emptied directory as its marker object.
    assert _keys(s3, bucket) == ["dir/", "kept"]


@pytest.mark.parametrize("algorithm", ["SHA512", "MD5", "XXHASH128"])
def test_delete_objects_with_a_newer_algorithm(raw, s3, bucket, algorithm):
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    body = _delete_document("a")
    header = f"x-amz-checksum-{algorithm.lower()}"
    wrong = raw("POST", f"/{bucket}?delete", body, headers={header: checksum_of(algorithm, b"")})
    assert (wrong.status_code, code_of(wrong.text)) == (400, "BadDigest")
    assert _keys(s3, bucket) == ["a"]
    right = raw("POST", f"/{bucket}?delete", body, headers={header: checksum_of(algorithm, body)})
    assert right.status_code == 200, right.text
    assert _keys(s3, bucket) == []


@pytest.mark.parametrize("algorithm", sorted(CRCS))
def test_delete_objects_with_a_checksum_trailer(node, s3, bucket, algorithm):
    """aws-chunked with the checksum in an unsigned trailer, as SDKs send it over HTTPS."""
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    body = _delete_document("gone")
    trailer = f"x-amz-checksum-{algorithm.lower()}"

    def send(value: str) -> tuple[int, bytes]:
        framed = f"{len(body):x}\r\n".encode() + body + f"\r\n0\r\n{trailer}:{value}\r\n\r\n".encode()
        headers = {
            "content-encoding": "aws-chunked",
            "content-length": str(len(framed)),
            "x-amz-decoded-content-length": str(len(body)),
            "x-amz-sdk-checksum-algorithm": algorithm,
            "x-amz-trailer": trailer,
        }
        connection = S3Connection(node)
        try:
            answer_status, _, answer = connection.request(
                "POST", f"/{bucket}?delete", framed, headers, UNSIGNED_TRAILER
            )
        finally:
            connection.close()
        return answer_status, answer

    answer_status, answer = send(checksum_of(algorithm, b"other"))
    assert (answer_status, ElementTree.fromstring(answer).findtext("Code")) == (400, "BadDigest")
    assert _keys(s3, bucket) == ["gone"]
    answer_status, answer = send(checksum_of(algorithm, body))
    assert answer_status == 200, answer
    assert _keys(s3, bucket) == []


def test_boto3_delete_objects_sends_no_content_md5(node, bucket):
    client = node.client()
    sent: list[dict] = []
    client.meta.events.register(
        "before-send.s3.DeleteObjects", lambda request, **_: sent.append({k.lower() for k in request.headers})
    )
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    answer = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k"}]}, ChecksumAlgorithm="CRC64NVME")
    assert [item["Key"] for item in answer["Deleted"]] == ["k"]
    assert "content-md5" not in sent[-1] and "x-amz-checksum-crc64nvme" in sent[-1]
    assert _keys(client, bucket) == []


# -- multipart: FULL_OBJECT and COMPOSITE -----------------------------------------------------


def _upload_parts(s3, bucket: str, key: str, parts: list[bytes], algorithm: str, checksum_type: str | None = None):
    """Create an upload with `algorithm` (and `checksum_type`) and send its parts: (upload id, part list)."""
    extra = {"ChecksumType": checksum_type} if checksum_type else {}
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm, **extra)
    assert created["ChecksumAlgorithm"] == algorithm
    listed = []
    for number, body in enumerate(parts, start=1):
        answer = s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=created["UploadId"],
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm=algorithm,
        )
        name = f"Checksum{algorithm}"
        assert answer[name] == checksum_of(algorithm, body)
        listed.append({"PartNumber": number, "ETag": answer["ETag"], name: answer[name]})
    return created, listed


def _complete(s3, bucket: str, key: str, upload_id: str, listed: list, **extra) -> dict:
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}, **extra
    )


@pytest.mark.parametrize("algorithm", sorted(CRCS))
def test_full_object_checksum_is_the_crc_of_the_whole_object(s3, bucket, algorithm):
    parts = [os.urandom(PART), os.urandom(PART), b"the tail"]
    whole = b"".join(parts)
    name = f"Checksum{algorithm}"
    expected = checksum_of(algorithm, whole)
    created, listed = _upload_parts(s3, bucket, "full", parts, algorithm, "FULL_OBJECT")
    upload_id = created["UploadId"]
    assert created["ChecksumType"] == "FULL_OBJECT"
    listing = s3.list_parts(Bucket=bucket, Key="full", UploadId=upload_id)
    assert (listing["ChecksumAlgorithm"], listing["ChecksumType"]) == (algorithm, "FULL_OBJECT")
    [upload] = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert (upload["ChecksumAlgorithm"], upload["ChecksumType"]) == (algorithm, "FULL_OBJECT")

    done = _complete(
        s3, bucket, "full", upload_id, listed, ChecksumType="FULL_OBJECT", MpuObjectSize=len(whole), **{name: expected}
    )
    assert (done[name], done["ChecksumType"]) == (expected, "FULL_OBJECT")
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert (head[name], head["ChecksumType"]) == (expected, "FULL_OBJECT")
    # botocore checks a full-object checksum against the bytes it reads.
    got = s3.get_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert got["Body"].read() == whole and got[name] == expected
    for number, body in enumerate(parts, start=1):
        for call in (s3.get_object, s3.head_object):
            part = call(Bucket=bucket, Key="full", PartNumber=number, ChecksumMode="ENABLED")
            assert (part[name], part["ContentLength"], part["PartsCount"]) == (
                checksum_of(algorithm, body),
                len(body),
                3,
            )

    attributes = s3.get_object_attributes(
        Bucket=bucket, Key="full", ObjectAttributes=["Checksum", "ObjectParts", "ObjectSize"]
    )
    assert attributes["Checksum"] == {name: expected, "ChecksumType": "FULL_OBJECT"}
    assert [(p["PartNumber"], p["Size"], p[name]) for p in attributes["ObjectParts"]["Parts"]] == [
        (number, len(body), checksum_of(algorithm, body)) for number, body in enumerate(parts, start=1)
    ]


def test_crc64nvme_uploads_are_full_object(s3, bucket, tmp_path):
    """CRC64NVME has no COMPOSITE type: an upload that names no type gets FULL_OBJECT."""
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(11 * MIB))
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(str(source), bucket, "managed", ExtraArgs={"ChecksumAlgorithm": "CRC64NVME"}, Config=config)
    head = s3.head_object(Bucket=bucket, Key="managed", ChecksumMode="ENABLED")
    expected = checksum_of("CRC64NVME", source.read_bytes())
    assert (head["ChecksumCRC64NVME"], head["ChecksumType"], head["ETag"][-3:]) == (expected, "FULL_OBJECT", '-3"')
    target = tmp_path / "target.bin"
    s3.download_file(bucket, "managed", str(target), ExtraArgs={"ChecksumMode": "ENABLED"})
    assert target.read_bytes() == source.read_bytes()


def test_composite_upload_with_a_newer_algorithm(s3, bucket):
    parts = [os.urandom(PART), b"tail"]
    created, listed = _upload_parts(s3, bucket, "k", parts, "XXHASH3")
    assert created["ChecksumType"] == "COMPOSITE"
    done = _complete(s3, bucket, "k", created["UploadId"], listed)
    digests = b"".join(xxhash.xxh3_64(part).digest() for part in parts)
    assert (done["ChecksumXXHASH3"], done["ChecksumType"]) == (f"{checksum_of('XXHASH3', digests)}-2", "COMPOSITE")


CREATE_REFUSALS = [
    ({"x-amz-checksum-type": "FULL_OBJECT"}, "x-amz-checksum-algorithm"),
    ({"x-amz-checksum-algorithm": "CRC64NVME", "x-amz-checksum-type": "COMPOSITE"}, "COMPOSITE"),
    ({"x-amz-checksum-algorithm": "SHA256", "x-amz-checksum-type": "FULL_OBJECT"}, "FULL_OBJECT"),
    ({"x-amz-checksum-algorithm": "SHA1", "x-amz-checksum-type": "FULL_OBJECT"}, "FULL_OBJECT"),
    ({"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "WHOLE"}, "x-amz-checksum-type"),
    ({"x-amz-checksum-algorithm": "XXHASH128", "x-amz-checksum-type": "FULL_OBJECT"}, "FULL_OBJECT"),
    ({"x-amz-checksum-algorithm": "CRC64"}, "CRC64"),
]


@pytest.mark.parametrize(("headers", "named"), CREATE_REFUSALS)
def test_create_refuses_a_checksum_type_the_algorithm_has_not(raw, s3, bucket, headers, named):
    response = raw("POST", f"/{bucket}/k?uploads", headers=headers)
    assert (response.status_code, code_of(response.text)) == (400, "InvalidRequest")
    assert named in response.text
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_composite_is_the_default_and_can_be_named(s3, bucket):
    for checksum_type in (None, "COMPOSITE"):
        created, listed = _upload_parts(s3, bucket, "k", [b"only part"], "CRC32", checksum_type)
        assert created["ChecksumType"] == "COMPOSITE"
        done = _complete(s3, bucket, "k", created["UploadId"], listed)
        digest = base64.b64decode(checksum_of("CRC32", b"only part"))
        assert (done["ChecksumCRC32"], done["ChecksumType"]) == (f"{checksum_of('CRC32', digest)}-1", "COMPOSITE")


def _refused_completion(s3, bucket: str, upload_id: str, listed: list, **extra) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        _complete(s3, bucket, "k", upload_id, listed, **extra)
    assert_missing(s3, bucket, "k")
    assert len(s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]) == len(listed)
    return error_code(caught), status(caught)


def test_full_object_completion_checks_what_the_client_states(s3, bucket):
    parts = [os.urandom(PART), b"tail"]
    whole = b"".join(parts)
    created, listed = _upload_parts(s3, bucket, "k", parts, "CRC32C", "FULL_OBJECT")
    upload_id = created["UploadId"]
    right = checksum_of("CRC32C", whole)
    refusals = [
        ({"ChecksumCRC32C": checksum_of("CRC32C", whole + b"!")}, ("BadDigest", 400)),
        ({"ChecksumCRC32C": f"{right}-2"}, ("BadDigest", 400)),
        ({"ChecksumCRC32": checksum_of("CRC32", whole)}, ("BadDigest", 400)),
        ({"ChecksumType": "COMPOSITE"}, ("BadDigest", 400)),
        ({"MpuObjectSize": len(whole) + 1}, ("InvalidRequest", 400)),
    ]
    for extra, expected in refusals:
        assert _refused_completion(s3, bucket, upload_id, listed, **extra) == expected, extra
    done = _complete(s3, bucket, "k", upload_id, listed, ChecksumCRC32C=right, MpuObjectSize=len(whole))
    assert done["ChecksumCRC32C"] == right


def test_composite_completion_checks_the_checksum_of_checksums(s3, bucket):
    parts = [os.urandom(PART), b"tail"]
    created, listed = _upload_parts(s3, bucket, "k", parts, "SHA256")
    upload_id = created["UploadId"]
    digests = b"".join(hashlib.sha256(part).digest() for part in parts)
    right = f"{checksum_of('SHA256', digests)}-2"
    for wrong in (right[:-2], f"{right[:-2]}-3", checksum_of("SHA256", b"".join(parts))):
        assert _refused_completion(s3, bucket, upload_id, listed, ChecksumSHA256=wrong) == ("BadDigest", 400), wrong
    assert _refused_completion(s3, bucket, upload_id, listed, ChecksumType="FULL_OBJECT") == ("BadDigest", 400)
    done = _complete(s3, bucket, "k", upload_id, listed, ChecksumSHA256=right, ChecksumType="COMPOSITE")
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (right, "COMPOSITE")


def test_completion_without_an_algorithm_refuses_an_object_checksum(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x")["ETag"]
    listed = [{"PartNumber": 1, "ETag": etag}]
    wrong = checksum_of("CRC32", b"x")
    assert _refused_completion(s3, bucket, upload_id, listed, ChecksumCRC32=wrong) == ("BadDigest", 400)
    assert _refused_completion(s3, bucket, upload_id, listed, ChecksumType="FULL_OBJECT") == ("BadDigest", 400)
    done = _complete(s3, bucket, "k", upload_id, listed)
    assert "ChecksumCRC32" not in done and "ChecksumType" not in done


# -- GetObjectAttributes: ObjectParts paged ---------------------------------------------------


def test_object_parts_are_paged(s3, raw, bucket):
    parts = [os.urandom(PART), os.urandom(PART), os.urandom(PART), b"four"]
    created, listed = _upload_parts(s3, bucket, "k", parts, "CRC64NVME")
    _complete(s3, bucket, "k", created["UploadId"], listed)
    seen, marker, pages = [], 0, []
    while True:
        page = s3.get_object_attributes(
            Bucket=bucket, Key="k", ObjectAttributes=["ObjectParts"], MaxParts=3, PartNumberMarker=marker
        )["ObjectParts"]
        pages.append((page["PartNumberMarker"], page["MaxParts"], page["IsTruncated"], page["TotalPartsCount"]))
        seen.extend((p["PartNumber"], p["Size"], p["ChecksumCRC64NVME"]) for p in page["Parts"])
        if not page["IsTruncated"]:
            break
        marker = page["NextPartNumberMarker"]
    assert pages == [(0, 3, True, 4), (3, 3, False, 4)]
    assert seen == [(n, len(b), checksum_of("CRC64NVME", b)) for n, b in enumerate(parts, start=1)]
    past = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectParts"], PartNumberMarker=4)
    assert not past["ObjectParts"]["IsTruncated"] and "Parts" not in past["ObjectParts"]
    bad = raw(
        "GET", f"/{bucket}/k?attributes", headers={"x-amz-object-attributes": "ObjectParts", "x-amz-max-parts": "-1"}
    )
    assert (bad.status_code, code_of(bad.text)) == (400, "InvalidArgument")


# -- CopyObject with a checksum algorithm -----------------------------------------------------


@pytest.mark.parametrize("size", [100, 3 * MIB], ids=["small", "file"])
def test_copy_keeps_or_recomputes_the_checksum(s3, bucket, size):
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="source", Body=data, ChecksumAlgorithm="SHA256")
    kept = s3.copy_object(Bucket=bucket, Key="kept", CopySource=f"{bucket}/source")["CopyObjectResult"]
    assert (kept["ChecksumSHA256"], kept["ChecksumType"]) == (checksum_of("SHA256", data), "FULL_OBJECT")
    changed = s3.copy_object(
        Bucket=bucket, Key="changed", CopySource=f"{bucket}/source", ChecksumAlgorithm="CRC64NVME"
    )["CopyObjectResult"]
    assert changed["ChecksumCRC64NVME"] == checksum_of("CRC64NVME", data) and "ChecksumSHA256" not in changed
    head = s3.head_object(Bucket=bucket, Key="changed", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == checksum_of("CRC64NVME", data) and "ChecksumSHA256" not in head
    # Copying an object onto itself to change its checksum algorithm is allowed.
    s3.copy_object(Bucket=bucket, Key="source", CopySource=f"{bucket}/source", ChecksumAlgorithm="CRC32C")
    head = s3.head_object(Bucket=bucket, Key="source", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32C"] == checksum_of("CRC32C", data)
    assert s3.get_object(Bucket=bucket, Key="source")["Body"].read() == data


def test_copy_of_a_multipart_object_with_a_new_algorithm_is_full_object(s3, bucket):
    parts = [os.urandom(PART), b"tail"]
    created, listed = _upload_parts(s3, bucket, "source", parts, "SHA1")
    _complete(s3, bucket, "source", created["UploadId"], listed)
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/source", ChecksumAlgorithm="CRC32")
    expected = checksum_of("CRC32", b"".join(parts))
    assert (copied["CopyObjectResult"]["ChecksumCRC32"], copied["CopyObjectResult"]["ChecksumType"]) == (
        expected,
        "FULL_OBJECT",
    )
    attributes = s3.get_object_attributes(Bucket=bucket, Key="copy", ObjectAttributes=["Checksum"])
    assert attributes["Checksum"] == {"ChecksumCRC32": expected, "ChecksumType": "FULL_OBJECT"}


def test_copy_refuses_an_unknown_algorithm(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="source", Body=b"x")
    response = raw(
        "PUT", f"/{bucket}/copy", headers={"x-amz-copy-source": f"/{bucket}/source", "x-amz-checksum-algorithm": "CRC7"}
    )
    assert (response.status_code, code_of(response.text)) == (400, "InvalidRequest")
    assert_missing(s3, bucket, "copy")


# -- configuration documents with a flexible checksum instead of Content-MD5 ------------------

TAGGING = "<Tagging><TagSet><Tag><Key>team</Key><Value>blue</Value></Tag></TagSet></Tagging>"
CORS = (
    "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>"
    "</CORSRule></CORSConfiguration>"
)
LIFECYCLE = (
    "<LifecycleConfiguration><Rule><ID>old</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status>"
    "<Expiration><Days>30</Days></Expiration></Rule></LifecycleConfiguration>"
)
CONFIGURATIONS = [
    ("tagging", TAGGING, lambda s3, bucket: s3.get_bucket_tagging(Bucket=bucket)["TagSet"]),
    ("cors", CORS, lambda s3, bucket: s3.get_bucket_cors(Bucket=bucket)["CORSRules"]),
    ("lifecycle", LIFECYCLE, lambda s3, bucket: s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]),
]


@pytest.mark.parametrize(("subresource", "document", "read"), CONFIGURATIONS, ids=[c[0] for c in CONFIGURATIONS])
@pytest.mark.parametrize("algorithm", ["CRC64NVME", "XXHASH3", "SHA512"])
def test_configuration_with_a_flexible_checksum(raw, s3, bucket, subresource, document, read, algorithm):
    body = document.encode()
    header = f"x-amz-checksum-{algorithm.lower()}"
    wrong = raw("PUT", f"/{bucket}?{subresource}", body, headers={header: checksum_of(algorithm, body + b" ")})
    assert (wrong.status_code, code_of(wrong.text)) == (400, "BadDigest")
    with pytest.raises(ClientError) as caught:
        read(s3, bucket)
    assert status(caught) == 404
    right = raw("PUT", f"/{bucket}?{subresource}", body, headers={header: checksum_of(algorithm, body)})
    assert right.status_code in (200, 204), right.text  # PutBucketTagging answers 204, as on S3
    assert len(read(s3, bucket)) == 1


def test_boto3_configuration_calls_with_crc64nvme(node, bucket):
    client = node.client()
    sent: list[set] = []
    client.meta.events.register(
        "before-send.s3.*", lambda request, **_: sent.append({k.lower() for k in request.headers})
    )
    client.put_bucket_tagging(
        Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}, ChecksumAlgorithm="CRC64NVME"
    )
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    client.put_object_tagging(
        Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}, ChecksumAlgorithm="CRC64NVME"
    )
    client.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}, ChecksumAlgorithm="CRC64NVME"
    )
    checked = [headers for headers in sent if "x-amz-checksum-crc64nvme" in headers]
    assert len(checked) == 3 and not any("content-md5" in headers for headers in checked)
    assert client.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "a", "Value": "b"}]
    assert client.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


# -- listings name each object's checksum algorithm and type ----------------------------------


def test_listings_name_the_checksum_algorithm_and_type(raw, s3, bucket):
    assert raw("PUT", f"/{bucket}/plain", b"no checksum").status_code == 200
    s3.put_object(Bucket=bucket, Key="single", Body=b"x", ChecksumAlgorithm="CRC64NVME")
    created, listed = _upload_parts(s3, bucket, "parts", [os.urandom(PART), b"tail"], "SHA1")
    _complete(s3, bucket, "parts", created["UploadId"], listed)
    expected = {"parts": (["SHA1"], "COMPOSITE"), "plain": None, "single": (["CRC64NVME"], "FULL_OBJECT")}

    def shown(item: dict):
        return (item["ChecksumAlgorithm"], item["ChecksumType"]) if "ChecksumAlgorithm" in item else None

    for listing in (s3.list_objects_v2(Bucket=bucket)["Contents"], s3.list_objects(Bucket=bucket)["Contents"]):
        assert {item["Key"]: shown(item) for item in listing} == expected
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert {item["Key"]: shown(item) for item in versions} == expected
