"""Object and bucket tagging against a real node: the ?tagging operations, x-amz-tagging on
uploads and copies, x-amz-tagging-count, and every limit S3 enforces on a tag set.
"""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ElementTree
from urllib.parse import quote
from xml.sax.saxutils import escape

import pytest
from botocore.exceptions import ClientError

INLINE_THRESHOLD = 16 * 1024
NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def tag_set(pairs) -> list[dict]:
    return [{"Key": key, "Value": value} for key, value in pairs]


def tagging_xml(pairs) -> bytes:
    tags = "".join(f"<Tag><Key>{escape(k)}</Key><Value>{escape(v)}</Value></Tag>" for k, v in pairs)
    return f"<Tagging><TagSet>{tags}</TagSet></Tagging>".encode()


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def put_tagging(raw, path: str, body: bytes, headers: dict | None = None):
    headers = {"Content-MD5": content_md5(body)} if headers is None else headers
    return raw("PUT", f"{path}?tagging", body=body, headers=headers)


def error_of(response) -> ElementTree.Element:
    return ElementTree.fromstring(response.content)


def assert_error(response, status: int, code: str) -> ElementTree.Element:
    assert response.status_code == status, response.content
    root = error_of(response)
    assert root.findtext("Code") == code, response.content
    return root


def client_error(caught) -> tuple[int, str, str]:
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def tags_of(s3, bucket: str, key: str) -> list[dict]:
    return s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]


# -- object tagging --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 3 * INLINE_THRESHOLD], ids=["inline", "file"])
def test_object_tagging_round_trip_leaves_the_object_alone(s3, bucket, size):
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    s3.put_object(Bucket=bucket, Key="k", Body=data, Metadata={"m": "1"})
    before = s3.head_object(Bucket=bucket, Key="k")
    assert tags_of(s3, bucket, "k") == []
    response = s3.put_object_tagging(
        Bucket=bucket, Key="k", Tagging={"TagSet": tag_set([("zeta", "last"), ("alpha", "first")])}
    )
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tags_of(s3, bucket, "k") == tag_set([("alpha", "first"), ("zeta", "last")])
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == data
    assert got["TagCount"] == 2
    assert (got["ETag"], got["LastModified"], got["Metadata"]) == (before["ETag"], before["LastModified"], {"m": "1"})
    assert s3.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    deleted = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert tags_of(s3, bucket, "k") == []
    assert "x-amz-tagging-count" not in s3.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPHeaders"]
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == data


def test_put_object_tagging_replaces_the_whole_set(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1&b=2")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tag_set([("c", "3")])})
    assert tags_of(s3, bucket, "k") == tag_set([("c", "3")])
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": []})
    assert tags_of(s3, bucket, "k") == []


def test_get_object_tagging_document_shape(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a%20b=%3D%C3%BC")
    response = raw("GET", f"/{bucket}/k?tagging")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml"
    root = ElementTree.fromstring(response.content)
    assert root.tag == f"{NAMESPACE}Tagging"
    tags = root.findall(f"{NAMESPACE}TagSet/{NAMESPACE}Tag")
    assert [(t.findtext(f"{NAMESPACE}Key"), t.findtext(f"{NAMESPACE}Value")) for t in tags] == [("a b", "=ü")]


@pytest.mark.parametrize(
    "header,expected",
    [
        ("a=1&b=two%20words", [("a", "1"), ("b", "two words")]),
        ("foo=bar&bar", [("bar", ""), ("foo", "bar")]),
        ("plus+sign=x%2By", [("plus sign", "x+y")]),
        ("%C3%BC=%E6%96%87", [("ü", "文")]),
        ("", []),
    ],
)
def test_put_object_with_tagging_header(s3, bucket, header, expected):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging=header)
    assert tags_of(s3, bucket, "k") == tag_set(expected)


def test_overwrite_without_tagging_header_drops_the_tags(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1")
    s3.put_object(Bucket=bucket, Key="k", Body=b"y")
    assert tags_of(s3, bucket, "k") == []


def test_multipart_upload_tags_the_completed_object(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="project=nebula&tier=gold")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"data")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert tags_of(s3, bucket, "mp") == tag_set([("project", "nebula"), ("tier", "gold")])
    assert s3.get_object(Bucket=bucket, Key="mp")["TagCount"] == 2


def test_multipart_upload_refuses_bad_tagging_header_before_opening(s3, bucket):
    with pytest.raises(ClientError) as caught:
        s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="a=1&a=2")
    assert client_error(caught)[:2] == (400, "InvalidArgument")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_copy_keeps_tags_by_default_and_replaces_them_on_request(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1")
    source = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="copied", CopySource=source)
    assert tags_of(s3, bucket, "copied") == tag_set([("a", "1")])
    s3.copy_object(Bucket=bucket, Key="explicit", CopySource=source, TaggingDirective="COPY", Tagging="ignored=1")
    assert tags_of(s3, bucket, "explicit") == tag_set([("a", "1")])
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource=source, TaggingDirective="REPLACE", Tagging="b=2")
    assert tags_of(s3, bucket, "replaced") == tag_set([("b", "2")])
    s3.copy_object(Bucket=bucket, Key="cleared", CopySource=source, TaggingDirective="REPLACE")
    assert tags_of(s3, bucket, "cleared") == []
    assert "TagCount" not in s3.get_object(Bucket=bucket, Key="cleared")
    # The copy's tags are its own.
    s3.delete_object_tagging(Bucket=bucket, Key="src")
    assert tags_of(s3, bucket, "copied") == tag_set([("a", "1")])


def test_copy_onto_itself_may_replace_metadata_and_tags(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1")
    s3.copy_object(
        Bucket=bucket,
        Key="k",
        CopySource={"Bucket": bucket, "Key": "k"},
        MetadataDirective="REPLACE",
        TaggingDirective="REPLACE",
        Tagging="b=2",
    )
    assert tags_of(s3, bucket, "k") == tag_set([("b", "2")])


def test_copy_with_unknown_tagging_directive(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    response = raw(
        "PUT", f"/{bucket}/dst", headers={"x-amz-copy-source": f"/{bucket}/src", "x-amz-tagging-directive": "MERGE"}
    )
    root = assert_error(response, 400, "InvalidArgument")
    assert root.findtext("ArgumentName") == "x-amz-tagging-directive"


def test_ten_tags_of_the_longest_keys_and_values_are_accepted(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    pairs = [(f"{i}" + "k" * 127, "v" * 256) for i in range(10)]
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tag_set(pairs)})
    assert tags_of(s3, bucket, "k") == tag_set(sorted(pairs))


def test_tag_lengths_count_utf16_code_units(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tag_set([("é" * 128, "文" * 256)])})
    with pytest.raises(ClientError) as caught:
        # U+10400 (a letter) is two UTF-16 code units: 65 of them are 130.
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tag_set([("\U00010400" * 65, "v")])})
    assert client_error(caught)[:2] == (400, "InvalidTag")


@pytest.mark.parametrize(
    "pairs,status,code,message",
    [
        ([(f"k{i}", "v") for i in range(11)], 400, "InvalidTag", "Object tags cannot be greater than 10"),
        ([("a", "1"), ("a", "2")], 400, "InvalidTag", "Cannot provide multiple Tags with the same key"),
        ([("k" * 129, "v")], 400, "InvalidTag", "The TagKey you have provided is invalid"),
        ([("k", "v" * 257)], 400, "InvalidTag", "The TagValue you have provided is invalid"),
        ([("aws:cost", "1")], 400, "InvalidTag", "Your TagKey cannot be prefixed with aws:"),
        ([("AWS:cost", "1")], 400, "InvalidTag", "Your TagKey cannot be prefixed with aws:"),
        ([("a,b", "1")], 400, "InvalidTag", "The TagKey you have provided is invalid"),
        ([("k", "a;b")], 400, "InvalidTag", "The TagValue you have provided is invalid"),
        ([("k", "\N{GRINNING FACE}")], 400, "InvalidTag", "The TagValue you have provided is invalid"),
        ([("tab\there", "v")], 400, "InvalidTag", "The TagKey you have provided is invalid"),
    ],
)
def test_put_object_tagging_limits(s3, bucket, pairs, status, code, message):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="kept=1")
    with pytest.raises(ClientError) as caught:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tag_set(pairs)})
    assert client_error(caught) == (status, code, message)
    assert tags_of(s3, bucket, "k") == tag_set([("kept", "1")])


def test_allowed_tag_characters(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    pairs = [("key with spaces_.:/=+-@", "value _.:/=+-@ 0123"), ("Ünïcödé文字٣", "")]
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": tag_set(pairs)})
    assert tags_of(s3, bucket, "k") == tag_set(sorted(pairs))


def test_invalid_tag_names_the_key(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    root = assert_error(put_tagging(raw, f"/{bucket}/k", tagging_xml([("", "v")])), 400, "InvalidTag")
    assert root.findtext("TagKey") == ""
    root = assert_error(put_tagging(raw, f"/{bucket}/k", tagging_xml([("k", "a!b")])), 400, "InvalidTag")
    assert (root.findtext("TagKey"), root.findtext("TagValue")) == ("k", "a!b")


@pytest.mark.parametrize(
    "body",
    [
        b"<Tagging><TagSet>",
        b"<Tagging></Tagging>",
        b"<Tagging><TagSet/><TagSet/></Tagging>",
        b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",
        b"<Tagging><TagSet><Tag><Value>a</Value></Tag></TagSet></Tagging>",
        b"<Tagging><TagSet><Tag><Key>a</Key><Key>b</Key><Value>v</Value></Tag></TagSet></Tagging>",
        b"<Tagging><TagSet><Other/></TagSet></Tagging>",
        b"<Tags><TagSet></TagSet></Tags>",
        b"",
    ],
)
def test_put_object_tagging_malformed_documents(raw, s3, bucket, body):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert_error(put_tagging(raw, f"/{bucket}/k", body), 400, "MalformedXML")


def test_put_object_tagging_namespaced_document(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    body = b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>a</Key><Value/></Tag></TagSet></Tagging>'
    assert put_tagging(raw, f"/{bucket}/k", body).status_code == 200
    assert tags_of(s3, bucket, "k") == tag_set([("a", "")])


def test_put_tagging_needs_an_integrity_check(raw, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    body = tagging_xml([("a", "1")])
    root = assert_error(put_tagging(raw, f"/{bucket}/k", body, headers={}), 400, "InvalidRequest")
    assert "Content-MD5" in root.findtext("Message")
    assert_error(put_tagging(raw, f"/{bucket}", body, headers={}), 400, "InvalidRequest")
    assert_error(
        put_tagging(raw, f"/{bucket}/k", body, headers={"Content-MD5": content_md5(b"other")}), 400, "BadDigest"
    )
    assert tags_of(s3, bucket, "k") == []


@pytest.mark.parametrize(
    "header,code",
    [
        ("a=1&a=2", "InvalidArgument"),
        ("=1", "InvalidArgument"),
        ("a=%FF", "InvalidArgument"),
        ("TagSet=[{Key=string,Value=string}]", "InvalidArgument"),
        ("&".join(f"k{i}=" for i in range(11)), "InvalidTag"),
        ("a,b=1", "InvalidTag"),
        ("aws:cost=1", "InvalidTag"),
        (quote("k" * 129) + "=v", "InvalidTag"),
    ],
)
def test_put_object_tagging_header_refusals_store_nothing(raw, s3, bucket, header, code):
    response = raw("PUT", f"/{bucket}/new", body=b"x", headers={"x-amz-tagging": header})
    root = assert_error(response, 400, code)
    if code == "InvalidArgument":
        assert root.findtext("ArgumentName") == "x-amz-tagging"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_object_tagging_of_missing_key_and_bucket(raw, s3, bucket):
    body = tagging_xml([("a", "1")])
    for response in (
        put_tagging(raw, f"/{bucket}/missing", body),
        raw("GET", f"/{bucket}/missing?tagging"),
        raw("DELETE", f"/{bucket}/missing?tagging"),
    ):
        assert assert_error(response, 404, "NoSuchKey").findtext("Key") == "missing"
    assert_error(raw("GET", "/no-such-bucket-tagging/k?tagging"), 404, "NoSuchBucket")
    assert_error(put_tagging(raw, "/no-such-bucket-tagging/k", body), 404, "NoSuchBucket")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_object_tagging_addresses_versions(raw, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = s3.put_object(Bucket=bucket, Key="k", Body=b"x", Tagging="a=1")["VersionId"]
    new = s3.put_object(Bucket=bucket, Key="k", Body=b"y")["VersionId"]
    put = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=old, Tagging={"TagSet": tag_set([("b", "2")])})
    assert put["VersionId"] == old
    got = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=old)
    assert (got["VersionId"], got["TagSet"]) == (old, tag_set([("b", "2")]))
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["VersionId"] == new
    assert s3.delete_object_tagging(Bucket=bucket, Key="k", VersionId=old)["VersionId"] == old
    assert s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=old)["TagSet"] == []
    assert_error(raw("GET", f"/{bucket}/k?tagging&versionId=abc"), 400, "InvalidArgument")
    assert_error(raw("GET", f"/{bucket}/k?tagging&versionId={'0' * 16}"), 404, "NoSuchVersion")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    body = tagging_xml([("c", "3")])
    refused = raw("PUT", f"/{bucket}/k?tagging&versionId={marker}", body, headers={"Content-MD5": content_md5(body)})
    assert_error(refused, 405, "MethodNotAllowed")


# -- bucket tagging --------------------------------------------------------------------------


def test_bucket_tagging_round_trip(s3, bucket):
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_tagging(Bucket=bucket)
    assert client_error(caught) == (404, "NoSuchTagSet", "The TagSet does not exist")
    response = s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set([("team", "storage"), ("env", "")])})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tag_set([("env", ""), ("team", "storage")])
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set([("other", "1")])})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tag_set([("other", "1")])
    assert s3.delete_bucket_tagging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_tagging(Bucket=bucket)
    assert client_error(caught)[:2] == (404, "NoSuchTagSet")
    assert s3.delete_bucket_tagging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_bucket_tagging_with_an_empty_set_removes_it(s3, bucket):
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set([("a", "1")])})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": []})
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_tagging(Bucket=bucket)
    assert client_error(caught)[:2] == (404, "NoSuchTagSet")


def test_bucket_tagging_takes_fifty_tags(s3, bucket):
    pairs = [(f"key-{i:02d}", f"value {i}") for i in range(50)]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set(pairs)})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tag_set(pairs)


@pytest.mark.parametrize(
    "pairs,code,message",
    [
        ([(f"k{i}", "v") for i in range(51)], "InvalidTag", "Bucket tag count cannot be greater than 50"),
        ([("aws:createdBy", "me")], "InvalidTag", "System tags cannot be added/updated by requester"),
        ([("a", "1"), ("a", "1")], "InvalidTag", "Cannot provide multiple Tags with the same key"),
        ([("k" * 129, "v")], "InvalidTag", "The TagKey you have provided is invalid"),
        ([("k", "v" * 257)], "InvalidTag", "The TagValue you have provided is invalid"),
        ([("k", "a#b")], "InvalidTag", "The TagValue you have provided is invalid"),
    ],
)
def test_put_bucket_tagging_limits(s3, bucket, pairs, code, message):
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set([("kept", "1")])})
    with pytest.raises(ClientError) as caught:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set(pairs)})
    assert client_error(caught) == (400, code, message)
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == tag_set([("kept", "1")])


def test_bucket_tagging_of_missing_bucket(raw):
    assert_error(raw("GET", "/no-such-bucket-tagging?tagging"), 404, "NoSuchBucket")
    assert_error(put_tagging(raw, "/no-such-bucket-tagging", tagging_xml([("a", "1")])), 404, "NoSuchBucket")
    assert_error(raw("DELETE", "/no-such-bucket-tagging?tagging"), 404, "NoSuchBucket")


def test_bucket_tagging_malformed_document(raw, bucket):
    assert_error(put_tagging(raw, f"/{bucket}", b"<Tagging/>"), 400, "MalformedXML")
