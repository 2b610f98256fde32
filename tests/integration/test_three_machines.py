"""conf/ha-three-machines/ runs as the README says: three machines on 10.0.0.1-3, each started
with `nebulaio server --config nodeN.toml`, the files' ports, addresses and secrets unchanged.

The machines are network namespaces on a private bridge (see netns.py); only the data
directory is given apart, since the files' /var/lib/nebulaio is not the test's to write. The
test talks to the nodes from the LAN, as a client on that network would.
"""

from __future__ import annotations

import hashlib
import os
import time
import tomllib
import uuid
from pathlib import Path

import pytest
import requests
from conftest import LISTENERS, START_TIMEOUT, Node, wait_for
from faults import leader_of
from netns import Lan, NamespacesUnavailable
from test_cluster import cluster_status, put_with_retries
from test_cluster_data import holding, stored_record

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "conf" / "ha-three-machines").glob("node*.toml"))
LAN_PREFIX_LENGTH = 24
CLIENT_ADDRESS = f"10.0.0.254/{LAN_PREFIX_LENGTH}"
MIB = 1024 * 1024
MEMBERSHIP_TIMEOUT = 60.0
FAILOVER_TIMEOUT = 60.0


class MachineNode(Node):
    """A node started on its machine exactly as the README starts it: `ip netns exec` into the
    machine, then `nebulaio server --config nodeN.toml` with its own data directory.

    The machine's address, the ports and the root credentials are read from the file, and no
    NEBULAIO_ variable of the test run reaches the node, so the file alone configures it.
    """

    def __init__(self, lan: Lan, config: Path, base: Path):
        settings = tomllib.loads(config.read_text())
        listen = settings["listen"]
        self.machine = lan.add_machine(f"{listen['raft_address'].rpartition(':')[0]}/{LAN_PREFIX_LENGTH}")
        ports = {name: int(listen[f"{name}_address"].rpartition(":")[2]) for name in LISTENERS}
        super().__init__(base / "data", base / "node.log", host=self.machine.address, ports=ports)
        self.lan = lan
        self.config = config
        self.node_id = settings["cluster"]["node_id"]
        self.raft_address = listen["raft_address"]
        self.root_user = settings["auth"]["root_user"]
        self.root_password = settings["auth"]["root_password"]

    def command(self) -> list[str]:
        return [*self.machine.exec_prefix, *self.server_command(), "--config", str(self.config)]

    def environment(self) -> dict[str, str]:
        return {name: value for name, value in os.environ.items() if not name.startswith("NEBULAIO_")}

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Polled from the LAN: the machine's address exists nowhere else."""
        self.lan.run(super().wait_ready, timeout)


@pytest.fixture(scope="module")
def lan():
    try:
        network = Lan(CLIENT_ADDRESS)
    except NamespacesUnavailable as reason:
        pytest.skip(f"network namespaces cannot be created here: {reason}")
    with network:
        yield network


@pytest.fixture(scope="module")
def machines(lan, tmp_path_factory):
    """The three nodes of conf/ha-three-machines/, each ready; stopped when the module ends."""
    nodes: list[MachineNode] = []
    try:
        for config in CONFIGS:
            nodes.append(MachineNode(lan, config, tmp_path_factory.mktemp(config.stem)))
            nodes[-1].start(wait=False)
        for node in nodes:
            node.wait_ready()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def readiness(node: MachineNode) -> dict:
    return requests.get(node.admin_url + "/health/ready", timeout=5).json()


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def settled(nodes: list[MachineNode]) -> list[dict] | None:
    """Every node's readiness once all are ready, agree on one leader and see three alive members."""
    answers = [readiness(node) for node in nodes]
    agreed = len({answer["raft"]["leader"] for answer in answers}) == 1
    if agreed and all(answer["status"] == "ready" and answer["members"]["alive"] == 3 for answer in answers):
        return answers
    return None


def wait_settled(nodes: list[MachineNode]) -> list[dict]:
    return wait_for(lambda: settled(nodes), MEMBERSHIP_TIMEOUT, "three ready nodes that agree on a leader")


def test_the_three_machines_elect_a_leader_and_see_each_other(lan, machines):
    answers = lan.run(wait_settled, machines)
    assert [node.node_id for node in machines] == ["node1", "node2", "node3"]
    assert answers[0]["raft"]["leader"] in {node.raft_address for node in machines}
    assert sorted(answer["raft"]["state"] for answer in answers) == ["follower", "follower", "leader"]
    assert all(answer["members"] == {"alive": 3, "suspect": 0, "dead": 0} for answer in answers)


def test_cluster_status_through_every_machine_shows_the_three_members(lan, machines):
    expected = [(node.node_id, "hybrid", node.raft_address, "alive") for node in machines]

    def members(node):
        return sorted((m["id"], m["role"], m["address"], m["state"]) for m in cluster_status(node)["members"])

    for node in machines:
        lan.run(wait_for, lambda node=node: members(node) == expected, MEMBERSHIP_TIMEOUT, "three members")
        status = lan.run(cluster_status, node)
        assert status["node"]["id"] == node.node_id
        assert [member["id"] for member in status["members"] if member["self"]] == [node.node_id]


def test_an_object_put_through_node1_is_read_through_node2_and_node3(lan, machines):
    bucket, key, body = f"machines-{uuid.uuid4().hex[:12]}", "photos/cat.jpg", os.urandom(MIB + 17)

    def put_then_read_elsewhere() -> list[str]:
        writer = machines[0].client()
        writer.create_bucket(Bucket=bucket)
        writer.put_object(Bucket=bucket, Key=key, Body=body)
        return [digest(node.client().get_object(Bucket=bucket, Key=key)["Body"].read()) for node in machines[1:]]

    assert lan.run(put_then_read_elsewhere) == [digest(body)] * 2
    record = stored_record(machines[0], bucket, key)
    assert sorted(record["holders"]) == sorted(node.node_id for node in machines)
    assert holding(machines, bucket, key, record["vid"]) == [0, 1, 2]


def test_two_machines_go_on_without_the_leader_and_it_catches_up_on_return(lan, machines):
    bucket = f"machines-{uuid.uuid4().hex[:12]}"
    lan.run(lambda: machines[0].client().create_bucket(Bucket=bucket))
    lost = lan.run(leader_of, machines)
    assert lost is not None
    lost.kill_group()  # kill -9 of the whole node: launcher, supervisor and workers
    survivors = [node for node in machines if node is not lost]
    bodies = {f"written-without-{lost.node_id}/{n}": os.urandom(MIB + n) for n in range(4)}

    def write_through_the_survivors() -> None:
        deadline = time.monotonic() + FAILOVER_TIMEOUT
        for position, (key, body) in enumerate(bodies.items()):
            assert put_with_retries(survivors[position % 2].client(), bucket, key, body, deadline), key
            for reader in survivors:
                assert digest(reader.client().get_object(Bucket=bucket, Key=key)["Body"].read()) == digest(body)

    lan.run(write_through_the_survivors)

    lost.start()  # the same data directory, node id and file: it rejoins on its own
    lan.run(wait_settled, machines)
    for key, body in bodies.items():
        assert stored_record(lost, bucket, key)["vid"] == stored_record(survivors[0], bucket, key)["vid"]
        got = lan.run(lambda key=key: lost.client().get_object(Bucket=bucket, Key=key)["Body"].read())
        assert digest(got) == digest(body)
