"""The sweeper over a real replica: what it proposes, and that apply has the last word."""

import asyncio

from nebulaio.lifecycle.sweeper import PAGE_SIZE, LifecycleSweeper

BUCKET = "logs"
NOW = 1_800_000_000.0  # far past every record's mtime in these tests


def configure(replica, *rules: dict) -> None:
    value = {"rules": list(rules), "minimum_size": "all_storage_classes_128K"}
    command = {"op": "bucket.configure", "bucket": BUCKET, "setting": "lifecycle", "value": value}
    assert replica.apply(command) == [{"status": "ok"}]


def date_rule(prefix: str | None = None, enabled: bool = True, **extra) -> dict:
    selection = {"form": "filter", "prefix": prefix, "tags": [], "gt": None, "lt": None}
    return {"id": "r", "enabled": enabled, "filter": selection, "expiration": {"date": 0}, **extra}


def sweep(replica, submit=None, leader: bool = True) -> list[dict]:
    """Run one pass; returns the commands it proposed, each applied as its own raft entry."""
    proposed = []

    async def apply(command: dict) -> dict:
        proposed.append(command)
        return (submit or (lambda c: replica.apply(c)[0]))(command)

    sweeper = LifecycleSweeper(replica.reader, apply, lambda: leader, interval=1, day_seconds=86400, clock=lambda: NOW)
    asyncio.run(sweeper.sweep())
    return proposed


def keys(replica) -> list[str]:
    return [key for key, _ in replica.reader.list_objects(BUCKET, max_keys=10_000).entries]


def test_expires_matching_current_versions_naming_the_version_judged(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, ["old/a", "old/b", "new/a"])
    configure(replica, date_rule("old/"))
    proposed = sweep(replica)
    assert proposed == [
        {"op": "object.delete", "bucket": BUCKET, "key": key, "if_vid": "v1"} for key in ("old/a", "old/b")
    ]
    assert keys(replica) == ["new/a"]


def test_tag_filters_match_the_records_tags_field(replica):
    replica.create_bucket(BUCKET)
    for key, tags in (("tagged", {"env": "dev"}), ("other", {"env": "prod"}), ("bare", None)):
        record = replica.record(key)
        if tags is not None:
            record["tags"] = tags
        assert replica.apply({"op": "object.put", "bucket": BUCKET, "record": record})[0]["status"] == "ok"
    rule = date_rule()
    rule["filter"]["tags"] = [["env", "dev"]]
    configure(replica, rule)
    sweep(replica)
    assert keys(replica) == ["bare", "other"]


def test_a_version_written_after_the_sweeper_looked_survives(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, ["k"])
    configure(replica, date_rule())
    newer = dict(replica.record("k"), vid="v2")

    def overwrite_first(command: dict) -> dict:
        replica.apply({"op": "object.put", "bucket": BUCKET, "record": newer})
        return replica.apply(command)[0]

    proposed = sweep(replica, overwrite_first)
    assert [command["if_vid"] for command in proposed] == ["v1"]
    record, _ = replica.reader.get_object(BUCKET, "k")
    assert record["vid"] == "v2"


def test_disabled_rules_and_followers_propose_nothing(replica):
    replica.create_bucket(BUCKET)
    replica.put_keys(BUCKET, ["k"])
    configure(replica, date_rule(enabled=False))
    assert sweep(replica) == []
    configure(replica, date_rule())
    assert sweep(replica, leader=False) == []
    assert keys(replica) == ["k"]


def test_walks_a_bucket_page_by_page(replica):
    replica.create_bucket(BUCKET)
    names = [f"k{i:05d}" for i in range(PAGE_SIZE * 2 + 5)]
    replica.put_keys(BUCKET, names)
    configure(replica, date_rule())
    assert [command["key"] for command in sweep(replica)] == names
    assert keys(replica) == []


def test_aborts_old_uploads_under_the_rules_prefix(replica):
    replica.create_bucket(BUCKET)
    for key, upload_id in (("tmp/a", "0" * 32), ("keep/b", "1" * 32)):
        record = {"key": key, "upload_id": upload_id, "initiated": 0, "owner": "o", "ctype": None}
        replica.apply({"op": "upload.create", "bucket": BUCKET, "record": record})
    configure(replica, {**date_rule("tmp/"), "abort_days": 1})
    proposed = [command for command in sweep(replica) if command["op"] == "upload.abort"]
    assert proposed == [{"op": "upload.abort", "bucket": BUCKET, "key": "tmp/a", "upload_id": "0" * 32}]
    remaining = replica.reader.uploads.list_uploads(BUCKET, "", "", None, None, 10).uploads
    assert [upload["key"] for upload in remaining] == ["keep/b"]
