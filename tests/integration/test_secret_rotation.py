"""Rotating the cluster secret and the admin secret while the cluster runs (README, "Rotating
the cluster secret" and "Rotating the admin secret"): three rolling restarts of a three-node
cluster with writes going on lose nothing acknowledged, what was sealed under the old secret
still opens, and an admin token outlives its secret's replacement until that secret is dropped.
Both secrets are rotated in the same restarts, as an operator may: nine restarts are the cost."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from botocore.exceptions import ClientError
from conftest import CLUSTER_SECRET, ROOT_PASSWORD, ROOT_USER, make_client, wait_for
from test_cluster import put_with_retries

from nebulaio.cluster import signing
from nebulaio.cluster.peers import PING_PATH
from nebulaio.util.purposekeys import PEER_SIGNING, derive

NEW_SECRET = "the-new-cluster-secret-" + uuid.uuid4().hex
OLD_ADMIN_SECRET = "an-admin-secret-of-32-bytes-or-more-old"
NEW_ADMIN_SECRET = "an-admin-secret-of-32-bytes-or-more-new"
REJOIN_TIMEOUT = 60
TIMEOUT = 10


ROTATION_STEPS = [
    # Accept the new cluster secret; sign admin tokens with the new admin secret, accept the old.
    {
        "NEBULAIO_CLUSTER_SECRET": CLUSTER_SECRET,
        "NEBULAIO_CLUSTER_SECRET_ACCEPTED": NEW_SECRET,
        "NEBULAIO_ADMIN_SECRET": NEW_ADMIN_SECRET,
        "NEBULAIO_ADMIN_SECRET_ACCEPTED": OLD_ADMIN_SECRET,
    },
    # Sign with the new cluster secret.
    {"NEBULAIO_CLUSTER_SECRET": NEW_SECRET, "NEBULAIO_CLUSTER_SECRET_ACCEPTED": CLUSTER_SECRET},
    # Drop both old secrets (the old cluster secret still opens what it sealed).
    {
        "NEBULAIO_CLUSTER_SECRET_ACCEPTED": "",
        "NEBULAIO_CLUSTER_SECRET_RETIRED": CLUSTER_SECRET,
        "NEBULAIO_ADMIN_SECRET_ACCEPTED": "",
    },
]


def whole(nodes) -> bool:
    """Every node sees a raft leader, every voter connected and every member alive in gossip."""
    try:
        for node in nodes:
            token = login(node, ROOT_USER, ROOT_PASSWORD).json()["token"]
            status = admin_call(node, "GET", "/api/v1/cluster/status", token).json()
            members = status["members"]
            if status["raft"]["leader"] is None or len(members) != len(nodes):
                return False
            if not all(member["connected"] and member["state"] == "alive" for member in members):
                return False
    except (requests.RequestException, ValueError, KeyError):
        return False
    return True


def login(node, username: str, password: str) -> requests.Response:
    return requests.post(
        node.admin_url + "/api/v1/auth/login", json={"username": username, "password": password}, timeout=TIMEOUT
    )


def admin_call(node, method: str, path: str, token: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, node.admin_url + path, headers=headers, timeout=TIMEOUT, **kwargs)


def ping_signed_with(node, secret: str) -> int:
    """The status a ping of `node`'s internal endpoint, signed with `secret`'s peer key, answers."""
    target = f"127.0.0.1:{node.ports['internal']}"
    headers = signing.sign(derive(secret, PEER_SIGNING), "GET", PING_PATH, "tester", time.time(), target)
    return requests.get(node.internal_url + PING_PATH, headers=headers, timeout=TIMEOUT).status_code


def read_back(node, bucket: str, acknowledged: dict[str, bytes]) -> list[str]:
    """The acknowledged keys `node` does not answer with their bodies."""
    client = node.client()
    return [
        key for key, body in acknowledged.items() if client.get_object(Bucket=bucket, Key=key)["Body"].read() != body
    ]


def test_rotating_the_secrets_under_writes_loses_nothing(cluster_factory):
    nodes = cluster_factory(3, extra_env={"NEBULAIO_ADMIN_SECRET": OLD_ADMIN_SECRET})
    bucket = f"rotation-{uuid.uuid4().hex[:12]}"
    nodes[0].client().create_bucket(Bucket=bucket)
    # Sealed under the old secret: an object's key (SSE-S3) and an IAM user's secret key.
    nodes[0].client().put_object(Bucket=bucket, Key="sealed", Body=b"sealed before", ServerSideEncryption="AES256")
    token = login(nodes[0], ROOT_USER, ROOT_PASSWORD).json()["token"]  # signed with the old admin secret
    user = f"rotation-{uuid.uuid4().hex[:8]}"
    assert admin_call(nodes[0], "POST", "/api/v1/users", token, json={"name": user}).status_code == 201
    pair = admin_call(nodes[0], "POST", f"/api/v1/users/{user}/keys", token).json()

    acknowledged: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(number: int) -> None:
        clients = itertools.cycle([node.client() for node in nodes])
        for sequence in itertools.count():
            key, body = f"w{number}/{sequence}", f"{number}:{sequence}".encode() * 50
            while not stop.is_set():
                # Through the next node when one is restarting: what a client behind a balancer does.
                if put_with_retries(next(clients), bucket, key, body, time.monotonic() + 1.0):
                    with lock:
                        acknowledged[key] = body
                    break
            if stop.is_set():
                return

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(2)]
    for thread in threads:
        thread.start()
    written_by_step = []
    try:
        wait_for(lambda: len(acknowledged) >= 10, 30, "writes flowing before the rotation")
        for step in ROTATION_STEPS:
            if step is ROTATION_STEPS[-1]:
                # Every node accepts the old admin secret's tokens until it is dropped.
                for node in nodes:
                    assert admin_call(node, "GET", "/api/v1/users", token).status_code == 200
            for node in nodes:
                # NOTE: a kill -9 rather than a graceful stop: a restart at its harshest, and seconds
                # quicker each (nine restarts).
                node.kill_group()
                node.extra_env.update(step)
                node.start()
                wait_for(lambda: whole(nodes), REJOIN_TIMEOUT, "raft and gossip whole again after a restart")
            written_by_step.append(len(acknowledged))
        wait_for(lambda: len(acknowledged) >= written_by_step[-1] + 10, 30, "writes flowing after the rotation")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert written_by_step[0] < written_by_step[1] < written_by_step[2], written_by_step

    with ThreadPoolExecutor(len(nodes)) as pool:
        unread = list(pool.map(lambda node: read_back(node, bucket, acknowledged), nodes))
    assert unread == [[]] * len(nodes)
    for node in nodes:
        client = node.client()
        assert client.get_object(Bucket=bucket, Key="sealed")["Body"].read() == b"sealed before"
        # The user's secret, sealed under the old secret, still opens: its signature is checked
        # (AccessDenied: it has no policy), and it logs in.
        with pytest.raises(ClientError) as denied:
            make_client(node.s3_url, access_key=pair["accessKey"], secret_key=pair["secretKey"]).list_buckets()
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        assert login(node, pair["accessKey"], pair["secretKey"]).status_code == 200
        # The old secret authenticates nothing between nodes any more; the new one does.
        assert ping_signed_with(node, CLUSTER_SECRET) == 403
        assert ping_signed_with(node, NEW_SECRET) == 204
        # The old admin secret's token is refused now, a new one is taken.
        refused = admin_call(node, "GET", "/api/v1/users", token)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "InvalidToken", refused.text
        assert admin_call(node, "GET", "/api/v1/users", login(node, ROOT_USER, ROOT_PASSWORD).json()["token"]).ok
    print(f"{len(acknowledged)} writes acknowledged; after each step: {written_by_step}")


def test_the_master_key_set_and_rotated_keeps_every_encrypted_object_readable(node_factory):
    """Objects sealed under the master key derived from the cluster secret, then under a
    configured one, then under a newer one: each restart reads every object written before, and
    a key-store key made under the first master key takes new objects under each."""
    first_key, second_key = "the-first-master-key-" + uuid.uuid4().hex, "the-second-master-key-" + uuid.uuid4().hex
    node = node_factory()
    bucket = f"master-{uuid.uuid4().hex[:12]}"
    node.client().create_bucket(Bucket=bucket)
    token = login(node, ROOT_USER, ROOT_PASSWORD).json()["token"]
    kms_key = admin_call(node, "POST", "/api/v1/kms/keys", token, json={"description": "made first"}).json()["id"]
    modes = {"AES256": {}, "aws:kms": {}, "store-key": {"SSEKMSKeyId": kms_key}}
    written: dict[str, bytes] = {}
    for step, master_keys in enumerate(["", first_key, f"{second_key},{first_key}"]):
        if master_keys:
            node.stop()
            node.extra_env["NEBULAIO_ENCRYPTION_MASTER_KEYS"] = master_keys
            node.start()
        client = node.client()
        for key, body in written.items():
            assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == body, (step, key)
        for mode, extra in modes.items():
            key, body = f"{step}/{mode}", f"sealed in step {step} ({mode})".encode()
            encryption = "AES256" if mode == "AES256" else "aws:kms"
            client.put_object(Bucket=bucket, Key=key, Body=body, ServerSideEncryption=encryption, **extra)
            written[key] = body
    # Without the key that sealed them, the objects of the second step do not open.
    node.stop()
    node.extra_env["NEBULAIO_ENCRYPTION_MASTER_KEYS"] = second_key
    node.start()
    client = node.client()
    assert client.get_object(Bucket=bucket, Key="2/AES256")["Body"].read() == written["2/AES256"]
    assert client.get_object(Bucket=bucket, Key="0/aws:kms")["Body"].read() == written["0/aws:kms"]
    with pytest.raises(ClientError) as refused:
        client.get_object(Bucket=bucket, Key="1/AES256")
    assert refused.value.response["Error"]["Code"] == "InternalError"
