"""The bounded memo keeps at most its size, forgetting the oldest first."""

from nebulaio.util.memo import BoundedMemo


def test_the_memo_forgets_its_oldest_entry_beyond_its_size():
    memo: BoundedMemo[str] = BoundedMemo(3)
    for key in "abcd":
        assert memo.put(key, key.upper()) == key.upper()
    assert memo.get("a") is None
    assert [memo.get(key) for key in "bcd"] == ["B", "C", "D"]
