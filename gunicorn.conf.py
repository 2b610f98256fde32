"""Gunicorn settings and after-fork hooks for NebulaIO's HTTP workers.

The launcher (`nebulaio server`) passes the resolved node settings in the environment; every
listener (S3, Admin, Console, inter-node) is bound by the same arbiter, and each worker builds its apps
after fork (no preload), so LMDB is opened in the worker, never inherited.
"""

import multiprocessing

from nebulaio import config as _configuration

_settings = _configuration.from_environment()


def _bind(address):
    host, port = _configuration.split_address(address)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


bind = [_bind(_settings[name]) for name in _configuration.HTTP_LISTENERS]
# PERF: one event-loop worker per core. Two per core measured 6 to 9% fewer 4 KiB GETs and
# 14% less PUT 64 MiB throughput on two cores (more processes trading the same cores).
workers = _settings["workers"] or multiprocessing.cpu_count()
# An event loop of our own (see nebulaio.httpworker): reads that never wait are answered on
# the loop, the rest on `threads` threads; GET bodies still leave through sendfile.
worker_class = "nebulaio.httpworker.LoopWorker"
threads = _settings["threads"]
# 10,000 clients connecting at once wait in the accept queue, not in SYN retries.
backlog = 4096
keepalive = 30
timeout = 60
graceful_timeout = 30
preload_app = False
reuse_port = False
# Several nodes may share a host: no shared control socket in $HOME.
control_socket_disable = True
proc_name = f"nebulaio http {_settings['data']}"
# Presigned URLs for 1024-byte keys are long; headers carry user metadata.
limit_request_line = 0
limit_request_fields = 256
limit_request_field_size = 16384
accesslog = None
errorlog = "-"
loglevel = _settings["log_level"]
# The inter-node listener's mTLS (internal_tls_*) is the worker's own: see nebulaio.httpworker.
if _settings["tls_cert"] and _settings["tls_key"]:
    certfile = _settings["tls_cert"]
    keyfile = _settings["tls_key"]


def post_worker_init(worker):
    """Name the worker once it is booted: its signal handlers are in place and its apps built."""
    from setproctitle import setproctitle

    setproctitle(f"nebulaio http worker {_settings['data']}")


def pre_fork(server, worker):
    """Give the worker a slot for its connection count (nebulaio.httpworker.ConnectionCounts)."""
    from nebulaio.httpworker import CONNECTION_COUNTS

    worker.slot = CONNECTION_COUNTS.free_slot({other.slot for other in server.WORKERS.values()})


def child_exit(server, worker):
    from nebulaio.httpworker import CONNECTION_COUNTS

    CONNECTION_COUNTS.release(worker.slot)
