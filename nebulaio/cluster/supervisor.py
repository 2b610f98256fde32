"""The supervisor: one per node, the only LMDB writer, the owner of the raft member.

Workers submit commands over the IPC socket; the supervisor groups whatever arrived together
into one raft entry (one log append, one LMDB transaction, one fsync) and answers each
worker once its command is applied here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import threading
import time

import psutil

from nebulaio import config as configuration
from nebulaio.cluster import ipc
from nebulaio.cluster.gossip import Membership
from nebulaio.cluster.gossipnet import GossipNetwork, exchange
from nebulaio.cluster.peers import PeerClient, PeerError, peer_tls
from nebulaio.cluster.placement import STORAGE_ROLES
from nebulaio.cluster.raft import DENIED, MetadataLog, describe_failure
from nebulaio.cluster.repair import Progress, Repairer
from nebulaio.lifecycle.sweeper import LifecycleSweeper
from nebulaio.meta import Applier, MetaReader, ReplicaImages, open_env
from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore
from nebulaio.util import processes

log = logging.getLogger("nebulaio.supervisor")

MAX_BATCH_COMMANDS = 512
MAX_BATCH_BYTES = 8 * 1024 * 1024
BATCHES_IN_FLIGHT = 2
FENCE_PASSED = {"status": "ok"}
FENCE_DEADLINE = 8.0
"""Seconds a read fence may wait for the leader's read index (a worker waits 10 s for its answer)."""
REGISTER_RETRY = 1.0
REPAIR_COMMIT_TIMEOUT = 30.0
GOSSIP_TICK = 0.05
"""Seconds between two turns of the gossip protocol (its periods and timeouts are longer)."""
SELF_REFRESH = 2.0
"""Seconds between two looks at this node's own state (readiness, raft role) and the seeds."""
FIGURES_REFRESH = 10.0
"""Seconds between two looks at this node's disk, memory and raft figures for gossip."""
JOIN_TIMEOUT = 45.0
"""Seconds a joining node tries to reach its --join member (the launcher waits 60 s for the supervisor)."""
JOIN_RETRY = 1.0
PROPOSAL_DEADLINE = 12.0
"""Seconds an entry may wait for raft to confirm it before its requests are answered 503."""
LEADER_GRACE = 3.0
"""Seconds without a reachable leader (several elections' worth) before requests fail fast."""
WATCH_INTERVAL = 0.25
NO_LEADER = {"status": "ServiceUnavailable", "reason": "no raft leader is reachable from this node"}
UNCONFIRMED = {
    "status": "ServiceUnavailable",
    "reason": "the raft leader did not confirm the entry in time; it may still be applied",
    "unconfirmed": True,
}
"""An answer whose command may still apply: the worker proposes it again under its request id."""
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


class Flight:
    """A batch handed to raft: settled once, by raft's callback or by giving up on it."""

    __slots__ = ("batch", "settled", "deadline")

    def __init__(self, batch: list):
        self.batch = batch
        self.settled = False
        self.deadline: asyncio.TimerHandle | None = None


class GroupCommitter:
    """Collects submitted commands and proposes them to the raft log in batches.

    Every request gets an answer within PROPOSAL_DEADLINE: PySyncObj can leave a callback
    uncalled for good (an entry forwarded to a leader over a connection that then broke), and
    on the minority side of a partition nothing commits until the partition heals. A command
    given up on may still commit later, so its answer is a 503 the client retries, never a
    refusal; once no leader has been reachable for LEADER_GRACE, requests fail at once
    without being proposed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, metadata_log: MetadataLog):
        self._loop = loop
        self._log = metadata_log
        self._pending: list[tuple[dict, bytes | None, asyncio.Future]] = []
        self._fences: set[asyncio.Future] = set()
        self._flights: set[Flight] = set()
        self._unreachable_since: float | None = None
        self._cut_off = False
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(BATCHES_IN_FLIGHT)

    def submit(self, command: dict, blob: bytes | None = None) -> asyncio.Future:
        future = self._loop.create_future()
        if self._cut_off:
            future.set_result(NO_LEADER)
            return future
        self._pending.append((command, blob, future))
        self._wakeup.set()
        return future

    def fence(self) -> asyncio.Future:
        """Resolves once this replica holds every write acknowledged anywhere before the call.

        Raft's read index: the leader confirms its commit index with one round of pings and
        this replica applies up to it. Nothing is appended to the log, and concurrent fences
        share the leader's round.
        """
        future = self._loop.create_future()
        if self._cut_off:
            future.set_result(NO_LEADER)
            return future
        self._fences.add(future)

        def settled(failure: str | None) -> None:
            self._loop.call_soon_threadsafe(self._settle_fence, future, failure)

        self._log.read_index(settled, FENCE_DEADLINE)
        return future

    def _settle_fence(self, future: asyncio.Future, failure: str | None) -> None:
        self._fences.discard(future)
        if not future.done():
            future.set_result(FENCE_PASSED if failure is None else {"status": "ServiceUnavailable", "reason": failure})

    async def run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await self._slots.acquire()
                batch = self._take_batch()
                flight = Flight(batch)
                self._flights.add(flight)
                flight.deadline = self._loop.call_later(PROPOSAL_DEADLINE, self._settle, flight, None, UNCONFIRMED)
                self._log.propose(
                    [(command, blob) for command, blob, _ in batch],
                    callback=lambda result, error, flight=flight: self._loop.call_soon_threadsafe(
                        self._resolve, flight, result, error
                    ),
                )

    async def watch(self) -> None:
        """Track whether a leader is reachable; past LEADER_GRACE without one, answer everything 503."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if self._log.leader_reachable():
                self._unreachable_since = None
                self._cut_off = False
                continue
            now = self._loop.time()
            if self._unreachable_since is None:
                self._unreachable_since = now
            elif not self._cut_off and now - self._unreachable_since >= LEADER_GRACE:
                self._cut_off = True
                log.warning("no raft leader reachable for %.1f s: answering requests 503", LEADER_GRACE)
                self._fail_waiting()

    def _fail_waiting(self) -> None:
        for flight in list(self._flights):
            self._settle(flight, None, UNCONFIRMED)
        waiting = [future for _, _, future in self._pending] + list(self._fences)
        self._pending, self._fences = [], set()
        for future in waiting:
            if not future.done():  # a worker that went away cancels its wait
                future.set_result(NO_LEADER)

    def _take_batch(self) -> list:
        size = 0
        count = 0
        for _, blob, _ in self._pending:
            size += len(blob) if blob else 0
            count += 1
            if count >= MAX_BATCH_COMMANDS or size >= MAX_BATCH_BYTES:
                break
        batch, self._pending = self._pending[:count], self._pending[count:]
        return batch

    def _resolve(self, flight: Flight, results, error: int) -> None:
        """Answer each command with its result, or all with the failure.

        NOTE: a replay (results None) counts as a failure: the entry was applied before.
        """
        if error or results is None:
            reason = describe_failure(error) if error else "the entry was not applied"
            self._settle(flight, None, {"status": "ServiceUnavailable", "reason": reason, "unconfirmed": True})
        else:
            self._settle(flight, results, None)

    def _settle(self, flight: Flight, results: list | None, failure: dict | None) -> None:
        if flight.settled:
            return  # raft answered after the deadline, or the deadline after raft
        flight.settled = True
        flight.deadline.cancel()
        self._flights.discard(flight)
        self._slots.release()
        for position, (_, _, future) in enumerate(flight.batch):
            if future.done():
                continue
            future.set_result(failure if failure is not None else results[position])


class Supervisor:
    def __init__(self, config: dict):
        self.config = config
        self.layout = DataLayout(config["data"])
        self.started = time.time()
        self._process = psutil.Process()
        self._releases: queue.SimpleQueue = queue.SimpleQueue()
        self.repair_progress = Progress()

    def run(self) -> int:
        if configuration.is_cluster(self.config) and not self.config["cluster_secret"]:
            log.error("a cluster needs the same cluster_secret on every node (--cluster-secret); none is set")
            return 2
        layout = self.layout
        layout.create()
        store = ObjectStore(layout)
        store.clean_temp()
        env = open_env(layout.kv_dir, readonly=False)
        self.reader = MetaReader(env)
        applier = Applier(env, release=lambda bucket, key, vid: self._releases.put((bucket, key, vid)))
        threading.Thread(target=self._release_loop, args=(store,), name="release", daemon=True).start()

        config = self.config
        self.node_id = layout.node_id(config["node_id"])
        self.secret = layout.cluster_secret(config["cluster_secret"])
        host, port = configuration.split_address(config["raft_address"])
        own = configuration.advertised(config, "raft")
        voter = config["role"] != "storage"
        joining = config["join"] and not config["raft_peers"]
        voters = self._learn_voters() if joining else configuration.raft_voters(config)
        if voters is None:
            env.close()
            return 2
        self.raft = MetadataLog(
            own if voter else None,
            [peer for peer in voters if peer != own],
            layout.raft_dir,
            password=self.secret,
            apply=applier.apply_batch,
            replica=ReplicaImages(env),
            compaction_entries=config["snapshot_entries"],
            compaction_seconds=config["snapshot_interval"],
            bind_address=f"{host}:{port}" if voter else None,
        )
        log.info("node %s (%s): raft member %s started; data in %s", self.node_id, config["role"], own, layout.root)
        try:
            asyncio.run(self._serve(store, env))
        finally:
            self.raft.stop()
            env.sync(True)
            env.close()
            log.info("supervisor stopped")
        return 0

    async def _serve(self, store: ObjectStore, env) -> None:
        loop = asyncio.get_running_loop()
        committer = GroupCommitter(loop, self.raft)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        self.network = GossipNetwork(self.secret.encode())
        await self.network.start(self.config["gossip_address"])
        own = {**self._identity(), **self._figures(), **self._state()}
        self.membership = Membership(own, self.network, time.monotonic, incarnation=int(time.time()))
        self.network.membership = self.membership
        gossip = asyncio.create_task(self._gossip())
        socket_path = self.layout.ipc_socket
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        server = await asyncio.start_unix_server(lambda r, w: self._handle(r, w, committer), path=socket_path)
        os.chmod(socket_path, 0o600)
        batcher = asyncio.create_task(committer.run())
        watcher = asyncio.create_task(committer.watch())
        housekeeping = asyncio.create_task(self._housekeeping(store, env))
        registration = asyncio.create_task(self._register(committer))
        sweeper = LifecycleSweeper(
            self.reader,
            committer.submit,
            is_leader=lambda: self.raft.status()["state"] == "leader",
            interval=self.config["lifecycle_interval"],
            day_seconds=self.config["lifecycle_day_seconds"],
        )
        lifecycle = asyncio.create_task(sweeper.run())
        repair = self._start_repair(store, committer)
        log.info("supervisor serving workers on %s", socket_path)
        await stop.wait()
        log.info("supervisor stopping")
        server.close()
        batcher.cancel()
        watcher.cancel()
        housekeeping.cancel()
        registration.cancel()
        lifecycle.cancel()
        if repair is not None:
            repair.cancel()
        gossip.cancel()
        self.network.close()
        os.unlink(socket_path)

    def _start_repair(self, store: ObjectStore, committer: GroupCommitter) -> asyncio.Task | None:
        """The repair loop of a node that holds object bytes in a cluster (None elsewhere)."""
        config = self.config
        if not configuration.is_cluster(config) or config["role"] not in STORAGE_ROLES:
            return None
        loop = asyncio.get_running_loop()
        peers = PeerClient(config["cluster_secret"], self.node_id, peer_tls(config))

        async def propose(command: dict) -> dict:
            return await committer.submit(command)

        def submit(command: dict) -> dict:
            """Propose from the repair thread and wait until the command is applied here."""
            try:
                return asyncio.run_coroutine_threadsafe(propose(command), loop).result(REPAIR_COMMIT_TIMEOUT)
            except TimeoutError:
                return {"status": "ServiceUnavailable", "reason": "the command was not applied in time"}

        def is_live(node: dict) -> bool:
            """A peer is up while its internal endpoint answers (until gossip tells)."""
            try:
                peers.ping(node["admin"])
            except PeerError:
                return False
            return True

        repairer = Repairer(
            self.node_id,
            self.reader,
            store,
            peers,
            submit,
            is_live,
            config["replicas"],
            config["repair_bandwidth"],
            config["repair_interval"],
        )
        self.repair_progress = repairer.progress
        return asyncio.create_task(repairer.run(lambda: self.raft.status()["ready"]))

    async def _handle(self, reader, writer, committer: GroupCommitter) -> None:
        try:
            while True:
                document, blob = await ipc.read_frame(reader)
                kind = document.get("type")
                if kind == "submit":
                    answer = await committer.submit(document["command"], blob)
                elif kind == "fence":
                    answer = await committer.fence()
                elif kind == "status":
                    answer = self.status(document.get("detail", False))
                elif kind == "membership":
                    answer = await self._change_membership(document.get("action"), document.get("raft"), committer)
                else:
                    answer = {"status": "InvalidRequest", "reason": f"unknown request {kind!r}"}
                writer.writelines(ipc.encode(answer))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the worker went away, or the supervisor is stopping
        except Exception:
            log.exception("IPC connection failed")
        finally:
            writer.close()

    def status(self, detail: bool = False) -> dict:
        """Raft's view and the applied index; with `detail`, this node's process, memory and disk."""
        status = self.raft.status()
        status["applied_index"] = self.reader.applied_index()
        status["node_id"] = self.node_id
        status["role"] = self.config["role"]
        status["repair"] = self.repair_progress.as_dict()
        status["gossip"] = {"members": self.membership.view(), "refused": self.network.refused}
        if detail:
            status["node"] = self._node_figures()
        return status

    async def _register(self, committer: GroupCommitter) -> None:
        """Record this node and its addresses in the log, once it has a leader to take them.

        Membership is metadata: every replica knows every node's role and addresses, and
        workers read them from LMDB like any other record.
        """
        command = {"op": "node.register", "node": self._identity()}
        while True:
            known = self.reader.nodes.get(self.node_id)
            if known is not None and all(known.get(k) == v for k, v in command["node"].items()):
                return
            if self.raft.status()["ready"]:
                result = await committer.submit(command)
                if result.get("status") == "ok":
                    log.info("node %s registered", self.node_id)
                    return
            await asyncio.sleep(REGISTER_RETRY)

    def _learn_voters(self) -> list[str] | None:
        """The voters' raft addresses, asked of the --join member (a node started without
        --raft-peers); None when it cannot be reached in time."""
        config = self.config
        own = configuration.advertised(config, "raft")
        hello = {"type": "sync", "from": {"id": self.node_id, "gossip": configuration.advertised(config, "gossip")}}
        deadline = time.monotonic() + JOIN_TIMEOUT
        while True:
            try:
                answer = exchange(config["join"], self.secret.encode(), hello)
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

    def _identity(self) -> dict:
        """This node's id, role and the addresses it gives its peers: its registration record."""
        config = self.config
        return {
            "id": self.node_id,
            "role": config["role"],
            **{listener: configuration.advertised(config, listener) for listener in ("raft", "gossip", "admin")},
        }

    def _state(self) -> dict:
        """Whether this node is ready, and its raft role: gossiped as soon as they change."""
        raft = self.raft.status()
        return {
            "ready": raft["ready"] and (raft["last_applied"] or 0) >= (raft["commit_index"] or 0),
            "raft_state": raft["state"],
        }

    def _figures(self) -> dict:
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

    async def _gossip(self) -> None:
        """Run the protocol; refresh this node's facts, the voters and the seeds now and then.

        The seeds are the registered nodes and --join: whoever the log or the operator names.
        """
        membership = self.membership
        refreshed = measured = 0.0
        state = figures = {}
        while True:
            try:
                membership.tick()
                now = time.monotonic()
                if now - refreshed >= SELF_REFRESH:
                    refreshed = now
                    latest = self._state()
                    if latest != state or now - measured >= FIGURES_REFRESH:
                        measured, state, figures = now, latest, self._figures()
                    membership.update_self({**self._identity(), **figures, **state})
                    membership.seeds = {node["gossip"] for node in self.reader.nodes.all() if node["gossip"]}
                    if self.config["join"]:
                        membership.seeds.add(self.config["join"])
                    membership.voters = sorted(
                        member["address"]
                        for member in self.raft.status()["members"]
                        if not (member["self"] and self.config["role"] == "storage")
                    )
            except Exception:
                log.exception("a gossip turn failed")
            await asyncio.sleep(GOSSIP_TICK)

    async def _change_membership(self, action, address, committer: GroupCommitter) -> dict:
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

    def _node_figures(self) -> dict:
        figures = {"supervisor": processes.figures(self._process)}
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(self.layout.root)
        figures["memory"] = {"total": memory.total, "available": memory.available, "used": memory.used}
        figures["disk"] = {"path": self.layout.root, "total": disk.total, "used": disk.used, "free": disk.free}
        figures["cpus"] = psutil.cpu_count()
        figures["load"] = list(psutil.getloadavg())
        return figures

    async def _housekeeping(self, store: ObjectStore, env) -> None:
        """Once the log is applied, sweep bytes no metadata points to; check LMDB readers."""
        while not self.raft.status()["ready"]:
            await asyncio.sleep(0.05)
        try:
            await asyncio.to_thread(store.sweep, self.reader.file_versions, self.started)
        except Exception:
            # NOTE: a task's exception is otherwise silent until the loop ends.
            log.exception("sweeping unreferenced object files failed; they stay until the next start")
        while True:
            await asyncio.sleep(30)
            env.reader_check()

    def _release_loop(self, store: ObjectStore) -> None:
        while True:
            bucket, key, vid = self._releases.get()
            try:
                store.remove(bucket, key, vid)
            except OSError:
                log.exception("removing %s/%s version %s failed", bucket, key, vid)


def main() -> int:
    from setproctitle import setproctitle

    config = configuration.from_environment()
    logging.basicConfig(
        level=config["log_level"].upper(), format="%(asctime)s %(levelname)s [supervisor] %(name)s: %(message)s"
    )
    setproctitle(f"nebulaio supervisor {config['data']}")
    return Supervisor(config).run()


if __name__ == "__main__":
    raise SystemExit(main())
