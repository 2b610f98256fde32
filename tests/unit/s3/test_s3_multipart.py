"""Multipart request parsing: part numbers, integer arguments and CompleteMultipartUpload bodies."""

import pytest

from nebulaio.engine.errors import S3Error
from nebulaio.s3.arguments import integer, part_number
from nebulaio.s3.multipart import _copy_range, _requested_parts
from nebulaio.s3.router import classify

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def test_copy_source_ranges():
    assert _copy_range(None, 10) is None
    assert _copy_range("bytes=0-9", 10) == (0, 9)
    assert _copy_range("bytes=3-3", 10) == (3, 3)
    for bad in ("bytes=5-2", "bytes=-3", "bytes=3-", "0-2", "bytes=0-1,3-4", "bytes=a-b", "bytes=٣-٤"):
        with pytest.raises(S3Error) as excinfo:
            _copy_range(bad, 10)
        assert excinfo.value.code == "InvalidArgument"
        assert excinfo.value.fields["ArgumentName"] == "x-amz-copy-source-range"
    for past_the_end in ("bytes=0-10", "bytes=10-12"):
        with pytest.raises(S3Error) as excinfo:
            _copy_range(past_the_end, 10)
        assert (excinfo.value.code, excinfo.value.status) == ("InvalidRange", 416)
        assert excinfo.value.fields == {"ActualObjectSize": "10", "RangeRequested": past_the_end}


def test_part_numbers():
    assert part_number({"partNumber": "1"}) == 1
    assert part_number({"partNumber": "10000"}) == 10000
    for bad in ("0", "10001", "", "1.5", "-2", "٣", "99999999999"):
        with pytest.raises(S3Error) as excinfo:
            part_number({"partNumber": bad})
        assert excinfo.value.code == "InvalidArgument"


def test_integer_arguments():
    assert integer({}, "max-parts", 1000, 0) == 1000
    assert integer({"max-parts": "0"}, "max-parts", 1000, 0) == 0
    for bad in ("-1", "x", "2147483648", "99999999999"):
        with pytest.raises(S3Error):
            integer({"max-parts": bad}, "max-parts", 1000, 0)


def test_complete_body():
    body = (
        f"<CompleteMultipartUpload {NS}><Part><ETag>&quot;aa&quot;</ETag><PartNumber>1</PartNumber></Part>"
        "<Part><PartNumber> 3 </PartNumber><ETag>bb</ETag><ChecksumCRC32>x</ChecksumCRC32></Part>"
        "</CompleteMultipartUpload>"
    ).encode()
    assert _requested_parts(body) == ([(1, '"aa"'), (3, "bb")], [None, None])
    assert _requested_parts(body, "crc32") == ([(1, '"aa"'), (3, "bb")], [None, "x"])
    for bad in (
        b"",
        b"<CompleteMultipartUpload/>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>a</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>",
        b"<Parts><Part><PartNumber>1</PartNumber><ETag>e</ETag></Part></Parts>",
    ):
        with pytest.raises(S3Error) as excinfo:
            _requested_parts(bad)
        assert excinfo.value.code == "MalformedXML"


def test_routes():
    assert classify("POST", "b", "k", {"uploads": ""}, {}) == "CreateMultipartUpload"
    assert classify("PUT", "b", "k", {"uploadId": "u", "partNumber": "1"}, {}) == "UploadPart"
    assert classify("POST", "b", "k", {"uploadId": "u"}, {}) == "CompleteMultipartUpload"
    assert classify("DELETE", "b", "k", {"uploadId": "u"}, {}) == "AbortMultipartUpload"
    assert classify("GET", "b", "k", {"uploadId": "u"}, {}) == "ListParts"
    copy_source = {"x-amz-copy-source": "/b/other"}
    assert classify("PUT", "b", "k", {"uploadId": "u", "partNumber": "1"}, copy_source) == "UploadPartCopy"
    assert classify("GET", "b", "k", {"partNumber": "2"}, {}) == "GetObject"
    assert classify("HEAD", "b", "k", {"partNumber": "2"}, {}) == "HeadObject"
    assert classify("GET", "b", "k", {"attributes": ""}, {}) == "GetObjectAttributes"
    assert classify("GET", "b", None, {"uploads": "", "prefix": "p"}, {}) == "ListMultipartUploads"
    with pytest.raises(S3Error) as excinfo:
        classify("PUT", "b", "k", {"uploadId": "u", "tagging": ""}, {})
    assert excinfo.value.code == "NotImplemented"
