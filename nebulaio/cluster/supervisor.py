"""The supervisor: one per node, the only LMDB writer, the owner of the raft member.

It assembles the node's parts, each in its own module: the raft log (`raft`) behind the group
committer (`groupcommit`), the worker IPC server (`workers`), membership and gossip
(`membership`), the repair loop (`repair`) and the lifecycle sweeper (`lifecycle.sweeper`).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import queue
import signal
import threading
import time

import psutil

from nebulaio import config as configuration
from nebulaio.cluster.groupcommit import FENCE_DEADLINE, FENCE_PASSED, GroupCommitter
from nebulaio.cluster.lease import LEASE_TYPES, ReadLeases
from nebulaio.cluster.leasepage import LeasePage
from nebulaio.cluster.membership import NodeMembership, learn_voters
from nebulaio.cluster.peers import PeerClient, PeerError, listener_tls, peer_tls
from nebulaio.cluster.placement import STORAGE_ROLES
from nebulaio.cluster.raft import MetadataLog
from nebulaio.cluster.rafttls import RaftTunnel
from nebulaio.cluster.readlink import READ_TYPES, ReadLink, leader_gossip
from nebulaio.cluster.repair import Progress, Repairer
from nebulaio.cluster.scrub import Scrubber, ScrubProgress
from nebulaio.cluster.workers import serve_workers
from nebulaio.lifecycle.sweeper import LifecycleSweeper
from nebulaio.meta import Applier, MetaReader, ReplicaImages, open_env
from nebulaio.notify.delivery import Deliverer
from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore
from nebulaio.util import processes
from nebulaio.util.mapped import release_file_pages
from nebulaio.util.purposekeys import GOSSIP, PEER_SIGNING, ClusterKeys

log = logging.getLogger("nebulaio.supervisor")

REPAIR_COMMIT_TIMEOUT = 30.0
MAP_RELEASE_INTERVAL = 1
"""Seconds between two releases of LMDB's mapped pages (a millisecond or two each): the
supervisor's RSS stays near its own memory, even while a repair pass reads every record."""
READER_CHECK_INTERVAL = 30


class Supervisor:
    def __init__(self, config: dict):
        self.config = config
        self.layout = DataLayout(config["data"])
        self.started = time.time()
        self._process = psutil.Process()
        self._releases: queue.SimpleQueue = queue.SimpleQueue()
        self.repair_progress = Progress()
        self.scrubber: Scrubber | None = None
        self.membership: NodeMembership | None = None
        self.reads: ReadLink | None = None
        self.leases: ReadLeases | None = None
        self.deliverer: Deliverer | None = None
        self._peer_tls = peer_tls(config)
        self._server_tls = listener_tls(config)
        self._client_tls = self._peer_tls if self._server_tls is not None else None
        """With mTLS between nodes (internal_tls_*), raft and gossip take it as the inter-node
        data listener does: what their listeners accept, and what this node presents to theirs."""

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
        self.keys = ClusterKeys.from_config(config, layout.cluster_secret(config["cluster_secret"]))
        host, port = configuration.split_address(config["raft_address"])
        own = configuration.advertised(config, "raft")
        voter = config["role"] != "storage"
        joining = config["join"] and not config["raft_peers"]
        voters = (
            learn_voters(config, self.node_id, self.keys.ring(GOSSIP), self._client_tls)
            if joining
            else configuration.raft_voters(config)
        )
        if voters is None:
            env.close()
            return 2
        self._peers = PeerClient(self.keys.ring(PEER_SIGNING), self.node_id, self._peer_tls)
        tunnel = None if self._server_tls is None else RaftTunnel(self._client_tls, self._server_tls)
        self.raft = MetadataLog(
            own if voter else None,
            [peer for peer in voters if peer != own],
            layout.raft_dir,
            passwords=self.keys.raft_passwords(),
            apply=applier.apply_batch,
            replica=ReplicaImages(env),
            fetch_image=self._fetch_image,
            image_address=configuration.advertised(config, "internal"),
            compaction_entries=config["snapshot_entries"],
            compaction_seconds=config["snapshot_interval"],
            bind_address=f"{host}:{port}" if voter else None,
            tunnel=tunnel,
        )
        log.info("node %s (%s): raft member %s started; data in %s", self.node_id, config["role"], own, layout.root)
        gc.freeze()  # PERF: full collections skip what start-up built (see LoopWorker.run)
        try:
            asyncio.run(self._serve(store, env))
        finally:
            self.raft.stop()
            if tunnel is not None:
                tunnel.close()
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
        self.membership = NodeMembership(
            self.config,
            self.node_id,
            self.keys.ring(GOSSIP),
            self.layout,
            self.reader,
            self.raft,
            self._server_tls,
            self._client_tls,
        )
        gossip = await self.membership.start()
        network = self.membership.network
        own_gossip = configuration.advertised(self.config, "gossip")

        def gossip_of(raft: str) -> str | None:
            return self.membership.gossip_endpoints.get(raft)

        page = LeasePage(self.layout.read_lease)
        leader = functools.partial(leader_gossip, self.raft, gossip_of)
        self.leases = leases = ReadLeases(self.raft, page, network.send, own_gossip, leader)
        self.reads = reads = ReadLink(
            loop, self.raft, network.send, own_gossip, gossip_of, FENCE_DEADLINE, page.leased_index
        )
        committer.reads = reads
        network.routes.update(dict.fromkeys(READ_TYPES, reads.receive) | dict.fromkeys(LEASE_TYPES, leases.receive))
        self.deliverer = Deliverer(self.reader.notify, committer.submit, self.raft.is_leader)

        def submit(document: dict, blob: bytes | None) -> asyncio.Future:
            return committer.submit(document["command"], blob)

        def fence(document: dict, blob: bytes | None) -> dict | asyncio.Future:
            # A lone voter applies every entry before it is acknowledged: its replica
            # already holds every write, and the fence costs nothing.
            return FENCE_PASSED if not self.raft.otherNodes else committer.fence()

        def status(document: dict, blob: bytes | None) -> dict:
            return self.status(document.get("detail", False))

        def change_voters(document: dict, blob: bytes | None):
            return self.membership.change(document.get("action"), document.get("raft"), committer)

        def scrub(document: dict, blob: bytes | None) -> dict:
            """Start a pass now ("start"), or take a read's report of a damaged copy ("report")."""
            if self.scrubber is None:
                return {"status": "NotStorage"}
            if document.get("action") == "start":
                self.scrubber.request_pass()
            elif document.get("action") == "report":
                self.scrubber.report(document["damaged"])
            return {"status": "ok", "node_id": self.node_id, "scrub": self.scrubber.progress.as_dict()}

        server = await serve_workers(
            self.layout.ipc_socket,
            {"submit": submit, "fence": fence, "status": status, "membership": change_voters, "scrub": scrub},
        )
        sweeper = LifecycleSweeper(
            self.reader,
            committer.submit,
            is_leader=lambda: self.raft.status()["state"] == "leader",
            interval=self.config["lifecycle_interval"],
            day_seconds=self.config["lifecycle_day_seconds"],
        )
        tasks = [
            asyncio.create_task(self.deliverer.run()),
            asyncio.create_task(committer.run()),
            asyncio.create_task(committer.watch()),
            asyncio.create_task(self._housekeeping(store, env)),
            asyncio.create_task(self.membership.register(committer)),
            asyncio.create_task(sweeper.run()),
            asyncio.create_task(leases.run()),
            gossip,
        ]
        repair = self._start_repair(store, committer)
        if repair is not None:
            tasks.append(repair)
        if self.config["role"] in STORAGE_ROLES:
            self.scrubber = Scrubber(
                self.node_id,
                self.reader,
                store,
                self._peers,
                self.config["scrub_rate"],
                self.config["scrub_interval"],
            )
            tasks.append(asyncio.create_task(self.scrubber.run(lambda: self.raft.status()["ready"])))
        log.info("supervisor serving workers on %s", self.layout.ipc_socket)
        await stop.wait()
        log.info("supervisor stopping")
        server.close()
        for task in tasks:
            task.cancel()
        self.membership.close()
        os.unlink(self.layout.ipc_socket)

    def _start_repair(self, store: ObjectStore, committer: GroupCommitter) -> asyncio.Task | None:
        """The repair loop of a node that holds object bytes (None elsewhere); it stays idle
        while the node runs alone, and starts work once a cluster grows around it."""
        config = self.config
        if config["role"] not in STORAGE_ROLES:
            return None
        loop = asyncio.get_running_loop()
        peers = self._peers

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
                peers.ping(node["internal"])
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
            config["repair_batch"],
        )
        self.repair_progress = repairer.progress
        return asyncio.create_task(repairer.run(lambda: self.raft.status()["ready"]))

    def status(self, detail: bool = False) -> dict:
        """Raft's view and the applied index; with `detail`, this node's process, memory and disk."""
        status = self.raft.status()
        status["applied_index"] = self.reader.applied_index()
        # Rounds led over raft's messages, and followers' requests answered over gossip's datagrams.
        status["read_rounds"] += self.reads.answered
        status["read_leases_granted"] = self.leases.granted
        status["read_lease_held"] = self.leases.held()
        status["node_id"] = self.node_id
        status["role"] = self.config["role"]
        status["repair"] = self.repair_progress.as_dict()
        status["scrub"] = (ScrubProgress() if self.scrubber is None else self.scrubber.progress).as_dict()
        status["notify"] = self.deliverer.status()
        status["gossip"] = {"members": self.membership.gossip.view(), "refused": self.membership.network.refused}
        if detail:
            status["node"] = self._node_figures()
        return status

    def _fetch_image(self, replica_index: int, source: str | None, path: str) -> None:
        """Fetch an image of a peer's replica applied up to `replica_index` into `path`: from
        `source` (the writer of the dump being caught up to), else the leader, else any live
        member. Runs in raft's catch-up thread; raises PeerError when none could provide one."""
        own = configuration.advertised(self.config, "internal")
        endpoints = self.membership.internal_endpoints if self.membership is not None else {}
        leader = endpoints.get(self.raft.status()["leader"] or "")
        candidates = [address for address in (source, leader, *endpoints.values()) if address and address != own]
        failures = []
        for address in dict.fromkeys(candidates):
            started = time.monotonic()
            try:
                image = self._peers.fetch_image(address, replica_index, path)
            except PeerError as exc:
                failures.append(str(exc))
                continue
            log.info(
                "fetched an image of %s's replica at raft index %d: %d bytes in %.2f s",
                address,
                image["index"],
                image["size"],
                time.monotonic() - started,
            )
            return
        raise PeerError("no member provided an image: " + ("; ".join(failures) or "none is known yet"))

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
        """Once the log is applied, sweep bytes no metadata points to; then keep LMDB's map out
        of the supervisor's memory (see nebulaio.util.mapped) and check LMDB's readers."""
        while not self.raft.status()["ready"]:
            await asyncio.sleep(0.05)
        try:
            await asyncio.to_thread(store.sweep, self.reader.file_versions, self.started)
        except Exception:
            # NOTE: a task's exception is otherwise silent until the loop ends.
            log.exception("sweeping unreferenced object files failed; they stay until the next start")
        data_file = os.path.join(env.path(), "data.mdb")
        while True:
            for _ in range(READER_CHECK_INTERVAL // MAP_RELEASE_INTERVAL):
                await asyncio.sleep(MAP_RELEASE_INTERVAL)
                release_file_pages(data_file)
            env.reader_check()

    def _release_loop(self, store: ObjectStore) -> None:
        while True:
            bucket, key, vid = self._releases.get()
            try:
                store.release(bucket, key, vid)
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
