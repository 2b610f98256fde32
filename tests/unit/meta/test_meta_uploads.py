"""Multipart uploads in the replica: commands, part list checks, releases and listings."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nebulaio.meta.keys import MAX_LMDB_KEY
from nebulaio.meta.uploads import MIN_PART_SIZE, UPLOAD_HEAD_LIMIT, check_part_list, upload_key

BUCKET = "media"
MIB = 1024 * 1024


def upload_id(n: int) -> str:
    return f"{n:032x}"


def create(key: str, n: int, bucket: str = BUCKET) -> dict:
    record = {
        "key": key,
        "upload_id": upload_id(n),
        "initiated": 1_700_000_000_000 + n,
        "owner": "owner-1",
        "ctype": "text/plain",
        "headers": {},
        "meta": {"a": "b"},
        "checksum_algorithm": None,
    }
    return {"op": "upload.create", "bucket": bucket, "record": record}


def part(key: str, n: int, number: int, size: int, etag: str, file: str | None = None) -> dict:
    record = {
        "number": number,
        "etag": etag,
        "size": size,
        "mtime": 1,
        "checksums": {},
        "file": file or f"{upload_id(n)}.{number}.f",
    }
    return {"op": "upload.part", "bucket": BUCKET, "key": key, "upload_id": upload_id(n), "part": record}


def complete(replica, key: str, n: int, parts: list, vid: str = "v-done", **extra) -> dict:
    record = replica.record(key, vid, inline=False)
    return {
        "op": "upload.complete",
        "bucket": BUCKET,
        "upload_id": upload_id(n),
        "parts": parts,
        "record": record,
        **extra,
    }


def statuses(results) -> list[str]:
    return [result["status"] for result in results]


@pytest.fixture
def uploads(replica):
    replica.create_bucket(BUCKET)
    return replica


def test_check_part_list():
    stored = {1: {"etag": "a", "size": MIN_PART_SIZE}, 2: {"etag": "b", "size": 1}, 3: {"etag": "c", "size": 1}}
    assert check_part_list([(1, '"a"'), (2, "b")], stored) is None
    assert check_part_list([(2, "b"), (1, "a")], stored) == "InvalidPartOrder"
    assert check_part_list([(1, "a"), (1, "a")], stored) == "InvalidPartOrder"
    assert check_part_list([(1, "a"), (4, "d")], stored) == "InvalidPart"
    assert check_part_list([(1, "x")], stored) == "InvalidPart"
    assert check_part_list([(2, "b"), (3, "c")], stored) == "EntityTooSmall"


def test_create_part_and_read_back(uploads):
    assert statuses(uploads.apply(create("k", 1), create("k", 1, bucket="missing"))) == ["ok", "NoSuchBucket"]
    reader = uploads.reader.uploads
    assert reader.get(BUCKET, "k", upload_id(1))["meta"] == {"a": "b"}
    assert reader.get(BUCKET, "k", upload_id(2)) is None
    assert reader.get(BUCKET, "other", upload_id(1)) is None
    results = uploads.apply(part("k", 1, 2, 10, "e2"), part("k", 1, 1, 10, "e1"), part("k", 2, 1, 10, "x"))
    assert statuses(results) == ["ok", "ok", "NoSuchUpload"]
    assert sorted(reader.all_parts(BUCKET, upload_id(1))) == [1, 2]
    page, truncated = reader.list_parts(BUCKET, upload_id(1), 0, 1)
    assert ([p["number"] for p in page], truncated) == ([1], True)
    page, truncated = reader.list_parts(BUCKET, upload_id(1), 1, 5)
    assert ([p["number"] for p in page], truncated) == ([2], False)
    assert uploads.reader.file_versions(BUCKET) == {f"{upload_id(1)}.1.f", f"{upload_id(1)}.2.f"}


def test_uploading_a_part_again_releases_the_old_file_once(uploads):
    uploads.apply(create("k", 1))
    uploads.apply(part("k", 1, 1, 10, "old", file="first"))
    uploads.apply(part("k", 1, 1, 10, "new", file="second"), part("k", 1, 1, 10, "new", file="second"))
    assert uploads.released == [(BUCKET, "k", "first")]
    assert uploads.reader.uploads.all_parts(BUCKET, upload_id(1))[1]["etag"] == "new"


def test_complete_checks_the_list_then_commits_and_frees_every_part(uploads):
    uploads.apply(create("k", 1), part("k", 1, 1, MIN_PART_SIZE, "e1"), part("k", 1, 2, 5, "e2"))
    uploads.apply(part("k", 1, 3, 5, "unused"))
    refused = uploads.apply(
        complete(uploads, "k", 1, [[2, "e2"], [1, "e1"]]),
        complete(uploads, "k", 1, [[1, "e1"], [2, "wrong"]]),
        complete(uploads, "k", 1, [[2, "e2"], [3, "unused"]]),
        complete(uploads, "k", 2, [[1, "e1"]]),
    )
    assert statuses(refused) == ["InvalidPartOrder", "InvalidPart", "EntityTooSmall", "NoSuchUpload"]
    assert uploads.released == []
    assert statuses(uploads.apply(complete(uploads, "k", 1, [[1, '"e1"'], [2, "e2"]]))) == ["ok"]
    assert uploads.reader.get_object(BUCKET, "k")[0]["vid"] == "v-done"
    assert sorted(file for _, _, file in uploads.released) == [f"{upload_id(1)}.{n}.f" for n in (1, 2, 3)]
    assert uploads.reader.uploads.get(BUCKET, "k", upload_id(1)) is None
    assert uploads.reader.uploads.all_parts(BUCKET, upload_id(1)) == {}
    assert uploads.reader.file_versions(BUCKET) == {"v-done"}
    assert statuses(uploads.apply(complete(uploads, "k", 1, [[1, "e1"]]))) == ["NoSuchUpload"]


def test_complete_replaces_the_current_version_and_honours_conditions(uploads):
    uploads.apply(({"op": "object.put", "bucket": BUCKET, "record": uploads.record("k", "v-old", False)}, None))
    uploads.apply(create("k", 1), part("k", 1, 1, 5, "e1"))
    failed = uploads.apply(complete(uploads, "k", 1, [[1, "e1"]], condition={"if-none-match": "*"}))
    assert statuses(failed) == ["PreconditionFailed"]
    assert uploads.apply(complete(uploads, "k", 1, [[1, "e1"]])) == [{"status": "ok", "version": None}]
    assert (BUCKET, "k", "v-old") in uploads.released


def test_abort_frees_parts_and_a_deleted_bucket_aborts_its_uploads(uploads):
    uploads.apply(create("k", 1), part("k", 1, 1, 5, "e1"), create("j", 2), part("j", 2, 4, 5, "e4"))
    assert statuses(uploads.apply({"op": "upload.abort", "bucket": BUCKET, "key": "k", "upload_id": upload_id(1)})) == [
        "ok"
    ]
    assert uploads.released == [(BUCKET, "k", f"{upload_id(1)}.1.f")]
    again = {"op": "upload.abort", "bucket": BUCKET, "key": "k", "upload_id": upload_id(1)}
    assert statuses(uploads.apply(again)) == ["NoSuchUpload"]
    assert statuses(uploads.apply({"op": "bucket.delete", "bucket": BUCKET})) == ["ok"]
    assert uploads.released[-1] == (BUCKET, "j", f"{upload_id(2)}.4.f")
    assert uploads.reader.uploads.get(BUCKET, "j", upload_id(2)) is None
    assert uploads.reader.uploads.part_files(BUCKET) == set()


def listed(page) -> list:
    return [(u["key"], int(u["upload_id"], 16)) for u in page.uploads]


def test_list_uploads_order_markers_and_prefixes(uploads):
    long_a, long_b = "L" * 500 + "b", "L" * 500 + "a"
    keys = [("b", 3), ("a", 5), ("a", 2), ("a\0x", 1), ("dir/x", 6), ("dir/y", 7), ("e", 8), (long_a, 9), (long_b, 10)]
    uploads.apply(*[create(key, n) for key, n in keys])
    reader = uploads.reader.uploads
    every = reader.list_uploads(BUCKET, "", "", None, None, 100)
    expected = [("L" * 500 + "a", 10), ("L" * 500 + "b", 9), ("a", 2), ("a", 5), ("a\0x", 1), ("b", 3)]
    expected += [("dir/x", 6), ("dir/y", 7), ("e", 8)]
    assert listed(every) == expected and not every.truncated

    first = reader.list_uploads(BUCKET, "", "", None, None, 3)
    assert listed(first) == expected[:3] and first.truncated
    assert (first.next_key, first.next_upload_id) == ("a", upload_id(2))
    rest = reader.list_uploads(BUCKET, "", "", first.next_key, first.next_upload_id, 100)
    assert listed(rest) == expected[3:]
    assert listed(reader.list_uploads(BUCKET, "", "", "a", None, 100)) == expected[4:]
    assert listed(reader.list_uploads(BUCKET, "", "", "L" * 500 + "a", None, 100)) == expected[1:]

    grouped = reader.list_uploads(BUCKET, "", "/", None, None, 100)
    assert grouped.prefixes == ["dir/"]
    assert ("dir/x", 6) not in listed(grouped) and ("e", 8) in listed(grouped)
    cut = reader.list_uploads(BUCKET, "d", "/", None, None, 1)
    assert (cut.prefixes, cut.truncated, cut.next_key, cut.next_upload_id) == (["dir/"], False, "dir/", None)
    after = reader.list_uploads(BUCKET, "", "/", "dir/", None, 100)
    assert listed(after) == [("e", 8)] and after.prefixes == []
    assert listed(reader.list_uploads(BUCKET, "dir/", "", None, None, 100)) == [("dir/x", 6), ("dir/y", 7)]
    assert reader.list_uploads(BUCKET, "", "", None, None, 0).uploads == []
    assert reader.list_uploads("other", "", "", None, None, 10).uploads == []


def utf8_at_most(limit: int):
    return lambda text: text.encode()[:limit].decode(errors="ignore")


LONGEST_BUCKET = "b" * 63
ANY_KEY = st.text(alphabet=st.sampled_from(["\0", "a", "é", "€", "𝄞", "/"]), min_size=1, max_size=1024).map(
    utf8_at_most(1024)
)


@given(ANY_KEY)
def test_every_upload_key_fits_lmdb(key):
    assert len(upload_key(LONGEST_BUCKET, key, upload_id(2**128 - 1))) <= MAX_LMDB_KEY


def test_the_worst_keys_fit_lmdb(replica):
    replica.create_bucket(LONGEST_BUCKET)
    worst = ["\0" * 1024, "\0é" * 341, "x" * 1024, "\0" * (UPLOAD_HEAD_LIMIT // 2) + "x" * 500]
    commands = [create(key, n, bucket=LONGEST_BUCKET) for n, key in enumerate(worst)]
    assert statuses(replica.apply(*commands)) == ["ok"] * len(worst)
    assert max(len(upload_key(LONGEST_BUCKET, key, upload_id(0))) for key in worst) == MAX_LMDB_KEY


# Heads around the escaped head limit (NULs count twice), so that keys fall on both sides
# of it, share long heads and cut an escape in half.
HALF = UPLOAD_HEAD_LIMIT // 2
UPLOAD_HEADS = ["", "a", "a/", "\0" * HALF, "\0" * (HALF - 1) + "x", "x" * UPLOAD_HEAD_LIMIT, "x" * 395 + "é"]
UPLOAD_HEADS += ["\0" * 300, "x" * (UPLOAD_HEAD_LIMIT - 1) + "\0", "€" * 330]
UPLOAD_TAIL = st.text(alphabet=st.sampled_from("\0ab/é"), max_size=5)
UPLOAD_KEY = st.builds(str.__add__, st.sampled_from(UPLOAD_HEADS), UPLOAD_TAIL).filter(bool)
upload_buckets = (f"uploads-{n}" for n in itertools.count())


def reference_uploads(uploads: list[tuple[str, int]], prefix: str, delimiter: str, marker: str | None) -> list:
    """What ListMultipartUploads lists, by S3's rules, as ("upload", key, n) / ("prefix", p)."""
    items = []
    for key, n in sorted(uploads, key=lambda upload: (upload[0].encode(), n_of(upload))):
        if not key.startswith(prefix):
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        item = ("prefix", key[: cut + len(delimiter)]) if cut >= 0 else ("upload", key, n)
        if marker is not None and item[1].encode() <= marker.encode():
            continue
        if item not in items:
            items.append(item)
    return items


def n_of(upload: tuple[str, int]) -> str:
    return upload_id(upload[1])


def page_uploads(page) -> list:
    uploads = [("upload", u["key"], int(u["upload_id"], 16)) for u in page.uploads]
    return uploads + [("prefix", p) for p in page.prefixes]


@settings(max_examples=150)
@given(
    keys=st.lists(UPLOAD_KEY, min_size=1, max_size=25),
    prefix=st.sampled_from(["", "a", "\0", "\0" * HALF, "x" * UPLOAD_HEAD_LIMIT, "€"]),
    delimiter=st.sampled_from(["", "/", "\0", "é", "b"]),
    marker=st.none() | UPLOAD_KEY,
    max_uploads=st.integers(1, 5),
)
def test_list_uploads_order_and_paging_match_s3(shared_replica, keys, prefix, delimiter, marker, max_uploads):
    """Keys whose escaped form is truncated and digested still list in S3's exact order."""
    bucket = next(upload_buckets)
    shared_replica.create_bucket(bucket)
    uploads = [(key, n) for n, key in enumerate(keys)]
    assert set(statuses(shared_replica.apply(*[create(key, n, bucket) for key, n in uploads]))) == {"ok"}
    reader = shared_replica.reader.uploads
    expected = reference_uploads(uploads, prefix, delimiter, marker)
    listed, key_marker, id_marker = 0, marker, None
    while True:
        page = reader.list_uploads(bucket, prefix, delimiter, key_marker, id_marker, max_uploads)
        items = page_uploads(page)
        due = expected[listed : listed + len(items)]
        assert len(items) <= max_uploads
        assert sorted(items) == sorted(due)
        assert items[: len(page.uploads)] == [item for item in due if item[0] == "upload"]
        listed += len(items)
        if not page.truncated:
            break
        key_marker, id_marker = page.next_key, page.next_upload_id
    assert listed == len(expected)


def test_a_completion_applied_again_answers_the_first_result(uploads):
    uploads.apply({"op": "bucket.configure", "bucket": BUCKET, "setting": "versioning", "value": "Enabled"})
    uploads.apply(create("k", 1), part("k", 1, 1, 5, "e1"))
    first = uploads.apply(complete(uploads, "k", 1, [[1, "e1"]]))
    assert statuses(first) == ["ok"]
    again = uploads.apply(complete(uploads, "k", 1, [[1, "e1"]], vid="v-retry"))
    assert again == [{**first[0], "repeated": True}]
    assert uploads.reader.get_object(BUCKET, "k")[0]["vid"] == "v-done"
    assert statuses(uploads.apply(complete(uploads, "k", 1, [[1, "e2"]]))) == ["NoSuchUpload"]
    completed = uploads.reader.requests.completed_upload(upload_id(1))
    assert (completed["key"], completed["parts"], completed["result"]) == ("k", [[1, "e1"]], first[0])
