"""This node's place in the cluster: its registration, gossip, and raft voter changes.

Membership is metadata: every replica knows every node's role and addresses from the log
(`node.register`), gossip tells who is alive and carries each node's figures, and voters join
and leave through raft's own membership changes.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

import psutil

from nebulaio import config as configuration
from nebulaio.cluster.gossip import ALIVE, Membership
from nebulaio.cluster.gossipnet import GossipNetwork, exchange
from nebulaio.cluster.groupcommit import PROPOSAL_DEADLINE, UNCONFIRMED, GroupCommitter
from nebulaio.cluster.raft import DENIED, MetadataLog, describe_failure
from nebulaio.meta import MetaReader
from nebulaio.storage.layout import DataLayout
from nebulaio.util.purposekeys import KeyRing

log = logging.getLogger("nebulaio.membership")

REGISTER_RETRY = 1.0
"""Seconds between two attempts to register when the log refused or did not confirm one."""
LEADER_POLL = 0.05
"""Seconds between two looks for a leader before registering: a node is not ready until it is
registered, so a registration that waited a whole retry would hold every start back."""
GOSSIP_TICK = 0.05
"""Seconds between two turns of the gossip protocol (its periods and timeouts are longer)."""
SELF_REFRESH = 2.0
"""Seconds between two looks at this node's own state (readiness, raft role) and the seeds."""
FIGURES_REFRESH = 10.0
"""Seconds between two looks at this node's disk, memory and raft figures for gossip."""
JOIN_TIMEOUT = 45.0
"""Seconds a joining node tries to reach its --join member (the launcher waits 60 s for the supervisor)."""
JOIN_RETRY = 1.0
MEMBERSHIP_DEADLINE = PROPOSAL_DEADLINE
"""Seconds a membership change may take, a leader's handover included, before it is answered 503."""
HANDOVER_POLL = 0.05
HANDOVER_RETRY = 1.0
"""Seconds to wait for a new leader after asking for a handover before asking again."""
CHANGE_RETRY = 0.1
NO_SUCCESSOR = {
    "status": "ServiceUnavailable",
    "reason": "no other voter took over the raft leadership (none connected and holding the whole log)",
}


def learn_voters(config: dict, node_id: str, keys: KeyRing, tls: ssl.SSLContext | None) -> list[str] | None:
    """The voters' raft addresses, asked of the --join member (a node started without
    --raft-peers), over TLS with `tls` (mTLS between nodes); None when it cannot be reached in time."""
    own = configuration.advertised(config, "raft")
    hello = {"type": "sync", "from": {"id": node_id, "gossip": configuration.advertised(config, "gossip")}}
    deadline = time.monotonic() + JOIN_TIMEOUT
    while True:
        try:
            answer = exchange(config["join"], keys, hello, tls)
            voters = answer.get("voters") if answer else None
            if voters:
                log.info("joined through %s; raft voters %s", config["join"], ", ".join(voters))
                return sorted(set(voters) | ({own} if config["role"] != "storage" else set()))
            log.warning("%s did not name the raft voters (not sealed with our cluster secret?)", config["join"])
        except OSError as exc:
            log.warning("cannot reach %s to join the cluster: %s", config["join"], exc)
        if time.monotonic() > deadline:
            log.error("no member answered at %s within %.0f s; stopping", config["join"], JOIN_TIMEOUT)
            return None
        time.sleep(JOIN_RETRY)


class NodeMembership:
    """Registers this node, runs gossip, and adds or removes raft voters."""

    def __init__(
        self,
        config: dict,
        node_id: str,
        keys: KeyRing,
        layout: DataLayout,
        reader: MetaReader,
        raft: MetadataLog,
        server_tls: ssl.SSLContext | None,
        client_tls: ssl.SSLContext | None,
    ):
        """`keys`: the cluster secrets' gossip keys; `server_tls`, `client_tls`: with mTLS
        between nodes, what gossip's TCP channel accepts and presents (see gossipnet)."""
        self.config = config
        self.node_id = node_id
        self.layout = layout
        self.reader = reader
        self.raft = raft
        self.network = GossipNetwork(keys, configuration.advertised(config, "gossip"), server_tls, client_tls)
        self.gossip: Membership | None = None
        self._peers_marked = False
        self.internal_endpoints: dict[str, str] = {}
        """The internal endpoint of each live member by its raft address, refreshed by gossip
        (read from other threads, so replaced whole, never changed in place)."""
        self.gossip_endpoints: dict[str, str] = {}
        """The gossip address of each live member by its raft address, refreshed likewise."""

    def mark_peers(self) -> None:
        """Once raft has another member, leave the marker that makes workers fence their reads
        (a node started alone skips the fence until then; see ObjectLayer.fenced)."""
        if not self._peers_marked and self.raft.otherNodes:
            with open(self.layout.peers_marker, "wb"):
                pass
            self._peers_marked = True

    async def start(self) -> asyncio.Task:
        """Listen for gossip and run the protocol; the task runs until cancelled."""
        self.mark_peers()
        await self.network.start(self.config["gossip_address"])
        own = {**self.identity(), **self.figures(), **self.state()}
        self.gossip = Membership(own, self.network, time.monotonic, incarnation=int(time.time()))
        self.network.membership = self.gossip
        return asyncio.create_task(self._run_gossip())

    def close(self) -> None:
        self.network.close()

    async def register(self, committer: GroupCommitter) -> None:
        """Record this node and its addresses in the log, once it has a leader to take them.

        Membership is metadata: every replica knows every node's role and addresses, and
        workers read them from LMDB like any other record.
        """
        command = {"op": "node.register", "node": self.identity()}
        while True:
            known = self.reader.nodes.get(self.node_id)
            if known is not None and all(known.get(k) == v for k, v in command["node"].items()):
                return
            if not self.raft.status()["ready"]:
                await asyncio.sleep(LEADER_POLL)
                continue
            result = await committer.submit(command)
            if result.get("status") == "ok":
                log.info("node %s registered", self.node_id)
                return
            await asyncio.sleep(REGISTER_RETRY)

    def identity(self) -> dict:
        """This node's id, role and the addresses it gives its peers: its registration record."""
        config = self.config
        return {
            "id": self.node_id,
            "role": config["role"],
            **{listener: configuration.advertised(config, listener) for listener in ("raft", "gossip", "internal")},
        }

    def state(self) -> dict:
        """Whether this node is ready, and its raft role: gossiped as soon as they change."""
        raft = self.raft.status()
        return {
            "ready": raft["ready"] and (raft["last_applied"] or 0) >= (raft["commit_index"] or 0),
            "raft_state": raft["state"],
        }

    def figures(self) -> dict:
        """Disk, memory and raft figures: they change all the time, so they are gossiped every
        FIGURES_REFRESH seconds, or with a change of state (each change of what a node says of
        itself is broadcast to every member)."""
        disk = psutil.disk_usage(self.layout.root)
        memory = psutil.virtual_memory()
        raft = self.raft.status()
        return {
            "capacity": {"total": disk.total, "used": disk.used, "free": disk.free},
            "memory": {"total": memory.total, "available": memory.available},
            "raft_term": raft["term"],
            "commit_index": raft["commit_index"],
        }

    async def _run_gossip(self) -> None:
        """Run the protocol; refresh this node's facts, the voters and the seeds now and then.

        The seeds are the registered nodes and --join: whoever the log or the operator names.
        """
        membership = self.gossip
        refreshed = measured = 0.0
        state = figures = {}
        while True:
            try:
                self.mark_peers()
                membership.tick()
                now = time.monotonic()
                if now - refreshed >= SELF_REFRESH:
                    refreshed = now
                    latest = self.state()
                    if latest != state or now - measured >= FIGURES_REFRESH:
                        measured, state, figures = now, latest, self.figures()
                    membership.update_self({**self.identity(), **figures, **state})
                    registered = self.reader.nodes.all()
                    membership.seeds = {node["gossip"] for node in registered if node["gossip"]}
                    if self.config["join"]:
                        membership.seeds.add(self.config["join"])
                    membership.voters = sorted(
                        member["address"]
                        for member in self.raft.status()["members"]
                        if not (member["self"] and self.config["role"] == "storage")
                    )
                    self._learn_endpoints(registered, membership.view()[1:])
            except Exception:
                log.exception("a gossip turn failed")
            await asyncio.sleep(GOSSIP_TICK)

    def _learn_endpoints(self, registered: list[dict], members: list[dict]) -> None:
        """The internal addresses of the members gossip sees alive, and the gossip address of
        every node registered or seen, by raft address.

        NOTE: a read index request needs no liveness: the raft leader is the one asked, and a
        request it does not answer goes to raft's own path. Registration names the addresses
        from a node's first seconds, before gossip has spread them.
        """
        known = [member for member in [*registered, *members] if member.get("raft")]
        self.internal_endpoints = {
            member["raft"]: member["internal"]
            for member in members
            if member.get("state") == ALIVE and member.get("raft") and member.get("internal")
        }
        self.gossip_endpoints = {member["raft"]: member["gossip"] for member in known if member.get("gossip")}

    async def change(self, action, address, committer: GroupCommitter) -> dict:
        """Add or remove a raft voter; answers once the change is applied here.

        PySyncObj's leader refuses to remove itself, so a leader to remove first hands its
        leadership to another voter, and the removal goes through the new leader. Every
        answer comes within MEMBERSHIP_DEADLINE.
        """
        if action not in ("add", "remove") or not isinstance(address, str):
            return {"status": "InvalidRequest", "reason": "membership needs action add|remove and a raft address"}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MEMBERSHIP_DEADLINE
        if action == "remove":
            # A replica that holds every acknowledged entry knows the current voters.
            passed = await committer.fence()
            if passed.get("status") != "ok":
                return passed
            if address not in {member["address"] for member in self.raft.status()["members"]}:
                return {"status": "ok"}  # out already: a retried removal goes on to forget the node
        handed_over = False
        while True:
            if action == "remove" and self.raft.status()["leader"] == address:
                if not await self._hand_over(address, deadline):
                    return NO_SUCCESSOR
                handed_over = True
            try:
                error = await asyncio.wait_for(self._propose_change(action, address), deadline - loop.time())
            except TimeoutError:
                return UNCONFIRMED
            if error == DENIED and handed_over and loop.time() < deadline:
                # NOTE: a new leader takes no change before its first entry is applied.
                await asyncio.sleep(CHANGE_RETRY)
                continue
            break
        if not error:
            log.info("raft voter %s: %s", address, "added" if action == "add" else "removed")
            return {"status": "ok"}
        if error == DENIED:
            return {"status": "Conflict", "reason": "the raft leader refused: another membership change is in progress"}
        return {"status": "ServiceUnavailable", "reason": describe_failure(error)}

    async def _propose_change(self, action: str, address: str) -> int:
        """Propose one membership change; PySyncObj's error code (0 once applied here)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settled(result, error):
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(error))

        self.raft.change_membership(action, address, settled)
        return await future

    async def _hand_over(self, leader: str, deadline: float) -> bool:
        """Have the leader `leader` hand its leadership to another voter; True once this node
        knows another leader, False when none took over by `deadline`."""
        loop = asyncio.get_running_loop()
        asked = float("-inf")
        while loop.time() < deadline:
            current = self.raft.status()["leader"]
            if current is not None and current != leader:
                log.info("raft leadership handed over from %s to %s", leader, current)
                return True
            if current == leader and loop.time() - asked > HANDOVER_RETRY:
                if await asyncio.to_thread(self.raft.ask_to_hand_over, leader):
                    asked = loop.time()
            await asyncio.sleep(HANDOVER_POLL)
        return False
