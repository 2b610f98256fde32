"""The scale benchmark's reporting: what it reads from node logs, and the rows it prints."""

from benchmarks.scale import (
    Interval,
    LogTail,
    NodeSample,
    Rejoin,
    describe_rejoin,
    elections,
    read_log_facts,
    table,
)

DUMP = "2026-12-06 05:00:01,000 INFO [supervisor] nebulaio.raft: raft dump at index {index}: {size} bytes in {secs} s"
DIVERGED = (
    "2026-12-06 05:00:02,000 CRITICAL [supervisor] pysyncobj.syncobj: truncating already-applied log entries "
    "from index 20 (last applied: 24) - state machine may have diverged from other cluster members"
)
OTHER = "2026-12-06 05:00:03,000 INFO [supervisor] nebulaio.supervisor: node node0 registered"


def node(name: str, term: int | None, **figures) -> NodeSample:
    values = dict(
        rss_bytes=300 << 20,
        anon_bytes=40 << 20,
        raft_bytes=8 << 20,
        lmdb_bytes=16 << 20,
        dumps=0,
        dump_seconds=0.0,
        diverged=0,
        state="follower",
    )
    values.update(figures)
    return NodeSample(name=name, term=term, **values)


def interval(objects: int, terms: list[int | None], **figures) -> Interval:
    nodes = [node(f"node{number}", term, **figures) for number, term in enumerate(terms)]
    return Interval(elapsed_seconds=60.0, objects=objects, put_rate=400.0, p99_ms=95.5, errors=0, nodes=nodes)


def test_log_facts_count_dumps_with_their_sizes_and_times_and_divergence_warnings():
    text = "\n".join(
        [
            DUMP.format(index=100, size=147_000_000, secs="1.25"),
            OTHER,
            DIVERGED,
            DIVERGED,
            DUMP.format(index=200, size=293_000_000, secs="2.50"),
        ]
    )
    facts = read_log_facts(text)
    assert facts.dumps == [(147_000_000, 1.25), (293_000_000, 2.5)]
    assert facts.diverged == 2
    assert read_log_facts(OTHER).dumps == [] and read_log_facts(OTHER).diverged == 0


def test_a_log_tail_reads_each_complete_line_once(tmp_path):
    path = tmp_path / "node.log"
    tail = LogTail(path)
    assert tail.facts().diverged == 0  # no log yet
    path.write_text(DIVERGED + "\n" + DIVERGED[:40])
    assert tail.facts().diverged == 1  # the half-written line waits
    with open(path, "a") as log:
        log.write(DIVERGED[40:] + "\n" + DUMP.format(index=5, size=10, secs="0.01") + "\n")
    facts = tail.facts()
    assert (facts.diverged, facts.dumps) == (1, [(10, 0.01)])
    assert tail.facts().diverged == 0


def test_elections_are_rises_of_the_highest_term_between_rows():
    terms = [[1, 1, 1], [1, 3, 2], [None, None, None], [4, 4, 4]]
    rows = [interval(100 * number, row) for number, row in enumerate(terms, 1)]
    assert elections(rows, start_term=1) == [0, 2, 0, 1]
    assert elections(rows[:1], start_term=None) == [0]


def test_the_table_has_one_row_per_interval_and_each_node_in_turn():
    rows = [
        interval(25_000, [1, 1, 1], dumps=1, dump_seconds=0.5),
        interval(50_000, [2, 2, None], diverged=3, rss_bytes=None, anon_bytes=None),
    ]
    rows[1].nodes[0].raft_bytes = 512 << 20
    lines = table(rows, start_term=1).splitlines()
    assert len(lines) == 4
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[0] == "time s" and header[-1] == "term (elections)"
    first = [cell.strip() for cell in lines[2].strip("|").split("|")]
    second = [cell.strip() for cell in lines[3].strip("|").split("|")]
    assert len(first) == len(header) == len(lines[1].strip("|").split("|"))
    assert first[:5] == ["60", "25,000", "400", "95.5", "0"]
    assert first[5:9] == ["300 (40)/300 (40)/300 (40)", "8/8/8", "16/16/16", "1 (0.5)/1 (0.5)/1 (0.5)"]
    assert first[10] == "1 (0)"
    assert second[5] == "- (-)/- (-)/- (-)"  # a supervisor that could not be measured
    assert second[6] == "512/8/8"
    assert second[9] == "3/3/3"
    assert second[10] == "2 (1)"


def test_the_rejoin_line_says_how_long_or_what_failed():
    done = Rejoin("nebulaio-node1", 836, ready_seconds=2.25, caught_up_seconds=3.5)
    assert describe_rejoin(done) == (
        "leader nebulaio-node1 on an empty disk: ready after 2.2 s, caught up with index 836 after 3.5 s"
    )
    crashed = Rejoin("nebulaio-node0", 90_000, failure="exited with status 1 after 4.0 s: supervisor exited with -7")
    assert describe_rejoin(crashed).endswith("exited with status 1 after 4.0 s: supervisor exited with -7")
