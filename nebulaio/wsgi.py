"""Composition root of an HTTP worker: built once per worker, after fork.

gunicorn binds the S3, Admin and Console listeners in one arbiter; a request is routed to
its app by the listener port it arrived on.
"""

from __future__ import annotations

from nebulaio import config as configuration
from nebulaio.admin import app as admin_app
from nebulaio.cluster.ipc import SupervisorClient
from nebulaio.console import app as console_app
from nebulaio.engine.objects import ObjectLayer
from nebulaio.iam.credentials import Credentials
from nebulaio.iam.service import IamService
from nebulaio.meta import MetaReader, open_env
from nebulaio.s3 import app as s3_app
from nebulaio.storage.layout import DataLayout
from nebulaio.storage.objects import ObjectStore
from nebulaio.util.metrics import RequestMetrics


def build(config: dict | None = None):
    config = config or configuration.from_environment()
    layout = DataLayout(config["data"])
    env = open_env(layout.kv_dir, readonly=True)
    reader = MetaReader(env)
    supervisor = SupervisorClient(layout.ipc_socket)
    layer = ObjectLayer(
        reader,
        ObjectStore(layout),
        supervisor,
        config["max_object_size"],
        config["inline_threshold"],
        fenced=configuration.is_cluster(config) and config["read_consistency"] == "strong",
    )
    credentials = Credentials(config["root_user"], config["root_password"])
    iam = IamService(reader, supervisor, credentials, layout.cluster_secret(config["cluster_secret"]))

    def port(name: str) -> str:
        return str(configuration.split_address(config[name])[1])

    s3 = s3_app.create(layer, iam, config, RequestMetrics(layout.metrics_dir, s3_app.OPERATIONS))
    admin = admin_app.create(layer, credentials, config, layout.metrics_dir)
    by_port = {
        port("s3_address"): s3,
        port("admin_address"): admin,
        port("console_address"): console_app.create(),
    }

    def application(environ, start_response):
        return by_port.get(environ.get("SERVER_PORT"), s3)(environ, start_response)

    return application
