"""`nebulaio admin bucket import DIR BUCKET` and `export BUCKET DIR` against a real node:
a tree goes up and comes back byte for byte through the S3 API, with a progress bar, and a
key that would leave the export directory writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT_PASSWORD, ROOT_USER

TREE = {
    "a.txt": b"hello\n",
    "dir/b.bin": os.urandom(3 * (1 << 20) + 5),
    "dir/sub/empty": b"",
    "space name/\u00fcber.txt": "gr\u00fc\u00dfe".encode(),
    "d/e.bin": os.urandom(1536 * 1024),
}


def transfer(node, *args: str, secret: str = ROOT_PASSWORD) -> subprocess.CompletedProcess:
    environment = dict(os.environ, AWS_ACCESS_KEY_ID=ROOT_USER, AWS_SECRET_ACCESS_KEY=secret)
    command = [sys.executable, "-m", "nebulaio", "admin", "bucket", *args, "--s3-url", node.s3_url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, body in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def read_tree(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_a_tree_goes_up_and_comes_back(node, s3, bucket, tmp_path):
    source = tmp_path / "source"
    write_tree(source, TREE)
    imported = transfer(node, "import", str(source), bucket, "--prefix", "backup/")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(f"imported {len(TREE)} files")
    # The bar's last line: every file and byte done (a line each, stderr being no terminal).
    last = imported.stderr.strip().splitlines()[-1]
    assert last.startswith("[" + "#" * 30 + "] 100%") and f"{len(TREE)}/{len(TREE)} files" in last, last
    for key, body in TREE.items():
        assert s3.get_object(Bucket=bucket, Key="backup/" + key)["Body"].read() == body, key

    everything = tmp_path / "everything"
    exported = transfer(node, "export", bucket, str(everything))
    assert exported.returncode == 0, exported.stderr
    assert read_tree(everything) == {"backup/" + key: body for key, body in TREE.items()}
    assert "100%" in exported.stderr.strip().splitlines()[-1]

    below = tmp_path / "below"
    exported = transfer(node, "export", bucket, str(below), "--prefix", "backup/dir/")
    assert exported.returncode == 0, exported.stderr
    assert read_tree(below) == {"b.bin": TREE["dir/b.bin"], "sub/empty": b""}


def test_a_key_that_leaves_the_directory_writes_nothing(node, s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="inside/ok", Body=b"ok")
    s3.put_object(Bucket=bucket, Key="inside/../../escaped", Body=b"no")
    target = tmp_path / "one" / "two"
    exported = transfer(node, "export", bucket, str(target))
    assert exported.returncode == 0, exported.stderr
    assert "1 skipped" in exported.stdout and "escaped" in exported.stdout
    assert read_tree(tmp_path) == {"one/two/inside/ok": b"ok"}


def test_refusals_are_reported(node, bucket, tmp_path):
    write_tree(tmp_path / "source", {"x": b"x"})
    missing = transfer(node, "import", str(tmp_path / "source"), "no-such-bucket-here")
    assert missing.returncode == 1 and "NoSuchBucket" in missing.stderr
    forged = transfer(node, "import", str(tmp_path / "source"), bucket, secret="wrong-secret")
    assert forged.returncode == 1 and "SignatureDoesNotMatch" in forged.stderr
    absent = transfer(node, "import", str(tmp_path / "absent"), bucket)
    assert absent.returncode == 1 and "is not a directory" in absent.stderr
