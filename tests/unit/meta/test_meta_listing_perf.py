"""PERF: a listing page costs the same anywhere in a large bucket, and delimiters skip groups."""

import time

GROUPS, PER_GROUP, PAGE = 100, 1000, 1000
REPEATS = 15


def best_time(call) -> float:
    """The fastest of a few runs, in seconds: the least noisy estimate on a shared machine."""
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return min(timings)


def test_page_cost_is_independent_of_position(replica):
    keys = [f"g{group:03d}/{n:04d}" for group in range(GROUPS) for n in range(PER_GROUP)]
    replica.create_bucket("big")
    replica.put_keys("big", keys, batch_size=10_000)
    reader = replica.reader

    first = reader.list_objects("big", max_keys=PAGE)
    last = reader.list_objects("big", after=keys[-PAGE - 1], max_keys=PAGE)
    grouped = reader.list_objects("big", delimiter="/", max_keys=PAGE)
    assert [key for key, _ in first.entries] == keys[:PAGE]
    assert [key for key, _ in last.entries] == keys[-PAGE:] and not last.truncated
    assert grouped.prefixes == [f"g{group:03d}/" for group in range(GROUPS)] and not grouped.entries

    at_start = best_time(lambda: reader.list_objects("big", max_keys=PAGE))
    at_end = best_time(lambda: reader.list_objects("big", after=keys[-PAGE - 1], max_keys=PAGE))
    by_group = best_time(lambda: reader.list_objects("big", delimiter="/", max_keys=PAGE))
    print(
        f"\n{PAGE}-key page of {len(keys)}: start {at_start * 1e3:.2f} ms, end {at_end * 1e3:.2f} ms; "
        f"delimiter over {GROUPS} groups of {PER_GROUP}: {by_group * 1e3:.2f} ms"
    )
    assert at_end < 3 * at_start + 0.002
    assert by_group < at_start  # 100 seeks, not a walk over 100,000 keys
