"""The bounded memo keeps at most its size, forgetting the oldest first."""

from nebulaio.util.memo import BoundedMemo


def test_the_memo_forgets_its_oldest_entry_beyond_its_size():
    memo: BoundedMemo[str] = BoundedMemo(3)
    for key in "abcd":
        assert memo.put(key, key.upper()) == key.upper()
    assert memo.get("a") is None
    assert [memo.get(key) for key in "bcd"] == ["B", "C", "D"]


def test_a_key_put_again_becomes_the_newest():
    memo: BoundedMemo[int] = BoundedMemo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    memo.put("a", 3)
    memo.put("c", 4)
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (3, None, 4)
