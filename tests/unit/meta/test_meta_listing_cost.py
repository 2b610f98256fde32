"""A listing page costs the same anywhere in a large bucket, and delimiters skip whole groups.

Cost is counted, not timed: the cursor is wrapped so the test sees every seek and every
key it steps over. (Page times are the benchmark harness's business.)
"""

import pytest

from nebulaio.meta import reader as reader_module

GROUPS, PER_GROUP, PAGE = 100, 1000, 1000


class CountingCursor:
    """An LMDB cursor that counts seeks and the keys it steps over."""

    def __init__(self, cursor, counts: dict):
        self._cursor = cursor
        self._counts = counts

    def set_range(self, key):
        self._counts["seeks"] += 1
        return self._cursor.set_range(key)

    def iternext(self, *args, **kwargs):
        for item in self._cursor.iternext(*args, **kwargs):
            self._counts["steps"] += 1
            yield item


@pytest.fixture
def counted(monkeypatch):
    counts = {"seeks": 0, "steps": 0}
    listing = reader_module._listing

    def counting_listing(cursor, *args):
        return listing(CountingCursor(cursor, counts), *args)

    monkeypatch.setattr(reader_module, "_listing", counting_listing)

    def measure(call):
        counts.update(seeks=0, steps=0)
        page = call()
        return page, dict(counts)

    return measure


def test_page_cost_is_independent_of_position(replica, counted):
    keys = [f"g{group:03d}/{n:04d}" for group in range(GROUPS) for n in range(PER_GROUP)]
    replica.create_bucket("big")
    replica.put_keys("big", keys, batch_size=10_000)
    reader = replica.reader

    first, at_start = counted(lambda: reader.list_objects("big", max_keys=PAGE))
    last, at_end = counted(lambda: reader.list_objects("big", after=keys[-PAGE - 1], max_keys=PAGE))
    assert [key for key, _ in first.entries] == keys[:PAGE] and first.truncated
    assert [key for key, _ in last.entries] == keys[-PAGE:] and not last.truncated
    assert at_start == {"seeks": 1, "steps": PAGE + 1}
    assert at_end["seeks"] == 1 and at_end["steps"] <= PAGE + 1


def test_delimiter_listing_seeks_past_each_group(replica, counted):
    keys = [f"g{group:03d}/{n:04d}" for group in range(GROUPS) for n in range(PER_GROUP)]
    replica.create_bucket("big")
    replica.put_keys("big", keys, batch_size=10_000)

    grouped, cost = counted(lambda: replica.reader.list_objects("big", delimiter="/", max_keys=PAGE))
    assert grouped.prefixes == [f"g{group:03d}/" for group in range(GROUPS)] and not grouped.entries
    # one seek and one step per group, never a walk over the 100,000 keys
    assert cost["seeks"] <= GROUPS + 1 and cost["steps"] <= GROUPS + 1
