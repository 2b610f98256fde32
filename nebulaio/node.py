"""`nebulaio server`: launch the supervisor and the gunicorn arbiter side by side.

The arbiter reaps every child of its own, so the supervisor cannot be its child; this small
launcher owns both, stops both on SIGTERM/SIGINT, and exits non-zero if either one dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from setproctitle import setproctitle

from nebulaio import config as configuration
from nebulaio.storage.layout import DataLayout

log = logging.getLogger("nebulaio.node")

PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 30.0
WATCH_INTERVAL = 0.2
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class StopRequest:
    """Signal handler that only records the signal: the main loop acts on it.

    NOTE: not a threading.Event: its set() takes a non-reentrant lock that the interrupted
    main thread may be holding inside Event.wait(), and the launcher then hangs for ever.
    """

    __slots__ = ("signum",)

    def __init__(self):
        self.signum = None

    def __call__(self, signum, frame) -> None:
        self.signum = signum

    def __bool__(self) -> bool:
        return self.signum is not None


def die_with_parent() -> None:
    """Children get SIGTERM if the launcher vanishes (even by SIGKILL): no orphans."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def gunicorn_conf_path() -> str:
    packaged = Path(__file__).with_name("gunicorn.conf.py")
    if packaged.exists():
        return str(packaged)
    return str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py")


def _stop(process: subprocess.Popen, name: str) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.error("%s did not stop within %.0f s; killing it", name, STOP_TIMEOUT)
        process.kill()
        process.wait()


def announce_root_credentials(config: dict, layout: DataLayout, user: str, password: str, generated: bool) -> None:
    """A generated pair is printed once, when made; later starts say only where it is kept."""
    if generated:
        print(
            f"Root credentials generated for this node (shown only now; kept in {layout.root_credentials_file},"
            f" mode 0600; `nebulaio credentials --data {shlex.quote(config['data'])}` prints them):\n"
            f"  access key: {user}\n  secret key: {password}",
            flush=True,
        )
    elif not config["root_user"]:
        log.info("root access key %s; the pair is kept in %s", user, layout.root_credentials_file)


def run(config: dict) -> int:
    setproctitle(f"nebulaio server {config['data']}")
    layout = DataLayout(config["data"])
    # The request counters of the node's previous run: its metrics start again from zero.
    shutil.rmtree(layout.metrics_dir, ignore_errors=True)
    layout.create()
    # NOTE: resolved here, before any worker starts, so that every worker signs with the same secret
    # and knows the same root pair.
    root_user, root_password, generated = layout.root_credentials(config["root_user"], config["root_password"])
    announce_root_credentials(config, layout, root_user, root_password, generated)
    config = dict(
        config,
        root_user=root_user,
        root_password=root_password,
        admin_secret=layout.admin_secret(config["admin_secret"]),
    )
    env = dict(os.environ, **{configuration.RESOLVED_ENV: configuration.export(config)})

    stop = StopRequest()
    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)

    # A socket left by a killed supervisor would pass for the new one being ready.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(layout.ipc_socket)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "nebulaio.cluster.supervisor"], env=env, preexec_fn=die_with_parent
    )
    # PERF: gunicorn starts beside the supervisor, not after it: the arbiter's and the workers'
    # imports (about half a second) overlap the supervisor's start. Each worker waits for the
    # supervisor's socket before it builds its apps (wsgi.build); a supervisor that does not
    # start fails the workers' boot, which stops gunicorn, which stops the node.
    http = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", gunicorn_conf_path(), "nebulaio.wsgi:build()"],
        env=env,
        preexec_fn=die_with_parent,
    )
    log.info(
        "node up: S3 %s, admin %s, console %s, raft %s, gossip %s, inter-node %s; data %s",
        config["s3_address"],
        config["admin_address"],
        config["console_address"],
        config["raft_address"],
        config["gossip_address"],
        config["internal_address"],
        config["data"],
    )
    status = 0
    while not stop:
        if supervisor.poll() is not None:
            log.error("the supervisor exited with status %s: stopping the node", supervisor.returncode)
            status = 1
            break
        if http.poll() is not None:
            log.error("the HTTP server exited with status %s: stopping the node", http.returncode)
            status = 1
            break
        time.sleep(WATCH_INTERVAL)
    _stop(http, "HTTP server")
    _stop(supervisor, "supervisor")
    log.info("node stopped")
    return status
