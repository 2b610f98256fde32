"""The deployment kit in conf/: the systemd unit, the Prometheus alert rules and the Grafana
dashboard, each checked with the tool that consumes it and against a real node.

systemd-analyze (Debian's `systemd`), promtool (`prometheus`) and strace come from apt; `.ci/run`
installs them, and a test is skipped only where its tool is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
import requests
import yaml
from conftest import Node, wait_for

CONF = Path(__file__).resolve().parents[2] / "conf"
UNIT = CONF / "systemd" / "nebulaio@.service"
SYSUSERS = CONF / "systemd" / "nebulaio.sysusers"
ALERTS = CONF / "prometheus" / "nebulaio-alerts.yml"
PROMETHEUS_CONFIG = CONF / "prometheus" / "prometheus.yml"
DASHBOARD = CONF / "grafana" / "nebulaio.json"

INSTALLED_ENTRY_POINT = "/opt/nebulaio/bin/nebulaio"
"""Where the unit expects the `nebulaio` script (a venv or `pip install --prefix` there)."""
HARDENING_THRESHOLD = 20
"""`systemd-analyze security --threshold`: exposure 2.0 of 10 at most ("OK" is below 4)."""
PROMETHEUS_OWN = {"up"}
"""Series Prometheus adds to every scrape itself."""

needs_systemd_analyze = pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze missing")
needs_promtool = pytest.mark.skipif(not shutil.which("promtool"), reason="promtool (Debian's prometheus) missing")


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Every key of a unit file with each value it is given, in order (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def installable_unit(tmp_path: Path) -> Path:
    """The unit as installed on this machine: its ExecStart names the `nebulaio` script here."""
    text = UNIT.read_text()
    assert INSTALLED_ENTRY_POINT in text
    entry_point = Path(sys.executable).with_name("nebulaio")
    assert entry_point.exists(), entry_point
    target = tmp_path / UNIT.name
    target.write_text(text.replace(INSTALLED_ENTRY_POINT, str(entry_point)))
    return target


# --- systemd --------------------------------------------------------------------------------


@needs_systemd_analyze
def test_unit_verifies_without_a_warning(tmp_path):
    unit = installable_unit(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit.with_name("nebulaio@node1.service"))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Unknown keys and unparsable values are only warnings: verify still exits 0.
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr


@needs_systemd_analyze
def test_unit_is_hardened(tmp_path):
    unit = installable_unit(tmp_path).with_name("nebulaio@node1.service")
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--threshold={HARDENING_THRESHOLD}", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    settings = unit_settings(UNIT)
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices"):
        assert settings[key] == ["yes"], key
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["CapabilityBoundingSet"] == [""]
    # The one writable path is the data directory the node is given.
    (state,) = settings["StateDirectory"]
    assert settings["ReadWritePaths"] == [f"%S/{state}"]
    assert f"--data %S/{state}" in settings["ExecStart"][0]
    # 10,000 connections, each a socket and an open file, and room for LMDB and the journal.
    assert int(settings["LimitNOFILE"][0]) >= 2 * 10_000


@needs_systemd_analyze
def test_sysusers_creates_the_units_user(tmp_path):
    result = subprocess.run(
        ["systemd-sysusers", "--dry-run", f"--root={tmp_path}", str(SYSUSERS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (user,) = unit_settings(UNIT)["User"]
    assert f"Creating user '{user}'" in result.stdout + result.stderr


def syscall_group(name: str, seen: set[str] | None = None) -> set[str]:
    """The system calls of a systemd syscall group, nested groups expanded."""
    seen = set() if seen is None else seen
    seen.add(name)
    listing = subprocess.run(
        ["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    calls = set()
    for line in listing.splitlines()[1:]:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith("@"):
            if entry not in seen:
                calls |= syscall_group(entry, seen)
        else:
            calls.add(entry)
    return calls


class TracedNode(Node):
    """A node whose every process runs under strace, as the unit would start it."""

    def __init__(self, *args, trace: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.trace = trace

    def server_command(self) -> list[str]:
        return ["strace", "-f", "-qq", "-o", str(self.trace), *super().server_command()]


AS_ROOT_ONLY = {"fchown"}
"""Calls the traced node makes only because the test runs it as root: SQLite (the login
throttle's store) hands each new journal file to the database's owner when its euid is 0. The
unit runs the node as its own user, where it makes none of them."""
SYSCALL_LINE = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]")
SOCKET_FAMILY = re.compile(r"\bsocket\((AF_[A-Z0-9]+)")
CHANGES_A_PATH = re.compile(
    r"^\d+\s+(?:(?:open|openat|creat)\(.*O_(?:WRONLY|RDWR|CREAT)"
    r"|(?:mkdir|mkdirat|rename|renameat|renameat2|unlink|unlinkat|rmdir|chmod|fchmodat|truncate|link|linkat"
    r"|symlink|symlinkat|mknod|mknodat)\(|bind\(\d+, \{sa_family=AF_UNIX)"
)
QUOTED_PATH = re.compile(r'"([^"]*)"')


def paths_written(trace: str) -> set[str]:
    """Every path a traced process created, wrote, renamed, removed or bound a socket at."""
    return {path for line in trace.splitlines() if CHANGES_A_PATH.match(line) for path in QUOTED_PATH.findall(line)}


def strace_works() -> bool:
    """strace is installed and may trace here (a container may refuse ptrace)."""
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=60).returncode == 0


@needs_systemd_analyze
@pytest.mark.skipif(not strace_works(), reason="strace missing, or not allowed to trace here")
def test_node_runs_within_the_units_system_calls_and_address_families(tmp_path):
    """The unit's SystemCallFilter and RestrictAddressFamilies refuse nothing a node does from
    its start, through S3 writes and reads, to a clean stop (a refused call would be EPERM),
    and it writes only where ProtectSystem=strict lets it: its data directory (ReadWritePaths)
    and files of its own directly in /tmp (PrivateTmp)."""
    settings = unit_settings(UNIT)
    allowed: set[str] = set()
    for entry in settings["SystemCallFilter"]:
        denied = entry.startswith("~")
        calls = set()
        for name in entry.lstrip("~").split():
            calls |= syscall_group(name) if name.startswith("@") else {name}
        allowed = allowed - calls if denied else allowed | calls
    families = set(settings["RestrictAddressFamilies"][0].split())

    trace = tmp_path / "strace.log"
    node = TracedNode(tmp_path / "data", tmp_path / "node.log", trace=trace, args=["--workers", "1"])
    node.start(wait=False)
    try:
        node.wait_ready(timeout=180)
        s3 = node.client()
        s3.create_bucket(Bucket="traced")
        s3.put_object(Bucket="traced", Key="small", Body=b"x" * 100)
        s3.put_object(Bucket="traced", Key="large", Body=b"y" * (1 << 20))
        assert s3.get_object(Bucket="traced", Key="large")["Body"].read() == b"y" * (1 << 20)
        assert requests.get(node.admin_url + "/metrics", timeout=30).status_code == 200
        (launcher,) = psutil.Process(node.process.pid).children()
        launcher.send_signal(signal.SIGTERM)
        assert node.process.wait(120) == 0, node.log_tail()
    finally:
        node.stop()

    text = trace.read_text(errors="replace")
    used, sockets = set(), set()
    for line in text.splitlines():
        if match := SYSCALL_LINE.match(line):
            used.add(match.group(1))
        if match := SOCKET_FAMILY.search(line):
            sockets.add(match.group(1))
    assert {"clone", "sendfile", "fsync"} & used and "socket" in used, sorted(used)
    assert used - AS_ROOT_ONLY <= allowed, sorted(used - AS_ROOT_ONLY - allowed)
    assert sockets <= families, sorted(sockets - families)
    written = paths_written(text)
    data = f"{node.data}/"
    assert any(path.startswith(data + "objects/") for path in written), sorted(written)
    elsewhere = {
        path
        for path in written
        if not (path + "/").startswith(data) and Path(path).parent != Path(tempfile.gettempdir())
    }
    assert not elsewhere, sorted(elsewhere)


# --- Prometheus -----------------------------------------------------------------------------


@needs_promtool
def test_alert_rules_and_scrape_config_check():
    for command in (["check", "rules", str(ALERTS)], ["check", "config", str(PROMETHEUS_CONFIG)]):
        result = subprocess.run(["promtool", *command], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def alert_names() -> set[str]:
    return {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}


def fired(alert: str, instance: str, severity: str, **labels) -> dict:
    return {"exp_labels": {"alertname": alert, "instance": instance, "severity": severity, **labels}}


ALERT_CASES = [
    # (alert, input series, minute evaluated, alerts expected then)
    (
        "NebulaIONodeDown",
        [
            {"series": 'up{job="nebulaio",instance="n1"}', "values": "1 1 0 0 0"},
            {"series": 'up{job="nebulaio",instance="n2"}', "values": "1 1 1 1 1"},
        ],
        4,
        [fired("NebulaIONodeDown", "n1", "critical", job="nebulaio")],
    ),
    (
        "NebulaIOSupervisorDown",
        [{"series": 'nebulaio_raft_up{job="nebulaio",instance="n1"}', "values": "0x4"}],
        3,
        [fired("NebulaIOSupervisorDown", "n1", "critical", job="nebulaio")],
    ),
    (
        "NebulaIOMemberDead",
        [
            {"series": 'nebulaio_gossip_members{job="nebulaio",instance="n1",state="dead"}', "values": "0 1 1 1 1"},
            {"series": 'nebulaio_gossip_members{job="nebulaio",instance="n2",state="dead"}', "values": "0 0 1 1 1"},
        ],
        4,
        [{"exp_labels": {"alertname": "NebulaIOMemberDead", "job": "nebulaio", "severity": "critical"}}],
    ),
    (
        "NebulaIORaftNoLeader",
        [
            {"series": 'nebulaio_raft_has_leader{job="nebulaio",instance="n1"}', "values": "1 0 0 0"},
            {"series": 'nebulaio_raft_has_leader{job="nebulaio",instance="n2"}', "values": "1 1 0 1"},
        ],
        3,
        [fired("NebulaIORaftNoLeader", "n1", "critical", job="nebulaio")],
    ),
    (
        "NebulaIORepairBacklog",
        [
            {"series": 'nebulaio_repair_under_replicated{job="nebulaio",instance="n1"}', "values": "5x40"},
            {"series": 'nebulaio_repair_under_replicated{job="nebulaio",instance="n2"}', "values": "0x40"},
        ],
        35,
        [fired("NebulaIORepairBacklog", "n1", "warning", job="nebulaio")],
    ),
    (
        "NebulaIODamageNotHealed",
        [
            {"series": 'nebulaio_scrub_unhealed_total{job="nebulaio",instance="n1"}', "values": "0 0 1 1 1 1"},
            {"series": 'nebulaio_scrub_unhealed_total{job="nebulaio",instance="n2"}', "values": "0x5"},
        ],
        3,
        [fired("NebulaIODamageNotHealed", "n1", "critical", job="nebulaio")],
    ),
    (
        "NebulaIODiskNearlyFull",
        [
            {"series": 'nebulaio_disk_free_bytes{job="nebulaio",instance="n1"}', "values": "8x10"},
            {"series": 'nebulaio_disk_total_bytes{job="nebulaio",instance="n1"}', "values": "100x10"},
            {"series": 'nebulaio_disk_free_bytes{job="nebulaio",instance="n2"}', "values": "50x10"},
            {"series": 'nebulaio_disk_total_bytes{job="nebulaio",instance="n2"}', "values": "100x10"},
        ],
        6,
        [fired("NebulaIODiskNearlyFull", "n1", "warning", job="nebulaio")],
    ),
    (
        "NebulaIOHighServerErrorRate",
        [
            {"series": 'nebulaio_s3_requests_total{job="nebulaio",instance="n1",status="200"}', "values": "0+600x15"},
            {"series": 'nebulaio_s3_requests_total{job="nebulaio",instance="n1",status="503"}', "values": "0+60x15"},
            {"series": 'nebulaio_s3_requests_total{job="nebulaio",instance="n2",status="200"}', "values": "0+600x15"},
            {"series": 'nebulaio_s3_requests_total{job="nebulaio",instance="n2",status="503"}', "values": "0+6x15"},
        ],
        12,
        [fired("NebulaIOHighServerErrorRate", "n1", "warning")],
    ),
]


@needs_promtool
def test_alerts_fire_on_trouble_and_stay_quiet_otherwise(tmp_path):
    """promtool's rule unit tests: each alert fires for the node in trouble, not its healthy
    peer, and not before its `for` has passed."""
    assert {case[0] for case in ALERT_CASES} <= alert_names()
    tests = []
    for alert, series, minute, expected in ALERT_CASES:
        tests.append(
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": f"{minute}m", "alertname": alert, "exp_alerts": expected},
                    {"eval_time": "0m", "alertname": alert, "exp_alerts": []},
                ],
            }
        )
    # The same rules without their annotations, which promtool would otherwise compare word for word.
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    document = tmp_path / "alerts_test.yml"
    document.write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run(["promtool", "test", "rules", str(document)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Grafana and the metric names -----------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
PROMQL_WORDS |= {"offset", "inf", "nan"}


def promql_metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana query) reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)  # string literals
    text = re.sub(r"label_values\(([^,)]*)(?:,[^)]*)?\)", r"\1", text)  # Grafana: (metric, label)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        followed_by = text[match.end() :].lstrip()[:1]
        if followed_by != "(" and match.group().lower() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def test_promql_metric_names_are_found():
    expression = (
        'sum by (instance) (rate(nebulaio_s3_requests_total{status=~"5.."}[5m])) / ignoring(le) '
        'histogram_quantile(0.99, nebulaio_x_bucket{a="b"}) > 1e3 and up{job="x"} offset 5m'
    )
    assert promql_metric_names(expression) == {"nebulaio_s3_requests_total", "nebulaio_x_bucket", "up"}
    assert promql_metric_names('label_values(nebulaio_raft_up{job="nebulaio"}, instance)') == {"nebulaio_raft_up"}


def dashboard_expressions(dashboard: dict) -> list[str]:
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            expressions.append(variable["definition"])
    return expressions


def test_dashboard_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24 and place["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}" and "datasource" in variables, panel["title"]
        references = [target["refId"] for target in panel["targets"]]
        assert references and len(references) == len(set(references)), panel["title"]
        for target in panel["targets"]:
            for variable in re.findall(r"\$(\w+)", target["expr"]):
                assert variable in variables or variable.startswith("__"), (panel["title"], variable)


def exported_metric_names(node) -> set[str]:
    """What a node's /metrics exports: each declared family with its histogram series, and every sample."""
    response = requests.get(node.admin_url + "/metrics", timeout=30)
    assert response.status_code == 200
    names = set()
    for line in response.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "summary":
                names |= {f"{name}_sum", f"{name}_count"}
        elif line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group())
    return names


@pytest.fixture(scope="module")
def cluster(cluster_factory):
    """Gossip, raft and repair figures are a cluster's: three nodes that see each other."""
    nodes = cluster_factory(3)
    wait_for(
        lambda: all('nebulaio_gossip_members{state="alive"} 3' in _samples(node) for node in nodes),
        60,
        "gossip figures on every node",
    )
    return nodes


def _samples(node) -> str:
    return requests.get(node.admin_url + "/metrics", timeout=30).text


def test_dashboard_and_alerts_read_only_exported_metrics(cluster):
    node = cluster[0]
    node.client().list_buckets()
    exported = exported_metric_names(node) | PROMETHEUS_OWN
    rules = [rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    for source, expressions in (
        ("alerts", rules),
        ("dashboard", dashboard_expressions(json.loads(DASHBOARD.read_text()))),
    ):
        used = set().union(*map(promql_metric_names, expressions))
        assert len(used) > 10, (source, used)
        assert used <= exported, (source, sorted(used - exported))


def test_cluster_figures_the_alerts_read(cluster):
    """The series the node, leader and disk alerts compare hold the values they expect."""
    for node in cluster:
        text = _samples(node)
        values = {
            line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }
        assert values["nebulaio_raft_has_leader"] == 1 and values["nebulaio_raft_members"] == 3
        assert values['nebulaio_gossip_members{state="alive"}'] == 3
        assert values['nebulaio_gossip_members{state="dead"}'] == 0
        disk = psutil.disk_usage(str(node.data))
        assert values["nebulaio_disk_total_bytes"] == disk.total
        assert 0 < values["nebulaio_disk_free_bytes"] <= disk.total


def test_a_dead_member_shows_on_the_others(cluster):
    """What the member alert reads: the others' gossip holds a killed node dead."""
    cluster[2].kill_group()
    wait_for(
        lambda: all('nebulaio_gossip_members{state="dead"} 1' in _samples(node) for node in cluster[:2]),
        60,
        "the killed node dead in gossip on the others",
    )
