"""The benchmark client: its signatures match botocore's, its parser reads what servers send."""

import calendar
import datetime
import socketserver
import threading
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from benchmarks.client import RequestBuilder
from benchmarks.load import Endpoint, ListPages, PhaseSpec, run_phase
from benchmarks.peers import HOST, free_ports
from benchmarks.response import ResponseError, ResponseParser
from benchmarks.sigv4 import Signer, canonical_query, encode_path

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime.datetime(2026, 11, 26, 17, 30, 5)
HOST_PORT = "127.0.0.1:18123"


def botocore_authorization(method: str, path: str, query: str) -> str:
    url = f"http://{HOST_PORT}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, headers={"Host": HOST_PORT})
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    signer = S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1")
    # botocore reads the clock itself; pin it to the moment our signer is given.
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
        signer.add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    return request.headers["Authorization"]


@pytest.mark.parametrize(
    ("method", "key", "params"),
    [
        ("GET", "c8/obj-0000001", {}),
        ("PUT", "c8/obj-0000001", {}),
        ("HEAD", "a key with spaces+plus=equals", {}),
        ("DELETE", "ünïcode/ключ", {}),
        ("GET", "", {"list-type": "2", "max-keys": "1000"}),
        ("GET", "", {"list-type": "2", "max-keys": "1000", "continuation-token": "a/b+c=="}),
    ],
)
def test_signature_matches_botocore(method, key, params):
    path = encode_path(f"/bench/{key}" if key else "/bench")
    query = canonical_query(params)
    amz_date, authorization = Signer(ACCESS_KEY, SECRET_KEY).sign(
        method, path, query, HOST_PORT, now=calendar.timegm(WHEN.timetuple())
    )
    assert amz_date == "20261126T173005Z"
    assert authorization == botocore_authorization(method, path, query)


def test_signing_key_is_derived_once_a_day():
    signer = Signer(ACCESS_KEY, SECRET_KEY)
    morning = calendar.timegm(WHEN.timetuple())
    signer.sign("GET", "/b/k", "", HOST_PORT, now=morning)
    key = signer._signing_key
    signer.sign("GET", "/b/k", "", HOST_PORT, now=morning + 3600)
    assert signer._signing_key is key
    signer.sign("GET", "/b/k", "", HOST_PORT, now=morning + 86400)
    assert signer._signing_key is not key


def test_request_head_carries_the_signed_headers():
    head = RequestBuilder("127.0.0.1", 18123, Signer(ACCESS_KEY, SECRET_KEY)).head("PUT", "/bench/k", "", 4096)
    lines = head.decode().split("\r\n")
    assert lines[0] == "PUT /bench/k HTTP/1.1"
    assert f"Host: {HOST_PORT}" in lines
    assert "x-amz-content-sha256: UNSIGNED-PAYLOAD" in lines
    assert "Content-Length: 4096" in lines
    assert any(line.startswith("Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") for line in lines)
    assert head.endswith(b"\r\n\r\n")


def feed_all(parser: ResponseParser, data: bytes, step: int) -> bool:
    done = False
    for start in range(0, len(data), step):
        assert not done, "response completed before its last byte"
        done = parser.feed(data[start : start + step])
    return done


LENGTH_RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "x"\r\n\r\nhello'
CHUNKED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize(("raw", "body"), [(LENGTH_RESPONSE, b"hello"), (CHUNKED_RESPONSE, b"hello, world")])
def test_parser_reads_bodies_split_anywhere(raw, body, step):
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=True)
    assert feed_all(parser, raw, step)
    assert (parser.status, parser.body, parser.body_length, parser.keep_alive) == (200, body, len(body), True)


def test_parser_counts_but_does_not_keep_a_body_unless_asked():
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=False)
    assert parser.feed(LENGTH_RESPONSE)
    assert parser.body_length == 5 and parser.body == b""


def test_parser_keeps_error_documents():
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=False)
    assert parser.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n<Error/>\n")
    assert parser.status == 404 and parser.body == b"<Error/>\n"


def test_parser_head_and_204_have_no_body():
    parser = ResponseParser()
    parser.begin(head_only=True, keep_body=False)
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n")
    assert parser.body_length == 0
    parser.begin(head_only=False, keep_body=False)
    assert parser.feed(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert parser.status == 204


def test_parser_skips_interim_responses_and_keeps_the_next_response():
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=True)
    assert parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n" + LENGTH_RESPONSE + b"HTTP/1.1 204 No")
    assert parser.status == 200 and parser.body == b"hello"
    parser.begin(head_only=False, keep_body=True)
    assert parser.feed(b" Content\r\n\r\n")
    assert parser.status == 204


def test_parser_connection_close_and_body_until_eof():
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=True)
    assert parser.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    assert not parser.keep_alive
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=True)
    assert not parser.feed(b"HTTP/1.0 200 OK\r\n\r\nuntil")
    assert not parser.feed(b" the end")
    assert parser.feed_eof()
    assert parser.body == b"until the end" and not parser.keep_alive


def test_parser_truncated_body_is_not_complete_at_eof():
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=False)
    assert not parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
    assert not parser.feed_eof()


def test_parser_discard_counts_body_bytes_without_feeding_them():
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=False)
    assert not parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    assert parser.discard(4) == 4 and not parser.complete
    assert parser.discard(100) == 6 and parser.complete
    assert parser.body_length == 10


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_parser_rejects_garbage(raw):
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=False)
    with pytest.raises(ResponseError):
        parser.feed(raw)


def parsed(status: int, body: bytes) -> ResponseParser:
    parser = ResponseParser()
    parser.begin(head_only=False, keep_body=True)
    assert parser.feed(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return parser


def test_list_walks_follow_continuation_tokens_and_must_see_every_key():
    pages = ListPages(RequestBuilder("127.0.0.1", 18123, Signer(ACCESS_KEY, SECRET_KEY)), "bench", 3, 2)
    first_line = pages.next_request(0)[0].split(b"\r\n")[0]
    assert first_line == b"GET /bench?list-type=2&max-keys=2 HTTP/1.1"
    first_page = b"<Key>a</Key><Key>b</Key><NextContinuationToken>t/1=</NextContinuationToken>"
    assert pages.check(0, parsed(200, first_page)) is None
    assert b"continuation-token=t%2F1%3D&list-type=2" in pages.next_request(0)[0]
    assert pages.check(0, parsed(200, b"<Key>c</Key>")) is None
    assert b"continuation-token" not in pages.next_request(0)[0]
    assert pages.check(0, parsed(200, b"<Key>a</Key>")) == "LIST: a walk saw 1 keys, expected 3"
    assert pages.check(0, parsed(503, b"<Error>SlowDown</Error>")).startswith("LIST: 503")


class TinyObjectServer(socketserver.ThreadingTCPServer):
    """Keeps objects in a dict; answers keep-alive HTTP/1.1 like a trivial S3."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int):
        self.objects: dict[str, bytes] = {}
        super().__init__((HOST, port), TinyObjectHandler)


class TinyObjectHandler(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            request_line = self.rfile.readline()
            if not request_line:
                return
            method, target, _ = request_line.decode().split(" ")
            length = 0
            while (line := self.rfile.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = self.rfile.read(length)
            objects = self.server.objects
            status, data = "200 OK", b""
            if method == "PUT":
                objects[target] = body
            elif target not in objects:
                status, data = "404 Not Found", b"NoSuchKey\n"
            elif method == "DELETE":
                del objects[target]
                status = "204 No Content"
            else:
                data = objects[target]
            head = f"HTTP/1.1 {status}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            self.wfile.write(head if method == "HEAD" or status.startswith("204") else head + data)


@pytest.fixture
def tiny_server():
    server = TinyObjectServer(free_ports(1)[0])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_phases_count_every_response_and_every_error(tiny_server):
    endpoint = Endpoint(HOST, tiny_server.server_address[1], ACCESS_KEY, SECRET_KEY)
    keys = [f"k{index}" for index in range(40)]
    payload = b"p" * 4096

    put = run_phase(endpoint, PhaseSpec("PUT", "bench", keys, 4, 40, 30, payload), 2, None)
    assert (put.ok, put.errors, sorted(put.done_keys)) == (40, 0, sorted(keys))

    get = run_phase(endpoint, PhaseSpec("GET", "bench", keys, 4, 100, 30, payload), 2, None)
    assert (get.ok, get.errors, get.unit) == (100, 0, "ops/s")
    assert get.p50_ms <= get.p99_ms and get.client_cpu_us > 0

    wrong_size = run_phase(endpoint, PhaseSpec("GET", "bench", keys, 2, 10, 30, b"p" * 10), 2, None)
    assert (wrong_size.ok, wrong_size.errors) == (0, 10)
    assert "4096 bytes, expected 10" in wrong_size.error_samples[0]

    delete = run_phase(endpoint, PhaseSpec("DELETE", "bench", keys, 4, 40, 30), 2, None)
    assert (delete.ok, delete.errors) == (40, 0)

    missing = run_phase(endpoint, PhaseSpec("HEAD", "bench", keys[:3], 1, 3, 30), 1, None)
    assert (missing.ok, missing.errors) == (0, 3)
    assert all(sample.startswith("HEAD k") and ": 404 " in sample for sample in missing.error_samples)


def test_a_target_that_is_down_is_reported_not_hidden():
    endpoint = Endpoint(HOST, free_ports(1)[0], ACCESS_KEY, SECRET_KEY)
    result = run_phase(endpoint, PhaseSpec("GET", "bench", ["k"], 4, 10, 5, b"x"), 2, None)
    assert result.ok == 0 and result.errors == 2
    assert all("worker failed" in sample for sample in result.error_samples)
