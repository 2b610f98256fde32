"""Per-worker request counters: a worker's file, sums over several, and a reused pid's file."""

from nebulaio.util.metrics import LATENCY_BOUNDS, RequestMetrics, read_totals

OPERATIONS = ("GetObject", "PutObject")


def test_counts_add_up_across_files(tmp_path, monkeypatch):
    first = RequestMetrics(str(tmp_path), OPERATIONS)
    first.observe("GetObject", 200, 0.0004, 0, 100)
    first.observe("GetObject", 404, 0.3, 0, 20)
    monkeypatch.setattr("os.getpid", lambda: 999_999_999)
    second = RequestMetrics(str(tmp_path), OPERATIONS)
    second.observe("GetObject", 200, 20.0, 0, 1)
    second.observe("PutObject", 599, 0.002, 4096, 0)
    totals = read_totals(str(tmp_path))
    assert totals.requests == {("GetObject", "200"): 2, ("GetObject", "404"): 1, ("PutObject", "other"): 1}
    buckets = totals.latency_buckets["GetObject"]
    assert len(buckets) == len(LATENCY_BOUNDS) + 1
    assert (buckets[0], buckets[LATENCY_BOUNDS.index(0.5)], buckets[-1]) == (1, 1, 1)
    assert abs(totals.latency_sum["GetObject"] - 20.3004) < 1e-5
    assert (totals.bytes_out["GetObject"], totals.bytes_in["PutObject"]) == (121, 4096)


def test_a_reused_pid_keeps_counting_and_another_layout_starts_afresh(tmp_path):
    RequestMetrics(str(tmp_path), OPERATIONS).observe("PutObject", 200, 0.01, 5, 0)
    RequestMetrics(str(tmp_path), OPERATIONS).observe("PutObject", 200, 0.01, 5, 0)
    assert read_totals(str(tmp_path)).bytes_in == {"PutObject": 10}
    RequestMetrics(str(tmp_path), ("PutObject",)).observe("PutObject", 200, 0.01, 1, 0)
    assert read_totals(str(tmp_path)).bytes_in == {"PutObject": 1}


def test_stray_files_are_ignored(tmp_path):
    (tmp_path / "junk").write_bytes(b"not counters")
    (tmp_path / "short").write_bytes(b"NEBMETR1\0\0")
    assert read_totals(str(tmp_path)).requests == {}
    assert read_totals(str(tmp_path / "missing")).requests == {}
