"""Rendezvous placement: stable, balanced, and moving little when a node joins or leaves."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from nebulaio.cluster.placement import placement, write_quorum, write_targets

node_ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=12, unique=True)
names = st.text(min_size=1, max_size=40)
replicas = st.integers(min_value=1, max_value=7)


@given(node_ids, names, replicas, st.randoms())
def test_every_node_computes_the_same_holders_from_any_order(nodes, name, count, rng):
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    assert placement(nodes, name, count) == placement(shuffled, name, count)


@given(node_ids, names, replicas)
def test_r_distinct_holders_then_every_other_node_as_a_replacement(nodes, name, count):
    chosen, spares = placement(nodes, name, count)
    assert len(chosen) == min(count, len(nodes))
    assert sorted(chosen + spares) == sorted(nodes)


@given(node_ids, names, replicas, st.text(min_size=1, max_size=12))
def test_a_joining_node_takes_a_slot_or_nothing(nodes, name, count, newcomer):
    if newcomer in nodes:
        return
    before, _ = placement(nodes, name, count)
    after, _ = placement([*nodes, newcomer], name, count)
    if newcomer in after:
        # it pushed out at most the last holder; the others keep their bytes
        assert set(after) - {newcomer} <= set(before)
        assert len(set(before) - set(after)) <= 1
    else:
        assert after == before


@given(node_ids, names, replicas, st.data())
def test_a_leaving_node_moves_only_its_own_names(nodes, name, count, data):
    leaving = data.draw(st.sampled_from(nodes))
    before, spares = placement(nodes, name, count)
    after, _ = placement([node for node in nodes if node != leaving], name, count)
    if leaving not in before:
        assert after == before
    else:
        # the survivors keep their copies; the next node in the name's order takes the slot
        kept = [node for node in before if node != leaving]
        assert set(kept) <= set(after)
        assert set(after) - set(kept) <= set(spares[:1])


def test_names_spread_evenly_over_the_nodes():
    nodes = [f"node{n}" for n in range(5)]
    load = Counter(holder for n in range(6000) for holder in placement(nodes, f"{n:032x}", 3)[0])
    expected = 6000 * 3 / 5
    assert all(abs(count - expected) < expected * 0.08 for count in load.values()), load


def test_a_joining_node_takes_its_share_and_no_more():
    names = [f"{n:032x}" for n in range(4000)]
    nodes = [f"node{n}" for n in range(4)]
    moved = sum(placement(nodes, name, 1)[0] != placement([*nodes, "node4"], name, 1)[0] for name in names)
    assert abs(moved - len(names) / 5) < len(names) * 0.04


def test_a_write_needs_a_majority_of_the_holders():
    assert [write_quorum(r) for r in range(1, 6)] == [1, 2, 2, 3, 3]


@given(node_ids, names, replicas, st.data())
def test_dead_nodes_count_towards_r_and_their_copies_go_to_the_next_live_nodes(nodes, name, count, data):
    dead = data.draw(st.sets(st.sampled_from(nodes)))
    wanted, chosen, spares = write_targets(nodes, dead, name, count)
    assert wanted == min(count, len(nodes))
    live_order = [node for node in placement(nodes, name, len(nodes))[0] if node not in dead]
    assert chosen == live_order[:wanted] and spares == live_order[wanted:]


def test_two_of_three_nodes_down_leave_no_write_quorum():
    wanted, chosen, _ = write_targets(["a", "b", "c"], {"b", "c"}, "name", 3)
    assert (wanted, chosen, write_quorum(wanted)) == (3, ["a"], 2)
