"""S3 XML documents: AWS's published examples, botocore's own parsers, hostile bodies."""

import xml.etree.ElementTree as ET
from types import SimpleNamespace
from urllib.parse import unquote_plus

import botocore.parsers
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.engine.errors import S3Error
from nebulaio.s3 import xml

OWNER_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
OWNER_NAME = "mtd@amazon.com"
MTIME_2009 = 1255369830000  # 2009-10-12T17:50:30.000Z
MTIME_2017 = 1488074180000  # 2017-02-26T01:56:20.000Z

# Any text S3 accepts as a key (valid UTF-8: no lone surrogates).
any_key = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


def owner_of_every(record: dict) -> str:
    """The Owner element of every listed object: one owner's."""
    return xml.owner_element(OWNER_ID, OWNER_NAME)


# Text that XML 1.0 can carry, as characters or as references.
xml_text = st.text(
    st.characters(
        blacklist_categories=("Cs",),
        blacklist_characters=[chr(c) for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF)],
    ),
    max_size=60,
)


def make_page(entries=(), prefixes=(), truncated=False, last=None):
    return SimpleNamespace(entries=list(entries), prefixes=list(prefixes), truncated=truncated, last=last)


def entry(key, etag, size, mtime):
    return key, {"etag": etag, "size": size, "mtime": mtime}


def shape(element):
    """A document as nested (tag, text, children), namespaces and layout whitespace dropped."""
    return (
        element.tag.rpartition("}")[2],
        (element.text or "").strip(),
        [shape(child) for child in element],
    )


def assert_same_document(ours: bytes, golden: str):
    assert ours.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert shape(ET.fromstring(ours)) == shape(ET.fromstring(golden))


def namespace_of(document: bytes) -> str:
    tag = ET.fromstring(document).tag
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


# --- golden examples (AWS S3 API reference) ---------------------------------------------


def test_list_v2_matches_the_aws_reference_example():
    page = make_page([entry("my-image.jpg", "fba9dede5f27731c9771645a39863328", 434234, MTIME_2009)])
    ours = xml.list_objects_v2("bucket", "", None, 1000, False, page, None, None, None, None)
    assert_same_document(
        ours,
        """<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
            <Name>bucket</Name>
            <Prefix/>
            <KeyCount>1</KeyCount>
            <MaxKeys>1000</MaxKeys>
            <IsTruncated>false</IsTruncated>
            <Contents>
                <Key>my-image.jpg</Key>
                <LastModified>2009-10-12T17:50:30.000Z</LastModified>
                <ETag>"fba9dede5f27731c9771645a39863328"</ETag>
                <Size>434234</Size>
                <StorageClass>STANDARD</StorageClass>
            </Contents>
        </ListBucketResult>""",
    )
    assert namespace_of(ours) == xml.S3_NAMESPACE
    assert b"<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>" in ours


def test_list_v2_with_delimiter_matches_the_aws_reference_example():
    page = make_page(
        [entry("sample.jpg", "bf1d737a4d46a19f3bced6905cc8b902", 142863, MTIME_2017)], prefixes=["photos/"]
    )
    ours = xml.list_objects_v2("example-bucket", None, "/", 1000, False, page, None, None, None, None)
    assert_same_document(
        ours,
        """<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Name>example-bucket</Name>
          <Prefix></Prefix>
          <KeyCount>2</KeyCount>
          <MaxKeys>1000</MaxKeys>
          <Delimiter>/</Delimiter>
          <IsTruncated>false</IsTruncated>
          <Contents>
            <Key>sample.jpg</Key>
            <LastModified>2017-02-26T01:56:20.000Z</LastModified>
            <ETag>"bf1d737a4d46a19f3bced6905cc8b902"</ETag>
            <Size>142863</Size>
            <StorageClass>STANDARD</StorageClass>
          </Contents>
          <CommonPrefixes>
            <Prefix>photos/</Prefix>
          </CommonPrefixes>
        </ListBucketResult>""",
    )


def test_list_v2_continuation_and_start_after_match_the_aws_reference_examples():
    token = "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="
    first = xml.list_objects_v2("bucket", "", None, 3, False, make_page(truncated=True), None, token, None, None)
    assert_same_document(
        first,
        f"""<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Name>bucket</Name><Prefix></Prefix>
          <NextContinuationToken>{token}</NextContinuationToken>
          <KeyCount>0</KeyCount><MaxKeys>3</MaxKeys><IsTruncated>true</IsTruncated>
        </ListBucketResult>""",
    )
    second = xml.list_objects_v2("bucket", "", None, 1000, False, make_page(), token, None, None, None)
    assert_same_document(
        second,
        f"""<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Name>bucket</Name><Prefix></Prefix>
          <ContinuationToken>{token}</ContinuationToken>
          <KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>
        </ListBucketResult>""",
    )
    after = xml.list_objects_v2("bucket", "", None, 1000, False, make_page(), None, None, "ExampleGuide.pdf", None)
    assert_same_document(
        after,
        """<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Name>bucket</Name><Prefix></Prefix>
          <KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>
          <StartAfter>ExampleGuide.pdf</StartAfter>
        </ListBucketResult>""",
    )


def test_list_v1_matches_the_aws_reference_example():
    page = make_page([entry("my-image.jpg", "fba9dede5f27731c9771645a39863328", 434234, MTIME_2009)])
    ours = xml.list_objects_v1("bucket", None, None, None, 1000, False, page, owner_of_every)
    assert_same_document(
        ours,
        f"""<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Name>bucket</Name>
          <Prefix/>
          <Marker/>
          <MaxKeys>1000</MaxKeys>
          <IsTruncated>false</IsTruncated>
          <Contents>
            <Key>my-image.jpg</Key>
            <LastModified>2009-10-12T17:50:30.000Z</LastModified>
            <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>
            <Size>434234</Size>
            <StorageClass>STANDARD</StorageClass>
            <Owner>
              <ID>{OWNER_ID}</ID>
              <DisplayName>{OWNER_NAME}</DisplayName>
            </Owner>
          </Contents>
        </ListBucketResult>""",
    )


def test_list_v1_with_prefix_and_delimiter_matches_the_aws_reference_example():
    page = make_page(prefixes=["photos/2006/February/", "photos/2006/January/"])
    ours = xml.list_objects_v1("example-bucket", "photos/2006/", "/", "", 1000, False, page, None)
    assert_same_document(
        ours,
        """<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
          <Name>example-bucket</Name>
          <Prefix>photos/2006/</Prefix>
          <Marker></Marker>
          <MaxKeys>1000</MaxKeys>
          <Delimiter>/</Delimiter>
          <IsTruncated>false</IsTruncated>
          <CommonPrefixes><Prefix>photos/2006/February/</Prefix></CommonPrefixes>
          <CommonPrefixes><Prefix>photos/2006/January/</Prefix></CommonPrefixes>
        </ListBucketResult>""",
    )


def test_list_v1_writes_next_marker_only_when_truncated_with_a_delimiter():
    page = make_page([entry("a", "0" * 32, 1, MTIME_2009)], truncated=True, last="a")
    with_delimiter = ET.fromstring(xml.list_objects_v1("b", "", "/", "", 1, False, page, None))
    without = ET.fromstring(xml.list_objects_v1("b", "", None, "", 1, False, page, None))
    not_truncated = ET.fromstring(xml.list_objects_v1("b", "", "/", "", 1, False, make_page(last="a"), None))
    ns = {"s3": xml.S3_NAMESPACE}
    assert with_delimiter.findtext("s3:NextMarker", namespaces=ns) == "a"
    assert without.find("s3:NextMarker", ns) is None
    assert not_truncated.find("s3:NextMarker", ns) is None


def test_error_matches_the_aws_reference_example():
    ours = xml.error(
        "NoSuchKey", "The resource you requested does not exist", "4442587FB7D0A2F9", "/mybucket/myfoto.jpg"
    )
    assert_same_document(
        ours,
        """<Error>
          <Code>NoSuchKey</Code>
          <Message>The resource you requested does not exist</Message>
          <Resource>/mybucket/myfoto.jpg</Resource>
          <RequestId>4442587FB7D0A2F9</RequestId>
        </Error>""",
    )
    assert namespace_of(ours) == ""


def test_error_fields_become_escaped_elements():
    ours = xml.error("NoSuchKey", "gone", "RID", fields={"Key": "a<b>&c", "Size": 3})
    root = ET.fromstring(ours)
    assert [child.tag for child in root] == ["Code", "Message", "Key", "Size", "RequestId"]
    assert root.findtext("Key") == "a<b>&c"
    assert root.findtext("Size") == "3"


def test_list_buckets_carries_owner_and_buckets():
    ours = xml.list_buckets(OWNER_ID, OWNER_NAME, [("alpha", MTIME_2009), ("beta", MTIME_2017)])
    ns = {"s3": xml.S3_NAMESPACE}
    root = ET.fromstring(ours)
    assert root.tag == f"{{{xml.S3_NAMESPACE}}}ListAllMyBucketsResult"
    assert root.findtext("s3:Owner/s3:ID", namespaces=ns) == OWNER_ID
    assert root.findtext("s3:Owner/s3:DisplayName", namespaces=ns) == OWNER_NAME
    buckets = [
        (node.findtext("s3:Name", namespaces=ns), node.findtext("s3:CreationDate", namespaces=ns))
        for node in root.iterfind("s3:Buckets/s3:Bucket", ns)
    ]
    assert buckets == [("alpha", "2009-10-12T17:50:30.000Z"), ("beta", "2017-02-26T01:56:20.000Z")]
    assert xml.list_buckets(OWNER_ID, OWNER_NAME, []).count(b"<Buckets></Buckets>") == 1


def test_location_constraint_is_empty_for_us_east_1():
    assert xml.location_constraint("us-east-1") == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>'
    )
    assert xml.location_constraint(None) == xml.location_constraint("us-east-1")
    assert ET.fromstring(xml.location_constraint("eu-west-1")).text == "eu-west-1"


def test_copy_result_has_quoted_etag_and_time():
    root = ET.fromstring(xml.copy_result("9b2cf535f27731c974343645a3985328", MTIME_2009))
    ns = {"s3": xml.S3_NAMESPACE}
    assert root.findtext("s3:ETag", namespaces=ns) == '"9b2cf535f27731c974343645a3985328"'
    assert root.findtext("s3:LastModified", namespaces=ns) == "2009-10-12T17:50:30.000Z"


# --- botocore reads what we write -------------------------------------------------------


class RawBody:
    """The one method botocore's AWSResponse needs from a urllib3 response."""

    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_ignored):
        yield self.data


class CannedS3:
    """A real botocore S3 client whose HTTP layer answers with a canned document."""

    def __init__(self):
        self.status = 200
        self.body = b""
        self.client = botocore.session.get_session().create_client(
            "s3",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            aws_access_key_id="AKIDEXAMPLE",
            aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            config=Config(retries={"max_attempts": 0}, s3={"addressing_style": "path"}),
        )
        self.client.meta.events.register_first("before-send.s3", self.respond)

    def respond(self, request, **_ignored):
        headers = {"content-type": "application/xml", "x-amz-request-id": "RID"}
        return AWSResponse(request.url, self.status, headers, RawBody(self.body))

    def answer(self, body: bytes, status: int = 200) -> "CannedS3":
        self.body, self.status = body, status
        return self


@pytest.fixture(scope="module")
def s3():
    return CannedS3()


def parse_with_botocore(operation: str, body: bytes) -> dict:
    model = botocore.session.get_session().get_service_model("s3").operation_model(operation)
    response = {"body": body, "headers": {}, "status_code": 200}
    return botocore.parsers.RestXMLParser().parse(response, model.output_shape)


def test_botocore_parses_list_v2_fields(s3):
    page = make_page(
        [entry("a b+c", "0cc175b9c0f1b6a831c399e269772661", 7, MTIME_2009)],
        prefixes=["dir ~/"],
        truncated=True,
        last="dir ~/",
    )
    body = xml.list_objects_v2("bkt", "a", "/", 2, True, page, "tok1", "tok2", "a 0", owner_of_every)
    parsed = s3.answer(body).client.list_objects_v2(Bucket="bkt", Prefix="a", Delimiter="/", MaxKeys=2)
    assert parsed["Name"] == "bkt"
    assert parsed["Prefix"] == "a"
    assert parsed["Delimiter"] == "/"
    assert parsed["KeyCount"] == 2
    assert parsed["MaxKeys"] == 2
    assert parsed["IsTruncated"] is True
    assert parsed["ContinuationToken"] == "tok1"
    assert parsed["NextContinuationToken"] == "tok2"
    assert parsed["StartAfter"] == "a 0"
    assert parsed["EncodingType"] == "url"
    [obj] = parsed["Contents"]
    assert obj["Key"] == "a b+c"
    assert obj["ETag"] == '"0cc175b9c0f1b6a831c399e269772661"'
    assert obj["Size"] == 7
    assert obj["StorageClass"] == "STANDARD"
    assert obj["LastModified"].timestamp() == MTIME_2009 / 1000
    assert obj["Owner"] == {"ID": OWNER_ID, "DisplayName": OWNER_NAME}
    assert parsed["CommonPrefixes"] == [{"Prefix": "dir ~/"}]


def test_botocore_parses_list_v1_fields(s3):
    page = make_page([entry("k&1", "0" * 32, 0, MTIME_2017)], truncated=True, last="k&1")
    body = xml.list_objects_v1("bkt", "k", "/", "j", 1, True, page, owner_of_every)
    parsed = s3.answer(body).client.list_objects(Bucket="bkt", Prefix="k", Delimiter="/", Marker="j", MaxKeys=1)
    assert (parsed["Prefix"], parsed["Delimiter"], parsed["Marker"], parsed["NextMarker"]) == ("k", "/", "j", "k&1")
    assert parsed["IsTruncated"] is True
    assert parsed["Contents"][0]["Key"] == "k&1"
    assert parsed["Contents"][0]["Owner"]["ID"] == OWNER_ID


def test_botocore_parses_list_buckets_location_and_errors(s3):
    buckets = s3.answer(xml.list_buckets(OWNER_ID, OWNER_NAME, [("alpha", MTIME_2009)])).client.list_buckets()
    assert [bucket["Name"] for bucket in buckets["Buckets"]] == ["alpha"]
    assert buckets["Buckets"][0]["CreationDate"].timestamp() == MTIME_2009 / 1000
    assert buckets["Owner"]["ID"] == OWNER_ID
    assert (
        s3.answer(xml.location_constraint("us-east-1")).client.get_bucket_location(Bucket="bkt")["LocationConstraint"]
        is None
    )
    assert (
        s3.answer(xml.location_constraint("eu-west-1")).client.get_bucket_location(Bucket="bkt")["LocationConstraint"]
        == "eu-west-1"
    )
    s3.answer(xml.error("NoSuchKey", "The specified key does not exist.", "RID", "/b/k", {"Key": "k"}), 404)
    with pytest.raises(ClientError) as caught:
        s3.client.get_object(Bucket="b", Key="k")
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
    assert caught.value.response["Error"]["Message"] == "The specified key does not exist."
    assert caught.value.response["Error"]["Key"] == "k"


def test_botocore_parser_reads_escaped_list_without_url_encoding():
    key = "tab\tand <tags> & \"quotes\" 'ü'"
    page = make_page([entry(key, "0" * 32, 1, MTIME_2009)], prefixes=["p&q/"])
    parsed = parse_with_botocore(
        "ListObjectsV2", xml.list_objects_v2("b", "<", "/", 10, False, page, None, None, None, None)
    )
    assert parsed["Contents"][0]["Key"] == key
    assert parsed["Prefix"] == "<"
    assert parsed["CommonPrefixes"] == [{"Prefix": "p&q/"}]
    assert "EncodingType" not in parsed


@given(key=any_key)
def test_any_key_survives_url_encoding_through_botocore(s3, key):
    page = make_page([entry(key, "0" * 32, 1, MTIME_2009)], prefixes=[key], truncated=True, last=key)
    body = xml.list_objects_v2("b", key, key, 1, True, page, None, "t", key, None)
    parsed = s3.answer(body).client.list_objects_v2(Bucket="b")
    assert parsed["Contents"][0]["Key"] == key
    assert parsed["CommonPrefixes"][0]["Prefix"] == key
    assert (parsed["Prefix"], parsed["Delimiter"], parsed["StartAfter"]) == (key, key, key)


@given(key=any_key)
def test_url_quote_is_ascii_xml_safe_and_reversible(key):
    quoted = xml.url_quote(key)
    assert quoted.isascii()
    assert xml.escape(quoted) == quoted
    assert unquote_plus(quoted) == key


@given(text=xml_text)
def test_escaped_text_parses_back_to_itself(text):
    root = ET.fromstring(f"<K>{xml.escape(text)}</K>")
    assert (root.text or "") == text


def test_escape_writes_characters_xml_cannot_carry_as_references():
    assert xml.escape("a\x01b\x1fc\x7f") == "a&#x1;b&#x1F;c\x7f"
    assert xml.escape("\r\n\t") == "&#xD;\n\t"
    assert xml.escape("\ufffe") == "&#xFFFE;"
    assert xml.escape("<a href='x'>&amp;</a>") == "&lt;a href='x'&gt;&amp;amp;&lt;/a&gt;"
    plain = "photos/2024/img.jpg"
    assert xml.escape(plain) is plain


def test_url_quote_follows_s3_encoding():
    assert xml.url_quote("a b+c/d*e~f") == "a%20b%2Bc/d*e%7Ef"
    assert xml.url_quote("\x01é") == "%01%C3%A9"
    plain = "photos/2024/img_1.jpg"
    assert xml.url_quote(plain) is plain


# --- request bodies ---------------------------------------------------------------------

CREATE_BUCKET = (
    b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"
)
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<CreateBucketConfiguration><LocationConstraint>&lol3;</LocationConstraint></CreateBucketConfiguration>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<CreateBucketConfiguration><LocationConstraint>&xxe;</LocationConstraint></CreateBucketConfiguration>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<CreateBucketConfiguration/>"""
DTD_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE CreateBucketConfiguration [<!ELEMENT CreateBucketConfiguration ANY>]>
<CreateBucketConfiguration/>"""


def test_parse_strips_namespaces_and_checks_the_root():
    root = xml.parse(CREATE_BUCKET, "CreateBucketConfiguration")
    assert root.tag == "CreateBucketConfiguration"
    assert root.findtext("LocationConstraint") == "eu-west-1"
    with pytest.raises(S3Error) as caught:
        xml.parse(CREATE_BUCKET, "Delete")
    assert caught.value.code == "MalformedXML"


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        PARAMETER_ENTITY,
        DTD_ONLY,
        b"",
        b"not xml",
        b"<CreateBucketConfiguration>",
        b"<CreateBucketConfiguration></Wrong>",
        b'<?xml version="1.0" encoding="no-such-encoding"?><CreateBucketConfiguration/>',
        b"<CreateBucketConfiguration/><CreateBucketConfiguration/>",
        b"\xff\xfe<\x00",
    ],
    ids=[
        "billion-laughs",
        "external-entity",
        "parameter-entity",
        "dtd",
        "empty",
        "text",
        "unclosed",
        "mismatched",
        "unknown-encoding",
        "two-roots",
        "bad-bytes",
    ],
)
def test_hostile_or_broken_bodies_are_malformed_xml(body):
    with pytest.raises(S3Error) as caught:
        xml.parse(body, "CreateBucketConfiguration")
    assert caught.value.code == "MalformedXML"
    assert caught.value.status == 400


def test_parse_create_bucket():
    assert xml.parse_create_bucket(b"") is None
    assert xml.parse_create_bucket(b"  \n") is None
    assert xml.parse_create_bucket(CREATE_BUCKET) == "eu-west-1"
    assert xml.parse_create_bucket(b"<CreateBucketConfiguration/>") is None
    empty = b"<CreateBucketConfiguration><LocationConstraint> </LocationConstraint></CreateBucketConfiguration>"
    assert xml.parse_create_bucket(empty) is None
    with pytest.raises(S3Error):
        xml.parse_create_bucket(BILLION_LAUGHS)


def test_a_remembered_listing_element_follows_its_record_not_its_id():
    """The element of a listed object is remembered by its record dict; another dict (even one
    equal to it, or one later given a freed dict's id) is rendered afresh."""
    record = {"etag": "a" * 32, "size": 1, "mtime": 1_700_000_000_000, "checksums": {}}
    first = xml.list_objects_v2("b", "", "", 1000, False, make_page([("k", record)]), None, None, None, None)
    again = xml.list_objects_v2("b", "", "", 1000, False, make_page([("k", record)]), None, None, None, None)
    assert again == first
    for size in range(2, 50):
        other = dict(record, size=size)
        body = xml.list_objects_v2("b", "", "", 1000, False, make_page([("k", other)]), None, None, None, None)
        assert f"<Size>{size}</Size>".encode() in body
