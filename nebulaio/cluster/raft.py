"""The raft log, on PySyncObj: the only module that imports it.

The replicated state machine holds no Python state of its own: LMDB is the state. Each log
entry is a batch of commands; applying it is one LMDB transaction that also records the
entry's raft index, so a replay after a restart skips what LMDB already holds.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
from collections.abc import Callable

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.config import SERIALIZER_STATE

log = logging.getLogger("nebulaio.raft")

ApplyBatch = Callable[[int, list], list | None]

PARTNER_STATUS = "partner_node_status_server_"
"""getStatus() names each voting partner's connection state by this prefix and its address."""
CONNECTED = 2
IDLE_TICK = 0.05
BUSY_TICK = 0.001


class MetadataLog(SyncObj):
    """A raft member whose entries are command batches applied by `apply_batch`."""

    def __init__(
        self,
        self_address: str,
        peers: list[str],
        raft_dir: str,
        password: str,
        apply: ApplyBatch,
        before_dump: Callable[[], None],
        bind_address: str | None = None,
    ):
        self._apply = apply
        self._before_dump = before_dump
        os.makedirs(raft_dir, exist_ok=True)
        conf = SyncObjConf(
            # PERF: without batching a commit takes ~1 ms instead of waiting for the next
            # append-entries period (~100 ms); the supervisor batches commands itself.
            appendEntriesUseBatch=False,
            journalFile=os.path.join(raft_dir, "journal"),
            fullDumpFile=os.path.join(raft_dir, "dump"),
            serializer=self._write_dump,
            deserializer=self._read_dump,
            serializeChecker=self._dump_state,
            password=password,
            bindAddress=bind_address,
            raftMinTimeout=0.5,
            raftMaxTimeout=0.9,
            appendEntriesPeriod=0.1,
            connectionTimeout=2.0,
            connectionRetryTime=1.0,
            leaderFallbackTimeout=5.0,
            logCompactionMinEntries=20000,
            logCompactionMinTime=600,
            dynamicMembershipChange=True,
            autoTick=False,
        )
        self._dump_result = SERIALIZER_STATE.NOT_SERIALIZING
        self._stopping = threading.Event()
        self._outstanding = 0
        self._outstanding_lock = threading.Lock()
        super().__init__(self_address, peers, conf)
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
            "members": [{"address": str(raw.get("self")), "self": True, "connected": True}]
            + [
                {"address": name.removeprefix(PARTNER_STATUS), "self": False, "connected": value == CONNECTED}
                for name, value in raw.items()
                if name.startswith(PARTNER_STATUS)
            ],
        }

    # Snapshots: LMDB already holds the state, so a dump is raft's own bookkeeping only.
    def _write_dump(self, filename: str, raft_data) -> None:
        try:
            self._before_dump()
            with open(filename, "wb") as fh:
                pickle.dump(raft_data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self._dump_result = SERIALIZER_STATE.SUCCESS
        except Exception:
            log.exception("writing the raft dump failed")
            self._dump_result = SERIALIZER_STATE.FAILED

    def _dump_state(self) -> int:
        state, self._dump_result = self._dump_result, SERIALIZER_STATE.NOT_SERIALIZING
        return state

    @staticmethod
    def _read_dump(filename: str):
        with open(filename, "rb") as fh:
            return pickle.load(fh)


def describe_failure(code: int) -> str:
    return {
        FAIL_REASON.QUEUE_FULL: "the command queue is full",
        FAIL_REASON.MISSING_LEADER: "there is no raft leader",
        FAIL_REASON.DISCARDED: "the entry was discarded by a new leader",
        FAIL_REASON.NOT_LEADER: "this member is not the leader",
        FAIL_REASON.LEADER_CHANGED: "the leader changed",
        FAIL_REASON.REQUEST_DENIED: "the request was denied",
    }.get(code, f"raft failure {code}")
