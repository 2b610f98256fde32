"""The raft log, on PySyncObj: the only module that imports it.

The replicated state machine holds no Python state of its own: LMDB is the state. Each log
entry is a batch of commands; applying it is one LMDB transaction that also records the
entry's raft index, so a replay after a restart skips what LMDB already holds.

Compaction. LMDB is already the durable state, with the applied index in the same
transaction, so a dump (PySyncObj's "full dump", the snapshot of the raft papers) holds only
raft's bookkeeping: the index it covers, the last two entries and the members, plus the
replica index those entries amount to and the internal endpoint of the node that wrote it. It
is a few hundred bytes, written in the tick thread after LMDB is synced, and its cost does
not grow with the metadata. The log is compacted by entry count, by time, and once the entries
kept in memory pass COMPACTION_BYTES (PySyncObj keeps every entry in a list until then).

Catching up. A member that needs entries the log no longer holds (new, wiped, far behind) is
sent the dump through PySyncObj's own install-snapshot path: `serialized` append_entries
messages carry it (one message), `setTransmissionData` puts it in place and `__loadDumpFile`
hands it to `_read_dump`, which resets the log to the dump and returns at once. When the
replica's applied index is behind the dump's replica index, `_read_dump` starts a catch-up
thread, which fetches an image of a peer's replica (the dump's writer first) over the
inter-node HTTP endpoint, in ranges that resume after a broken connection, and installs it.
Until then the member stores and acknowledges the entries after the dump but applies none of
them (`_SyncObj__applyLogEntries` is held) and calls no election (it still votes), so the tick
thread never waits for the copy and a leader is always one that can apply. The same check at
start covers a crash during a catch-up. Why not the dump itself: PySyncObj sends a dump in
messages of the raft connection from the leader's tick thread, restarts it from its first byte
whenever it is cut, and loads it in the tick thread of the receiver, so an image inside it
took longer than an election to install and grew with every object.

Elections. A follower whose election timeout passes first asks the others whether they would
vote for it (pre-vote, `PreVote`), so a member coming back from a cut or a restart with a log
behind never deposes a working leader.

Reads are fenced without log entries (Raft's ReadIndex, section 6.4 of Ongaro's thesis): the
leader records its commit index, proves it is still the leader with one round of read pings a
majority of voters answers, and the asking member reads once its replica has applied that index.
A follower holding a read lease needs no round (lease.py): the hooks `leases` is called through
cap the leader's commit index and keep the follower's lease page current.

With mTLS between nodes (internal_tls_*), every raft connection, the leader's handover
request included, goes through a TLS tunnel beside PySyncObj (`rafttls`, `TunnelledTransport`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import queue
import random
import struct
import threading
import time
from collections.abc import Callable
from typing import BinaryIO, NamedTuple, Protocol

from cryptography.fernet import MultiFernet
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj import pickle as raft_pickle
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.encryptor import getEncryptor
from pysyncobj.monotonic import monotonic
from pysyncobj.node import TCPNode
from pysyncobj.transport import TCPTransport
from pysyncobj.utility import TcpUtility, UtilityException

from nebulaio.cluster.journal import DurableJournal
from nebulaio.cluster.rafttls import LOOPBACK, RaftTunnel
from nebulaio.util.durable import fsync_directory

log = logging.getLogger("nebulaio.raft")

ApplyBatch = Callable[[int, list], list | None]
FetchImage = Callable[[int, str | None, str], None]
"""fetch(replica index, preferred source, path): put at `path` an image of a peer's replica
applied up to that index or later; raises when no peer could provide one."""

PARTNER_STATUS = "partner_node_status_server_"
"""getStatus() names each voting partner's connection state by this prefix and its address."""
CONNECTED = 2
LEADER = 2
"""getStatus()'s state of a leader."""
IDLE_TICK = 0.05
BUSY_TICK = 0.001
RAFT_MIN_TIMEOUT = 0.5
RAFT_MAX_TIMEOUT = 0.9
LEADER_LOST_ELECTION = 0.2
"""Seconds within which a follower calls an election once its connection to the leader broke."""
CONNECTION_TIMEOUT = 2.0
"""Seconds without a message after which PySyncObj drops a connection."""
KEEPALIVE_PERIOD = CONNECTION_TIMEOUT / 4
KEEPALIVE = {"type": "keepalive"}
SNAPSHOT_CHUNK = 1 << 20
"""Bytes of a dump sent in one message (a dump is far smaller: one message)."""
COMPACTION_BYTES = 32 << 20
"""Bytes of entries appended since the last compaction that force the next one."""
CATCH_UP_RETRY = 1.0
"""Seconds between two attempts to fetch an image when no peer could provide one."""

DUMP_MAGIC = b"NEBULAIO-DUMP-2\n"
"""A dump is DUMP_MAGIC | pickled (index, replica index, source, raft bookkeeping): see Dump."""
IMAGE_DUMP_MAGIC = b"NEBULAIO-DUMP-1\n"
IMAGE_DUMP_HEADER = struct.Struct(">Q")
"""An earlier version's dump: IMAGE_DUMP_MAGIC | header length | pickled (index, raft bookkeeping) | image."""
DENIED = FAIL_REASON.REQUEST_DENIED
"""The failure of a membership change the leader refuses (one in progress, or itself removed)."""
HANDOVER_CALL_TIMEOUT = 2.0
"""Seconds the leader has to answer a request to hand its leadership over."""
READ_INDEX_RESEND = 0.3
"""Seconds without an answer before a read index is asked again (of the leader, or of the voters)."""
READ_PING, READ_PONG = "nebulaio_read_ping", "nebulaio_read_pong"
READ_ASK, READ_ANSWER = "nebulaio_read_ask", "nebulaio_read_answer"
"""Read index messages, beside PySyncObj's own on its raft connections."""
PRE_VOTE, PRE_VOTE_GRANT = "nebulaio_pre_vote", "nebulaio_pre_vote_grant"


class Replica(Protocol):
    """What the log needs of the state machine's storage to compact and to catch up."""

    def applied_index(self) -> int: ...

    def sync(self) -> None: ...

    def install(self, image_path: str) -> int: ...

    def reset(self) -> None: ...


class MetadataLog(SyncObj):
    """A raft member whose entries are command batches applied by `apply_batch`."""

    def __init__(
        self,
        self_address: str,
        peers: list[str],
        raft_dir: str,
        passwords: list[str],
        apply: ApplyBatch,
        replica: Replica,
        fetch_image: FetchImage,
        image_address: str | None,
        compaction_entries: int,
        compaction_seconds: float,
        bind_address: str | None = None,
        tunnel: RaftTunnel | None = None,
    ):
        """`passwords`: the current one first, then those only accepted (a cluster secret being
        rotated); `image_address`: this node's internal endpoint, which serves images of its replica;
        `tunnel`: with mTLS between nodes, what carries every raft connection (see rafttls)."""
        self._tunnel = tunnel
        self._apply = apply
        self._replica = replica
        self._fetch_image = fetch_image
        self._image_address = image_address
        self._raft_dir = raft_dir
        self._keyring = MultiFernet([getEncryptor(password) for password in passwords])
        self._dump_path = os.path.join(raft_dir, "dump")
        self._partial_path = self._dump_path + ".partial"
        self._catch_up_lock = threading.Lock()
        self._catching_up: tuple[int, str | None] | None = None
        """(replica index, source) of the image the replica waits for."""
        self._catcher: threading.Thread | None = None
        self._entry_bytes = 0
        self._counted_to = 0
        os.makedirs(raft_dir, exist_ok=True)
        conf = SyncObjConf(
            # PERF: without batching a commit takes ~1 ms instead of waiting for the next
            # append-entries period (~100 ms); the supervisor batches commands itself.
            appendEntriesUseBatch=False,
            journalFile=os.path.join(raft_dir, "journal"),
            fullDumpFile=self._dump_path,
            serializer=self._write_dump,
            deserializer=self._read_dump,
            serializeChecker=self._dump_state,
            password=passwords[0],
            bindAddress=bind_address if tunnel is None else f"{LOOPBACK}:0",
            raftMinTimeout=RAFT_MIN_TIMEOUT,
            raftMaxTimeout=RAFT_MAX_TIMEOUT,
            appendEntriesPeriod=0.1,
            connectionTimeout=CONNECTION_TIMEOUT,
            connectionRetryTime=1.0,
            leaderFallbackTimeout=5.0,
            logCompactionMinEntries=compaction_entries,
            logCompactionMinTime=compaction_seconds,
            logCompactionBatchSize=SNAPSHOT_CHUNK,
            dynamicMembershipChange=True,
            autoTick=False,
        )
        self._dump_result = SERIALIZER_STATE.NOT_SERIALIZING
        self._stopping = threading.Event()
        self._outstanding = 0
        self._outstanding_lock = threading.Lock()
        self.leases = None
        """Read leases (lease.ReadLeases), once the supervisor has set them up."""
        if tunnel is None:
            super().__init__(self_address, peers, conf)
        else:
            transport = functools.partial(TunnelledTransport, tunnel=tunnel, listen_address=bind_address)
            super().__init__(self_address, peers, conf, transportClass=transport)
        self._reads = ReadIndex(self)
        self._pre_vote = PreVote(self)
        self._journal = self._make_journal_durable(conf.journalFile)
        self._trust_only_the_log()
        transport = self._SyncObj__transport
        transport.setOnMessageReceivedCallback(self._on_message)
        transport.setOnNodeDisconnectedCallback(self._on_node_disconnected)
        self.addOnTickCallback(self._count_entry_bytes)
        self.addOnTickCallback(self._stay_follower_while_catching_up)
        if self_address is not None and not peers and self._SyncObj__raftCurrentTerm == 0:
            # PERF: a voter alone that never saw a term has nobody to wait for or to split a
            # vote with: it leads at its first tick instead of after an election timeout
            # (0.5-0.9 s, most of a new node's start-up).
            self._SyncObj__raftElectionDeadline = monotonic()
        self._ticker = threading.Thread(target=self._tick_loop, name="raft-tick", daemon=True)
        self._ticker.start()

    def _tick_loop(self) -> None:
        """Drive PySyncObj ourselves so a commit never waits out a tick period.

        PERF: a PySyncObj tick appends new commands at its end and then sleeps in poll()
        until a socket wakes it. In a cluster a follower's answer does; a member alone has
        nobody to answer, so each commit waited a whole tick (~50 ms measured), and a
        command arriving just after a tick read its queue waited as long. So the loop ticks
        again at once while entries wait to be synced or commands to be appended; with peers
        and a proposal outstanding it waits at most a millisecond for their answers. Alone it
        does not spin otherwise: a new proposal wakes its poll. Idle, it wakes
        at its election deadline rather than up to a tick after it, so that two followers
        that lost their leader together rarely call their elections at the same moment.
        """
        keepalive = 0.0
        while not self._stopping.is_set():
            try:
                # Before the tick counts this member towards a majority for the entries it
                # appended (the leader counts itself), they are on disk.
                self._journal.sync()
                self._pre_vote.hold_election()
                self.doTick(0.0)
                self._reads.tick()
                if monotonic() >= keepalive:
                    keepalive = monotonic() + KEEPALIVE_PERIOD
                    self._keep_links_alive()
                if self._journal.unsynced or self._commands_waiting() or self._pre_vote.may_campaign():
                    continue
                # A leader holding a committed entry back for a lease holder ticks again soon:
                # the acknowledgement that releases it may have been read at the end of this
                # tick, after the commit index was computed, and no message would wake the poll.
                if self.otherNodes and (self._outstanding or (self.leases is not None and self.leases.holding_back())):
                    self._poller.poll(BUSY_TICK)
                else:
                    until_election = self._SyncObj__raftElectionDeadline - monotonic()
                    self._poller.poll(until_election if 0 < until_election < IDLE_TICK else IDLE_TICK)
            except Exception:
                log.exception("raft tick failed")
                self._stopping.wait(IDLE_TICK)
        self._doDestroy()

    def _commands_waiting(self) -> bool:
        """Whether proposals wait in PySyncObj's queue for the next tick to append them: the
        tick's own poll may have taken the wake-up their arrival sent."""
        return bool(self._SyncObj__commandsQueue._FastQueue__queue)

    def stop(self) -> None:
        self._stopping.set()
        self._ticker.join()

    @replicated
    def apply_batch(self, commands):
        # NOTE: runs in the tick thread on every member; the entry being applied is the one
        # after raftLastApplied (PySyncObj increments it once this returns).
        # An entry is applied once committed, and this member's copy of it was synced before
        # it counted towards that commit (the tick loop, a follower's acknowledgement).
        index = self.raftLastApplied + 1
        try:
            return self._apply(index, commands)
        except BaseException:
            # The entry would count as applied while LMDB lacks it: stop now, and the
            # restart replays it from the journal.
            log.critical("applying raft entry %d failed; stopping so a restart replays it", index, exc_info=True)
            logging.shutdown()
            os._exit(70)

    def _make_journal_durable(self, path: str) -> DurableJournal:
        """Reopen PySyncObj's journal file as a DurableJournal, before the first tick."""
        self._SyncObj__raftLog._destroy()
        self._SyncObj__raftLog = DurableJournal(path)
        return self._SyncObj__raftLog

    def _trust_only_the_log(self) -> None:
        """At start, claim nothing beyond the end of the log: neither a commit index nor a replica.

        Both run ahead of the log only when it lost synced entries (see replica_ahead_of_log).
        A leader whose commit index lies beyond its log would never commit (nor count as
        ready) again; the replica is rebuilt as a new member's is, from this member's dump
        and log, then from the leader, so no entry re-using a lost index is skipped.
        """
        log_end = self._journal[-1][1]
        if self.raftCommitIndex > log_end:
            log.warning("the raft commit index %d lies beyond the log's end %d", self.raftCommitIndex, log_end)
            self._SyncObj__raftCommitIndex = log_end
            self._journal.setRaftCommitIndex(log_end)
        applied = self._replica.applied_index()
        if replica_ahead_of_log(applied, log_end):
            log.warning("the replica applied raft index %d but the log ends at %d: emptying it", applied, log_end)
            self._replica.reset()

    def _SyncObj__sendNextNodeIdx(self, node, reset=False, nextNodeIdx=None, success=False):
        """A follower's answer to the leader's entries: the journal is synced before a success.

        NOTE: overrides PySyncObj's private method of that name; it answers once per
        append-entries message, so one sync covers all the entries the message carried.
        """
        if success:
            self._journal.sync()
        if self.leases is not None:
            self.leases.acknowledging(self._journal[-1][1])
        SyncObj._SyncObj__sendNextNodeIdx(self, node, reset=reset, nextNodeIdx=nextNodeIdx, success=success)

    def _on_message(self, node, message: dict) -> None:
        """PySyncObj's message handler, with Raft's rule for entries a follower already holds.

        NOTE: PySyncObj's follower drops every entry after the leader's prevLogIdx before it
        appends, so an entry sent twice was truncated and appended again, applied or not
        ("state machine may have diverged"); and its leader, on each acknowledgement, moved
        the next entry to send back to the one after the acknowledged entry, re-sending every
        entry already in flight. Here the follower keeps what it holds with the same term and
        the leader never moves a follower's next entry back on a success.
        """
        if self._reads.receive(node, message) or self._pre_vote.receive(node, message):
            return
        kind = message.get("type")
        if kind == KEEPALIVE["type"]:
            return
        if kind == "append_entries" and "prevLogIdx" in message and message["term"] >= self.raftCurrentTerm:
            message = self._without_held_entries(node, message)
            if message is None:
                return
        elif kind == "next_node_idx" and message["success"] and not message["reset"] and self._isLeader():
            next_index = self._SyncObj__raftNextIndex
            in_flight = next_index.get(node)
            self._SyncObj__onMessageReceived(node, message)
            if in_flight is not None and next_index.get(node, in_flight) < in_flight:
                next_index[node] = in_flight
            return
        self._SyncObj__onMessageReceived(node, message)

    def _without_held_entries(self, node, message: dict) -> dict | None:
        """The leader's append-entries message without the leading entries this member holds
        with the same term, for PySyncObj to truncate only from the first entry whose term
        differs; None when nothing is left to do (answered here).
        """
        transmission = message.get("transmission")
        if transmission in ("start", "process"):
            return message
        if transmission == "finish":
            # An entry too large for one message, whole at last: handled as if it came alone.
            entry = raft_pickle.loads(self._SyncObj__recvTransmission + message["data"])
            self._SyncObj__recvTransmission = ""
            message = {name: value for name, value in message.items() if name not in ("transmission", "data")}
            message["entries"] = [entry]
        entries = message.get("entries", [])
        held = held_prefix(entries, self._term_at)
        if held:
            _, last_index, last_term = entries[held - 1]
        elif entries or self._term_at(message["prevLogIdx"]) != message["prevLogTerm"]:
            return message  # nothing held: PySyncObj checks prevLogIdx and appends
        else:
            last_index, last_term = message["prevLogIdx"], message["prevLogTerm"]
        rest = entries[held:]
        if rest or self._journal[-1][1] == last_index:
            return {**message, "prevLogIdx": last_index, "prevLogTerm": last_term, "entries": rest}
        # Every entry is held and more follow them: they stay (none conflicts), but neither the
        # answer nor the commit index may vouch for more than the message did.
        header = {"type": "append_entries", "term": message["term"]}
        self._SyncObj__onMessageReceived(node, {**header, "commit_index": min(message["commit_index"], last_index)})
        self._SyncObj__sendNextNodeIdx(node, nextNodeIdx=last_index + 1, success=True)
        return None

    def _term_at(self, index: int) -> int | None:
        """The term of this member's log entry at `index`; None when the log does not hold it."""
        entries = self._SyncObj__getEntries(index, 1)
        return entries[0][2] if entries else None

    def _keep_links_alive(self) -> None:
        """Send every connected voter a message, so that no link between voters falls silent.

        NOTE: PySyncObj drops a connection on which nothing was read for connectionTimeout,
        and checks that only when it sends. Two followers exchange nothing while a leader
        lasts, so the first vote request one sent the other after losing their leader
        dropped their connection and was lost, and the election failed: a failover took two
        elections and a reconnection. PySyncObj ignores a message of a type it does not know.
        """
        for node in self.otherNodes:
            if self.isNodeConnected(node):
                self._SyncObj__transport.send(node, KEEPALIVE)

    def _on_node_disconnected(self, node) -> None:
        """A follower whose connection to its leader breaks calls an election soon, not after
        the whole election timeout.

        PERF: a leader process that dies (kill -9, a crash) has its connections closed at
        once, and waiting out the election timeout was most of a failover. Each follower
        picks a random moment within LEADER_LOST_ELECTION, so they rarely split the vote. A
        partition closes nothing: there the election timeout still decides.
        """
        self._SyncObj__onNodeDisconnected(node)
        if self.selfNode is not None and not self._isLeader() and node == self._getLeader():
            soon = monotonic() + random.uniform(0.0, LEADER_LOST_ELECTION)
            self._SyncObj__raftElectionDeadline = min(self._SyncObj__raftElectionDeadline, soon)

    def propose(self, commands: list, callback: Callable[[object, int], None]) -> None:
        """Append a batch to the log; `callback(result, error)` runs once it is applied here."""

        def settled(result, error):
            with self._outstanding_lock:
                self._outstanding -= 1
            callback(result, error)

        with self._outstanding_lock:
            self._outstanding += 1
        self.apply_batch(commands, callback=settled)

    def read_index(self, callback: Callable[[str | None], None], timeout: float) -> None:
        """Call `callback(None)` once this replica holds every entry committed before this call,
        or `callback(reason)` when that is not known within `timeout` seconds.

        Appends nothing to the log; concurrent calls share one round of the leader's pings.
        `callback` runs in the tick thread: it must not block.
        """
        if self._reads.ask(callback, timeout):
            self._SyncObj__pipeNotifier.notify()

    def change_membership(self, action: str, address: str, callback: Callable[[object, int], None]) -> None:
        """Add or remove a voter ("add" / "remove" its raft address) through the log.

        PySyncObj forwards the change to the leader, which takes one change at a time and
        denies removing itself; `callback(result, error)` runs once the entry is applied here.
        """
        change = self.addNodeToCluster if action == "add" else self.removeNodeFromCluster
        change(address, callback=callback)

    @property
    def encryptor(self) -> MultiFernet:
        """What every raft connection seals and opens with: PySyncObj's single password's Fernet
        key becomes a ring, whose current key seals and whose every key opens, so members can
        move to a new cluster secret one by one (a rotation) and still talk."""
        return self._keyring

    def ask_to_hand_over(self, leader: str) -> bool:
        """Ask the leader (its raft address) to hand its leadership to another voter.

        The leader picks its most caught-up connected voter and sends it raft's TimeoutNow:
        that voter calls an election at once and wins it, with no election timeout waited
        out. PySyncObj takes the request only on the leader, so it travels over raft's own
        utility channel, sealed with the raft password (and through the tunnel with mTLS).
        True once the leader has sent TimeoutNow; it refuses while no other voter holds its
        whole log. Blocks: call it from a thread.
        """
        utility = TcpUtility(timeout=HANDOVER_CALL_TIMEOUT)
        utility._TcpUtility__connection.encryptor = self._keyring
        target = leader if self._tunnel is None else TunnelledNode(leader, self._tunnel)
        try:
            answer = utility.executeCommand(target, ["transfer"])
        except UtilityException:
            return False
        return isinstance(answer, str) and answer.startswith("SUCCESS")

    def is_leader(self) -> bool:
        """Whether this member leads now: cheaper than status(), for loops that only the leader runs."""
        return self._isLeader()

    def status(self) -> dict:
        raw = self.getStatus()
        leader = raw.get("leader")
        return {
            "self": str(raw.get("self")),
            "state": {0: "follower", 1: "candidate", 2: "leader"}.get(raw.get("state"), "unknown"),
            "leader": str(leader) if leader is not None else None,
            "term": raw.get("raft_term"),
            "commit_index": raw.get("commit_idx"),
            "last_applied": raw.get("last_applied"),
            "ready": self.isReady() and leader is not None and self._catching_up is None,
            "read_rounds": self._reads.rounds,
            "pre_vote_rounds": self._pre_vote.rounds,
            "members": [{"address": str(raw.get("self")), "self": True, "connected": True}]
            + [
                {"address": name.removeprefix(PARTNER_STATUS), "self": False, "connected": value == CONNECTED}
                for name, value in raw.items()
                if name.startswith(PARTNER_STATUS)
            ],
        }

    def leader_reachable(self) -> bool:
        """Whether an entry proposed here can reach a leader able to commit it.

        NOTE: PySyncObj keeps a follower cut off from every peer on its last leader (it calls
        no election it cannot win) and parks what it forwards there until the leader changes,
        while a leader keeps its state for `leaderFallbackTimeout` after losing its majority.
        A lost connection is noticed after `connectionTimeout` without a message.
        """
        raw = self.getStatus()
        connected = {
            name.removeprefix(PARTNER_STATUS)
            for name, value in raw.items()
            if name.startswith(PARTNER_STATUS) and value == CONNECTED
        }
        if raw.get("state") == LEADER:
            voters = 1 + sum(name.startswith(PARTNER_STATUS) for name in raw)
            return 2 * (1 + len(connected)) > voters
        leader = raw.get("leader")
        return leader is not None and str(leader) in connected

    # Dumps (PySyncObj's "full dump" is the snapshot of the raft papers).
    def _write_dump(self, filename: str, raft_data) -> None:
        """Write a dump at the last applied entry, in the tick thread: a few hundred bytes.

        Every entry up to raftLastApplied is applied (apply commits synchronously) and no other
        is; LMDB commits without syncing its meta page, so it is synced first: the entries this
        dump lets PySyncObj drop must stay applied through a power cut.

        NOTE: PySyncObj renames `filename` over the dump once this returns. Nothing is written
        there, so that rename fails (PySyncObj catches it and asks the serialize checker); the
        dump is put in place here, durably, before the checker lets the entries go.
        """
        index = raft_data[0][1]
        started = time.monotonic()
        try:
            self._replica.sync()
            with open(self._partial_path, "wb") as fh:
                fh.write(encode_dump(index, self._replica_floor(), self._image_address, raft_data))
                fh.flush()
                os.fsync(fh.fileno())
                size = fh.tell()
            os.replace(self._partial_path, self._dump_path)
            fsync_directory(self._raft_dir)
            self._dump_result = SERIALIZER_STATE.SUCCESS
            log.info("raft dump at index %d: %d bytes in %.3f s", index, size, time.monotonic() - started)
        except Exception:
            log.exception("writing the raft dump at index %d failed", index)
            self._dump_result = SERIALIZER_STATE.FAILED
        self._entry_bytes = 0

    def _dump_state(self) -> int:
        """The serialize checker: the outcome of the last dump, told once."""
        state, self._dump_result = self._dump_result, SERIALIZER_STATE.NOT_SERIALIZING
        return state

    def _read_dump(self, filename: str):
        """Raft's bookkeeping for PySyncObj; starts a catch-up when the replica lacks what the dump covers.

        PySyncObj loads the dump at start (this node's own, or one received just before a
        crash) and whenever the leader has sent one: a member that fell behind the compacted
        log, a new member, a wiped disk, or a restart before a catch-up had finished.
        """
        # A received dump is renamed into place unsynced; PySyncObj then rewrites the journal after it.
        with open(filename, "rb") as fh:
            os.fsync(fh.fileno())
            dump = read_dump(fh)
        fsync_directory(self._raft_dir)
        if dump.replica_index > self._replica.applied_index():
            self._catch_up(dump.replica_index, dump.source)
        return dump.raft_data

    def _replica_floor(self) -> int:
        """The replica index every entry up to raftLastApplied amounts to: LMDB's, or the image's
        a catch-up waits for (a dump taken meanwhile is completed by the same catch-up)."""
        with self._catch_up_lock:
            waiting = self._catching_up[0] if self._catching_up is not None else 0
        return max(waiting, self._replica.applied_index())

    def _count_entry_bytes(self) -> None:
        """A tick callback: force a compaction once the entries kept in memory pass COMPACTION_BYTES.

        PySyncObj compacts by entry count and time only, and an entry is a batch of any size.
        """
        journal = self._SyncObj__raftLog
        last = journal[-1][1]
        if last <= self._counted_to:
            self._counted_to = min(self._counted_to, last)
            return
        first = journal[0][1]
        for position in range(max(self._counted_to + 1, first) - first, len(journal)):
            self._entry_bytes += len(journal[position][0])
        self._counted_to = last
        if self._entry_bytes >= COMPACTION_BYTES:
            self.forceLogCompaction()

    # Catching up past the compacted log.
    def _catch_up(self, replica_index: int, source: str | None) -> None:
        """Have the replica brought to `replica_index` from a peer's image, outside the tick thread.

        Until it is installed, entries after the dump are received, stored and acknowledged
        but not applied (see `_SyncObj__applyLogEntries`), and the member is not ready.
        """
        with self._catch_up_lock:
            if self._catching_up is not None:
                replica_index = max(replica_index, self._catching_up[0])
            self._catching_up = (replica_index, source)
            if self._catcher is None:
                log.info("the replica needs an image at raft index %d or later; fetching one", replica_index)
                self._catcher = threading.Thread(target=self._catch_up_loop, name="raft-catch-up", daemon=True)
                self._catcher.start()

    def _catch_up_loop(self) -> None:
        image_path = os.path.join(self._raft_dir, "image.mdb")
        while not self._stopping.is_set():
            with self._catch_up_lock:
                replica_index, source = self._catching_up
            started = time.monotonic()
            try:
                self._fetch_image(replica_index, source, image_path)
                installed = self._replica.install(image_path)
            except Exception as exc:
                log.warning("catching up to raft index %d failed, retrying: %s", replica_index, exc)
                self._stopping.wait(CATCH_UP_RETRY)
                continue
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(image_path)
            log.info("installed an image at raft index %d in %.2f s", installed, time.monotonic() - started)
            with self._catch_up_lock:
                if installed >= self._catching_up[0]:
                    self._catching_up = self._catcher = None
                    return

    def replica_current(self) -> bool:
        """Whether the replica holds every entry up to raftLastApplied (not waiting for an image)."""
        return self._catching_up is None

    def _stay_follower_while_catching_up(self) -> None:
        """A tick callback: a member waiting for an image calls no election (it still votes).

        As leader it could commit entries but apply none until the image is in, so every
        write would wait for the copy.
        """
        if self._catching_up is not None:
            self._SyncObj__raftElectionDeadline = monotonic() + RAFT_MAX_TIMEOUT

    def _SyncObj__applyLogEntries(self) -> bool:
        """PySyncObj's apply step, held while the replica waits for an image: the entries after
        the dump apply on top of it, never on the stale replica (those it already holds are
        skipped by index). A leader first caps its commit index for read leases (lease.py):
        it applies and sends no entry a lease holder lacks.

        NOTE: runs right after PySyncObj's leader computed its commit index, before it sends it.
        """
        leases = self.leases
        if leases is not None and self._isLeader():
            self._SyncObj__raftCommitIndex = leases.exposable(self._SyncObj__raftCommitIndex)
        if self._catching_up is not None:
            return False
        more = super()._SyncObj__applyLogEntries()
        if leases is not None:
            leases.applied(self.raftLastApplied)
        return more

    def _SyncObj__setCurrentTerm(self, term, votedForNodeId):
        """NOTE: overrides PySyncObj's private method: a new term ends this member's read lease
        before it answers anyone in that term."""
        if self.leases is not None:
            self.leases.new_term(term)
        SyncObj._SyncObj__setCurrentTerm(self, term, votedForNodeId)


class TunnelledNode(TCPNode):
    """A raft member reached through the mTLS tunnel: its identity is still its raft address,
    but a connection to it goes to the tunnel's loopback forwarder for that address."""

    def __init__(self, address: str, tunnel: RaftTunnel):
        super().__init__(address, tunnel=tunnel)

    @property
    def ip(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        return self.tunnel.forwarder(self.address)


class TunnelledTransport(TCPTransport):
    """PySyncObj's TCP transport with every connection carried by the mTLS tunnel (rafttls):
    its server listens on loopback behind the tunnel's listener on `listen_address`, and it
    connects to each member through that member's forwarder.

    NOTE: the members themselves stay plain TCPNodes (not a `nodeClass` of PySyncObj's):
    membership changes and dumps pickle them into the log, and a node there must not carry
    this process's tunnel, nor bypass it when it comes back from an older entry.
    """

    def __init__(self, syncObj, selfNode, otherNodes, tunnel: RaftTunnel, listen_address: str | None):
        self._tunnel = tunnel
        self._listen_address = listen_address
        self._routes: dict[str, TunnelledNode] = {}
        super().__init__(syncObj, selfNode, otherNodes)

    def _maybeBind(self):
        """PySyncObj's, and once its loopback server is bound, the tunnel's listener in front of it."""
        bound = self._ready
        super()._maybeBind()
        if self._ready and not bound and self._listen_address is not None:
            self._tunnel.listen(self._listen_address, self._server._TcpServer__socket.getsockname()[1])

    def _connectIfNecessarySingle(self, node):
        """PySyncObj's, connecting to the member's forwarder: the node it is given is replaced
        by an equal one (same address) whose ip and port are the forwarder's."""
        route = self._routes.get(node.id)
        if route is None:
            route = self._routes[node.id] = TunnelledNode(node.address, self._tunnel)
        return super()._connectIfNecessarySingle(route)


def held_prefix(entries: list, term_at: Callable[[int], int | None]) -> int:
    """How many of the leader's `entries` (command, index, term), from the first, a follower
    already holds with the same term: Raft keeps those and truncates only from the next."""
    held = 0
    for _, index, term in entries:
        if term_at(index) != term:
            break
        held += 1
    return held


class ReadWaiter:
    """A read waiting for its read index to be known and applied here; settled once."""

    __slots__ = ("callback", "deadline", "done")

    def __init__(self, callback: Callable[[str | None], None], deadline: float):
        self.callback = callback
        self.deadline = deadline
        self.done = False

    def settle(self, failure: str | None) -> None:
        if not self.done:
            self.done = True
            self.callback(failure)


class ReadIndex:
    """Raft's ReadIndex on a PySyncObj member: a read fence that appends no log entry.

    A member asks the leader (itself, or over the raft connection) for a read index. The
    leader gathers the requests that arrived since its last round into a new round: its commit
    index, and a ping with a sequence number to every voter. Once a majority of voters
    (itself included) answered a ping at least as new as the round, no other leader can have
    committed anything before the round began, so the commit index covers every write
    acknowledged before the read arrived. The asking member then waits until its replica has
    applied that index. A new leader first waits for an entry of its own term to commit: only
    then does its commit index cover every earlier leader's commits.

    A voter answers a ping only while its term is not newer than the ping's: a voter that
    took part in a newer election will not vouch for an older leader. A voter's request names
    its term, so it vouches for the leader by itself, after its reads arrived: its own round
    needs no ping where the two of them are a majority (three voters). Unanswered requests
    are asked again, of the new leader after a change; a waiter gives up at its deadline.

    PERF: a member keeps one request to the leader in flight, and the leader one round of
    pings: the reads that arrive meanwhile wait for the next, together, so under load many
    reads share one round instead of each taking its own.
    Everything but `ask` runs in the tick thread.
    """

    def __init__(self, member: SyncObj):
        self._member = member
        self._arrived: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: set[ReadWaiter] = set()
        self._unasked: list[ReadWaiter] = []
        self._asked: dict[int, tuple[list[ReadWaiter], float, object]] = {}
        """request id -> (its waiters, when it was sent, the leader asked)."""
        self._applying: list[tuple[int, ReadWaiter]] = []
        self._requests: list[tuple[object, object]] = []
        """The leader's requests since its last round: (None, local waiters) or (member, request id)."""
        self._vouched: list[tuple[object, int]] = []
        """The leader's requests since its last round from voters of its term: (voter, request id)."""
        self._rounds: list[tuple[int, int, list, object]] = []
        """The leader's unconfirmed rounds: (sequence, commit index, requests, the voter vouching or None)."""
        self._acks: dict = {}
        """voter -> the newest ping sequence it answered in the leader's current term."""
        self._term: int | None = None
        self._sequence = 0
        self._pinged = 0.0
        self._pinged_sequence = 0
        self._in_flight = False
        self._request_ids = 0
        self.rounds = 0
        """Rounds confirmed while this member led: what its reads cost the cluster."""

    def ask(self, callback: Callable[[str | None], None], timeout: float) -> bool:
        """Queue a read from another thread; whether the tick thread must be woken for it.

        PERF: while a request or a round of pings is in flight, its answer wakes the tick
        thread, which then takes this read too: no wake-up of its own.
        """
        self._arrived.put(ReadWaiter(callback, monotonic() + timeout))
        return not self._in_flight

    def tick(self) -> None:
        while True:
            self._tick_once(monotonic())
            self._in_flight = bool(self._asked) or any(voucher is None for _, _, _, voucher in self._rounds)
            # NOTE: a read queued after the queue was drained, while the flag still said in
            # flight, did not wake this thread: take it now.
            if self._in_flight or self._arrived.empty():
                return

    def _tick_once(self, now: float) -> None:
        while not self._arrived.empty():
            waiter = self._arrived.get_nowait()
            self._waiting.add(waiter)
            self._unasked.append(waiter)
        if not (self._waiting or self._requests or self._vouched or self._rounds):
            return
        if self._member._isLeader():
            self._lead(now)
        else:
            self._follow(now)
        self._release(now)

    def receive(self, node, message) -> bool:
        """Handle a read index message (True), or leave `message` to PySyncObj (False)."""
        kind = message.get("type") if isinstance(message, dict) else None
        member = self._member
        if kind == READ_PING:
            if member.raftCurrentTerm <= message["term"]:
                member._SyncObj__transport.send(node, {"type": READ_PONG, "sequence": message["sequence"]})
        elif kind == READ_PONG:
            if member._isLeader():
                self._track_term()
                self._acks[node] = max(self._acks.get(node, 0), message["sequence"])
        elif kind == READ_ASK:
            if member._isLeader():
                self._track_term()
                if message["term"] == self._term and node in member.otherNodes:
                    self._vouched.append((node, message["id"]))
                else:
                    self._requests.append((node, message["id"]))
        elif kind == READ_ANSWER:
            asked = self._asked.pop(message["id"], None)
            if asked is not None:
                self._applying.extend((message["index"], waiter) for waiter in asked[0])
        else:
            return False
        return True

    def _follow(self, now: float) -> None:
        self._forget_rounds()
        member = self._member
        leader = member._getLeader()
        if leader is None:
            return
        for request_id, (waiters, sent, asked) in list(self._asked.items()):
            if asked != leader or now - sent > READ_INDEX_RESEND:
                del self._asked[request_id]
                self._unasked.extend(waiter for waiter in waiters if not waiter.done)
        if self._unasked and not self._asked:
            self._request_ids += 1
            self._asked[self._request_ids] = (self._unasked, now, leader)
            self._unasked = []
            ask = {"type": READ_ASK, "id": self._request_ids, "term": member.raftCurrentTerm}
            member._SyncObj__transport.send(leader, ask)

    def _track_term(self) -> None:
        """Rounds, requests and pongs belong to the term they were made in: a new term drops them."""
        if self._member.raftCurrentTerm != self._term:
            self._forget_rounds()
            self._term = self._member.raftCurrentTerm

    def _lead(self, now: float) -> None:
        member = self._member
        self._track_term()
        for waiters, _, _ in self._asked.values():
            self._unasked.extend(waiter for waiter in waiters if not waiter.done)
        self._asked.clear()
        if self._unasked:
            self._requests.append((None, self._unasked))
            self._unasked = []
        own_entry = member._SyncObj__noopIDx
        if own_entry is None or member.raftCommitIndex < own_entry:
            return
        index = member.raftCommitIndex
        for voter, request_id in self._vouched:
            self._sequence += 1
            self._rounds.append((self._sequence, index, [(voter, request_id)], voter))
        self._vouched = []
        if self._requests and not any(voucher is None for _, _, _, voucher in self._rounds):
            self._sequence += 1
            self._rounds.append((self._sequence, index, self._requests, None))
            self._requests = []
        newest_waiting = self._confirm()
        if newest_waiting > self._pinged_sequence or (newest_waiting and now - self._pinged > READ_INDEX_RESEND):
            self._ping(now)

    def _ping(self, now: float) -> None:
        self._pinged, self._pinged_sequence = now, self._sequence
        ping = {"type": READ_PING, "term": self._term, "sequence": self._sequence}
        for voter in self._member.otherNodes:
            self._member._SyncObj__transport.send(voter, ping)

    def _confirm(self) -> int:
        """Answer every round a majority vouched for; the newest round still waiting for pongs (0: none)."""
        voters = self._member.otherNodes
        majority = (len(voters) + 1) // 2 + 1
        transport = self._member._SyncObj__transport
        waiting = []
        for round_ in self._rounds:
            sequence, index, requests, voucher = round_
            vouching = {voter for voter in voters if self._acks.get(voter, 0) >= sequence or voter == voucher}
            if 1 + len(vouching) < majority:
                waiting.append(round_)
                continue
            self.rounds += 1
            for requester, request in requests:
                if requester is None:
                    self._applying.extend((index, waiter) for waiter in request)
                else:
                    transport.send(requester, {"type": READ_ANSWER, "id": request, "index": index})
        self._rounds = waiting
        return waiting[-1][0] if waiting else 0

    def _forget_rounds(self) -> None:
        """No longer the leader of these rounds: this member's own reads are asked again."""
        for _, _, requests, _ in self._rounds:
            self._requests.extend(requests)
        for requester, request in self._requests:
            if requester is None:
                self._unasked.extend(waiter for waiter in request if not waiter.done)
        self._rounds, self._requests, self._vouched, self._acks = [], [], [], {}

    def _release(self, now: float) -> None:
        """Settle the waiters whose read index is applied here, and those past their deadline.

        NOTE: a member waiting for an image has raftLastApplied at the dump it loaded while
        its replica is still behind it: no read passes until the image is in.
        """
        applied = self._member.raftLastApplied if self._member.replica_current() else 0
        still = []
        for index, waiter in self._applying:
            if index <= applied:
                waiter.settle(None)
            elif not waiter.done:
                still.append((index, waiter))
        self._applying = still
        for waiter in [waiter for waiter in self._waiting if waiter.done or waiter.deadline < now]:
            waiter.settle("the raft leader did not confirm a read index in time")
            self._waiting.discard(waiter)
        self._unasked = [waiter for waiter in self._unasked if not waiter.done]


class PreVote:
    """Raft's pre-vote (section 9.6 of Ongaro's thesis): no election a majority would not join.

    A PySyncObj follower whose election timeout passes raises its term at once and asks for
    votes, and every member that sees the higher term drops its leader. So a follower that
    was cut off, or restarted, deposed a working leader as it came back, though its log was
    behind and it could not win (seen under load: a restarted follower called its election
    before the leader's first message reached it, and leadership moved). Here a follower whose
    timeout passed first asks the others whether they would vote for it in the next term. A
    member grants that when its log is no newer than the asker's and it has no leader: it
    leads no one, and it is not connected to a leader it heard from within RAFT_MIN_TIMEOUT.
    It changes nothing either way. Only with a majority's grants does PySyncObj's election
    begin; a handover (TimeoutNow) skips the question. Runs in the tick thread.
    """

    def __init__(self, member: SyncObj):
        self._member = member
        self._leader_heard = float("-inf")
        self._asking = 0
        """The term the last round asked about."""
        self._grants: set = set()
        self._granted = 0
        """The term a majority granted: PySyncObj may start that election."""
        self.rounds = 0
        """Rounds this member asked: how often its election timeout passed without a leader."""

    def hold_election(self) -> None:
        """Before a tick: an election timeout that passed starts a round, not an election."""
        member = self._member
        if not member.otherNodes or member.selfNode is None or member._isLeader():
            return
        now = monotonic()
        if member._SyncObj__transferInProgress or member._SyncObj__raftElectionDeadline > now:
            return
        if self._won() and member._SyncObj__connectedToAnyone():
            return  # PySyncObj's election begins in this tick
        member._SyncObj__raftElectionDeadline = now + member._SyncObj__generateRaftTimeout()
        self._asking = member.raftCurrentTerm + 1
        self._grants.clear()
        self.rounds += 1
        ask = {
            "type": PRE_VOTE,
            "term": self._asking,
            "last_log_index": member._SyncObj__getCurrentLogIndex(),
            "last_log_term": member._SyncObj__getCurrentLogTerm(),
        }
        for node in member.otherNodes:
            member._SyncObj__transport.send(node, ask)

    def may_campaign(self) -> bool:
        """Whether a majority's grants wait for the next tick to start the election."""
        return self._won() and self._member._SyncObj__raftElectionDeadline == 0

    def _won(self) -> bool:
        """Whether a majority granted the election this member would call next."""
        return self._granted == self._member.raftCurrentTerm + 1

    def receive(self, node, message) -> bool:
        """Handle a pre-vote message (True), or leave `message` to PySyncObj (False)."""
        kind = message.get("type") if isinstance(message, dict) else None
        member = self._member
        if kind == "append_entries":
            if message["term"] >= member.raftCurrentTerm:
                self._leader_heard = monotonic()
            return False
        if kind == PRE_VOTE:
            if self._would_vote(message):
                member._SyncObj__transport.send(node, {"type": PRE_VOTE_GRANT, "term": message["term"]})
        elif kind == PRE_VOTE_GRANT:
            if message["term"] == self._asking == member.raftCurrentTerm + 1 and node in member.otherNodes:
                self._grants.add(node)
                if 2 * (len(self._grants) + 1) > len(member.otherNodes) + 1:
                    self._granted = self._asking
                    member._SyncObj__raftElectionDeadline = 0
        else:
            return False
        return True

    def _would_vote(self, message: dict) -> bool:
        member = self._member
        if message["term"] <= member.raftCurrentTerm or member._isLeader():
            return False
        leader = member._getLeader()
        heard_lately = monotonic() - self._leader_heard < RAFT_MIN_TIMEOUT
        if leader is not None and heard_lately and member.isNodeConnected(leader):
            return False
        own = (member._SyncObj__getCurrentLogTerm(), member._SyncObj__getCurrentLogIndex())
        return (message["last_log_term"], message["last_log_index"]) >= own


def replica_ahead_of_log(applied_index: int, log_end: int) -> bool:
    """Whether the replica applied entries the raft log no longer holds.

    Apply follows a synced log, so only a log that lost synced entries gets here (a damaged
    or replaced journal, or one written before logs were synced, then a power cut). The
    leader's next entries re-use those indices, and the replica would skip them as applied.
    """
    return applied_index > log_end


class Dump(NamedTuple):
    index: int
    """The raft index of the last entry the dump covers."""
    replica_index: int
    """The replica's applied index once every entry up to `index` is applied (no-ops and
    membership changes leave it behind `index`)."""
    source: str | None
    """The internal endpoint of the node that wrote the dump: its replica holds `replica_index`."""
    raft_data: tuple
    """What PySyncObj's serializer gave: the last two entries and the cluster's members."""


def encode_dump(index: int, replica_index: int, source: str | None, raft_data) -> bytes:
    return DUMP_MAGIC + pickle.dumps((index, replica_index, source, raft_data))


def read_dump(dump: BinaryIO) -> Dump:
    magic = dump.read(len(DUMP_MAGIC))
    if magic == DUMP_MAGIC:
        return Dump(*pickle.load(dump))
    if magic == IMAGE_DUMP_MAGIC:
        # Written by an earlier version with the replica's image after it: the replica was
        # brought to the dump as it was written or loaded, so only the bookkeeping is read.
        (length,) = IMAGE_DUMP_HEADER.unpack(dump.read(IMAGE_DUMP_HEADER.size))
        index, raft_data = pickle.loads(dump.read(length))
        return Dump(index, 0, None, raft_data)
    raise ValueError("not a NebulaIO raft dump")


def describe_failure(code: int) -> str:
    return {
        FAIL_REASON.QUEUE_FULL: "the command queue is full",
        FAIL_REASON.MISSING_LEADER: "there is no raft leader",
        FAIL_REASON.DISCARDED: "the entry was discarded by a new leader",
        FAIL_REASON.NOT_LEADER: "this member is not the leader",
        FAIL_REASON.LEADER_CHANGED: "the leader changed",
        FAIL_REASON.REQUEST_DENIED: "the request was denied",
    }.get(code, f"raft failure {code}")
