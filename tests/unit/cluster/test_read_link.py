"""The fast read index over gossip's datagrams, between members on an in-memory network: when
the leader answers, that a read waits for its replica, and that a read the leader does not
answer goes to raft's own read index."""

from __future__ import annotations

import asyncio

from pysyncobj.node import TCPNode

from nebulaio.cluster.readlink import FAST_ANSWER_TIMEOUT, ReadLink

VOTERS = ["a:1", "b:1", "c:1"]


class Member:
    """The parts of a MetadataLog the read link looks at."""

    def __init__(self, name: str, voters: list[str]):
        self.selfNode = TCPNode(name)
        self.otherNodes = {TCPNode(voter) for voter in voters if voter != name}
        self.leader = voters[0]
        self.raftCurrentTerm = 3
        self.raftCommitIndex = 10
        self.raftLastApplied = 10
        self._SyncObj__noopIDx = 9
        self.current = True
        self.slow_reads: list = []
        self.tick_callbacks: list = []

    def _isLeader(self) -> bool:
        return self.leader == str(self.selfNode)

    def _getLeader(self) -> TCPNode:
        return TCPNode(self.leader)

    def replica_current(self) -> bool:
        return self.current

    def addOnTickCallback(self, callback) -> None:
        self.tick_callbacks.append(callback)

    def read_index(self, callback, timeout: float) -> None:
        self.slow_reads.append(callback)

    def tick(self) -> None:
        for callback in self.tick_callbacks:
            callback()


class Network:
    """Gossip addresses are "g-" + the raft address; `dropping` loses the datagrams sent to them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, voters: list[str] = VOTERS):
        self.members = {name: Member(name, voters) for name in voters}
        self.dropping: set[str] = set()
        self.sent: list[dict] = []
        self.links = {
            name: ReadLink(loop, member, self.send, "g-" + name, lambda raft: "g-" + raft, 5.0, lambda: None)
            for name, member in self.members.items()
        }
        self.loop = loop

    def send(self, address: str, message: dict) -> None:
        self.sent.append(message)
        if address not in self.dropping:
            self.loop.call_soon(self.links[address.removeprefix("g-")].receive, message)


def read(link: ReadLink) -> list:
    answers: list = []
    assert link.ask(answers.append)
    return answers


def run(scenario) -> None:
    async def main():
        await scenario(Network(asyncio.get_running_loop()))

    asyncio.run(main())


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_followers_read_costs_one_datagram_each_way():
    async def scenario(network):
        answers = read(network.links["c:1"])
        await settle()
        assert answers == [None]
        assert [message["type"] for message in network.sent] == ["read_ask", "read_answer"]
        assert network.links["a:1"].answered == 1

    run(scenario)


def test_a_read_waits_until_its_replica_applied_the_leaders_commit_index():
    async def scenario(network):
        follower = network.members["c:1"]
        follower.raftLastApplied = 7
        answers = read(network.links["c:1"])
        await settle()
        assert answers == []
        follower.raftLastApplied = 10
        follower.tick()
        await settle()
        assert answers == [None]

    run(scenario)


def test_reads_arriving_while_a_request_is_in_flight_share_the_next():
    async def scenario(network):
        link = network.links["c:1"]
        first, second, third = read(link), read(link), read(link)
        await settle()
        assert first == second == third == [None]
        assert [message["type"] for message in network.sent].count("read_ask") == 2

    run(scenario)


def test_a_leader_of_another_term_does_not_answer_and_the_read_takes_raft():
    async def scenario(network):
        network.members["a:1"].raftCurrentTerm = 4  # the asker has not seen the new term yet
        answers = read(network.links["c:1"])
        await asyncio.sleep(FAST_ANSWER_TIMEOUT * 1.5)
        assert answers == [] and network.links["a:1"].answered == 0
        slow = network.members["c:1"].slow_reads
        assert len(slow) == 1
        assert not network.links["c:1"].ask(answers.append)  # the fast path rests a while

    run(scenario)


def test_a_new_leader_answers_only_once_an_entry_of_its_term_is_committed():
    async def scenario(network):
        network.members["a:1"]._SyncObj__noopIDx = 11
        read(network.links["c:1"])
        await asyncio.sleep(FAST_ANSWER_TIMEOUT * 1.5)
        assert network.links["a:1"].answered == 0 and len(network.members["c:1"].slow_reads) == 1

    run(scenario)


def test_a_lost_datagram_hands_the_read_to_raft():
    async def scenario(network):
        network.dropping.add("g-a:1")
        read(network.links["b:1"])
        await asyncio.sleep(FAST_ANSWER_TIMEOUT * 1.5)
        assert len(network.members["b:1"].slow_reads) == 1

    run(scenario)


def test_the_leader_five_voters_and_a_member_waiting_for_an_image_take_raft():
    async def scenario(network):
        assert not network.links["a:1"].ask(lambda failure: None)  # the leader's own read
        network.members["c:1"].current = False
        assert not network.links["c:1"].ask(lambda failure: None)

    run(scenario)

    async def five(network):
        assert not network.links["c:1"].ask(lambda failure: None)

    async def main():
        await five(Network(asyncio.get_running_loop(), ["a:1", "b:1", "c:1", "d:1", "e:1"]))

    asyncio.run(main())


def test_an_unknown_asker_is_not_answered():
    async def scenario(network):
        network.links["a:1"].receive(
            {"type": "read_ask", "id": 1, "session": "x", "term": 3, "raft": "z:1", "reply": "g-c:1"}
        )
        await settle()
        assert network.links["a:1"].answered == 0

    run(scenario)
