"""The node's HTTP worker over raw sockets: what no client library shows (interim answers,
pipelining, chunked bodies, half-closed connections)."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time

import psutil
import pytest

from nebulaio.httpworker import BALANCE_SLACK, SENDFILE_CHUNK
from tests.integration.conftest import sign_v4, strace_works, traced_sendfile, wait_for

ANSWER_TIMEOUT = 20.0


def head_for(node, method: str, target: str, headers: dict, payload_hash: str = "UNSIGNED-PAYLOAD", **sign) -> bytes:
    signature = sign_v4(method, f"127.0.0.1:{node.ports['s3']}", target, {}, payload_hash, **sign)
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in {**signature.headers, **headers}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_response(conn: socket.socket, buffered: bytearray) -> tuple[int, dict, bytes]:
    """One response from `conn` (Content-Length framed), leaving what follows in `buffered`."""
    while b"\r\n\r\n" not in buffered:
        chunk = conn.recv(65536)
        if not chunk:
            raise AssertionError(f"the connection closed before a response head: {bytes(buffered)!r}")
        buffered += chunk
    head, _, rest = bytes(buffered).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise AssertionError("the connection closed inside a response body")
        rest += chunk
    buffered[:] = rest[length:]
    return int(status_line.split()[1]), headers, rest[:length]


def connect(node) -> socket.socket:
    return socket.create_connection(("127.0.0.1", node.ports["s3"]), timeout=ANSWER_TIMEOUT)


def test_a_refused_upload_is_refused_before_its_body_is_sent(node, s3, bucket):
    head = head_for(
        node,
        "PUT",
        f"/{bucket}/refused",
        {"Content-Length": "1048576", "Expect": "100-continue"},
        secret_key="not-the-secret",
    )
    with connect(node) as conn:
        conn.sendall(head)
        status, headers, body = read_response(conn, bytearray())
    assert status == 403, body  # a final answer, no 100 Continue before it
    assert b"SignatureDoesNotMatch" in body
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_an_accepted_upload_is_invited_then_stored(node, s3, bucket):
    data = b"x" * 300_000
    head = head_for(
        node,
        "PUT",
        f"/{bucket}/invited",
        {"Content-Length": str(len(data)), "Expect": "100-continue"},
        hashlib.sha256(data).hexdigest(),
    )
    with connect(node) as conn:
        conn.sendall(head)
        buffered = bytearray()
        while b"\r\n\r\n" not in buffered:
            buffered += conn.recv(65536)
        assert bytes(buffered).startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), bytes(buffered)
        del buffered[: len(b"HTTP/1.1 100 Continue\r\n\r\n")]
        conn.sendall(data)
        status, _, body = read_response(conn, buffered)
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="invited")["Body"].read() == data


def test_pipelined_requests_are_answered_in_order(node, s3, bucket):
    for index in range(3):
        s3.put_object(Bucket=bucket, Key=f"k{index}", Body=f"value {index}".encode())
    heads = b"".join(head_for(node, "GET", f"/{bucket}/k{index}", {}) for index in range(3))
    with connect(node) as conn:
        conn.sendall(heads)
        buffered = bytearray()
        answers = [read_response(conn, buffered) for _ in range(3)]
    assert [(status, body) for status, _, body in answers] == [(200, f"value {index}".encode()) for index in range(3)]


def test_a_header_value_with_a_line_break_is_never_sent(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k", "ResponseContentDisposition": "a\r\nX-Injected: yes"}
    )
    target = url.split(str(node.ports["s3"]), 1)[1]
    with connect(node) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{node.ports['s3']}\r\n\r\n".encode())
        status, headers, body = read_response(conn, bytearray())
    assert status >= 400, (status, headers)
    assert "x-injected" not in headers


def test_a_chunked_upload_is_stored_and_the_connection_kept(node, s3, bucket):
    parts = [b"a" * 70_000, b"b" * 5, b"c" * 131_072]
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\nX-Trailer: t\r\n\r\n"
    head = head_for(node, "PUT", f"/{bucket}/chunked", {"Transfer-Encoding": "chunked"})
    with connect(node) as conn:
        conn.sendall(head)
        for offset in range(0, len(framed), 7_001):  # frames split at arbitrary points
            conn.sendall(framed[offset : offset + 7_001])
        buffered = bytearray()
        status, _, body = read_response(conn, buffered)
        assert status == 200, body
        conn.sendall(head_for(node, "GET", f"/{bucket}/chunked", {}))
        status, _, body = read_response(conn, buffered)
    assert status == 200
    assert body == b"".join(parts)


def test_a_client_that_half_closes_still_gets_its_answer(node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="half", Body=b"half-closed")
    with connect(node) as conn:
        conn.sendall(head_for(node, "GET", f"/{bucket}/half", {}))
        conn.shutdown(socket.SHUT_WR)
        status, _, body = read_response(conn, bytearray())
    assert (status, body) == (200, b"half-closed")


def test_a_large_object_and_a_range_of_it_arrive_whole(node, s3, bucket):
    data = bytes(range(256)) * 8192  # 2 MiB: above the size sent with its head in one write
    s3.put_object(Bucket=bucket, Key="large", Body=data)
    with connect(node) as conn:
        buffered = bytearray()
        conn.sendall(head_for(node, "GET", f"/{bucket}/large", {}))
        status, _, body = read_response(conn, buffered)
        assert (status, body == data) == (200, True)
        conn.sendall(head_for(node, "GET", f"/{bucket}/large", {"Range": "bytes=1000000-1999999"}))
        status, _, body = read_response(conn, buffered)
    assert (status, body == data[1_000_000:2_000_000]) == (206, True)


@pytest.mark.skipif(not strace_works(), reason="strace missing, or not allowed to trace here")
def test_a_large_object_leaves_corked_in_bounded_sendfile_calls(node_factory, tmp_path):
    """No sendfile call sends more than SENDFILE_CHUNK: one lasts as long as the client keeps
    reading, and the worker's loop serves none of its other connections meanwhile. The socket
    is corked around them, so that the body leaves in full segments."""
    node = node_factory(args=["--workers", "1"])
    client = node.client()
    client.create_bucket(Bucket="sendfile-chunks")
    data = os.urandom(2 * SENDFILE_CHUNK + 12345)
    client.put_object(Bucket="sendfile-chunks", Key="large", Body=data)
    start, end = SENDFILE_CHUNK - 1000, 2 * SENDFILE_CHUNK + 999  # across a chunk's end, unaligned
    with traced_sendfile(node, tmp_path / "sendfile.log", also="setsockopt") as calls:
        assert client.get_object(Bucket="sendfile-chunks", Key="large")["Body"].read() == data
        ranged = client.get_object(Bucket="sendfile-chunks", Key="large", Range=f"bytes={start}-{end}")
        assert ranged["Body"].read() == data[start : end + 1]
    sends = [line for line in calls if "sendfile(" in line]
    asked = [int(match.group(1)) for line in sends if (match := re.search(r", (\d+)(?:\)| <unfinished)", line))]
    assert len(asked) >= 4 and max(asked) <= SENDFILE_CHUNK, sends
    corks = ["[1]" in line for line in calls if "TCP_CORK" in line]
    assert corks == [True, False, True, False], calls
    # Each GET: corked, then its sendfile calls, then uncorked; no call outside such a window.
    cork_lines = [position for position, line in enumerate(calls) if "TCP_CORK" in line]
    windows = list(zip(cork_lines[::2], cork_lines[1::2], strict=True))
    send_lines = [position for position, line in enumerate(calls) if "sendfile(" in line]
    assert all(any(on < send < off for on, off in windows) for send in send_lines), calls
    assert all(any(on < send < off for send in send_lines) for on, off in windows), calls


def test_connections_spread_evenly_over_the_workers(node_factory):
    """32 clients connecting at once: every worker holds about a quarter of them.

    asyncio's own server took every connection waiting when its worker woke, and one worker
    could hold most of a load's connections while another held none."""
    workers = 4
    node = node_factory(extra_env={"NEBULAIO_WORKERS": str(workers)})

    def worker_processes() -> list[psutil.Process]:
        children = psutil.Process(node.process.pid).children(recursive=True)
        return [child for child in children if " ".join(child.cmdline()).startswith("nebulaio http worker ")]

    wait_for(lambda: len(worker_processes()) == workers, 60, f"{workers} booted HTTP workers")
    clients = [connect(node) for _ in range(32)]
    try:
        for conn in clients:
            conn.sendall(head_for(node, "GET", "/", {}))
        for conn in clients:
            assert read_response(conn, bytearray())[0] == 200
        held = [
            sum(1 for link in worker.net_connections("tcp") if link.status == psutil.CONN_ESTABLISHED)
            for worker in worker_processes()
        ]
        assert sum(held) == len(clients), held
        # A worker takes a connection only while it holds at most BALANCE_SLACK more than the
        # least loaded one (or after the others left it waiting a while): one more than that
        # covers a rare deferral running out on a busy machine.
        assert max(held) - min(held) <= BALANCE_SLACK + 2, held
    finally:
        for conn in clients:
            conn.close()


def test_small_writes_commit_while_the_only_request_thread_waits_on_an_upload(node_factory):
    """A PUT whose body the log carries and a DELETE commit from the worker's event loop: they
    are answered while an upload whose body is still coming holds the worker's only thread."""
    node = node_factory(extra_env={"NEBULAIO_WORKERS": "1", "NEBULAIO_THREADS": "1"})
    client = node.client()
    client.create_bucket(Bucket="loop-writes")
    body = os.urandom(256 * 1024)
    small = os.urandom(4096)
    slow, quick = connect(node), connect(node)
    try:
        slow.sendall(head_for(node, "PUT", "/loop-writes/slow", {"Content-Length": str(len(body))}) + body[:1000])
        # A HEAD answered on the other connection shows the worker has read the slow head,
        # and handed the upload to its thread.
        quick.sendall(head_for(node, "HEAD", "/loop-writes", {}))
        assert read_response(quick, bytearray())[0] == 200
        quick.sendall(head_for(node, "PUT", "/loop-writes/small", {"Content-Length": str(len(small))}) + small)
        status, headers, _ = read_response(quick, bytearray())
        assert (status, headers["etag"]) == (200, f'"{hashlib.md5(small).hexdigest()}"')
        quick.sendall(head_for(node, "DELETE", "/loop-writes/small", {}))
        assert read_response(quick, bytearray())[0] == 204
        # boto3 asks for 100 Continue before every PutObject body: held back until the request
        # is authorized, it is read on the loop too.
        impatient = node.client(retries={"max_attempts": 1}, read_timeout=10)
        written = impatient.put_object(Bucket="loop-writes", Key="boto", Body=small)
        assert written["ETag"] == f'"{hashlib.md5(small).hexdigest()}"'
        impatient.delete_object(Bucket="loop-writes", Key="boto")
        slow.sendall(body[1000:])
        assert read_response(slow, bytearray())[0] == 200
    finally:
        slow.close()
        quick.close()
    assert [item["Key"] for item in client.list_objects_v2(Bucket="loop-writes")["Contents"]] == ["slow"]
    stored = client.get_object(Bucket="loop-writes", Key="slow")["Body"].read()
    assert hashlib.md5(stored).digest() == hashlib.md5(body).digest()


def test_a_held_body_that_stops_coming_times_out(node_factory):
    """A small body held back for 100 Continue is read on the loop: a client that goes silent
    once invited gets RequestTimeout after the node's request timeout, as on a thread."""
    node = node_factory(extra_env={"NEBULAIO_REQUEST_TIMEOUT": "2"})
    client = node.client()
    client.create_bucket(Bucket="held-slow")
    conn = connect(node)
    try:
        conn.sendall(head_for(node, "PUT", "/held-slow/slow", {"Content-Length": "1000", "Expect": "100-continue"}))
        buffered = bytearray()
        assert read_response(conn, buffered)[0] == 100
        conn.sendall(b"0123456789")
        started = time.monotonic()
        status, _, body = read_response(conn, buffered)
        assert (status, b"<Code>RequestTimeout</Code>" in body) == (400, True), body
        assert time.monotonic() - started < 2 * 1.75
    finally:
        conn.close()
    assert client.list_objects_v2(Bucket="held-slow")["KeyCount"] == 0


def test_a_released_large_file_is_freed_in_steps_unless_a_reader_holds_it(node_factory, tmp_path):
    """Deleting a large object frees its file 16 MiB at a time; a GET that opened the file
    before the delete still receives every byte, for the file is left whole while it is open."""
    if not strace_works():
        pytest.skip("strace cannot trace here")
    node = node_factory(args=["--workers", "1"])
    client = node.client()
    client.create_bucket(Bucket="freeing")
    data = os.urandom(40 * 1024 * 1024)
    client.put_object(Bucket="freeing", Key="read", Body=data)
    client.put_object(Bucket="freeing", Key="idle", Body=data)
    log = tmp_path / "freeing.log"
    with traced_sendfile(node, log, also="fcntl,ftruncate") as calls:
        reading = client.get_object(Bucket="freeing", Key="read")["Body"]
        first = reading.read(1024 * 1024)
        client.delete_object(Bucket="freeing", Key="read")
        client.delete_object(Bucket="freeing", Key="idle")
        # Both releases have asked for their lease, and the idle file's last step is done.
        wait_for(lambda: log.read_text().count("ftruncate(") == 2, 30, "the idle file freed in steps")
        rest = reading.read()
    assert hashlib.md5(first + rest).digest() == hashlib.md5(data).digest()
    leases = [line for line in calls if "F_SETLEASE, F_WRLCK" in line]
    assert len(leases) == 2 and "EAGAIN" in leases[0] and leases[1].rstrip().endswith("= 0"), leases
    steps = [int(re.search(r", (\d+)\) = 0", line).group(1)) for line in calls if "ftruncate(" in line]
    assert steps == [24 * 1024 * 1024, 8 * 1024 * 1024], calls
