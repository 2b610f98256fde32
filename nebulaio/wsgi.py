"""Composition root of an HTTP worker: built once per worker, after fork.

gunicorn binds the S3, Admin, Console and inter-node listeners in one arbiter; a request is
routed to its app by the listener port it arrived on. The internal data endpoint
(/internal/v1/) is served on the inter-node listener alone: the Admin API's port answers 404
for it like for any path it does not know.
"""

from __future__ import annotations

from nebulaio import config as configuration
from nebulaio.admin import app as admin_app
from nebulaio.admin.audit import AuditLog
from nebulaio.admin.throttle import LoginThrottle
from nebulaio.cluster.ipc import READ_FENCED, RUN_AFTER_FENCE, RUN_INLINE, SupervisorClient, wait_for_supervisor
from nebulaio.cluster.leasepage import LeasePage
from nebulaio.cluster.peers import PeerClient, peer_tls
from nebulaio.cluster.signing import ReplayCache
from nebulaio.cluster.view import MemberView
from nebulaio.console import app as console_app
from nebulaio.encryption.keys import DataKeys, master_keys
from nebulaio.engine.dataplane import ClusterData, LocalData
from nebulaio.engine.growing import GrowingData
from nebulaio.engine.members import Members
from nebulaio.engine.objects import ObjectLayer
from nebulaio.iam.credentials import Credentials
from nebulaio.iam.publicaccess import AWS_BUCKET_DEFAULTS
from nebulaio.iam.service import IamService
from nebulaio.internal import app as internal_app
from nebulaio.meta import ImageShelf, MetaReader, open_env
from nebulaio.s3 import app as s3_app
from nebulaio.storage.integrity import FileChecks
from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore
from nebulaio.util.clientaddress import TrustedProxies
from nebulaio.util.metrics import RequestMetrics
from nebulaio.util.purposekeys import PEER_SIGNING, ClusterKeys

LOOP_WRITES = frozenset(("PUT", "DELETE"))


def build(config: dict | None = None):
    config = config or configuration.from_environment()
    layout = DataLayout(config["data"])
    # The supervisor, started beside gunicorn, creates the replica and the node's secrets.
    wait_for_supervisor(layout.ipc_socket)
    env = open_env(layout.kv_dir, readonly=True)
    reader = MetaReader(env)
    supervisor = SupervisorClient(layout.ipc_socket)
    store = ObjectStore(layout)
    cluster_keys = ClusterKeys.from_config(config, layout.cluster_secret(config["cluster_secret"]))
    peer_keys = cluster_keys.ring(PEER_SIGNING)
    node_id = layout.node_id(config["node_id"])
    peers = PeerClient(peer_keys, node_id, peer_tls(config))
    view = MemberView(supervisor)

    def report_damaged(damaged: dict) -> None:
        """Hand a damaged copy a read found to the node's scrub, which heals it."""
        supervisor.call({"type": "scrub", "action": "report", "damaged": damaged}, timeout=5.0)

    checks = FileChecks(config["read_verify_cache"], report_damaged)
    data = cluster_data = ClusterData(store, reader, view, node_id, config["replicas"], peers, checks)
    if not configuration.is_cluster(config):
        data = GrowingData(reader, LocalData(store, checks), data)
    layer = ObjectLayer(
        reader,
        data,
        supervisor,
        config["max_object_size"],
        config["inline_threshold"],
        fenced=config["read_consistency"] == "strong",
        peers_marker=None if configuration.is_cluster(config) else layout.peers_marker,
        bucket_defaults=AWS_BUCKET_DEFAULTS if config["aws_bucket_defaults"] else None,
        keys=DataKeys(master_keys(config["encryption_master_keys"], cluster_keys), reader.kms.get),
        read_lease=LeasePage(layout.read_lease),
    )
    members = Members(layer, node_id, peers, view)
    credentials = Credentials(config["root_user"], config["root_password"])
    iam = IamService(reader, supervisor, credentials, cluster_keys)

    def port(name: str) -> str:
        return str(configuration.split_address(config[name])[1])

    proxies = TrustedProxies.parse(config["trusted_proxies"])
    s3 = s3_app.create(layer, iam, config, RequestMetrics(layout.metrics_dir, s3_app.OPERATIONS), proxies)
    throttle = LoginThrottle(layout.login_failures, config["login_max_failures"], config["login_window"])
    audit = AuditLog(layout.audit_log)
    admin = admin_app.create(layer, iam, config, layout.metrics_dir, members, throttle, audit, proxies)
    internal = internal_app.create(
        store,
        peer_keys,
        ReplayCache(layout.peer_nonces),
        configuration.advertised(config, "internal"),
        members,
        ImageShelf(env, layout.images_dir),
        checks,
    )

    by_port = {
        port("s3_address"): s3,
        port("admin_address"): admin,
        port("console_address"): console_app.create(config, reader.token_generation, proxies),
        port("internal_address"): internal,
    }

    def application(environ, start_response):
        return by_port.get(environ.get("SERVER_PORT"), s3)(environ, start_response)

    single = not configuration.is_cluster(config)

    def loop_mode(environ) -> str | None:
        """How an S3 request whose body is in memory (or held back until asked for) may run on
        the worker's event loop (None: on a thread). A read whose bytes are on this node's disk (a lone node's, or a
        cluster's where this node holds every object), fenced by the worker first where reads
        are fenced and no read lease stands in for the fence. A PUT or DELETE on a lone node
        whose reads need no fence: the application takes the ones that would block before
        their commit to a thread."""
        method = environ["REQUEST_METHOD"]
        fenced = layer.fenced
        if method in LOOP_WRITES:
            return RUN_INLINE if single and not fenced else None
        if method not in ("GET", "HEAD"):
            return None
        if not ((single and not fenced) or cluster_data.holds_every_object()):
            return None
        if not fenced or layer.leased():
            # Nothing to fence, or a lease stands in for the fence. PERF: the application takes
            # the read as fenced rather than asking again (a stat per request on a lone node).
            environ[READ_FENCED] = True
            return RUN_INLINE
        return RUN_AFTER_FENCE

    application.loop_mode = loop_mode
    application.supervisor_socket = layout.ipc_socket
    application.proxies = proxies
    return application
