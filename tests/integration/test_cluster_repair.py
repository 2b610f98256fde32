"""The repair loop on real clusters: a holder that was down, a holder whose data directory was
wiped and a storage node that joins all end with every file on exactly its R wanted holders,
and the nodes report their progress in the Admin API and /metrics.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import requests
from conftest import CLUSTER_SECRET, ROOT_PASSWORD, ROOT_USER, metric_samples, registered, wait_for
from test_cluster_data import holding, new_bucket, ready_cluster

from nebulaio.cluster.placement import placement
from nebulaio.meta import MetaReader, open_env

REPAIR_ARGS = ["--repair-interval", "0.5", "--repair-batch", "3"]
"""Passes of three records: a file is reached only if each pass goes on where the last stopped."""
SIZE = 256 * 1024
REPLICAS = 3
REPAIR_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def trio(cluster_factory):
    return ready_cluster(lambda *args, **kwargs: cluster_factory(*args, args=REPAIR_ARGS, **kwargs), storage=0)


@pytest.fixture(scope="module")
def five(cluster_factory):
    return ready_cluster(lambda *args, **kwargs: cluster_factory(*args, args=REPAIR_ARGS, **kwargs), storage=2)


def record_of(node, bucket: str, key: str) -> dict | None:
    """A key's current record in a node's replica, read as a worker does."""
    env = open_env(str(node.data / "metadata" / "kv"), readonly=True)
    try:
        found = MetaReader(env).get_object(bucket, key)
        return None if found is None else found[0]
    finally:
        env.close()


def settled(nodes, bucket: str, key: str, ids: list[str], down: tuple[str, ...] = ()) -> bool:
    """The key's file is recorded on, and held by, exactly the wanted nodes of `ids` (a node
    that is `down` may stay recorded: only it can give up its copy)."""
    record = record_of(nodes[0], bucket, key)
    if record is None:
        return False
    wanted, _ = placement(ids, record["vid"], REPLICAS)
    on_disk = sorted(f"node{position}" for position in holding(nodes, bucket, key, record["vid"]))
    recorded = sorted(node for node in record["holders"] if node not in down)
    return recorded == sorted(wanted) == on_disk


def repair_figures(node) -> dict:
    """This node's repair figures from the Admin API, once it answers (a busy machine may make
    the supervisor slow to)."""
    login = {"username": ROOT_USER, "password": ROOT_PASSWORD}
    token = requests.post(node.admin_url + "/api/v1/auth/login", json=login, timeout=60).json()["token"]

    def figures():
        response = requests.get(
            node.admin_url + "/api/v1/cluster/repair", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        return response.json() if response.status_code == 200 else None

    return wait_for(figures, 60, "the repair figures")


def test_a_put_while_a_holder_is_down_ends_with_r_copies_once_it_returns(trio):
    bucket = new_bucket(trio)
    body = os.urandom(SIZE)
    away = trio[2]
    away.stop()
    try:
        trio[0].client().put_object(Bucket=bucket, Key="while-away", Body=body)
        record = wait_for(lambda: record_of(trio[0], bucket, "while-away"), 60, "the record")
        assert sorted(record["holders"]) == ["node0", "node1"]
    finally:
        away.start()
    ids = [f"node{position}" for position in range(3)]
    wait_for(lambda: settled(trio, bucket, "while-away", ids), REPAIR_TIMEOUT, "three copies")
    assert away.client().get_object(Bucket=bucket, Key="while-away")["Body"].read() == body
    figures = repair_figures(away)
    assert figures["node"] == "node2" and figures["passes"] >= 1 and figures["copied"] >= 1
    assert figures["bytesMoved"] >= SIZE and figures["checked"] >= 1 and figures["lastPassFinished"]
    assert figures["cycles"] >= 1 and figures["cycleFiles"] is not None and figures["remainingFiles"] is not None


def test_a_holder_whose_data_directory_is_wiped_gets_its_copies_back(trio):
    bucket = new_bucket(trio)
    keys = [f"wiped-{number}" for number in range(4)]
    for key in keys:
        trio[0].client().put_object(Bucket=bucket, Key=key, Body=os.urandom(SIZE))
    ids = [f"node{position}" for position in range(3)]
    for key in keys:
        wait_for(lambda key=key: settled(trio, bucket, key, ids), REPAIR_TIMEOUT, f"{key} on its holders")
    wiped = trio[1]
    wiped.stop()
    shutil.rmtree(wiped.data / "objects")
    wiped.start()
    for key in keys:
        wait_for(lambda key=key: settled(trio, bucket, key, ids), REPAIR_TIMEOUT, f"{key} back on node1")


def settled_objects(five, prefix: str, count: int) -> tuple[str, list[str]]:
    """A new bucket of `count` objects written through node0, each settled on its holders."""
    bucket = new_bucket(five)
    keys = [f"{prefix}-{number}" for number in range(count)]
    for key in keys:
        five[0].client().put_object(Bucket=bucket, Key=key, Body=os.urandom(SIZE))
    ids = [f"node{position}" for position in range(5)]
    for key in keys:
        wait_for(lambda key=key: settled(five, bucket, key, ids), REPAIR_TIMEOUT, f"{key} on its holders")
    return bucket, keys


def test_a_joining_storage_node_takes_its_share_and_the_others_give_theirs_up(five, node_factory):
    bucket, keys = settled_objects(five, "share", 12)
    ids = [f"node{position}" for position in range(5)]
    peers = ",".join(f"127.0.0.1:{node.ports['raft']}" for node in five[:3])
    late = node_factory(
        args=[*REPAIR_ARGS, "--raft-peers", peers, "--role", "storage", "--node-id", "node5"],
        extra_env={"NEBULAIO_CLUSTER_SECRET": CLUSTER_SECRET},
    )
    try:
        six = [*five, late]
        wait_for(lambda: len(registered(five[0])) == 6, 60, "the new node registered")
        ids.append("node5")
        for key in keys:
            wait_for(lambda key=key: settled(six, bucket, key, ids), REPAIR_TIMEOUT, f"{key} moved to its new holders")
        taken = [key for key in keys if "node5" in record_of(five[0], bucket, key)["holders"]]
        assert taken, "the new node was wanted for none of the keys"
        samples = metric_samples(late)
        assert samples["nebulaio_repair_copied_total"] >= len(taken)
        assert samples["nebulaio_repair_bytes_total"] >= len(taken) * SIZE
        assert sum(metric_samples(node)["nebulaio_repair_removed_total"] for node in five) >= len(taken)
        for key in keys:
            assert late.client().get_object(Bucket=bucket, Key=key)["ContentLength"] == SIZE
    finally:
        late.stop()
    # With node5 gone, the files it held are copied back to R live holders among the five.
    ids.remove("node5")
    for key in keys:
        wait_for(
            lambda key=key: settled(five, bucket, key, ids, down=("node5",)), REPAIR_TIMEOUT, f"{key} among the five"
        )


def admin_cli(node, token_file, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nebulaio", "admin", "--url", node.admin_url, "--token-file", str(token_file)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout, env=os.environ)


def drain_url(node, node_id: str) -> str:
    return f"{node.admin_url}/api/v1/cluster/nodes/{node_id}/drain"


def test_a_drained_node_ends_with_no_copies_and_every_object_at_r_copies_elsewhere(five, tmp_path):
    bucket, keys = settled_objects(five, "drain", 10)
    assert any("node4" in record_of(five[0], bucket, key)["holders"] for key in keys)

    token_file = tmp_path / "token.json"
    login = admin_cli(five[0], token_file, "login", "--username", ROOT_USER, "--password", ROOT_PASSWORD)
    assert login.returncode == 0, login.stderr
    drained = admin_cli(five[0], token_file, "cluster", "drain", "node4", timeout=REPAIR_TIMEOUT + 60)
    assert drained.returncode == 0, drained.stderr
    assert "node node4: drained" in drained.stdout and "files" in drained.stderr

    # Every file is on R nodes among the other four, and node4 holds none, on disk or in a record.
    remaining = [f"node{position}" for position in range(4)]
    for key in keys:
        wait_for(lambda key=key: settled(five, bucket, key, remaining), REPAIR_TIMEOUT, f"{key} off node4")
        assert 4 not in holding(five, bucket, key, record_of(five[0], bucket, key)["vid"])
    assert not [name for _, _, names in os.walk(five[4].data / "objects" / bucket) for name in names]
    token = requests.post(
        five[4].admin_url + "/api/v1/auth/login", json={"username": ROOT_USER, "password": ROOT_PASSWORD}, timeout=60
    ).json()["token"]
    progress = requests.get(drain_url(five[4], "node4"), headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert progress.status_code == 200 and progress.json()["draining"]

    # A new object is given no copy on the draining node.
    five[1].client().put_object(Bucket=bucket, Key="after-drain", Body=os.urandom(SIZE))
    wait_for(lambda: record_of(five[0], bucket, "after-drain"), 60, "the new record")
    assert "node4" not in record_of(five[0], bucket, "after-drain")["holders"]


def test_a_drain_of_an_unknown_node_or_below_r_nodes_is_refused_and_changes_nothing(trio):
    token = requests.post(
        trio[0].admin_url + "/api/v1/auth/login", json={"username": ROOT_USER, "password": ROOT_PASSWORD}, timeout=60
    ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    unknown = requests.post(drain_url(trio[0], "no-such-node"), headers=headers, timeout=60)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NotFound"
    assert requests.get(drain_url(trio[0], "no-such-node"), headers=headers, timeout=60).status_code == 404
    too_few = requests.post(drain_url(trio[0], "node2"), headers=headers, timeout=60)
    assert too_few.status_code == 409, too_few.text
    error = too_few.json()["error"]
    assert error["code"] == "TooFewNodes" and "2 storage node(s)" in error["message"]
    state = requests.get(drain_url(trio[0], "node2"), headers=headers, timeout=60).json()
    assert state["draining"] is False and state["since"] is None
    assert all("draining" not in node for node in registered(trio[0]))
