"""The bounded memo keeps at most its size, forgetting the oldest first."""

import sys
import threading

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


def test_threads_putting_at_once_neither_fail_nor_outgrow_the_memo():
    memo: BoundedMemo[int] = BoundedMemo(4)
    failures: list[Exception] = []

    def put_many(start: int) -> None:
        try:
            for key in range(start, start + 20_000):
                memo.put(key, key)
        except Exception as exc:  # what an unlocked put raised: the dict changed while iterated
            failures.append(exc)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads trade the interpreter as often as it allows
    try:
        threads = [threading.Thread(target=put_many, args=(number * 100_000,)) for number in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert failures == []
    assert len(memo._results) <= 4
