"""The history checker on hand-made histories: consistent ones pass, each kind of anomaly fails."""

from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.history import FAIL, OK, UNKNOWN, Op, check, outcome_of


def put(value, invoke, complete, outcome=OK, key="k"):
    return Op("put", key, value, invoke, complete, outcome)


def delete(invoke, complete, outcome=OK, key="k"):
    return Op("delete", key, None, invoke, complete, outcome)


def get(value, invoke, complete, key="k"):
    return Op("get", key, value, invoke, complete, OK)


def test_sequential_history_passes():
    assert check([get(None, 0, 1), put("a", 2, 3), get("a", 4, 5), delete(6, 7), get(None, 8, 9)]) == []


def test_stale_read_fails():
    problems = check([put("a", 0, 1), put("b", 2, 3), get("a", 4, 5)])
    assert len(problems) == 1 and "stale" in problems[0]


def test_lost_write_fails():
    # b was acknowledged; the final read sees the key as if it never happened
    assert check([put("b", 0, 1), get(None, 10, 11)])


def test_reordered_writes_fail():
    # a was acknowledged before b was sent, yet the last read sees a
    assert check([put("a", 0, 1), put("b", 2, 3), get("b", 4, 5), get("a", 6, 7)])


def test_read_during_a_write_may_see_either_value():
    history = [put("a", 0, 1), put("b", 2, 6), get("a", 3, 4), get("b", 4.5, 5)]
    assert check(history) == []


def test_concurrent_writes_may_land_in_either_order():
    history = [put("a", 0, 5), put("b", 1, 4), get("a", 6, 7), get("a", 8, 9)]
    assert check(history) == []


def test_reads_do_not_go_back():
    # b was sent after a was acknowledged; once a read saw b, a later read must not see a
    history = [put("a", 0, 1), put("b", 2, 10), get("b", 3, 4), get("a", 5, 6)]
    problems = check(history)
    assert len(problems) == 1 and "went back" in problems[0]


def test_unknown_write_may_apply_late_but_not_before_its_invoke():
    assert check([put("a", 0, 1), put("x", 2, 3, UNKNOWN), get("x", 20, 21)]) == []
    assert check([put("x", 5, 6, UNKNOWN), get("x", 0, 1)])


def test_refused_write_never_shows():
    assert check([put("a", 0, 1), put("x", 2, 3, FAIL), get("x", 4, 5)])


def test_value_nobody_wrote_fails():
    problems = check([put("a", 0, 1), get("zzz", 2, 3)])
    assert len(problems) == 1 and "no write" in problems[0]


def test_keys_are_checked_apart():
    history = [put("a", 0, 1, key="k1"), put("b", 0, 1, key="k2"), get("a", 2, 3, key="k1"), get(None, 2, 3, key="k3")]
    assert check(history) == []


def test_a_delete_after_an_unknown_write_may_leave_either():
    history = [put("x", 0, 1, UNKNOWN), delete(2, 3), get(None, 4, 5)]
    assert check(history) == []


def test_outcome_of_errors():
    def client_error(status):
        return ClientError({"Error": {"Code": "X"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")

    assert outcome_of(client_error(404)) == FAIL
    assert outcome_of(client_error(503)) == UNKNOWN
    assert outcome_of(client_error(500)) == UNKNOWN
    assert outcome_of(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")) == UNKNOWN


@given(st.lists(st.tuples(st.sampled_from(["put", "delete", "get"]), st.sampled_from(["k1", "k2"])), max_size=60))
def test_any_sequential_run_of_a_register_passes(steps):
    """Operations one after another against a dict are always consistent."""
    state: dict[str, str | None] = {}
    history = []
    for clock, (kind, key) in enumerate(steps):
        value = f"v{clock}" if kind == "put" else None
        if kind == "put":
            state[key] = value
        elif kind == "delete":
            state.pop(key, None)
        else:
            value = state.get(key)
        history.append(Op(kind, key, value, 2 * clock, 2 * clock + 1, OK))
    assert check(history) == []


@given(st.integers(min_value=1, max_value=20), st.integers(min_value=0, max_value=19))
def test_any_read_of_an_overwritten_value_fails(writes, stale):
    """After n sequential acknowledged writes, reading any but the last is caught."""
    stale = stale % writes
    history = [put(f"v{n}", 2 * n, 2 * n + 1) for n in range(writes)]
    history.append(get(f"v{stale}", 2 * writes, 2 * writes + 1))
    assert (check(history) == []) == (stale == writes - 1)
