"""pytest fixtures of a real NebulaIO node: `nebulaio_server`, `nebulaio_client`, `nebulaio_bucket`.

pytest loads this module through the package's `pytest11` entry point, in every run of an
environment where nebulaio is installed: it imports nothing and starts nothing until a test
asks for one of its fixtures. Under pytest-xdist each worker starts its own node.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

OPTIONS = (
    # (command line flag, ini name, help); a flag given wins over the ini value
    ("--nebulaio-data-dir", "nebulaio_data_dir", "keep the node's data in this directory across runs"),
    ("--nebulaio-cluster", "nebulaio_cluster", "start a cluster of three nodes instead of one"),
    ("--nebulaio-tls", "nebulaio_tls", "serve HTTPS with a certificate of a new CA (nebulaio_server.ca_bundle)"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nebulaio", "NebulaIO server fixtures")
    data_flag, data_ini, data_help = OPTIONS[0]
    group.addoption(data_flag, dest=data_ini, default=None, metavar="DIR", help=data_help)
    parser.addini(data_ini, data_help, default="")
    for flag, ini, help_text in OPTIONS[1:]:
        group.addoption(flag, dest=ini, action="store_true", default=None, help=help_text)
        parser.addini(ini, help_text, type="bool", default=False)


def _setting(config: pytest.Config, ini: str):
    given = config.getoption(ini)
    return config.getini(ini) if given is None else given


@pytest.fixture(scope="session")
def nebulaio_server(request: pytest.FixtureRequest):
    """A running NebulaIO node (nebulaio.testing.NebulaIO): endpoint_url, access_key,
    secret_key, region, admin_url; ca_bundle with TLS; nodes in a cluster. Without a data
    directory it lives in a temporary one ($TMPDIR), removed when the session ends."""
    from nebulaio.testing import NebulaIO

    if "PYTEST_XDIST_WORKER" in os.environ:
        # A worker outlives its killed controller while a test runs, and its node with it:
        # the worker goes with the controller, and its node with the worker.
        from nebulaio.node import die_with_parent

        die_with_parent()
    data_dir = _setting(request.config, "nebulaio_data_dir") or None
    if data_dir:
        # Each pytest-xdist worker keeps a node of its own.
        data_dir = Path(data_dir).absolute() / os.environ.get("PYTEST_XDIST_WORKER", "main")
    cluster = _setting(request.config, "nebulaio_cluster")
    tls = _setting(request.config, "nebulaio_tls")
    with NebulaIO(data_dir, cluster=cluster, tls=tls) as server:
        yield server


@pytest.fixture(scope="session")
def nebulaio_client(nebulaio_server):
    """A boto3 S3 client of the node's root user (skips the test where boto3 is missing)."""
    pytest.importorskip("boto3")
    return nebulaio_server.client()


@pytest.fixture
def nebulaio_bucket(nebulaio_client):
    """The name of a new bucket for one test; emptied (every version and open upload) and removed after it."""
    from nebulaio.testing import fresh_bucket

    with fresh_bucket(nebulaio_client) as name:
        yield name
