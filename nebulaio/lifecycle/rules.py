"""A bucket's lifecycle rules in their stored form, and what they decide.

The S3 layer validates a configuration and stores it as the bucket setting "lifecycle":

    {"rules": [rule, ...], "minimum_size": "all_storage_classes_128K"}
    rule = {"id": str, "enabled": bool,
            "filter": {"form": "prefix" | "filter" | "and", "prefix": str | None,
                       "tags": [[key, value], ...], "gt": int | None, "lt": int | None},
            "expiration": {"days": n} | {"date": epoch ms} | {"delete_marker": bool},  (optional)
            "noncurrent": {"days": n, "newer": n | None},                              (optional)
            "abort_days": n}                                                           (optional)

`form` only remembers how the filter was written (a rule-level Prefix, a Filter with one
predicate, or a Filter with And) so that GetBucketLifecycleConfiguration answers in kind.

Days count as S3 counts them: from the object's creation time (an upload's initiation, a
noncurrent version's "noncurrent_since": when a newer version replaced it), N days later,
rounded up to the next midnight UTC. A "day" is `day_seconds` long so tests can shrink it;
midnights are its multiples since the epoch, which began at midnight UTC.

In a versioned bucket S3 judges three more things:
- a noncurrent version (or delete marker) expires NoncurrentDays after it became noncurrent,
  once NewerNoncurrentVersions newer noncurrent versions of its key are kept;
- a delete marker that is its key's only version (an "expired object delete marker") is
  removed by ExpiredObjectDeleteMarker at once, and by Days or Date once it is that old;
- a delete marker has no size and no tags: size predicates pass it, tag predicates do not.
"""

from __future__ import annotations

from typing import NamedTuple


class Filter(NamedTuple):
    """Which objects a rule applies to; every predicate present must hold."""

    prefix: str
    tags: tuple[tuple[str, str], ...]
    greater_than: int | None
    less_than: int | None

    def matches(self, key: str, record: dict) -> bool:
        if not key.startswith(self.prefix):
            return False
        if not record.get("marker"):
            size = record["size"]
            if self.greater_than is not None and size <= self.greater_than:
                return False
            if self.less_than is not None and size >= self.less_than:
                return False
        if self.tags:
            # Object tags live in the record's "tags" field, absent when there are none.
            tags = record.get("tags") or {}
            return all(tags.get(name) == value for name, value in self.tags)
        return True


class Rule(NamedTuple):
    """One enabled rule, ready to judge: due times are in epoch milliseconds."""

    id: str
    filter: Filter
    expire_after_days: int | None
    expire_from_ms: int | None
    expire_lone_markers: bool
    noncurrent_days: int | None
    noncurrent_kept: int
    abort_after_days: int | None

    def current_expired(self, mtime: int, now_ms: int, day_seconds: int) -> bool:
        """Whether this rule's Days or Date has come due for something written at `mtime`."""
        if self.expire_from_ms is None and self.expire_after_days is None:
            return False
        return now_ms >= self.expires_at(mtime, day_seconds)

    def expires_at(self, mtime: int, day_seconds: int) -> int:
        """When this expiring rule's Date or Days comes due for something written at `mtime`."""
        if self.expire_from_ms is not None:
            return self.expire_from_ms
        return due_ms(mtime, self.expire_after_days, day_seconds)


def due_ms(start_ms: int, days: int, day_seconds: int) -> int:
    """When something started at `start_ms` is `days` old: rounded up to the next midnight."""
    day_ms = day_seconds * 1000
    return -(-(start_ms + days * day_ms) // day_ms) * day_ms


def _compile(rule: dict) -> Rule:
    stored = rule["filter"]
    expiration = rule.get("expiration") or {}
    noncurrent = rule.get("noncurrent") or {}
    return Rule(
        rule["id"],
        Filter(stored["prefix"] or "", tuple(map(tuple, stored["tags"])), stored["gt"], stored["lt"]),
        expiration.get("days"),
        expiration.get("date"),
        expiration.get("delete_marker", False),
        noncurrent.get("days"),
        noncurrent.get("newer") or 0,
        rule.get("abort_days"),
    )


class Lifecycle:
    """A bucket's enabled rules, compiled once per sweep of the bucket."""

    __slots__ = ("_aborting", "_clearing_markers", "_day_seconds", "_expiring", "_expiring_noncurrent")

    def __init__(self, configuration: dict, day_seconds: int) -> None:
        rules = [_compile(rule) for rule in configuration["rules"] if rule["enabled"]]
        self._day_seconds = day_seconds
        self._expiring = [r for r in rules if r.expire_after_days is not None or r.expire_from_ms is not None]
        self._clearing_markers = [r for r in rules if r.expire_lone_markers] + self._expiring
        self._expiring_noncurrent = [r for r in rules if r.noncurrent_days is not None]
        self._aborting = [r for r in rules if r.abort_after_days is not None]

    @property
    def expires_objects(self) -> bool:
        return bool(self._expiring)

    @property
    def expires_history(self) -> bool:
        """Whether any rule reaches noncurrent versions or delete markers."""
        return bool(self._clearing_markers or self._expiring_noncurrent)

    @property
    def aborts_uploads(self) -> bool:
        return bool(self._aborting)

    def object_expired(self, key: str, record: dict, now_ms: int) -> bool:
        """Whether an enabled Expiration rule has come due for this current version."""
        return any(
            rule.filter.matches(key, record) and rule.current_expired(record["mtime"], now_ms, self._day_seconds)
            for rule in self._expiring
        )

    def expiration(self, key: str, record: dict) -> tuple[int, str] | None:
        """(when, rule id) of the first enabled Expiration rule to expire this current version."""
        return min(
            (
                (rule.expires_at(record["mtime"], self._day_seconds), rule.id)
                for rule in self._expiring
                if rule.filter.matches(key, record)
            ),
            default=None,
        )

    def lone_marker_expired(self, key: str, marker: dict, now_ms: int) -> bool:
        """Whether a delete marker that is its key's only version is to be removed."""
        return any(
            rule.filter.matches(key, marker)
            and (rule.expire_lone_markers or rule.current_expired(marker["mtime"], now_ms, self._day_seconds))
            for rule in self._clearing_markers
        )

    def noncurrent_expired(self, key: str, record: dict, newer_noncurrent: int, now_ms: int) -> int | None:
        """How many newer noncurrent versions the rule expiring this noncurrent version keeps
        (the fewest, if several do), or None while no rule expires it.

        `newer_noncurrent` counts the noncurrent versions of the key newer than this one.
        """
        kept = [
            rule.noncurrent_kept
            for rule in self._expiring_noncurrent
            if newer_noncurrent >= rule.noncurrent_kept
            and rule.filter.matches(key, record)
            and now_ms >= due_ms(record["noncurrent_since"], rule.noncurrent_days, self._day_seconds)
        ]
        return min(kept, default=None)

    def upload_expired(self, upload: dict, now_ms: int) -> bool:
        """Whether an AbortIncompleteMultipartUpload rule has come due for this open upload.

        S3 refuses tag and size filters on such rules: only the prefix applies.
        """
        return any(
            upload["key"].startswith(rule.filter.prefix)
            and now_ms >= due_ms(upload["initiated"], rule.abort_after_days, self._day_seconds)
            for rule in self._aborting
        )
