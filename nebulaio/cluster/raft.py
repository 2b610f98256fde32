"""The raft log, on PySyncObj: the only module that imports it.

The replicated state machine holds no Python state of its own: LMDB is the state. Each log
entry is a batch of commands; applying it is one LMDB transaction that also records the
entry's raft index, so a replay after a restart skips what LMDB already holds.

Reads are fenced without log entries (Raft's ReadIndex, section 6.4 of Ongaro's thesis): the
leader records its commit index, proves it is still the leader with one round of read pings a
majority of voters answers, and the asking member reads once its replica has applied that index.

Compaction writes a dump: raft's own bookkeeping followed by an image of the replica at
exactly the dump's index. The leader sends its dump to a member that needs entries the log
no longer holds, and that member installs the image before the entries that follow it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import struct
import threading
import time
from collections.abc import Callable
from typing import BinaryIO, Protocol

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.monotonic import monotonic
from pysyncobj.utility import TcpUtility, UtilityException

from nebulaio.util.durable import fsync_directory

log = logging.getLogger("nebulaio.raft")

ApplyBatch = Callable[[int, list], list | None]

PARTNER_STATUS = "partner_node_status_server_"
"""getStatus() names each voting partner's connection state by this prefix and its address."""
CONNECTED = 2
LEADER = 2
"""getStatus()'s state of a leader."""
IDLE_TICK = 0.05
BUSY_TICK = 0.001
RAFT_MIN_TIMEOUT = 0.5
RAFT_MAX_TIMEOUT = 0.9
SNAPSHOT_CHUNK = 1 << 20
"""Bytes of a dump sent in one message to a member that installs it."""

DUMP_MAGIC = b"NEBULAIO-DUMP-1\n"
DUMP_HEADER = struct.Struct(">Q")
"""A dump is DUMP_MAGIC | header length | pickled (raft index, raft bookkeeping) | replica image."""
DENIED = FAIL_REASON.REQUEST_DENIED
"""The failure of a membership change the leader refuses (one in progress, or itself removed)."""
WRITTEN = "written"
"""The dump thread's result before the serialize checker puts the dump in place."""
HANDOVER_CALL_TIMEOUT = 2.0
"""Seconds the leader has to answer a request to hand its leadership over."""
READ_INDEX_RESEND = 0.3
"""Seconds without an answer before a read index is asked again (of the leader, or of the voters)."""
READ_PING, READ_PONG = "nebulaio_read_ping", "nebulaio_read_pong"
READ_ASK, READ_ANSWER = "nebulaio_read_ask", "nebulaio_read_answer"
"""Read index messages, beside PySyncObj's own on its raft connections."""


class FrozenImage(Protocol):
    def write(self, fd: int) -> None: ...

    def close(self) -> None: ...


class Replica(Protocol):
    """What the log needs of the state machine's storage to compact and to catch up."""

    def applied_index(self) -> int: ...

    def freeze(self) -> FrozenImage: ...

    def install(self, image_path: str, raft_index: int) -> None: ...


class MetadataLog(SyncObj):
    """A raft member whose entries are command batches applied by `apply_batch`."""

    def __init__(
        self,
        self_address: str,
        peers: list[str],
        raft_dir: str,
        password: str,
        apply: ApplyBatch,
        replica: Replica,
        compaction_entries: int,
        compaction_seconds: float,
        bind_address: str | None = None,
    ):
        self._apply = apply
        self._replica = replica
        self._raft_dir = raft_dir
        self._password = password
        self._dump_path = os.path.join(raft_dir, "dump")
        self._partial_path = self._dump_path + ".partial"
        self._dumping: threading.Thread | None = None
        self._dumps_loaded = 0
        self._written: tuple[int, int] = (0, 0)
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
            password=password,
            bindAddress=bind_address,
            raftMinTimeout=RAFT_MIN_TIMEOUT,
            raftMaxTimeout=RAFT_MAX_TIMEOUT,
            appendEntriesPeriod=0.1,
            connectionTimeout=2.0,
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
        super().__init__(self_address, peers, conf)
        self._reads = ReadIndex(self)
        handle_message = self._SyncObj__onMessageReceived

        def received(node, message) -> None:
            if not self._reads.receive(node, message):
                handle_message(node, message)

        self._SyncObj__transport.setOnMessageReceivedCallback(received)
        self._ticker = threading.Thread(target=self._tick_loop, name="raft-tick", daemon=True)
        self._ticker.start()

    def _tick_loop(self) -> None:
        """Drive PySyncObj ourselves so a commit never waits out a tick period.

        PERF: a PySyncObj tick appends new commands at its end and then sleeps in poll()
        until a socket wakes it. In a cluster a follower's answer does; a member alone has
        nobody to answer, so each commit waited a whole tick (~50 ms measured), and a
        command arriving just after a tick read its queue waited as long. So while any
        proposal of ours is outstanding the loop does not sleep: alone it ticks again at
        once, with peers it waits at most a millisecond for their answers.
        """
        while not self._stopping.is_set():
            try:
                self.doTick(0.0)
                self._reads.tick()
                if not self._outstanding:
                    self._poller.poll(IDLE_TICK)
                elif self.otherNodes:
                    self._poller.poll(BUSY_TICK)
            except Exception:
                log.exception("raft tick failed")
                self._stopping.wait(IDLE_TICK)
        self._doDestroy()

    def stop(self) -> None:
        self._stopping.set()
        self._ticker.join()
        if self._dumping is not None:
            self._dumping.join()

    @replicated
    def apply_batch(self, commands):
        # NOTE: runs in the tick thread on every member; the entry being applied is the one
        # after raftLastApplied (PySyncObj increments it once this returns).
        index = self.raftLastApplied + 1
        journal = self._SyncObj__raftLog
        if hasattr(journal, "flush"):
            # The journal is an mmap that PySyncObj never syncs; LMDB must never run ahead of
            # a durable log, or entries re-using these indices after a power cut would be skipped.
            journal.flush()
        try:
            return self._apply(index, commands)
        except BaseException:
            # The entry would count as applied while LMDB lacks it: stop now, and the
            # restart replays it from the journal.
            log.critical("applying raft entry %d failed; stopping so a restart replays it", index, exc_info=True)
            logging.shutdown()
            os._exit(70)

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

    def ask_to_hand_over(self, leader: str) -> bool:
        """Ask the leader (its raft address) to hand its leadership to another voter.

        The leader picks its most caught-up connected voter and sends it raft's TimeoutNow:
        that voter calls an election at once and wins it, with no election timeout waited
        out. PySyncObj takes the request only on the leader, so it travels over raft's own
        utility channel, sealed with the raft password. True once the leader has sent
        TimeoutNow; it refuses while no other voter holds its whole log. Blocks: call it
        from a thread.
        """
        try:
            answer = TcpUtility(password=self._password, timeout=HANDOVER_CALL_TIMEOUT).executeCommand(
                leader, ["transfer"]
            )
        except UtilityException:
            return False
        return isinstance(answer, str) and answer.startswith("SUCCESS")

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
            "ready": self.isReady() and leader is not None,
            "read_rounds": self._reads.rounds,
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
        """Start a dump at the last applied entry: freeze the replica now, write it in a thread.

        Runs in the tick thread, where every entry up to raftLastApplied is applied and no
        other is, so the frozen replica is exactly the dump's state. Writing it takes seconds
        for a large replica, longer than an election timeout, hence the thread; the serialize
        checker puts the written dump in place, and only then are the compacted entries dropped.

        NOTE: PySyncObj renames `filename` over the dump once this returns. Nothing is written
        there, so that rename fails (PySyncObj catches it and waits on the checker), and a
        crash at any moment leaves the previous dump whole.
        """
        index = raft_data[0][1]
        try:
            frozen = self._replica.freeze()
        except Exception:
            log.exception("freezing the replica for a raft dump at index %d failed", index)
            self._dump_result = SERIALIZER_STATE.FAILED
            return
        self._dump_result = SERIALIZER_STATE.SERIALIZING
        self._dumping = threading.Thread(
            target=self._finish_dump, args=(index, raft_data, frozen, self._dumps_loaded), name="raft-dump", daemon=True
        )
        self._dumping.start()

    def _finish_dump(self, index: int, raft_data, frozen: FrozenImage, dumps_loaded: int) -> None:
        started = time.monotonic()
        try:
            with contextlib.closing(frozen), open(self._partial_path, "wb") as fh:
                header = pickle.dumps((index, raft_data))
                fh.write(DUMP_MAGIC + DUMP_HEADER.pack(len(header)) + header)
                fh.flush()
                frozen.write(fh.fileno())
                os.fsync(fh.fileno())
                size = fh.tell()
            log.info("raft dump at index %d: %d bytes in %.2f s", index, size, time.monotonic() - started)
            self._written = (index, dumps_loaded)
            self._dump_result = WRITTEN
        except Exception:
            log.exception("writing the raft dump at index %d failed", index)
            self._dump_result = SERIALIZER_STATE.FAILED

    def _dump_state(self) -> int:
        """The serialize checker: PySyncObj calls it in the tick thread, before any compaction.

        A written dump is renamed into place here, in the tick thread, where a dump received
        from the leader is loaded: one received while this one was written is newer, and this
        one is dropped rather than renamed over it.
        """
        state = self._dump_result
        if state == WRITTEN:
            index, dumps_loaded = self._written
            try:
                if dumps_loaded != self._dumps_loaded:
                    log.info("dropping the raft dump at index %d: the leader's dump replaced it", index)
                    os.unlink(self._partial_path)
                    state = SERIALIZER_STATE.FAILED
                else:
                    os.replace(self._partial_path, self._dump_path)
                    fsync_directory(self._raft_dir)
                    state = SERIALIZER_STATE.SUCCESS
            except OSError:
                log.exception("putting the raft dump at index %d in place failed", index)
                state = SERIALIZER_STATE.FAILED
        if state in (SERIALIZER_STATE.SUCCESS, SERIALIZER_STATE.FAILED):
            self._dump_result = SERIALIZER_STATE.NOT_SERIALIZING
        return state

    def _read_dump(self, filename: str):
        """Raft's bookkeeping for PySyncObj, after installing the image when it is ahead of the replica.

        PySyncObj loads the dump at start (this node's own, or one received just before a
        crash) and whenever the leader has sent one. The image is installed when it holds
        entries the replica lacks: a member that fell behind the compacted log, a new member,
        or a replica that lost its newest commits with the machine's power.
        """
        self._dumps_loaded += 1
        with open(filename, "rb") as fh:
            index, raft_data = read_dump_header(fh)
            if index > self._replica.applied_index():
                self._install(fh, index)
        return raft_data

    def _install(self, dump: BinaryIO, index: int) -> None:
        started = time.monotonic()
        image_path = os.path.join(self._raft_dir, "image.mdb")
        try:
            # A received dump is renamed into place unsynced; it must outlive the install.
            os.fsync(dump.fileno())
            fsync_directory(self._raft_dir)
            with open(image_path, "wb") as image:
                copy_rest(dump, image)
            self._replica.install(image_path, index)
            os.unlink(image_path)
        except BaseException:
            # Raft would count the dump's entries as applied while LMDB lacks them: stop now,
            # and the restart installs the dump again.
            log.critical("installing the raft dump at index %d failed; stopping", index, exc_info=True)
            logging.shutdown()
            os._exit(70)
        log.info("installed the raft dump at index %d in %.2f s", index, time.monotonic() - started)
        # NOTE: the leader's last message restarted the election timer before the install
        # began; a long install must not make this member call an election it cannot win
        # (raising the term would only unseat a healthy leader).
        self._SyncObj__raftElectionDeadline = monotonic() + RAFT_MAX_TIMEOUT


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
        """Settle the waiters whose read index is applied here, and those past their deadline."""
        applied = self._member.raftLastApplied
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


def read_dump_header(dump: BinaryIO) -> tuple[int, tuple]:
    """(raft index, raft bookkeeping) of a dump, leaving `dump` at the start of its image."""
    if dump.read(len(DUMP_MAGIC)) != DUMP_MAGIC:
        raise ValueError("not a NebulaIO raft dump")
    (length,) = DUMP_HEADER.unpack(dump.read(DUMP_HEADER.size))
    return pickle.loads(dump.read(length))


def copy_rest(source: BinaryIO, target: BinaryIO) -> None:
    """Copy `source` from its position to its end into `target`, in the kernel."""
    offset, end = source.tell(), os.fstat(source.fileno()).st_size
    while offset < end:
        offset += os.sendfile(target.fileno(), source.fileno(), offset, end - offset)


def describe_failure(code: int) -> str:
    return {
        FAIL_REASON.QUEUE_FULL: "the command queue is full",
        FAIL_REASON.MISSING_LEADER: "there is no raft leader",
        FAIL_REASON.DISCARDED: "the entry was discarded by a new leader",
        FAIL_REASON.NOT_LEADER: "this member is not the leader",
        FAIL_REASON.LEADER_CHANGED: "the leader changed",
        FAIL_REASON.REQUEST_DENIED: "the request was denied",
    }.get(code, f"raft failure {code}")
