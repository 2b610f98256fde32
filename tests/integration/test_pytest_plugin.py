"""The package's pytest plugin, as a user meets it: a test project outside tests/, run by pytest
in a subprocess that sees nebulaio only as built and installed from setup.py (its files and
its metadata, where pytest finds the `pytest11` entry point), with no conftest.

Each run is checked for its outcome and for the node processes it leaves behind: none, even
when the pytest process is interrupted (SIGINT) or killed (SIGKILL) while its node runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from nebulaio.testing import NebulaIO, wait_for

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 240
GONE_TIMEOUT = 30.0

SUITE = """
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(autouse=True)
def record_endpoint(nebulaio_server):
    with open(Path(__file__).with_name("endpoints"), "a") as endpoints:
        endpoints.write(nebulaio_server.endpoint_url + "\\n")


def test_put_and_get(nebulaio_client, nebulaio_bucket):
    nebulaio_client.put_object(Bucket=nebulaio_bucket, Key="hello.txt", Body=b"hello")
    body = nebulaio_client.get_object(Bucket=nebulaio_bucket, Key="hello.txt")["Body"].read()
    assert body == b"hello"


def test_bucket_starts_empty(nebulaio_client, nebulaio_bucket):
    assert nebulaio_client.list_objects_v2(Bucket=nebulaio_bucket)["KeyCount"] == 0


def test_list_by_prefix(nebulaio_client, nebulaio_bucket):
    for key in ("a/1", "a/2", "b/1"):
        nebulaio_client.put_object(Bucket=nebulaio_bucket, Key=key, Body=key.encode())
    listed = nebulaio_client.list_objects_v2(Bucket=nebulaio_bucket, Prefix="a/")
    assert [item["Key"] for item in listed["Contents"]] == ["a/1", "a/2"]


def test_delete(nebulaio_client, nebulaio_bucket):
    nebulaio_client.put_object(Bucket=nebulaio_bucket, Key="gone", Body=b"x")
    nebulaio_client.delete_object(Bucket=nebulaio_bucket, Key="gone")
    with pytest.raises(ClientError) as error:
        nebulaio_client.head_object(Bucket=nebulaio_bucket, Key="gone")
    assert error.value.response["Error"]["Code"] == "404"


def test_missing_key(nebulaio_client, nebulaio_bucket):
    with pytest.raises(nebulaio_client.exceptions.NoSuchKey):
        nebulaio_client.get_object(Bucket=nebulaio_bucket, Key="never-written")


def test_multipart(nebulaio_client, nebulaio_bucket):
    upload = nebulaio_client.create_multipart_upload(Bucket=nebulaio_bucket, Key="big")
    part = b"p" * (5 * 1024 * 1024)
    etags = [
        nebulaio_client.upload_part(
            Bucket=nebulaio_bucket, Key="big", UploadId=upload["UploadId"], PartNumber=number, Body=part
        )["ETag"]
        for number in (1, 2)
    ]
    nebulaio_client.complete_multipart_upload(
        Bucket=nebulaio_bucket,
        Key="big",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, 1)]},
    )
    assert nebulaio_client.head_object(Bucket=nebulaio_bucket, Key="big")["ContentLength"] == 2 * len(part)
    # left open on purpose: the bucket fixture aborts it
    nebulaio_client.create_multipart_upload(Bucket=nebulaio_bucket, Key="open")


def test_copy(nebulaio_client, nebulaio_bucket):
    nebulaio_client.put_object(Bucket=nebulaio_bucket, Key="source", Body=b"copied")
    nebulaio_client.copy_object(Bucket=nebulaio_bucket, Key="target", CopySource=f"{nebulaio_bucket}/source")
    assert nebulaio_client.get_object(Bucket=nebulaio_bucket, Key="target")["Body"].read() == b"copied"


def test_presigned_url(nebulaio_server, nebulaio_client, nebulaio_bucket):
    nebulaio_client.put_object(Bucket=nebulaio_bucket, Key="shared", Body=b"by url")
    url = nebulaio_client.generate_presigned_url(
        "get_object", Params={"Bucket": nebulaio_bucket, "Key": "shared"}, ExpiresIn=60
    )
    with urllib.request.urlopen(url, cafile=nebulaio_server.ca_bundle) as response:
        assert response.read() == b"by url"


def test_server(nebulaio_server):
    assert nebulaio_server.endpoint_url.split("://")[1].startswith("127.0.0.1:")
    assert nebulaio_server.access_key and nebulaio_server.secret_key
    assert nebulaio_server.access_key != "nebulaadmin"
    assert nebulaio_server.region == "us-east-1"
    with urllib.request.urlopen(nebulaio_server.admin_url + "/health/ready", cafile=nebulaio_server.ca_bundle) as ready:
        assert ready.status == 200
"""

OPTIONS_CHECK = """
import os

import boto3


def test_options(nebulaio_server, nebulaio_client):
    assert nebulaio_server.endpoint_url.startswith("https://")
    assert len(nebulaio_server.nodes) == 3
    if os.environ["EXPECT"] == "new":
        nebulaio_client.create_bucket(Bucket="kept")
        nebulaio_client.put_object(Bucket="kept", Key="k", Body=b"from the first run")
    for node in nebulaio_server.nodes:  # every node of the cluster reads what one acknowledged
        client = boto3.client(
            "s3",
            endpoint_url=node.s3_url,
            aws_access_key_id=nebulaio_server.access_key,
            aws_secret_access_key=nebulaio_server.secret_key,
            region_name=nebulaio_server.region,
            verify=nebulaio_server.ca_bundle,
        )
        assert client.get_object(Bucket="kept", Key="k")["Body"].read() == b"from the first run"
"""

HANGS = """
import os
import threading
from pathlib import Path

import pytest


@pytest.mark.parametrize("copy", [1, 2])
def test_hangs(nebulaio_server, copy):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(__file__).with_name(f"started-{worker}-{copy}").write_text(nebulaio_server.endpoint_url)
    threading.Event().wait()
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """nebulaio built and installed from setup.py into a directory of its own: its modules
    (gunicorn.conf.py copied in as for a wheel) and its metadata (entry points)."""
    target = tmp_path_factory.mktemp("installed")
    subprocess.run(
        [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", target, "build_py", "--build-lib", target],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=RUN_TIMEOUT,
    )
    return target


@pytest.fixture
def project():
    """A test project of its own, outside the repository's tests/, in a directory with a short
    path: the nodes' Unix sockets lie under it."""
    directory = Path(tempfile.mkdtemp(prefix="nebulaio-plugin-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


UNRELATED_PLUGINS = ("schemathesis", "hypothesispytest", "anyio", "benchmark")
"""Plugins of this repository's test environment, not of the project: pytest rewrites their
modules at every start where bytecode is not written (PYTHONDONTWRITEBYTECODE), seconds a run."""


def pytest_command(project: Path, *args: str) -> list[str]:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--basetemp={project / 'tmp'}"]
    for name in UNRELATED_PLUGINS:
        command += ["-p", f"no:{name}"]
    return command + list(args)


def environment(installed: Path, project: Path, **extra: str) -> dict[str, str]:
    """Only the installed package: no PYTHONPATH of the repository, no NEBULAIO_ settings;
    temporary directories (the nodes' data) inside the project."""
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("NEBULAIO_")}
    scratch = project / "scratch"
    scratch.mkdir(exist_ok=True)
    return {**inherited, "PYTHONPATH": str(installed), "TMPDIR": str(scratch), **extra}


def run_project(installed: Path, project: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        pytest_command(project, *args),
        cwd=project,
        env=environment(installed, project, **extra),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def node_processes(project: Path) -> list[psutil.Process]:
    """Live processes of the nodes a run of `project` started: their data directories lie in
    it, named in their titles ("nebulaio server DATA", ...) or, before a process sets its
    title, in its command line or its resolved settings."""
    found = []
    for process in psutil.process_iter():
        try:
            command = " ".join(process.cmdline())
            settings = process.environ().get("NEBULAIO_RESOLVED_CONFIG", "")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if "nebulaio" in command and (str(project) in command or str(project) in settings):
            found.append(process)
    return found


def assert_no_node_left(project: Path) -> None:
    wait_for(lambda: not node_processes(project), GONE_TIMEOUT, "every node process of the run to exit")


def passed(result: subprocess.CompletedProcess, count: int) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} passed" in result.stdout, result.stdout


def test_nine_tests_serially_then_with_two_workers(installed, project):
    (project / "test_suite.py").write_text(SUITE)
    endpoints = project / "endpoints"
    passed(run_project(installed, project), 9)
    assert len(set(endpoints.read_text().split())) == 1  # one node served the session
    assert_no_node_left(project)

    endpoints.unlink()
    passed(run_project(installed, project, "-n", "2"), 9)
    assert len(set(endpoints.read_text().split())) == 2  # one node for each worker
    assert_no_node_left(project)


def interruptible() -> None:
    """In the run's process before it starts: Ctrl-C reaches it as it reaches a user's run, even
    when this suite runs in the background, whose processes inherit an ignored SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    "how, workers",
    [(signal.SIGINT, 0), (signal.SIGKILL, 0), (signal.SIGKILL, 2)],
    ids=["sigint", "sigkill", "sigkill-two-workers"],
)
def test_an_interrupted_run_leaves_no_node(installed, project, how, workers):
    """The run is stopped while its tests hang with their nodes up (one test a worker)."""
    (project / "test_hangs.py").write_text(HANGS)
    started = lambda: list(project.glob("started-*"))  # noqa: E731
    with subprocess.Popen(
        pytest_command(project, *(["-n", str(workers)] if workers else [])),
        cwd=project,
        env=environment(installed, project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=interruptible,
    ) as run:
        try:
            wait_for(
                lambda: len(started()) == max(workers, 1) or run.poll() is not None, RUN_TIMEOUT, "the runs' nodes"
            )
            assert run.poll() is None, "the run ended before its nodes were up"
            assert node_processes(project), "no node process found while the tests run"
            run.send_signal(how)
            run.wait(RUN_TIMEOUT)
        finally:
            if run.poll() is None:
                run.kill()
    assert_no_node_left(project)


def test_a_tls_cluster_keeps_its_data_directory(installed, project):
    """Every option at once: TLS from the ini file, a cluster of three and a data directory
    from the command line; the second run starts the same cluster again and finds its object."""
    (project / "pytest.ini").write_text("[pytest]\nnebulaio_tls = true\n")
    (project / "test_options.py").write_text(OPTIONS_CHECK)
    options = ("--nebulaio-cluster", f"--nebulaio-data-dir={project / 'kept'}")
    passed(run_project(installed, project, *options, EXPECT="new"), 1)
    assert_no_node_left(project)
    passed(run_project(installed, project, *options, EXPECT="kept"), 1)
    assert_no_node_left(project)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_context_manager_stops_its_node():
    with NebulaIO() as server:
        data_dir = server.data_dir
        pids = [pid for node in server.nodes for pid in node.group_pids()]
        assert len(pids) >= 4  # launcher, supervisor, gunicorn's arbiter and its worker
        s3 = server.client()
        s3.create_bucket(Bucket="plain")
        s3.put_object(Bucket="plain", Key="k", Body=b"v")
        assert s3.get_object(Bucket="plain", Key="k")["Body"].read() == b"v"
    wait_for(lambda: not any(alive(pid) for pid in pids), GONE_TIMEOUT, "the node's processes to exit")
    assert not data_dir.exists()
