"""The COPY 64 MiB workload: the CopyObject request it builds, signed as botocore signs it."""

import calendar
import datetime
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from benchmarks.client import RequestBuilder
from benchmarks.load import CopyRequests, PartRequests, PhaseSpec, build_workload
from benchmarks.response import ResponseParser
from benchmarks.sigv4 import Signer, encode_path

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime.datetime(2026, 11, 26, 17, 30, 5)
HOST_PORT = "127.0.0.1:18123"
SOURCE = "c8/large-0 ü+"
COPY_SOURCE = (("x-amz-copy-source", encode_path(f"/bench/{SOURCE}")),)


def builder() -> RequestBuilder:
    return RequestBuilder("127.0.0.1", 18123, Signer(ACCESS_KEY, SECRET_KEY))


def test_copy_signature_matches_botocore():
    path = encode_path("/bench/c8/copy-0")
    _, authorization = Signer(ACCESS_KEY, SECRET_KEY).sign(
        "PUT", path, "", HOST_PORT, now=calendar.timegm(WHEN.timetuple()), headers=COPY_SOURCE
    )
    request = AWSRequest(
        method="PUT", url=f"http://{HOST_PORT}{path}", headers={"Host": HOST_PORT, **dict(COPY_SOURCE)}
    )
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
        S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(request)
    assert "SignedHeaders=host;x-amz-content-sha256;x-amz-copy-source;x-amz-date," in authorization
    assert authorization == request.headers["Authorization"]


def test_copy_workload_puts_nothing_and_names_the_source():
    spec = PhaseSpec("COPY-LARGE", "bench", ["c8/copy-0", "c8/copy-1"], 2, 4, 1.0, b"x" * 10, source=SOURCE)
    workload = build_workload(spec, builder(), 0, 1)
    assert isinstance(workload, CopyRequests)
    head, body = workload.next_request(0)
    lines = head.decode().split("\r\n")
    assert lines[0] == "PUT /bench/c8/copy-0 HTTP/1.1"
    assert f"x-amz-copy-source: {encode_path('/bench/' + SOURCE)}" in lines
    assert "Content-Length: 0" in lines
    assert not body
    assert workload.keep_body


def parsed(raw: bytes) -> ResponseParser:
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=True)
    assert parser.feed(raw)
    return parser


def test_copy_workload_checks_the_result_document():
    workload = CopyRequests(builder(), "bench", ["c8/copy-0"], SOURCE)
    result = b"<CopyObjectResult><ETag>&quot;x&quot;</ETag></CopyObjectResult>"
    workload.next_request(0)
    assert workload.check(0, parsed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(result), result))) is None
    assert workload.done_keys == {"c8/copy-0": None}
    failure = b"<Error><Code>InternalError</Code></Error>"
    workload.next_request(1)
    problem = workload.check(1, parsed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(failure), failure)))
    assert problem.startswith("COPY c8/copy-0: 200 without a CopyObjectResult")
    assert workload.in_flight == {}


def test_part_workload_sends_each_part_once_to_the_open_upload():
    spec = PhaseSpec(
        "PART-LARGE", "bench", ["1", "2", "3"], 2, 3, 1.0, b"p" * 10, source="c8/multipart", upload_id="u1"
    )
    workload = build_workload(spec, builder(), 0, 2)
    assert isinstance(workload, PartRequests)
    heads = []
    while (request := workload.next_request(len(heads))) is not None:
        head, body = request
        assert body == b"p" * 10
        heads.append(head.decode().split("\r\n")[0])
    assert heads == [
        "PUT /bench/c8/multipart?partNumber=1&uploadId=u1 HTTP/1.1",
        "PUT /bench/c8/multipart?partNumber=3&uploadId=u1 HTTP/1.1",
    ]
    assert workload.check(0, parsed(b'HTTP/1.1 200 OK\r\nETag: "e"\r\nContent-Length: 0\r\n\r\n')) is None
    assert list(workload.done_keys) == ["1"]
