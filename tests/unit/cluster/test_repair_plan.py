"""The repair loop's decision for one file on one node, over every membership it can see."""

from hypothesis import given
from hypothesis import strategies as st

from nebulaio.cluster.placement import placement
from nebulaio.cluster.repair import ADD, CLAIM, DROP, KEEP, PULL, REMOVE, plan
from nebulaio.meta.holders import reassigned

NODES = ["n0", "n1", "n2", "n3", "n4"]
GROUP = "0123456789abcdef0123456789abcdef"
WANTED, SPARES = placement(NODES, GROUP, 3)


def test_a_wanted_node_without_the_file_copies_it():
    holders = [WANTED[0], WANTED[1], SPARES[0]]
    decided = plan(WANTED[2], holders, GROUP, NODES, NODES, 3, has_copy=False)
    assert decided.action == PULL and decided.misplaced and not decided.under_replicated


def test_a_wanted_holder_whose_copy_is_gone_copies_it_again():
    assert plan(WANTED[0], WANTED, GROUP, NODES, NODES, 3, has_copy=False).action == PULL


def test_a_wanted_node_with_an_unrecorded_copy_only_records_it():
    assert plan(WANTED[2], WANTED[:2], GROUP, NODES, NODES, 3, has_copy=True).action == ADD


def test_a_holder_no_longer_wanted_drops_once_every_wanted_node_holds_the_file():
    spare = SPARES[0]
    assert plan(spare, [*WANTED[:2], spare], GROUP, NODES, NODES, 3, has_copy=True).action == KEEP
    assert plan(spare, [*WANTED, spare], GROUP, NODES, NODES, 3, has_copy=True).action == DROP


def test_a_holder_that_lost_its_copy_drops_at_once():
    spare = SPARES[0]
    assert plan(spare, [*WANTED[:1], spare], GROUP, NODES, NODES, 3, has_copy=False).action == DROP


def test_a_copy_no_record_names_is_removed_unless_wanted():
    assert plan(SPARES[0], WANTED, GROUP, NODES, NODES, 3, has_copy=True).action == REMOVE
    assert plan(SPARES[0], WANTED, GROUP, NODES, NODES, 3, has_copy=False).action == KEEP


def test_a_down_holder_makes_the_next_node_wanted():
    down = WANTED[1]
    live = [node for node in NODES if node != down]
    decided = plan(SPARES[0], WANTED, GROUP, live, live, 3, has_copy=False)
    assert decided.action == PULL and decided.under_replicated


def test_a_settled_file_is_kept_by_everyone():
    for node in NODES:
        decided = plan(node, WANTED, GROUP, NODES, NODES, 3, has_copy=node in WANTED)
        assert decided.action == KEEP and not decided.misplaced and not decided.under_replicated


def test_a_draining_holder_gives_its_copy_up_once_the_others_hold_it():
    draining = WANTED[0]
    others = [node for node in NODES if node != draining]
    moved, _ = placement(others, GROUP, 3)
    newcomer = next(node for node in moved if node not in WANTED)
    assert plan(newcomer, WANTED, GROUP, others, NODES, 3, has_copy=False).action == PULL
    assert plan(draining, WANTED, GROUP, others, NODES, 3, has_copy=True).action == KEEP
    assert plan(draining, [*WANTED, newcomer], GROUP, others, NODES, 3, has_copy=True).action == DROP


def test_a_file_written_alone_is_claimed_by_the_node_that_has_it():
    assert plan(NODES[0], None, GROUP, NODES, NODES, 3, has_copy=True).action == CLAIM
    assert plan(NODES[1], None, GROUP, NODES, NODES, 3, has_copy=False).action == KEEP
    assert reassigned(None, NODES[0], None, []) == [NODES[0]]
    assert reassigned(None, None, NODES[0], []) is None


@given(
    st.lists(st.sampled_from(NODES), unique=True),
    st.sets(st.sampled_from(NODES), min_size=1),
    st.sets(st.sampled_from(NODES)),
)
def test_repeated_passes_settle_on_the_wanted_holders(holders, live, copies):
    """Every live node acting on its plan in turn, as the repair loop and apply do, pass after
    pass: the wanted nodes end up recorded and holding the file, and no other live node keeps it.

    `copies` are the nodes whose disk has the file: a holder may have lost it, and a node that
    is no holder may keep a stray one.
    """
    if not any(node in live and node in copies for node in holders):
        return  # no live copy left to repair from
    wanted, _ = placement(live, GROUP, 3)
    for _ in range(3):
        for node in sorted(live):
            has_copy = node in copies
            decided = plan(node, holders, GROUP, live, live, 3, has_copy)
            if decided.action == PULL:
                if not any(source in live and source in copies for source in holders if source != node):
                    continue
                copies.add(node)
            if decided.action in (PULL, ADD):
                holders = reassigned(holders, node, None, [])
            elif decided.action == DROP:
                changed = reassigned(holders, None, node, decided.wanted if has_copy else [])
                if changed is not None:
                    holders = changed
                    copies.discard(node)
            elif decided.action == REMOVE:
                copies.discard(node)
    assert sorted(node for node in holders if node in live) == sorted(wanted)
    assert {node for node in copies if node in live} == set(wanted)
