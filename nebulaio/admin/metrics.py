"""/metrics: the workers' request counters, raft's, gossip's, repair's and notification
delivery's figures, the data directory's disk and bucket usage as Prometheus text."""

from __future__ import annotations

from nebulaio.cluster.gossip import STATES as GOSSIP_STATES
from nebulaio.util.metrics import Totals, read_totals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


LABEL_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", '"': '\\"'})
"""The exposition format escapes backslash, line feed and double quote in label values."""


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{name}="{value.translate(LABEL_ESCAPES)}"' for name, value in labels.items()) + "}"


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _requests(lines: list[str], totals: Totals) -> None:
    _family(lines, "nebulaio_s3_requests_total", "counter", "S3 requests by operation and HTTP status.")
    for (operation, status), count in sorted(totals.requests.items()):
        lines.append(f"nebulaio_s3_requests_total{_labels(operation=operation, status=status)} {count}")
    _family(
        lines,
        "nebulaio_s3_request_duration_seconds",
        "histogram",
        "Time from an S3 request's arrival to its response head, by operation.",
    )
    bounds = [*(repr(bound) for bound in totals.bounds), "+Inf"]
    for operation, buckets in sorted(totals.latency_buckets.items()):
        cumulative = 0
        for bound, count in zip(bounds, buckets, strict=True):
            cumulative += count
            labels = _labels(operation=operation, le=bound)
            lines.append(f"nebulaio_s3_request_duration_seconds_bucket{labels} {cumulative}")
        labels = _labels(operation=operation)
        lines.append(f"nebulaio_s3_request_duration_seconds_sum{labels} {totals.latency_sum[operation]:.6f}")
        lines.append(f"nebulaio_s3_request_duration_seconds_count{labels} {cumulative}")
    for name, values, help_text in (
        ("nebulaio_s3_received_bytes_total", totals.bytes_in, "Bytes of successful S3 requests' bodies, by operation."),
        ("nebulaio_s3_sent_bytes_total", totals.bytes_out, "Bytes of S3 response bodies, by operation."),
    ):
        _family(lines, name, "counter", help_text)
        for operation, count in sorted(values.items()):
            lines.append(f"{name}{_labels(operation=operation)} {count}")


def _raft(lines: list[str], status: dict | None) -> None:
    _family(lines, "nebulaio_raft_up", "gauge", "1 when this node's supervisor answered.")
    lines.append(f"nebulaio_raft_up {0 if status is None else 1}")
    if status is None:
        return
    figures = (
        ("nebulaio_raft_term", "The current raft term.", status.get("term")),
        ("nebulaio_raft_commit_index", "The highest log index known to be committed.", status.get("commit_index")),
        ("nebulaio_raft_applied_index", "The log index applied to this replica.", status.get("applied_index")),
        ("nebulaio_raft_leader", "1 when this node is the raft leader.", int(status.get("state") == "leader")),
        ("nebulaio_raft_has_leader", "1 when this node knows a raft leader.", int(status.get("leader") is not None)),
        ("nebulaio_raft_members", "Voting members of the raft cluster.", len(status.get("members", ()))),
    )
    for name, help_text, value in figures:
        _family(lines, name, "gauge", help_text)
        lines.append(f"{name} {value or 0}")


def member_states(status: dict) -> dict[str, int]:
    """How many members this node's gossip holds alive, suspect and dead (itself included)."""
    states = [member["state"] for member in status["gossip"]["members"]]
    return {state: states.count(state) for state in GOSSIP_STATES}


def _gossip(lines: list[str], status: dict) -> None:
    _family(lines, "nebulaio_gossip_members", "gauge", "Members this node's gossip holds, by state.")
    for state, count in member_states(status).items():
        lines.append(f"nebulaio_gossip_members{_labels(state=state)} {count}")


def _disk(lines: list[str], disk) -> None:
    for name, help_text, value in (
        ("nebulaio_disk_total_bytes", "Size of the file system holding the data directory.", disk.total),
        ("nebulaio_disk_free_bytes", "Bytes free on the file system holding the data directory.", disk.free),
    ):
        _family(lines, name, "gauge", help_text)
        lines.append(f"{name} {value}")


def _repair(lines: list[str], repair: dict) -> None:
    figures = (
        ("nebulaio_repair_running", "gauge", "1 while a repair pass runs.", int(repair["running"])),
        ("nebulaio_repair_passes_total", "counter", "Repair passes finished.", repair["passes"]),
        ("nebulaio_repair_cycles_total", "counter", "Repair walks over every placed file finished.", repair["cycles"]),
        ("nebulaio_repair_checked_total", "counter", "Placed files the repair loop checked.", repair["checked"]),
        (
            "nebulaio_repair_under_replicated",
            "gauge",
            "Files with fewer live holders than wanted, in the last cycle.",
            repair["under_replicated"],
        ),
        (
            "nebulaio_repair_misplaced",
            "gauge",
            "Files whose holders are not the ones placement wants, in the last cycle.",
            repair["misplaced"],
        ),
        (
            "nebulaio_repair_unclaimed",
            "gauge",
            "Files written while their node ran alone that name no holder yet, in the last cycle.",
            repair["unclaimed"],
        ),
        ("nebulaio_repair_copied_total", "counter", "Copies this node made.", repair["copied"]),
        ("nebulaio_repair_claimed_total", "counter", "Files written alone recorded as this node's.", repair["claimed"]),
        ("nebulaio_repair_removed_total", "counter", "Copies this node gave up.", repair["removed"]),
        ("nebulaio_repair_bytes_total", "counter", "Bytes this node copied from others.", repair["bytes_moved"]),
    )
    for name, kind, help_text, value in figures:
        _family(lines, name, kind, help_text)
        lines.append(f"{name} {value}")


def _scrub(lines: list[str], scrub: dict) -> None:
    figures = (
        ("nebulaio_scrub_running", "gauge", "1 while a scrub pass runs.", int(scrub["running"])),
        ("nebulaio_scrub_passes_total", "counter", "Scrub passes finished.", scrub["passes"]),
        (
            "nebulaio_scrub_files",
            "gauge",
            "Files the scrub pass under way (or the last) verifies.",
            scrub["files_total"],
        ),
        (
            "nebulaio_scrub_files_done",
            "gauge",
            "Files the scrub pass under way (or the last) has verified.",
            scrub["files_done"],
        ),
        ("nebulaio_scrub_bytes", "gauge", "Bytes the scrub pass under way (or the last) reads.", scrub["bytes_total"]),
        (
            "nebulaio_scrub_bytes_done",
            "gauge",
            "Bytes the scrub pass under way (or the last) has read.",
            scrub["bytes_done"],
        ),
        (
            "nebulaio_scrub_unverifiable",
            "gauge",
            "Files of the pass whose records carry no checksum (written before checksums were recorded).",
            scrub["unverifiable"],
        ),
        (
            "nebulaio_scrub_corrupt_total",
            "counter",
            "Damaged copies found: by a scrub pass, or confirmed after a read reported them.",
            scrub["corrupt"],
        ),
        ("nebulaio_scrub_healed_total", "counter", "Damaged copies replaced by an intact one.", scrub["healed"]),
        ("nebulaio_scrub_unhealed_total", "counter", "Damaged copies no intact copy could replace.", scrub["unhealed"]),
        (
            "nebulaio_scrub_reported_total",
            "counter",
            "Damaged copies that reads found and reported.",
            scrub["reported"],
        ),
        (
            "nebulaio_scrub_last_pass_timestamp_seconds",
            "gauge",
            "When the last scrub pass finished (0: none yet).",
            (scrub["last_pass_finished"] or 0) / 1000,
        ),
    )
    for name, kind, help_text, value in figures:
        _family(lines, name, kind, help_text)
        lines.append(f"{name} {value}")


def _notify(lines: list[str], targets: dict[str, dict]) -> None:
    figures = (
        ("nebulaio_notify_backlog", "gauge", "Bucket events queued for a target and not yet acknowledged.", "backlog"),
        ("nebulaio_notify_delivered_total", "counter", "Events this node delivered to a target.", "delivered"),
        ("nebulaio_notify_failures_total", "counter", "Failed deliveries to a target from this node.", "failures"),
        ("nebulaio_notify_retrying", "gauge", "1 while this node backs off from a failing target.", "retrying"),
    )
    for name, kind, help_text, field in figures:
        _family(lines, name, kind, help_text)
        for arn, values in sorted(targets.items()):
            lines.append(f"{name}{_labels(target=arn)} {int(values[field])}")


def _buckets(lines: list[str], usage: dict[str, dict]) -> None:
    _family(lines, "nebulaio_bucket_objects", "gauge", "Current objects in a bucket.")
    for name, stats in sorted(usage.items()):
        lines.append(f"nebulaio_bucket_objects{_labels(bucket=name)} {stats['objects']}")
    _family(lines, "nebulaio_bucket_bytes", "gauge", "Bytes of a bucket's current objects.")
    for name, stats in sorted(usage.items()):
        lines.append(f"nebulaio_bucket_bytes{_labels(bucket=name)} {stats['bytes']}")


def render(metrics_dir: str, status: dict | None, usage: dict[str, dict], disk) -> bytes:
    """The exposition text: request counters summed over every worker, raft, gossip, repair, scrub,
    the disk (`disk`: psutil's usage of the data directory) and bucket usage."""
    lines: list[str] = []
    _requests(lines, read_totals(metrics_dir))
    _raft(lines, status)
    if status is not None:
        _gossip(lines, status)
        _repair(lines, status["repair"])
        _scrub(lines, status["scrub"])
        _notify(lines, status["notify"])
    _disk(lines, disk)
    _buckets(lines, usage)
    return ("\n".join(lines) + "\n").encode()
