"""The fuzz campaign's short run (benchmarks/fuzz.py has the long one): hostile requests of
every family at a node of their own: no 5xx, no unanswered request, no broken signature
accepted, nothing a refused request touched changed, and no process of the node gone."""

from __future__ import annotations

from benchmarks.fuzz import FAMILIES, Node, campaign

REQUESTS = 1_400


def test_a_short_fuzz_campaign_finds_nothing(node_factory):
    node = node_factory()
    processes = set(node.group_pids())
    target = Node(node.ports["s3"], node.ports["admin"], node.root_user, node.root_password)
    report = campaign(target, REQUESTS, seed=7, threads=2)
    assert report.violations == [], "\n".join(report.violations)
    assert all(sum(report.statuses[family].values()) > REQUESTS // len(FAMILIES) // 2 for family in FAMILIES)
    assert set(node.group_pids()) == processes, "a process of the node died or was replaced"
