"""`nebulaio admin cluster repair --wait` on a node that comes back after writes it missed:
the command draws the repair's progress and returns only once the node holds its copies."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
from conftest import ROOT_PASSWORD, ROOT_USER, wait_for
from test_cluster_data import holding, new_bucket
from test_cluster_repair import REPAIR_ARGS, record_of


def admin(node, token_file, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nebulaio", "admin", "--url", node.admin_url, "--token-file", str(token_file)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=180, env=os.environ)


def test_repair_wait_returns_once_the_returning_node_holds_its_copies(cluster_factory, tmp_path):
    trio = cluster_factory(3, args=REPAIR_ARGS)
    bucket = new_bucket(trio)
    away = trio[2]
    away.stop()
    keys = [f"missed-{number}" for number in range(6)]
    try:
        for key in keys:
            trio[0].client().put_object(Bucket=bucket, Key=key, Body=os.urandom(64 * 1024))
    finally:
        away.start()
    token_file = tmp_path / "token.json"
    logged_in = admin(away, token_file, "login", "--username", ROOT_USER, "--password", ROOT_PASSWORD)
    assert logged_in.returncode == 0, logged_in.stderr

    waited = admin(away, token_file, "cluster", "repair", "--wait")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.startswith("node node2: repaired"), waited.stdout
    assert "walk " in waited.stderr and "last walk found" in waited.stderr
    for key in keys:
        version = wait_for(lambda key=key: record_of(away, bucket, key), 30, "the record on the returned node")["vid"]
        assert 2 in holding(trio, bucket, key, version), key

    figures = orjson.loads(admin(away, token_file, "--json", "cluster", "repair").stdout)
    assert figures["node"] == "node2" and figures["copied"] >= len(keys) and figures["underReplicated"] == 0
    summary = admin(away, token_file, "cluster", "repair").stdout
    assert summary.startswith("node node2: ") and "last walk found 0 under-replicated" in summary, summary
