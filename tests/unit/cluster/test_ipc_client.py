"""The workers' supervisor clients: answers however they arrive, and a silent supervisor's timeout."""

import asyncio
import socket
import threading
import time

import orjson
import pytest

from nebulaio.cluster.ipc import (
    HEADER,
    LOOP_CONNECTIONS,
    AsyncSupervisorClient,
    SupervisorClient,
    SupervisorUnavailable,
    encode,
)


@pytest.fixture
def listener(tmp_path):
    path = str(tmp_path / "supervisor.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    yield path, server
    server.close()


def serve_once(server: socket.socket, answer: bytes, pieces: int) -> threading.Thread:
    """Accept one connection, read its request and send `answer` in `pieces` sends."""

    def run() -> None:
        conn, _ = server.accept()
        conn.settimeout(10)
        with conn:
            doc_len, blob_len = HEADER.unpack(conn.recv(HEADER.size, socket.MSG_WAITALL))
            conn.recv(doc_len + blob_len, socket.MSG_WAITALL)
            step = max(1, len(answer) // pieces)
            for start in range(0, len(answer), step):
                conn.sendall(answer[start : start + step])
                time.sleep(0.01)
            conn.recv(1)  # until the client hangs up

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def call_from_a_thread(path: str) -> dict:
    client = SupervisorClient(path)
    try:
        return client.call({"type": "status"}, b"request blob", timeout=5.0)
    finally:
        client._drop()


def call_from_a_loop(path: str) -> dict:
    """The loop's client, which keeps its connection for the next call."""

    async def call() -> dict:
        client = AsyncSupervisorClient(path)
        answer = await client.call({"type": "status"}, b"request blob", timeout=5.0)
        assert len(client._idle) == 1 and client._idle[0].transport is not None
        client.close()
        return answer

    return asyncio.run(call())


@pytest.mark.parametrize("call", [call_from_a_thread, call_from_a_loop])
@pytest.mark.parametrize("pieces", [1, 3, 40])
def test_an_answer_in_any_number_of_pieces_is_read_whole(listener, pieces, call):
    path, server = listener
    document = {"status": "ok", "filler": "x" * 100_000}
    thread = serve_once(server, b"".join(encode(document, b"dropped blob")), pieces)
    assert call(path) == document
    thread.join()


def test_a_silent_supervisor_times_out_and_the_connection_is_dropped(listener):
    path, server = listener
    client = SupervisorClient(path)
    started = time.monotonic()
    with pytest.raises(SupervisorUnavailable, match="did not answer in time"):
        client.call({"type": "status"}, timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 5
    assert client._local.conn is None
    # the next call connects anew and takes the next timeout it is given
    server.accept()[0].close()  # the first call's connection, never answered
    thread = serve_once(server, b"".join(encode({"status": "ok"})), 1)
    assert client.call({"type": "status"}, timeout=2.5) == {"status": "ok"}
    assert client._local.timeout == 2.5
    client._drop()
    thread.join()


def test_the_loops_client_answers_a_silent_supervisors_submit_with_service_unavailable(listener):
    """A submit is never sent again after a timeout (it may still commit): its answer is a 503."""
    path, server = listener
    client = AsyncSupervisorClient(path)
    started = time.monotonic()
    answer = asyncio.run(client.submit({"op": "object.delete"}, None, timeout=0.3))
    assert answer == {"status": "ServiceUnavailable", "reason": "the supervisor did not answer in time"}
    assert 0.25 <= time.monotonic() - started < 5
    assert client._idle == []
    conn, _ = server.accept()
    with conn:  # the one request sent, stamped with the id a retry would reuse
        doc_len, _ = HEADER.unpack(conn.recv(HEADER.size, socket.MSG_WAITALL))
        request = orjson.loads(conn.recv(doc_len, socket.MSG_WAITALL))
        assert request["type"] == "submit" and request["command"]["op"] == "object.delete"
        assert request["command"]["request_id"]
    server.settimeout(0.2)
    with pytest.raises(TimeoutError):
        server.accept()


def test_the_loops_client_keeps_at_most_its_limit_of_requests_in_flight(tmp_path):
    path = str(tmp_path / "supervisor.sock")
    connections = 0

    async def answer_slowly(reader, writer) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                doc_len, blob_len = HEADER.unpack(await reader.readexactly(HEADER.size))
                await reader.readexactly(doc_len + blob_len)
                await asyncio.sleep(0.05)
                writer.writelines(encode({"status": "ok"}))
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    async def run() -> list[dict]:
        server = await asyncio.start_unix_server(answer_slowly, path=path)
        client = AsyncSupervisorClient(path)
        try:
            return await asyncio.gather(*(client.call({"type": "status"}) for _ in range(2 * LOOP_CONNECTIONS)))
        finally:
            client.close()
            server.close()

    assert asyncio.run(run()) == [{"status": "ok"}] * (2 * LOOP_CONNECTIONS)
    assert connections == LOOP_CONNECTIONS
