"""Bucket events in the replica: queued by apply with the change, counted, and dropped by notify.ack."""

from nebulaio.meta.notify import rule_matches, target_arn

BUCKET = "photos"
ARN = target_arn("us-east-1", "hook", "webhook")
OTHER = target_arn("us-east-1", "other", "webhook")


def define(replica, arn: str = ARN) -> None:
    target = {"arn": arn, "id": arn.rsplit(":", 2)[1], "kind": "webhook", "endpoint": "http://127.0.0.1:1/"}
    assert replica.apply({"op": "notify.target.put", "target": target}) == [{"status": "ok"}]


def configure(replica, *rules: dict) -> None:
    command = {"op": "bucket.configure", "bucket": BUCKET, "setting": "notification", "value": {"rules": list(rules)}}
    assert replica.apply(command) == [{"status": "ok"}]


def rule(arn: str = ARN, events=("s3:ObjectCreated:*",), **filters) -> dict:
    return {"id": "r-" + arn.rsplit(":", 2)[1], "kind": "Queue", "arn": arn, "events": list(events), **filters}


def put(replica, *keys: str) -> list[dict]:
    return replica.apply(
        *[({"op": "object.put", "bucket": BUCKET, "record": replica.record(key, "v-" + key)}, b"") for key in keys]
    )


def queued(replica, arn: str = ARN) -> list[tuple[bytes, dict]]:
    return replica.reader.notify.pending(arn, None, 1000)


def test_rules_match_events_by_name_wildcard_prefix_and_suffix():
    created = rule(events=["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"], prefix="in/", suffix=".csv")
    assert rule_matches(created, "ObjectCreated:Put", "in/a.csv")
    assert rule_matches(created, "ObjectCreated:CompleteMultipartUpload", "in/a.csv")
    assert rule_matches(created, "ObjectRemoved:Delete", "in/a.csv")
    assert not rule_matches(created, "ObjectRemoved:DeleteMarkerCreated", "in/a.csv")
    assert not rule_matches(created, "ObjectCreated:Put", "out/a.csv")
    assert not rule_matches(created, "ObjectCreated:Put", "in/a.json")


def test_apply_queues_one_event_per_target_in_log_order_and_ack_drops_them(replica):
    replica.create_bucket(BUCKET)
    define(replica)
    define(replica, OTHER)
    configure(replica, rule(), rule(ARN, ["s3:ObjectCreated:Put"], prefix="a") | {"id": "twice"}, rule(OTHER))
    put(replica, "a1", "b2")
    put(replica, "a3")
    events = queued(replica)
    assert [event["s3"]["object"]["key"] for _, event in events] == ["a1", "b2", "a3"]
    assert [event["s3"]["configurationId"] for _, event in events] == ["r-hook"] * 3  # one event per target
    sequencers = [event["s3"]["object"]["sequencer"] for _, event in events]
    assert sequencers == sorted(sequencers)
    assert replica.reader.notify.backlog() == {ARN: 3, OTHER: 3}

    replica.apply({"op": "notify.ack", "target": ARN, "upto": events[1][0].hex()})
    assert [position for position, _ in queued(replica)] == [events[2][0]]
    assert replica.reader.notify.pending(ARN, events[1][0], 10) == [events[2]]
    replica.apply({"op": "notify.ack", "target": ARN, "upto": events[1][0].hex()})  # again: harmless
    assert replica.reader.notify.backlog() == {ARN: 1, OTHER: 3}
    replica.apply({"op": "notify.ack", "target": ARN, "upto": events[2][0].hex()})
    assert queued(replica) == [] and replica.reader.notify.backlog() == {ARN: 0, OTHER: 3}


def test_a_change_the_rules_do_not_ask_for_queues_nothing(replica):
    replica.create_bucket(BUCKET)
    define(replica)
    put(replica, "before-any-rule")
    configure(replica, rule(events=["s3:ObjectRemoved:*"]))
    put(replica, "created")
    assert queued(replica) == []
    replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "created", "mtime": 5})
    replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "never-there", "mtime": 6})
    assert [event["eventName"] for _, event in queued(replica)] == ["ObjectRemoved:Delete"]


def test_deletes_tell_markers_versions_and_lifecycle_expiry_apart(replica):
    replica.create_bucket(BUCKET)
    replica.apply({"op": "bucket.configure", "bucket": BUCKET, "setting": "versioning", "value": "Enabled"})
    define(replica)
    configure(replica, rule(events=["s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"]))
    (created,) = put(replica, "k")
    replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "k", "mtime": 10})
    replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "k", "version": created["version"], "mtime": 11})
    (second,) = put(replica, "k")
    replica.apply({"op": "object.delete", "bucket": BUCKET, "key": "k", "if_vid": "v-k", "mtime": 12})
    names = [(event["eventName"], event["s3"]["object"].get("versionId")) for _, event in queued(replica)]
    assert names[0][0] == "ObjectRemoved:DeleteMarkerCreated"
    assert names[1] == ("ObjectRemoved:Delete", created["version"])
    assert names[2][0] == "LifecycleExpiration:DeleteMarkerCreated"
    assert [sorted(event["s3"]["object"]) for _, event in queued(replica)][1] == ["key", "sequencer", "versionId"]


def test_a_target_a_bucket_names_is_not_deleted_and_its_events_go_with_it(replica):
    replica.create_bucket(BUCKET)
    define(replica)
    configure(replica, rule())
    put(replica, "k")
    assert replica.apply({"op": "notify.target.delete", "arn": ARN}) == [{"status": "TargetInUse"}]
    replica.apply({"op": "bucket.configure", "bucket": BUCKET, "setting": "notification", "value": None})
    assert replica.apply({"op": "notify.target.delete", "arn": ARN}) == [{"status": "ok"}]
    assert replica.apply({"op": "notify.target.delete", "arn": ARN}) == [{"status": "NoSuchTarget"}]
    assert queued(replica) == [] and replica.reader.notify.backlog() == {}
