"""The repair loop's walk: passes of a few records, each going on where the last stopped,
wrapping around to the first bucket once the last is walked."""

from nebulaio.cluster.repair import START, Repairer


def placed(replica, bucket: str, keys: list[str]) -> None:
    replica.create_bucket(bucket)
    for key in keys:
        record = dict(replica.record(key, f"v-{key}", inline=False, size=10), holders=["a"])
        assert replica.apply({"op": "object.put", "bucket": bucket, "record": record})[0]["status"] == "ok"


def walker(replica) -> Repairer:
    return Repairer("a", replica.reader, None, None, None, None, 3, 1, 1.0, 3)


def test_passes_go_on_from_the_cursor_and_wrap_around(replica):
    placed(replica, "alpha", [f"k{number}" for number in range(5)])
    placed(replica, "beta", [f"k{number}" for number in range(4)])
    repairer = walker(replica)
    seen = []
    passes = 0
    while True:
        for bucket, page in repairer._pages(3):
            assert len(page) <= 3
            seen += [(bucket, file.key) for file in page]
        passes += 1
        if repairer._cursor == START:
            break
        assert passes < 20
    expected = [("alpha", f"k{number}") for number in range(5)] + [("beta", f"k{number}") for number in range(4)]
    assert seen == expected and passes > 3
    # The next cycle starts from the first bucket again.
    first = next(repairer._pages(3))
    assert first[0] == "alpha" and [file.key for file in first[1]] == ["k0", "k1", "k2"]


def test_a_bucket_deleted_under_the_cursor_is_walked_past(replica):
    placed(replica, "alpha", ["k0", "k1", "k2", "k3"])
    placed(replica, "gamma", ["k0"])
    repairer = walker(replica)
    list(repairer._pages(3))
    assert repairer._cursor.bucket == "alpha"
    for key in ("k0", "k1", "k2", "k3"):
        replica.apply({"op": "object.delete", "bucket": "alpha", "key": key, "version": None, "mtime": 2})
    replica.apply({"op": "bucket.delete", "bucket": "alpha"})
    rest = [(bucket, [file.key for file in page]) for bucket, page in repairer._pages(100)]
    assert [bucket for bucket, keys in rest if keys] == ["gamma"] and repairer._cursor == START
