"""Bit-rot detection and healing: a byte flipped in a stored file is never served as the object's
bytes. A lone node answers a clean error and counts the damage; in a cluster the GET is answered
from another holder, and the damaged copy is healed (the file on disk is right again), by the
read's report or by a scrub pass, whose progress the Admin API, /metrics and the CLI show."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import ROOT_PASSWORD, ROOT_USER, metric_samples, wait_for
from test_cluster_data import new_bucket, stored_record

from nebulaio.engine.dataplane import LocalData
from nebulaio.storage.integrity import HASH_FIELD, FileChecks
from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore, key_hash

SIZE = 256 * 1024
"""Above the inline threshold: the body gets a file of its own."""
SCRUB_ARGS = ["--scrub-interval", "3600"]
HEAL_TIMEOUT = 60.0


def admin(node, token_file, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nebulaio", "admin", "--url", node.admin_url, "--token-file", str(token_file)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=180, env=os.environ)


def token(node) -> dict:
    login = {"username": ROOT_USER, "password": ROOT_PASSWORD}
    answer = requests.post(node.admin_url + "/api/v1/auth/login", json=login, timeout=30)
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def scrub(node, method: str = "GET") -> dict:
    answer = requests.request(method, node.admin_url + "/api/v1/cluster/scrub", headers=token(node), timeout=30)
    assert answer.status_code == (202 if method == "POST" else 200), answer.text
    return answer.json()


def flip_byte(path, offset: int = SIZE // 2) -> None:
    """Damage a stored file in place, as bit rot would (its size stays)."""
    with open(path, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x40]))
        file.flush()
        os.fsync(file.fileno())


def object_file(node, bucket: str, key: str, vid: str):
    return node.data / "objects" / bucket / key_hash(key) / vid


@pytest.fixture(scope="module")
def lone(node_factory):
    return node_factory(args=SCRUB_ARGS)


def test_a_lone_node_refuses_damaged_bytes_and_counts_the_damage(lone, tmp_path):
    client = lone.client()
    client.create_bucket(Bucket="rot")
    body = os.urandom(SIZE)
    client.put_object(Bucket="rot", Key="k", Body=body)
    record = stored_record(lone, "rot", "k")
    assert record[HASH_FIELD]
    assert client.get_object(Bucket="rot", Key="k")["Body"].read() == body
    flip_byte(object_file(lone, "rot", "k", record["vid"]))

    with pytest.raises(ClientError) as refused:
        client.get_object(Bucket="rot", Key="k")["Body"].read()
    assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
    with pytest.raises(ClientError):
        client.get_object(Bucket="rot", Key="k", Range="bytes=0-99")
    figures = wait_for(lambda: (found := scrub(lone))["unhealed"] >= 1 and found, HEAL_TIMEOUT, "the damage counted")
    assert figures["reported"] >= 1 and figures["corrupt"] >= 1 and figures["healed"] == 0

    token_file = tmp_path / "token.json"
    logged_in = admin(lone, token_file, "login", "--username", ROOT_USER, "--password", ROOT_PASSWORD)
    assert logged_in.returncode == 0, logged_in.stderr
    waited = admin(lone, token_file, "scrub", "start", "--wait")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.startswith("node ") and "damaged found" in waited.stdout, waited.stdout
    after = scrub(lone)
    assert after["passes"] >= 1 and after["filesDone"] == after["files"] >= 1
    assert after["corrupt"] > figures["corrupt"] and after["unhealed"] > figures["unhealed"]
    samples = metric_samples(lone)
    assert samples["nebulaio_scrub_corrupt_total"] == after["corrupt"]
    assert samples["nebulaio_scrub_passes_total"] >= 1
    # The damage is still refused, never served.
    with pytest.raises(ClientError):
        client.get_object(Bucket="rot", Key="k")["Body"].read()


def test_no_object_is_completed_from_a_damaged_part(lone):
    client = lone.client()
    client.create_bucket(Bucket="parts")
    upload = client.create_multipart_upload(Bucket="parts", Key="big")["UploadId"]
    bodies = [os.urandom(5 * 1024 * 1024), os.urandom(SIZE)]
    listed = []
    for number, body in enumerate(bodies, 1):
        etag = client.upload_part(Bucket="parts", Key="big", UploadId=upload, PartNumber=number, Body=body)["ETag"]
        listed.append({"PartNumber": number, "ETag": etag})
    directory = lone.data / "objects" / "parts" / key_hash("big")
    (second,) = [path for path in directory.iterdir() if path.name.startswith(f"{upload}.2.")]
    flip_byte(second, 100)
    reported = scrub(lone)["reported"]

    with pytest.raises(ClientError) as refused:
        client.complete_multipart_upload(Bucket="parts", Key="big", UploadId=upload, MultipartUpload={"Parts": listed})
    assert refused.value.response["Error"]["Code"] == "ServiceUnavailable"
    with pytest.raises(ClientError):
        client.head_object(Bucket="parts", Key="big")
    assert sorted(path.name.split(".")[1] for path in directory.iterdir()) == ["1", "2"]
    wait_for(lambda: scrub(lone)["reported"] > reported, HEAL_TIMEOUT, "the damaged part reported")


def test_an_object_written_without_a_recorded_checksum_is_still_served(lone):
    client = lone.client()
    client.create_bucket(Bucket="old")
    body = os.urandom(SIZE)
    client.put_object(Bucket="old", Key="k", Body=body)
    record = stored_record(lone, "old", "k")
    location = {key: value for key, value in record.items() if key != HASH_FIELD}
    assert client.get_object(Bucket="old", Key="k")["Body"].read() == body
    # What an older record names is read as it is: the data plane opens it without a digest.
    opened = LocalData(ObjectStore(DataLayout(str(lone.data))), FileChecks(0)).open("old", "k", record["vid"], location)
    try:
        assert opened.range(0, SIZE).read() == body
    finally:
        opened.close()


@pytest.fixture(scope="module")
def trio(cluster_factory):
    """Three nodes, two copies of each object: one node of three reads it from the holders."""
    return cluster_factory(3, args=[*SCRUB_ARGS, "--replicas", "2"])


def placed(trio, bucket: str, key: str, body: bytes) -> tuple[dict, list]:
    """Put an object; its record and its holders (nodes), in the record's order."""
    trio[0].client().put_object(Bucket=bucket, Key=key, Body=body)
    record = stored_record(trio[0], bucket, key)
    holders = [trio[int(node.removeprefix("node"))] for node in record["holders"]]
    for holder in holders:
        wait_for(object_file(holder, bucket, key, record["vid"]).exists, 30, "each holder's copy")
    return record, holders


@pytest.mark.parametrize("reader", ["holder", "other node"])
def test_a_damaged_copy_is_read_around_and_healed(trio, reader):
    bucket = new_bucket(trio)
    body = os.urandom(SIZE)
    record, holders = placed(trio, bucket, "read", body)
    damaged_node = holders[0]  # the first holder a reader tries
    damaged = object_file(damaged_node, bucket, "read", record["vid"])
    before = scrub(damaged_node)
    flip_byte(damaged)

    # The damaged holder reads its own copy first, another node asks the damaged holder first:
    # either way the copy is refused and the GET answered from the other holder, byte for byte.
    via = damaged_node if reader == "holder" else next(node for node in trio if node not in holders)
    assert via.client().get_object(Bucket=bucket, Key="read")["Body"].read() == body
    # The damage was reported to the damaged holder's scrub, which heals it at once.
    wait_for(lambda: damaged.read_bytes() == body, HEAL_TIMEOUT, "the damaged copy healed")
    figures = scrub(damaged_node)
    assert figures["reported"] > before["reported"] and figures["healed"] > before["healed"]


def test_a_scrub_pass_finds_and_heals_a_damaged_copy(trio, tmp_path):
    bucket = new_bucket(trio)
    bodies = {f"k{number}": os.urandom(SIZE) for number in range(3)}
    placements = {key: placed(trio, bucket, key, body) for key, body in bodies.items()}
    record, holders = placements["k1"]
    node = holders[1]
    damaged = object_file(node, bucket, "k1", record["vid"])
    before = scrub(node)
    flip_byte(damaged, 0)

    token_file = tmp_path / "token.json"
    logged_in = admin(node, token_file, "login", "--username", ROOT_USER, "--password", ROOT_PASSWORD)
    assert logged_in.returncode == 0, logged_in.stderr
    waited = admin(node, token_file, "scrub", "start", "--wait")
    assert waited.returncode == 0, waited.stderr
    assert "files" in waited.stderr and "[" in waited.stderr, waited.stderr
    assert damaged.read_bytes() == bodies["k1"]
    after = scrub(node)
    assert after["passes"] > before["passes"] and after["healed"] == before["healed"] + 1
    assert after["filesDone"] == after["files"] >= 1
    samples = metric_samples(node)
    assert samples["nebulaio_scrub_healed_total"] == after["healed"]
    assert samples["nebulaio_scrub_files_done"] == after["filesDone"]
    status = admin(node, token_file, "scrub", "status")
    assert status.returncode == 0 and f"{after['healed']} healed" in status.stdout, status.stdout
    for node in trio:
        for key, body in bodies.items():
            assert node.client().get_object(Bucket=bucket, Key=key)["Body"].read() == body
