"""The SWIM state machine on a fake clock and an in-memory network: detection, suspicion,
refutation and dissemination, with no sockets and no sleeps."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nebulaio.cluster.gossip import ALIVE, DEAD, SUSPECT, Membership, Timing
from nebulaio.cluster.gossipnet import seal, unseal

TIMING = Timing(probe_interval=1.0, probe_timeout=0.4, suspicion_timeout=4.0, sync_interval=5.0)
STEP = 0.1


class Network:
    """Delivers every message at the next step; a paused node neither sends nor receives."""

    def __init__(self):
        self.now = 0.0
        self.nodes: dict[str, Membership] = {}
        self.paused: set[str] = set()
        self.queue: list[tuple[str, str, dict]] = []
        self.dropped_datagrams: set[str] = set()

    def clock(self) -> float:
        return self.now

    def add(self, ident: str) -> Membership:
        address = f"10.0.0.{len(self.nodes) + 1}:9004"
        sender = self

        class Endpoint:
            def send(self, to: str, message: dict, reliable: bool = False) -> None:
                if to in sender.dropped_datagrams and not reliable:
                    return
                sender.queue.append((address, to, message))

        node = Membership({"id": ident, "gossip": address}, Endpoint(), self.clock, TIMING, rng=random.Random(ident))
        self.nodes[address] = node
        return node

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / STEP)):
            self.now += STEP
            queue, self.queue = self.queue, []
            for source, target, message in queue:
                node = self.nodes.get(target)
                if node is None or node.id in self.paused or self.nodes[source].id in self.paused:
                    continue
                answer = node.receive(message)
                if answer is not None:
                    self.nodes[source].receive(answer)
            for node in self.nodes.values():
                if node.id not in self.paused:
                    node.tick()

    def state(self, observer: str, ident: str) -> str | None:
        node = next(n for n in self.nodes.values() if n.id == observer)
        member = node.members.get(ident)
        return None if member is None else member.state


def cluster(size: int) -> Network:
    network = Network()
    nodes = [network.add(f"n{i}") for i in range(size)]
    for node in nodes[1:]:
        node.seeds = {nodes[0].info["gossip"]}
    return network


def test_members_learn_each_other_through_one_seed():
    network = cluster(5)
    network.run(8)
    for observer in network.nodes.values():
        assert {ident: m.state for ident, m in observer.members.items()} == {
            f"n{i}": ALIVE for i in range(5) if f"n{i}" != observer.id
        }


def test_a_silent_member_is_suspected_then_declared_dead_everywhere():
    network = cluster(4)
    network.run(8)
    network.paused.add("n3")
    seen_suspect = set()
    for _ in range(150):
        network.run(STEP)
        seen_suspect |= {o for o in ("n0", "n1", "n2") if network.state(o, "n3") == SUSPECT}
        if all(network.state(o, "n3") == DEAD for o in ("n0", "n1", "n2")):
            break
    assert all(network.state(o, "n3") == DEAD for o in ("n0", "n1", "n2"))
    assert seen_suspect  # suspicion came first: nobody jumped straight to dead
    elapsed_bound = 4 * TIMING.probe_interval + TIMING.suspicion_timeout + 2 * TIMING.probe_interval
    assert network.now - 8 <= elapsed_bound + 1


def test_a_member_that_comes_back_refutes_its_death():
    network = cluster(4)
    network.run(8)
    network.paused.add("n3")
    network.run(15)
    assert network.state("n0", "n3") == DEAD
    before = next(n for n in network.nodes.values() if n.id == "n3").incarnation
    network.paused.discard("n3")
    network.run(15)
    assert all(network.state(o, "n3") == ALIVE for o in ("n0", "n1", "n2"))
    assert next(n for n in network.nodes.values() if n.id == "n3").incarnation > before


def test_a_suspicion_is_refuted_before_it_turns_into_death():
    network = cluster(3)
    network.run(8)
    n0 = next(n for n in network.nodes.values() if n.id == "n0")
    n0._suspect("n2", network.now)
    assert network.state("n0", "n2") == SUSPECT
    network.run(3)
    assert network.state("n0", "n2") == ALIVE
    assert network.state("n1", "n2") == ALIVE


def test_lost_datagrams_to_a_member_are_covered_by_the_stream_channel_and_others():
    network = cluster(4)
    network.run(8)
    network.dropped_datagrams.add(next(n.info["gossip"] for n in network.nodes.values() if n.id == "n3"))
    network.run(20)
    assert all(network.state(o, "n3") == ALIVE for o in ("n0", "n1", "n2"))


def test_new_facts_spread_under_a_higher_incarnation():
    network = cluster(4)
    network.run(8)
    n1 = next(n for n in network.nodes.values() if n.id == "n1")
    n1.update_self({**n1.info, "capacity": {"total": 10, "free": 3}})
    network.run(3)
    for observer in ("n0", "n2", "n3"):
        node = next(n for n in network.nodes.values() if n.id == observer)
        assert node.members["n1"].info["capacity"] == {"total": 10, "free": 3}


def alive_x(incarnation: int) -> dict:
    update = {"kind": ALIVE, "member": {"id": "x", "gossip": "a:1"}, "incarnation": incarnation}
    return {"type": "sync", "updates": [update]}


def test_old_news_does_not_override_newer():
    network = Network()
    node = network.add("n0")
    node.receive(alive_x(5))
    node.receive({"type": "sync", "updates": [{"kind": DEAD, "id": "x", "incarnation": 4}]})
    assert node.members["x"].state == ALIVE
    node.receive({"type": "sync", "updates": [{"kind": SUSPECT, "id": "x", "incarnation": 5}]})
    assert node.members["x"].state == SUSPECT
    node.receive(alive_x(5))
    assert node.members["x"].state == SUSPECT
    node.receive(alive_x(6))
    assert node.members["x"].state == ALIVE


SECRET = b"cluster-secret"


def test_a_sealed_message_opens_only_with_its_secret_and_while_fresh():
    sealed = seal(SECRET, {"type": "ping", "seq": 1}, now=1000.0)
    assert unseal((SECRET,), sealed, now=1000.0)["seq"] == 1
    assert unseal((b"other-secret",), sealed, now=1000.0) is None
    assert unseal((b"other-secret", SECRET), sealed, now=1000.0)["seq"] == 1
    assert unseal((SECRET,), sealed, now=5000.0) is None
    forged = sealed[:-2] + b"9}"
    assert unseal((SECRET,), forged, now=1000.0) is None


@given(st.binary(max_size=300))
def test_unseal_refuses_any_bytes_not_sealed_with_the_secret(data):
    assert unseal((SECRET,), data, now=1000.0) is None


SCALARS = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.sampled_from([ALIVE, SUSPECT, DEAD, "x", "n0"]))
MEMBER_INFO = st.one_of(SCALARS, st.dictionaries(st.sampled_from(["id", "gossip", "role"]), SCALARS, max_size=3))
UPDATES = st.lists(
    st.dictionaries(
        st.sampled_from(["kind", "id", "incarnation", "member"]),
        st.one_of(SCALARS, MEMBER_INFO),
        max_size=4,
    ),
    max_size=8,
)


@given(
    st.sampled_from(["sync", "ping", "ack", "ping-req", 7, None]),
    st.one_of(SCALARS, MEMBER_INFO),
    SCALARS,
    st.one_of(UPDATES, SCALARS),
)
def test_receive_survives_any_message_shapes(kind, sender, seq, updates):
    """Against a node that knows a member (so suspicions and deaths reach one), member
    records that are dicts of any fields, and any message type, sender and sequence."""
    network = Network()
    node = network.add("n0")
    node.receive(alive_x(1))
    try:
        node.receive({"type": kind, "from": sender, "seq": seq, "updates": updates})
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        pytest.fail(f"receive raised {exc!r}")
