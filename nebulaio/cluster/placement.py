"""Which storage nodes hold a file: rendezvous (highest random weight) hashing with xxhash.

Every node scores each (node id, name) pair and the highest scores win. Any node computes
the same answer from the same membership, with no table to share; when a node joins it takes
only the names it now outscores, and when one leaves only its names move, each to the next
node in that name's order. A version's name is its file name; the parts of a multipart upload
are all placed by the upload id, so every part of an upload has the same holders.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import xxhash

STORAGE_ROLES = frozenset(("hybrid", "storage"))
"""The roles of the nodes that hold object bytes."""


def _score(node: str, name: str) -> int:
    return xxhash.xxh3_64_intdigest(f"{node}\0{name}".encode())


def placement(nodes: Iterable[str], name: str, replicas: int) -> tuple[list[str], list[str]]:
    """(the R = min(replicas, nodes) holders of `name`, the other nodes in the order that
    replaces a holder that fails).

    Ties (a 64-bit collision) break by node id, so the order never depends on input order.
    """
    ranked = sorted(set(nodes), key=lambda node: (_score(node, name), node), reverse=True)
    count = max(0, min(replicas, len(ranked)))
    return ranked[:count], ranked[count:]


def write_targets(
    nodes: Collection[str], dead: Collection[str], name: str, replicas: int
) -> tuple[int, list[str], list[str]]:
    """(R, the live nodes to write `name` to, the live nodes that replace one that fails).

    R = min(replicas, registered storage nodes), the dead counted: the write quorum is a
    majority of R, so nodes going down never shrink it to a majority of the survivors. A dead
    node's copy goes to the next live node of `name`'s order instead.
    """
    wanted = min(replicas, len(set(nodes)))
    chosen, spares = placement((node for node in nodes if node not in dead), name, wanted)
    return wanted, chosen, spares


def write_quorum(holders: int) -> int:
    """Copies that must be durable before a write is acknowledged: a majority of the holders.

    NOTE: a majority, not all: with R = 3 one holder may be down and writes go on, while two
    acknowledged copies still survive the loss of any one node.
    """
    return holders // 2 + 1


def takes_copies(node: dict) -> bool:
    """Whether a registered node is given new copies: a storage node that is not being drained."""
    return node["role"] in STORAGE_ROLES and not node.get("draining")
