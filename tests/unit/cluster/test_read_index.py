"""Raft's read index between raft members on an in-memory network: who may answer a read
index, when, and that a read waits until its replica has applied it."""

from __future__ import annotations

from nebulaio.cluster.raft import READ_ASK, READ_PING, ReadIndex


class Transport:
    def __init__(self, network: Network, sender: str):
        self.network, self.sender = network, sender

    def send(self, node: str, message: dict) -> bool:
        self.network.queue.append((self.sender, node, message))
        return True


class Member:
    """The parts of a PySyncObj member the read index looks at."""

    def __init__(self, network: Network, name: str, voters: list[str], term: int = 3):
        self.name = name
        self.otherNodes = {voter for voter in voters if voter != name}
        self.raftCurrentTerm = term
        self.raftCommitIndex = 10
        self.raftLastApplied = 10
        self.leader = voters[0]
        self._SyncObj__noopIDx = 9
        self._SyncObj__transport = Transport(network, name)
        self.waiting_for_image = False
        self.reads = ReadIndex(self)

    def replica_current(self) -> bool:
        return not self.waiting_for_image

    def _isLeader(self) -> bool:
        return self.leader == self.name

    def _getLeader(self) -> str:
        return self.leader


class Network:
    """Messages wait in a queue until `deliver`; a member's tick runs after each delivery."""

    def __init__(self, voters: list[str], readonly: tuple[str, ...] = ()):
        self.queue: list[tuple[str, str, dict]] = []
        self.members = {name: Member(self, name, voters) for name in (*voters, *readonly)}
        self.delivered: list[str] = []

    def deliver(self, dropping: set[str] = frozenset()) -> None:
        while self.queue:
            sender, target, message = self.queue.pop(0)
            self.delivered.append(message["type"])
            if target not in dropping:
                member = self.members[target]
                assert member.reads.receive(sender, message)
                member.reads.tick()

    def tick(self) -> None:
        for member in self.members.values():
            member.reads.tick()


VOTERS = ["a", "b", "c"]


def read(member: Member, timeout: float = 5.0) -> list:
    answers = []
    member.reads.ask(answers.append, timeout)
    member.reads.tick()
    return answers


def test_a_voters_read_costs_one_request_and_one_answer_with_three_voters():
    network = Network(VOTERS)
    answers = read(network.members["b"])
    network.deliver()
    assert answers == [None]
    assert network.delivered == [READ_ASK, "nebulaio_read_answer"]  # no pings
    assert network.members["a"].reads.rounds == 1


def test_a_read_waits_until_its_replica_applied_the_leaders_commit_index():
    network = Network(VOTERS)
    follower = network.members["c"]
    follower.raftLastApplied = 7
    answers = read(follower)
    network.deliver()
    assert answers == []
    follower.raftLastApplied = 10
    network.tick()
    assert answers == [None]


def test_a_member_waiting_for_an_image_answers_no_read_until_it_is_in():
    network = Network(VOTERS)
    follower = network.members["c"]
    follower.waiting_for_image = True  # raftLastApplied is the loaded dump's; the replica is older
    answers = read(follower)
    network.deliver()
    network.tick()
    assert answers == []
    follower.waiting_for_image = False
    network.tick()
    assert answers == [None]


def test_the_leaders_own_read_needs_a_pong_from_another_voter():
    network = Network(VOTERS)
    leader = network.members["a"]
    answers = read(leader)
    assert answers == [] and [message["type"] for _, _, message in network.queue] == [READ_PING, READ_PING]
    network.deliver(dropping={"b"})  # one pong is enough for a majority of three
    assert answers == [None]


def test_a_voter_of_a_newer_term_vouches_for_no_older_leader():
    network = Network(VOTERS)
    for name in ("b", "c"):
        network.members[name].raftCurrentTerm = 4  # they elected someone else meanwhile
    answers = read(network.members["a"])
    network.deliver()
    assert answers == [] and network.members["a"].reads.rounds == 0
    stale = read(network.members["b"])  # a request of a newer term than the leader's
    network.deliver()
    assert stale == [] and network.members["a"].reads.rounds == 0


def test_with_five_voters_a_voters_request_still_needs_pings():
    voters = ["a", "b", "c", "d", "e"]
    alone = Network(voters)
    answers = read(alone.members["b"])
    alone.deliver(dropping={"c", "d", "e"})
    assert answers == []  # the leader and the asking voter are two of five
    helped = Network(voters)
    answers = read(helped.members["b"])
    helped.deliver(dropping={"d", "e"})  # c answers the ping: three of five
    assert answers == [None] and READ_PING in helped.delivered


def test_a_storage_node_is_answered_after_a_round_of_pings():
    network = Network(VOTERS, readonly=("s",))
    answers = read(network.members["s"])
    network.deliver()
    assert answers == [None]
    assert READ_PING in network.delivered


def test_a_new_leader_answers_only_once_an_entry_of_its_term_is_committed():
    network = Network(VOTERS)
    leader = network.members["a"]
    leader._SyncObj__noopIDx = 11  # its first entry is not committed yet
    answers = read(network.members["b"])
    network.deliver()
    assert answers == []
    leader.raftCommitIndex = leader.raftLastApplied = 11
    network.tick()
    network.deliver()
    network.members["b"].raftLastApplied = 11
    network.tick()
    assert answers == [None]


def test_a_read_nobody_answers_fails_at_its_deadline():
    network = Network(VOTERS)
    answers = read(network.members["b"], timeout=-1.0)
    network.queue.clear()  # the request is lost
    network.tick()
    assert answers == ["the raft leader did not confirm a read index in time"]
