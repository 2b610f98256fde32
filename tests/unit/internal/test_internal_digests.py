"""The internal endpoint checks stored files against their recorded digests: a read naming one
is refused (409) by a holder whose copy differs, and an assembly refuses a damaged part; both
report the damage to the node's scrub."""

from __future__ import annotations

import os

import xxhash
from falcon import testing
from test_internal_endpoint import ADDRESS, KEYS, VID, everything_under, replays, signed

from nebulaio.cluster.peers import EXPECTED_DIGEST_HEADER, file_path
from nebulaio.internal.app import create
from nebulaio.storage.integrity import HASH_FIELD, FileChecks
from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore, key_hash


def endpoint(tmp_path):
    layout = DataLayout(str(tmp_path / "data"))
    layout.create()
    store = ObjectStore(layout)
    reports: list[dict] = []
    checks = FileChecks(0, reports.append)
    return store, testing.TestClient(create(store, KEYS, replays(tmp_path), ADDRESS, checks=checks)), reports


def put(client, name: str, body: bytes) -> None:
    path = file_path("bucket", key_hash("key"), name)
    assert client.simulate_put(path, body=body, headers=signed("PUT", path, body)).status_code == 200


def damage(store: ObjectStore, name: str) -> None:
    with open(os.path.join(store.file_dir("bucket", key_hash("key")), name), "r+b") as file:
        file.write(b"?")


def test_a_read_naming_the_recorded_digest_is_refused_by_a_damaged_copy(tmp_path):
    store, client, reports = endpoint(tmp_path)
    body = os.urandom(4096)
    put(client, VID, body)
    path = file_path("bucket", key_hash("key"), VID)
    expected = xxhash.xxh3_64_hexdigest(body)
    answer = client.simulate_get(path, headers=signed("GET", path, **{EXPECTED_DIGEST_HEADER: expected}))
    assert (answer.status_code, answer.content) == (200, body)
    damage(store, VID)
    answer = client.simulate_get(path, headers=signed("GET", path, **{EXPECTED_DIGEST_HEADER: expected}))
    assert answer.status_code == 409 and answer.content != body
    assert reports == [
        {"bucket": "bucket", "hashed": key_hash("key"), "file": VID, "holders": None, HASH_FIELD: expected}
    ]


def test_an_assembly_refuses_a_damaged_part_and_answers_the_digest_of_a_sound_one(tmp_path):
    store, client, reports = endpoint(tmp_path)
    bodies = [os.urandom(3000), os.urandom(20)]
    parts = []
    for number, body in enumerate(bodies, start=1):
        part = f"{VID}.{number}.{'0' * 15}{number}"
        put(client, part, body)
        parts.append([part, len(body), xxhash.xxh3_64_hexdigest(body)])
    path = "/internal/v1/assemble/bucket/" + key_hash("key") + "/" + VID
    answer = client.simulate_post(path, json={"parts": parts}, headers=signed("POST", path))
    assert answer.status_code == 200 and answer.json == {HASH_FIELD: xxhash.xxh3_64_hexdigest(b"".join(bodies))}

    os.unlink(os.path.join(store.file_dir("bucket", key_hash("key")), VID))
    damage(store, parts[1][0])
    answer = client.simulate_post(path, json={"parts": parts}, headers=signed("POST", path))
    assert answer.status_code == 409
    assert [report["file"] for report in reports] == [parts[1][0]]
    assert not any(path.endswith(VID) for path in everything_under(store.layout.objects_dir))
    bad = client.simulate_post(path, json={"parts": [[parts[0][0], 3000, "not hex"]]}, headers=signed("POST", path))
    assert bad.status_code == 400
