"""Bucket event notifications in a cluster of three: every node queues each event, the raft
leader alone delivers it, and a leader killed with events queued leaves them to the next."""

from __future__ import annotations

import uuid

from conftest import metric_samples, wait_for
from faults import leader_of
from test_notifications import DELIVERY_TIMEOUT, Receiver, define_target, keys_of, notify


def test_the_leader_delivers_each_event_once_and_a_new_leader_takes_over_the_queue(cluster_factory):
    nodes = cluster_factory(3)
    receiver = Receiver()
    try:
        bucket = "cluster-" + uuid.uuid4().hex[:8]
        nodes[0].client().create_bucket(Bucket=bucket)
        arn = define_target(nodes[1], "cluster-hook", kind="webhook", endpoint=receiver.url)
        notify(nodes[2].client(), bucket, arn)
        label = f'{{target="{arn}"}}'

        first = [f"first-{number:02d}" for number in range(20)]
        for number, key in enumerate(first):
            nodes[number % 3].client().put_object(Bucket=bucket, Key=key, Body=b"x")
        wait_for(lambda: len(receiver.records()) >= len(first), DELIVERY_TIMEOUT, "the first events")
        leader = leader_of(nodes)
        expected = [len(first) if node is leader else 0 for node in nodes]

        def delivered_by_each() -> list[float]:
            return [metric_samples(node)[f"nebulaio_notify_delivered_total{label}"] for node in nodes]

        # The receiver holds the last event a moment before the leader hears its answer.
        wait_for(lambda: delivered_by_each() == expected, 10, "the leader alone to count the deliveries")

        receiver.failing = True
        survivors = [node for node in nodes if node is not leader]
        second = [f"second-{number:02d}" for number in range(20)]
        for key in second:
            survivors[0].client().put_object(Bucket=bucket, Key=key, Body=b"y")
        for node in nodes:  # every replica holds the queue
            wait_for(
                lambda node=node: metric_samples(node)[f"nebulaio_notify_backlog{label}"] == len(second),
                DELIVERY_TIMEOUT,
                "the queued events on every node",
            )
        leader.kill_group()
        receiver.failing = False
        wait_for(lambda: len(receiver.records()) >= len(first) + len(second), DELIVERY_TIMEOUT, "the queued events")
        assert sorted(keys_of(receiver.records())) == sorted(first + second)
        assert leader_of(survivors) is not None
    finally:
        receiver.shutdown()
        receiver.server_close()
