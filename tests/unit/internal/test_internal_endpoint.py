"""The internal endpoint in process: signed calls store, read, assemble and remove files, and
no address or range a caller sends reaches outside objects/; a voter's own removal is carried
out for it; images of the metadata replica are written, read in ranges and removed."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import quote

import pytest
from falcon import testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nebulaio.cluster.peers import IMAGES_PATH, PING_PATH, REPLICA_PATH, file_path, node_path
from nebulaio.cluster.signing import (
    CONTENT_HASH_HEADER,
    HASH_WANTED_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    ReplayCache,
    answer_is_signed,
    sign,
)
from nebulaio.engine.errors import S3Error
from nebulaio.internal.app import create
from nebulaio.meta import Applier, ImageShelf, open_env
from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore, key_hash
from nebulaio.util.purposekeys import PEER_SIGNING, KeyRing

KEYS = KeyRing.of(["unit secret"], PEER_SIGNING)
ADDRESS = "127.0.0.1:9005"
"""The endpoint's node's advertised inter-node address."""
VID = "18ebb39263b32ea6df44248757614166"


@pytest.fixture
def endpoint(tmp_path):
    layout = DataLayout(str(tmp_path / "data"))
    layout.create()
    store = ObjectStore(layout)
    return store, testing.TestClient(create(store, KEYS, replays(tmp_path), ADDRESS))


def replays(tmp_path) -> ReplayCache:
    """The nonces seen, kept beside the data directory (whose files the tests compare)."""
    return ReplayCache(str(tmp_path / "peer-nonces.sqlite"))


def signed(method: str, path: str, body: bytes | None = None, **headers) -> dict:
    """Signed headers; a body to store goes with its SHA-256."""
    content_hash = "" if body is None else hashlib.sha256(body).hexdigest()
    return dict(sign(KEYS.current, method, path, "node1", time.time(), ADDRESS, content_hash), **headers)


def everything_under(root: str) -> set[str]:
    return {os.path.join(top, name) for top, _, names in os.walk(root) for name in names}


def test_store_read_assemble_and_remove(endpoint):
    store, client = endpoint
    hashed = key_hash("key")
    parts = []
    for number, body in enumerate((b"first ", b"second"), start=1):
        part = f"{VID}.{number}.{'0' * 15}{number}"
        path = file_path("bucket", hashed, part)
        assert client.simulate_put(path, body=body, headers=signed("PUT", path, body)).status_code == 200
        parts.append([part, len(body)])
    path = "/internal/v1/assemble/bucket/" + hashed + "/" + VID
    answer = client.simulate_post(path, json={"parts": parts}, headers=signed("POST", path))
    assert answer.status_code == 200
    path = file_path("bucket", hashed, VID)
    answer = client.simulate_get(path, headers=signed("GET", path, range="bytes=3-8"))
    assert (answer.status_code, answer.content) == (206, b"st sec")
    assert client.simulate_get(path, headers=signed("GET", path, range="bytes=3-12")).status_code == 416
    assert client.simulate_delete(path, headers=signed("DELETE", path)).status_code == 204
    assert client.simulate_get(path, headers=signed("GET", path)).status_code == 404


def test_an_assembly_missing_a_part_builds_nothing(endpoint):
    store, client = endpoint
    path = "/internal/v1/assemble/bucket/" + key_hash("key") + "/" + VID
    answer = client.simulate_post(path, json={"parts": [[f"{VID}.1.{'0' * 16}", 5]]}, headers=signed("POST", path))
    assert answer.status_code == 404
    assert not everything_under(store.layout.objects_dir) and not os.listdir(store.layout.temp_dir)


def test_an_unsigned_store_writes_nothing(endpoint):
    store, client = endpoint
    path = file_path("bucket", key_hash("key"), VID)
    assert client.simulate_put(path, body=b"x").status_code == 403
    assert client.simulate_put(path, body=b"x", headers=signed("PUT", path + "x", b"x")).status_code == 403
    assert not everything_under(store.layout.objects_dir) and not os.listdir(store.layout.temp_dir)


def test_a_replayed_call_is_refused(endpoint):
    store, client = endpoint
    path = file_path("bucket", key_hash("key"), VID)
    headers = signed("PUT", path, b"first")
    assert client.simulate_put(path, body=b"first", headers=headers).status_code == 200
    client.simulate_delete(path, headers=signed("DELETE", path))
    answer = client.simulate_put(path, body=b"first", headers=headers)
    assert answer.status_code == 403 and "replay" in answer.json["title"]
    assert not everything_under(store.layout.objects_dir)


def test_a_read_asked_for_its_hash_carries_the_whole_files_hash_signed_with_the_nonce(endpoint):
    store, client = endpoint
    path = file_path("bucket", key_hash("key"), VID)
    body = os.urandom(3 * 1024 * 1024 + 5)
    assert client.simulate_put(path, body=body, headers=signed("PUT", path, body)).status_code == 200
    headers = signed("GET", path, range="bytes=10-19", **{HASH_WANTED_HEADER: "sha256"})
    answer = client.simulate_get(path, headers=headers)
    assert (answer.status_code, answer.content) == (206, body[10:20])
    content_hash = answer.headers[CONTENT_HASH_HEADER]
    assert content_hash == hashlib.sha256(body).hexdigest()
    given = answer.headers[SIGNATURE_HEADER]
    assert answer_is_signed(KEYS.keys, headers[NONCE_HEADER], content_hash, given)
    assert not answer_is_signed(KEYS.keys, "0" * 32, content_hash, given)
    # Unasked, a read costs no hashing.
    assert CONTENT_HASH_HEADER not in client.simulate_get(path, headers=signed("GET", path)).headers


def test_a_call_signed_for_another_node_is_refused(endpoint):
    store, client = endpoint
    path = file_path("bucket", key_hash("key"), VID)
    for_another = dict(sign(KEYS.current, "PUT", path, "node1", time.time(), "127.0.0.1:9105", "0" * 64))
    answer = client.simulate_put(path, body=b"x", headers=for_another)
    assert answer.status_code == 403 and "another node" in answer.json["title"]
    assert not everything_under(store.layout.objects_dir)


def test_a_body_that_does_not_match_its_hash_leaves_nothing(endpoint):
    store, client = endpoint
    path = file_path("bucket", key_hash("key"), VID)
    answer = client.simulate_put(path, body=b"tampered", headers=signed("PUT", path, b"original"))
    assert answer.status_code == 400
    # Without a hash nothing is stored either.
    assert client.simulate_put(path, body=b"x", headers=signed("PUT", path)).status_code == 400
    assert not everything_under(store.layout.objects_dir) and not os.listdir(store.layout.temp_dir)


def test_a_ping_answers_only_when_signed(endpoint):
    _, client = endpoint
    assert client.simulate_get(PING_PATH, headers=signed("GET", PING_PATH)).status_code == 204
    assert client.simulate_get(PING_PATH).status_code == 403


segment = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=40)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(segment, segment, segment, st.text(max_size=30))
@example("bucket", key_hash("key"), VID, "bytes=0-0")
@example("..", key_hash("key"), VID, "bytes=0-0")
@example("bucket", "..", "..", "")
def test_no_signed_address_or_range_reaches_outside_objects(endpoint, bucket, hashed, name, byte_range):
    store, client = endpoint
    sent = "/internal/v1/files/" + "/".join(quote(part, safe="") for part in (bucket, hashed, name))
    path = "/internal/v1/files/" + "/".join((bucket, hashed, name))  # as the endpoint sees it, decoded
    root = store.layout.root
    before = everything_under(root)
    answer = client.simulate_put(sent, body=b"x", headers=signed("PUT", path, b"x"))
    written = everything_under(root) - before
    assert answer.status_code in (200, 400, 404)
    assert all(found.startswith(store.layout.objects_dir + os.sep) for found in written), written
    for found in written:
        os.unlink(found)
    read = client.simulate_get(sent, headers=signed("GET", path, range=byte_range))
    assert read.status_code in (200, 206, 400, 404, 416)


class RecordedMembers:
    """Members as the endpoint uses them: registered nodes, and the removals asked for."""

    def __init__(self, nodes: dict[str, dict], refusal: S3Error | None = None):
        self.nodes = nodes
        self.refusal = refusal
        self.removed: list[dict] = []

    def registered(self, node_id: str) -> dict | None:
        return self.nodes.get(node_id)

    def remove(self, node: dict) -> None:
        if self.refusal is not None:
            raise self.refusal
        self.removed.append(node)


def removal_endpoint(tmp_path, members: RecordedMembers) -> testing.TestClient:
    layout = DataLayout(str(tmp_path / "data"))
    layout.create()
    return testing.TestClient(create(ObjectStore(layout), KEYS, replays(tmp_path), ADDRESS, members))


def test_a_removal_is_carried_out_for_any_node_id_and_only_when_signed(tmp_path):
    node = {"id": "rack 1/node ö", "role": "hybrid", "raft": "10.0.0.1:9003"}
    members = RecordedMembers({node["id"]: node})
    client = removal_endpoint(tmp_path, members)
    path = node_path(node["id"])
    assert client.simulate_delete(path).status_code == 403
    assert client.simulate_delete(path, headers=signed("DELETE", path)).status_code == 204
    assert members.removed == [node]
    unknown = node_path("node9")
    assert client.simulate_delete(unknown, headers=signed("DELETE", unknown)).status_code == 404
    for bad in ("/internal/v1/nodes/abc", "/internal/v1/nodes/zz", "/internal/v1/nodes/ff"):
        assert client.simulate_delete(bad, headers=signed("DELETE", bad)).status_code == 400
    assert members.removed == [node]


def test_a_refused_removal_answers_the_refusal(tmp_path):
    node = {"id": "node1", "role": "hybrid", "raft": "10.0.0.1:9003"}
    refusal = S3Error("OperationAborted", "another membership change is in progress")
    client = removal_endpoint(tmp_path, RecordedMembers({"node1": node}, refusal))
    path = node_path("node1")
    answer = client.simulate_delete(path, headers=signed("DELETE", path))
    assert answer.status_code == 409
    assert answer.json["description"] == "another membership change is in progress"


@pytest.fixture
def images_endpoint(tmp_path):
    layout = DataLayout(str(tmp_path / "data"))
    layout.create()
    env = open_env(layout.kv_dir, readonly=False)
    Applier(env, release=lambda *_: None).apply_batch(7, [])
    shelf = ImageShelf(env, layout.images_dir)
    yield layout, testing.TestClient(create(ObjectStore(layout), KEYS, replays(tmp_path), ADDRESS, images=shelf))
    env.close()


def test_an_image_of_the_replica_is_written_read_in_ranges_and_removed(images_endpoint):
    layout, client = images_endpoint
    path = REPLICA_PATH + "7"
    answer = client.simulate_post(path, headers=signed("POST", path))
    assert answer.status_code == 201
    image = answer.json
    assert image["index"] == 7 and image["size"] > 0
    path = IMAGES_PATH + image["id"]
    whole = client.simulate_get(path, headers=signed("GET", path)).content
    assert len(whole) == image["size"]
    piece = client.simulate_get(path, headers=signed("GET", path, range=f"bytes=100-{image['size'] - 1}"))
    assert (piece.status_code, piece.content) == (206, whole[100:])
    assert client.simulate_delete(path, headers=signed("DELETE", path)).status_code == 204
    assert client.simulate_get(path, headers=signed("GET", path)).status_code == 404
    assert os.listdir(layout.images_dir) == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", REPLICA_PATH + "8", 409),  # this replica applied index 7 only
        ("POST", REPLICA_PATH + "-1", 400),
        ("POST", REPLICA_PATH + "1" * 20, 400),
        ("GET", IMAGES_PATH + "..", 400),
        ("GET", IMAGES_PATH + "0" * 32, 404),
        ("DELETE", IMAGES_PATH + "x" * 32, 400),
    ],
)
def test_a_bad_image_request_is_refused_and_writes_nothing(images_endpoint, method, path, status):
    layout, client = images_endpoint
    assert client.simulate_request(method, path, headers=signed(method, path)).status_code == status
    assert client.simulate_request(method, path).status_code == 403
    assert os.listdir(layout.images_dir) == []
