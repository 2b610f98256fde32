"""The request table: a command applied under a request id applies once, and the table stays bounded."""

from nebulaio.meta import requests as request_table
from nebulaio.meta.requests import RETENTION_MS, RequestTable

BUCKET = "ledger"
NOW = 1_700_000_000_000


def with_id(command: dict, request_id: str, requested: int = NOW) -> dict:
    return {**command, "request_id": request_id, "requested": requested}


def create(bucket: str = BUCKET) -> dict:
    return {"op": "bucket.create", "bucket": bucket, "owner": "owner-1", "created": 1, "region": "eu-1"}


def kept(replica) -> int:
    table = RequestTable(replica.env)
    with replica.env.begin() as txn:
        return txn.stat(table._requests)["entries"]


def test_a_command_proposed_twice_under_one_request_id_applies_once(replica):
    assert replica.apply(with_id(create(), "a")) == [{"status": "ok"}]
    assert replica.apply(with_id(create(), "a")) == [{"status": "ok"}]
    assert replica.apply(with_id(create(), "b")) == [{"status": "BucketAlreadyOwnedByYou"}]
    replica.apply({"op": "bucket.configure", "bucket": BUCKET, "setting": "versioning", "value": "Enabled"})
    delete = {"op": "object.delete", "bucket": BUCKET, "key": "k", "mtime": NOW}
    first = replica.apply(with_id(delete, "c"), with_id(delete, "c"))
    assert first[0] == first[1] and first[0]["marker"] is True
    assert replica.apply(with_id(delete, "c")) == first[:1]
    assert len(replica.reader.list_versions(BUCKET).entries) == 1


def test_a_retried_delete_objects_answers_its_per_key_results(replica):
    replica.create_bucket(BUCKET)
    replica.apply(({"op": "object.put", "bucket": BUCKET, "record": replica.record("gone", "v1", True)}, b"x"))
    many = with_id({"op": "object.delete_many", "bucket": BUCKET, "objects": [["gone", None]], "mtime": NOW}, "d")
    first = replica.apply(many)
    assert replica.apply(many) == first


def test_entries_older_than_the_retention_are_pruned(replica):
    replica.create_bucket(BUCKET)
    for number in range(3):
        replica.apply(with_id(create(f"old-{number}"), f"old-{number}", requested=NOW))
    assert kept(replica) == 3
    replica.apply(with_id(create("new"), "new", requested=NOW + RETENTION_MS + 1))
    assert kept(replica) == 1
    # A pruned id is no longer known: the command applies again and answers for itself.
    assert replica.apply(with_id(create("old-0"), "old-0", requested=NOW + RETENTION_MS + 2)) == [
        {"status": "BucketAlreadyOwnedByYou"}
    ]


def test_the_table_never_holds_more_than_its_bound(replica, monkeypatch):
    monkeypatch.setattr(request_table, "MAX_REQUESTS", 5)
    for number in range(12):
        replica.apply(with_id(create(f"b-{number}"), f"id-{number}"))
        assert kept(replica) <= 5
    assert kept(replica) == 5
