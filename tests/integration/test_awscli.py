"""The AWS CLI v1 against a node: mb, cp up and down (multipart above 8 MiB), ls, presign, rm, rb.

The CLI runs with a private AWS config file and its default transfer settings: files from
8 MiB on go up as multipart uploads of 8 MiB parts, and come down in ranged parallel GETs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid

import pytest
import requests
from conftest import ROOT_PASSWORD, ROOT_USER

pytestmark = pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")

MIB = 1024 * 1024
SIZE = 20 * MIB + 11
LARGE_SIZE = 200 * MIB
CLI_TIMEOUT = 120


@pytest.fixture(scope="module")
def aws(node, tmp_path_factory):
    directory = tmp_path_factory.mktemp("awscli")
    config = directory / "config"
    config.write_text("[default]\ns3 =\n  addressing_style = path\n")
    credentials = directory / "credentials"
    credentials.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ROOT_USER,
        AWS_SECRET_ACCESS_KEY=ROOT_PASSWORD,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_MAX_ATTEMPTS="1",
    )

    def run(*args: str) -> str:
        done = subprocess.run(
            ["aws", "--endpoint-url", node.s3_url, *args],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        assert done.returncode == 0, f"aws {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        return done.stdout

    return run


def _md5(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def test_cli_round_trip(aws, s3, tmp_path):
    bucket = f"cli-{uuid.uuid4().hex[:12]}"
    upload = tmp_path / "upload.bin"
    with open(upload, "wb") as fh:
        fh.write(os.urandom(SIZE))
    small = tmp_path / "small.txt"
    small.write_text("a small text file\n")

    aws("s3", "mb", f"s3://{bucket}")
    assert bucket in aws("s3", "ls")
    aws("s3", "cp", str(upload), f"s3://{bucket}/dir/big.bin")
    aws("s3", "cp", str(small), f"s3://{bucket}/small.txt")
    head = s3.head_object(Bucket=bucket, Key="dir/big.bin")
    assert head["ContentLength"] == SIZE
    assert head["ETag"].endswith('-3"'), "20 MiB in the CLI's 8 MiB parts is a three-part upload"

    top = aws("s3", "ls", f"s3://{bucket}/")
    assert "PRE dir/" in top and "small.txt" in top
    assert "big.bin" in aws("s3", "ls", "--recursive", f"s3://{bucket}")

    download = tmp_path / "download.bin"
    aws("s3", "cp", f"s3://{bucket}/dir/big.bin", str(download))
    assert _md5(download) == _md5(upload)

    url = aws("s3", "presign", f"s3://{bucket}/small.txt", "--expires-in", "300").strip()
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.text == "a small text file\n"

    aws("s3", "rm", f"s3://{bucket}/dir/big.bin")
    aws("s3", "rm", f"s3://{bucket}/small.txt")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    aws("s3", "rb", f"s3://{bucket}")
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_cli_multipart_200_mib(aws, s3, bucket, tmp_path):
    upload = tmp_path / "large.bin"
    with open(upload, "wb") as fh:
        for _ in range(LARGE_SIZE // MIB):
            fh.write(os.urandom(MIB))
    try:
        aws("s3", "cp", str(upload), f"s3://{bucket}/large.bin")
        head = s3.head_object(Bucket=bucket, Key="large.bin")
        assert head["ContentLength"] == LARGE_SIZE
        assert head["ETag"].endswith('-25"')
        download = tmp_path / "large.out"
        try:
            aws("s3", "cp", f"s3://{bucket}/large.bin", str(download))
            assert _md5(download) == _md5(upload)
        finally:
            download.unlink(missing_ok=True)
    finally:
        upload.unlink()
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
