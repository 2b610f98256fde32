"""SWIM membership: who is in the cluster, how to reach each member, and whether it is alive.

A pure state machine, driven by `tick()` and `receive()`, with the clock and the transport
injected, so the protocol is tested without sockets or sleeps (the network lives in
`gossipnet`). Each protocol period probes one member, in a shuffled round-robin order (every
member is probed within two periods of any other): a ping, and when no ack comes within the
probe timeout, pings through `indirect_probes` other members plus a ping over the reliable
channel. A member with no ack by the end of the period is suspected; a suspect that does not
refute within the suspicion timeout is declared dead. A member refutes a suspicion (or its
death) by raising its incarnation number; the higher incarnation wins everywhere.

Updates (alive with the member's info, suspect, dead) ride on every message, each sent a
number of times that grows with the log of the cluster size; a periodic full-state sync over
the reliable channel with a random member (the dead included, so partitions heal) and with
the seeds catches up whatever the piggybacks missed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

ALIVE = "alive"
SUSPECT = "suspect"
DEAD = "dead"
STATES = (ALIVE, SUSPECT, DEAD)
MAX_PIGGYBACK = 8
"""Updates carried by one ping or ack; a datagram stays small."""


@dataclass(frozen=True, slots=True)
class Timing:
    probe_interval: float = 1.0
    probe_timeout: float = 0.4
    """Seconds to wait for a direct ack before probing through others."""
    indirect_probes: int = 3
    suspicion_timeout: float = 4.0
    retransmit_factor: int = 3
    sync_interval: float = 5.0


class Transport(Protocol):
    def send(self, address: str, message: dict, reliable: bool = False) -> None:
        """Send one message; `reliable` asks for the stream channel (TCP) instead of a datagram."""


class Member:
    __slots__ = ("info", "incarnation", "state", "since")

    def __init__(self, info: dict, incarnation: int, state: str, since: float):
        self.info = info
        self.incarnation = incarnation
        self.state = state
        self.since = since

    def describe(self) -> dict:
        return {**self.info, "incarnation": self.incarnation, "state": self.state}


class Probe:
    __slots__ = ("target", "seq", "sent", "indirect")

    def __init__(self, target: str, seq: int, sent: float):
        self.target = target
        self.seq = seq
        self.sent = sent
        self.indirect = False


class Membership:
    """This node's view of the cluster; `info` must carry at least "id" and "gossip" (its address)."""

    def __init__(
        self,
        info: dict,
        transport: Transport,
        clock: Callable[[], float],
        timing: Timing = Timing(),
        incarnation: int = 0,
        rng: random.Random | None = None,
    ):
        self.info = info
        self.incarnation = incarnation
        self.members: dict[str, Member] = {}
        self.seeds: set[str] = set()
        self.voters: list[str] = []
        """The raft voters this node knows of, handed to a node that joins through it."""
        self._transport = transport
        self._clock = clock
        self._timing = timing
        self._rng = rng or random.Random()
        self._broadcasts: dict[str, list] = {}
        """Member id -> [its latest update, transmissions left]: a newer update replaces an older one."""
        self._seq = 0
        self._probe: Probe | None = None
        self._order: list[str] = []
        self._relays: dict[int, tuple[str, int, float]] = {}
        """Our ping's seq -> (requester's address, its seq, expiry) for indirect probes we carry."""
        now = clock()
        self._next_probe = now
        self._next_sync = now

    @property
    def id(self) -> str:
        return self.info["id"]

    def view(self) -> list[dict]:
        """Every member known, this node first."""
        own = {**self.info, "incarnation": self.incarnation, "state": ALIVE}
        return [own, *(member.describe() for member in self.members.values())]

    def update_self(self, info: dict) -> None:
        """New facts about this node (capacity, health, raft state) go out under a new incarnation."""
        if info != self.info:
            self.info = info
            self.incarnation += 1
            self._queue(self._alive_of_self())

    # Driving the protocol.
    def tick(self) -> None:
        now = self._clock()
        self._expire_suspicions(now)
        probe = self._probe
        if probe is not None and not probe.indirect and now >= probe.sent + self._timing.probe_timeout:
            self._probe_indirectly(probe)
        if now >= self._next_probe:
            if self._probe is not None:
                self._suspect(self._probe.target, now)
            self._probe = None
            self._start_probe(now)
            self._next_probe = now + self._timing.probe_interval
        if now >= self._next_sync:
            self._next_sync = now + self._timing.sync_interval
            self.sync(self._sync_target())
        self._relays = {seq: relay for seq, relay in self._relays.items() if relay[2] > now}

    def sync(self, address: str | None) -> None:
        """Send our whole view over the reliable channel; the answer is the peer's."""
        if address is not None:
            self._transport.send(address, self.full_state("sync"), reliable=True)

    def full_state(self, kind: str) -> dict:
        return {
            "type": kind,
            "from": self._sender(),
            "updates": [self._alive_of_self()] + [self._update_of(member) for member in self.members.values()],
            "voters": self.voters,
        }

    def receive(self, message: dict) -> dict | None:
        """Handle one authenticated message; returns the direct answer of a sync."""
        now = self._clock()
        sender = message.get("from")
        sender = sender if isinstance(sender, dict) else {}
        updates = message.get("updates")
        for update in updates if isinstance(updates, list) else ():
            self._apply(update, now)
        self._note_sender(sender)
        kind = message.get("type")
        address = sender.get("gossip") if isinstance(sender.get("gossip"), str) else None
        if kind == "ping" and address:
            self._transport.send(address, self._message("ack", seq=message.get("seq")), message.get("reliable", False))
        elif kind == "ping-req" and address and message.get("target"):
            seq = self._next_seq()
            self._relays[seq] = (address, message.get("seq"), now + self._timing.probe_interval)
            self._transport.send(message["target"], self._message("ping", seq=seq))
        elif kind == "ack":
            seq = message.get("seq")
            if self._probe is not None and seq == self._probe.seq:
                self._probe = None
            relay = self._relays.pop(seq, None)
            if relay is not None:
                self._transport.send(relay[0], self._message("ack", seq=relay[1]))
        elif kind == "sync":
            return self.full_state("sync-reply")
        return None

    # Probing.
    def _start_probe(self, now: float) -> None:
        target = self._next_target()
        if target is None:
            return
        probe = Probe(target, self._next_seq(), now)
        self._probe = probe
        self._transport.send(self.members[target].info["gossip"], self._message("ping", seq=probe.seq))

    def _next_target(self) -> str | None:
        while True:
            if not self._order:
                self._order = [ident for ident, member in self.members.items() if member.state != DEAD]
                if not self._order:
                    return None
                self._rng.shuffle(self._order)
            ident = self._order.pop()
            member = self.members.get(ident)
            if member is not None and member.state != DEAD:
                return ident

    def _probe_indirectly(self, probe: Probe) -> None:
        probe.indirect = True
        target = self.members[probe.target].info["gossip"]
        helpers = [m for ident, m in self.members.items() if ident != probe.target and m.state == ALIVE]
        for helper in self._rng.sample(helpers, min(self._timing.indirect_probes, len(helpers))):
            self._transport.send(helper.info["gossip"], self._message("ping-req", seq=probe.seq, target=target))
        # NOTE: a datagram may be lost where a stream gets through (a firewall, a full buffer).
        self._transport.send(target, self._message("ping", seq=probe.seq, reliable=True), reliable=True)

    # Updates.
    def _apply(self, update: dict, now: float) -> None:
        kind = update.get("kind")
        incarnation = update.get("incarnation")
        info = update.get("member") if kind == ALIVE else None
        if kind == ALIVE and not isinstance(info, dict):
            return
        ident = info.get("id") if kind == ALIVE else update.get("id")
        if kind not in STATES or not isinstance(ident, str) or not isinstance(incarnation, int):
            return
        if ident == self.id:
            if kind != ALIVE and incarnation >= self.incarnation:
                # Refute: whoever suspects us learns we are alive under a higher incarnation.
                self.incarnation = incarnation + 1
                self._queue(self._alive_of_self())
            return
        member = self.members.get(ident)
        if kind == ALIVE:
            if not isinstance(info.get("gossip"), str):
                return
            if member is None:
                self.members[ident] = member = Member(info, incarnation, ALIVE, now)
            elif incarnation > member.incarnation:
                member.info, member.incarnation, member.state, member.since = info, incarnation, ALIVE, now
            else:
                return
        elif member is None:
            return
        elif kind == SUSPECT:
            if incarnation < member.incarnation or member.state == DEAD:
                return
            if incarnation == member.incarnation and member.state == SUSPECT:
                return
            member.incarnation, member.state, member.since = incarnation, SUSPECT, now
        else:
            if incarnation < member.incarnation or (member.state == DEAD and incarnation == member.incarnation):
                return
            member.incarnation, member.state, member.since = incarnation, DEAD, now
        self._queue(self._update_of(member))

    def _suspect(self, ident: str, now: float) -> None:
        member = self.members.get(ident)
        if member is not None and member.state == ALIVE:
            self._apply({"kind": SUSPECT, "id": ident, "incarnation": member.incarnation}, now)

    def _expire_suspicions(self, now: float) -> None:
        for ident, member in list(self.members.items()):
            if member.state == SUSPECT and now - member.since >= self._timing.suspicion_timeout:
                self._apply({"kind": DEAD, "id": ident, "incarnation": member.incarnation}, now)

    def _note_sender(self, sender: dict) -> None:
        """A member we hold suspect or dead is talking: tell it (our answer carries the news),
        so it refutes; one we do not know yet gets our view, and answers with its own."""
        ident = sender.get("id")
        if not isinstance(ident, str) or ident == self.id:
            return
        member = self.members.get(ident)
        if member is None:
            if isinstance(sender.get("gossip"), str):
                self.sync(sender["gossip"])
        elif member.state != ALIVE and member.incarnation >= (sender.get("incarnation") or 0):
            self._queue(self._update_of(member))

    def _queue(self, update: dict) -> None:
        ident = update["member"]["id"] if update["kind"] == ALIVE else update["id"]
        limit = self._timing.retransmit_factor * max(1, math.ceil(math.log2(len(self.members) + 2)))
        self._broadcasts[ident] = [update, limit]

    def _piggyback(self) -> list[dict]:
        """The updates sent the fewest times so far, each counted once more."""
        chosen = sorted(self._broadcasts.items(), key=lambda item: -item[1][1])[:MAX_PIGGYBACK]
        updates = []
        for ident, entry in chosen:
            updates.append(entry[0])
            entry[1] -= 1
            if entry[1] <= 0:
                del self._broadcasts[ident]
        return updates

    # Messages.
    def _message(self, kind: str, **fields) -> dict:
        return {"type": kind, "from": self._sender(), "updates": self._piggyback(), **fields}

    def _sender(self) -> dict:
        return {"id": self.id, "gossip": self.info["gossip"], "incarnation": self.incarnation}

    def _alive_of_self(self) -> dict:
        return {"kind": ALIVE, "member": self.info, "incarnation": self.incarnation}

    @staticmethod
    def _update_of(member: Member) -> dict:
        if member.state == ALIVE:
            return {"kind": ALIVE, "member": member.info, "incarnation": member.incarnation}
        return {"kind": member.state, "id": member.info["id"], "incarnation": member.incarnation}

    def _sync_target(self) -> str | None:
        """A random member's address, the dead included, or a seed no member answers for yet."""
        known = {member.info["gossip"] for member in self.members.values()}
        candidates = sorted((known | self.seeds) - {self.info["gossip"]})
        return self._rng.choice(candidates) if candidates else None

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq
