"""Every figure of a run beside its ratio to each peer: printed, and written as JSON and Markdown.

Ratios are subject ÷ peer, where the subject is the first target measured (NebulaIO by default).
Above 1 is better for rates, below 1 is better for latencies and CPU per operation.
"""

import dataclasses
import datetime
import os
import platform
from pathlib import Path

import orjson

from benchmarks.load import PhaseResult

LABELS = {
    "PUT": "PUT 4 KiB",
    "GET": "GET 4 KiB",
    "HEAD": "HEAD 4 KiB",
    "DELETE": "DELETE",
    "LIST": "LIST 1,000-key pages",
    "PUT-LARGE": "PUT 64 MiB",
    "GET-LARGE": "GET 64 MiB",
    "COPY-LARGE": "COPY 64 MiB",
    "PART-LARGE": "UploadPart 64 MiB",
    "MULTIPART-1GIB": "multipart 1 GiB",
}
WORKLOAD_ORDER = list(LABELS)
FIGURES = (
    ("rate", "{unit}"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("server_cpu_us", "server CPU µs/op"),
    ("client_cpu_us", "client CPU µs/op"),
    ("errors", "errors"),
)
RATIO_FIGURES = frozenset(("rate", "p50_ms", "p99_ms", "server_cpu_us"))
CLIENT_COST_PEER = "nginx"
CLIENT_COST_KINDS = ("PUT", "GET", "HEAD", "DELETE")


def number(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def ratio(subject: float | None, peer: float | None) -> str:
    if subject is None or peer is None or not peer:
        return "—"
    return f"{subject / peer:.2f}x"


def phase_order(item: tuple[tuple[str, int], object]) -> tuple[int, int]:
    """By concurrency, then in the order the workloads run."""
    (kind, concurrency), _ = item
    return concurrency, WORKLOAD_ORDER.index(kind)


class Report:
    """A run's results, keyed by target, in the order the targets were asked for."""

    def __init__(self, plan_name: str, targets: list[str]):
        self.plan_name = plan_name
        self.targets = targets
        self.started = datetime.datetime.now(datetime.UTC)
        self.status: dict[str, str] = {}
        self.results: dict[str, list[PhaseResult]] = {}
        self.disk_creates: float | None = None

    @property
    def measured(self) -> list[str]:
        return [name for name in self.targets if self.results.get(name)]

    def rows(self) -> list[list[str]]:
        """Header row, then one row per (workload, concurrency, figure)."""
        measured = self.measured
        subject, peers = (measured[0], measured[1:]) if measured else ("", [])
        header = ["workload", "conc", "figure", *measured, *(f"{subject}/{peer}" for peer in peers)]
        by_phase: dict[tuple[str, int], dict[str, PhaseResult]] = {}
        for name in measured:
            for result in self.results[name]:
                by_phase.setdefault((result.kind, result.concurrency), {})[name] = result
        rows = [header]
        for (kind, concurrency), per_target in sorted(by_phase.items(), key=phase_order):
            unit = next(iter(per_target.values())).unit
            for figure, caption in FIGURES:
                values = {name: getattr(result, figure) for name, result in per_target.items()}
                row = [
                    LABELS[kind] if figure == "rate" else "",
                    str(concurrency) if figure == "rate" else "",
                    caption.format(unit=unit),
                    *(number(values.get(name)) for name in measured),
                ]
                if figure in RATIO_FIGURES:
                    row += [ratio(values.get(subject), values.get(peer)) for peer in peers]
                else:
                    row += [""] * len(peers)
                rows.append(row)
        return rows

    def client_cost(self) -> str:
        """The client's CPU per request against the fastest peer: the proof it is not the bottleneck."""
        results = self.results.get(CLIENT_COST_PEER)
        if not results:
            return f"client CPU per request: not measured ({CLIENT_COST_PEER} was not run)"
        small = [result for result in results if result.kind in CLIENT_COST_KINDS and result.ok]
        parts = [f"{LABELS[r.kind]} c={r.concurrency}: {r.client_cpu_us:.0f} µs" for r in small]
        return f"client CPU per request against {CLIENT_COST_PEER}: " + ", ".join(parts)

    def notes(self) -> list[str]:
        lines = [f"{name}: {status}" for name, status in self.status.items() if status != "ok"]
        for name in self.measured:
            for result in self.results[name]:
                for sample in result.error_samples:
                    phase = f"{name} {LABELS[result.kind]} c={result.concurrency}"
                    lines.append(f"{phase}: {result.errors} errors, e.g. {sample}")
        lines.append(self.client_cost())
        if self.disk_creates is not None:
            rate = f"{self.disk_creates:,.0f} durable 4 KiB file creates/s on one thread"
            lines.append(f"disk: {rate}{self.durable_put_ratio()}")
        return lines

    def durable_put_ratio(self) -> str:
        """NebulaIO's small-PUT target is stated against the disk's durable create rate."""
        measured = self.measured
        if not measured:
            return ""
        rates = [r.rate for r in self.results[measured[0]] if r.kind == "PUT" and r.concurrency == 8 and r.ok]
        if not rates:
            return ""
        return f"; {measured[0]} PUT 4 KiB c=8 is {rates[0] / self.disk_creates:.2f}x that"

    def text(self) -> str:
        rows = self.rows()
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        lines = []
        for index, row in enumerate(rows):
            cells = [
                cell.ljust(width) if column < 3 else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(row, widths, strict=True))
            ]
            lines.append("  ".join(cells).rstrip())
            if index == 0:
                lines.append("-" * len(lines[0]))
        return "\n".join([*lines, "", *self.notes()])

    def markdown(self) -> str:
        rows = self.rows()
        header, body = rows[0], rows[1:]
        lines = [
            f"# Benchmark run {self.started:%Y-%m-%d %H:%M} UTC ({self.plan_name})",
            "",
            f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}. "
            "Ratios are the first target ÷ each peer.",
            "",
            "| " + " | ".join(header) + " |",
            "| " + " | ".join("---" if column < 3 else "---:" for column in range(len(header))) + " |",
            *("| " + " | ".join(row) + " |" for row in body),
            "",
            *(f"- {line}" for line in self.notes()),
        ]
        return "\n".join(lines) + "\n"

    def as_json(self) -> bytes:
        document = {
            "started": self.started.isoformat(),
            "plan": self.plan_name,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
            "status": self.status,
            "results": {
                name: [
                    {key: value for key, value in dataclasses.asdict(result).items() if key != "done_keys"}
                    for result in results
                ]
                for name, results in self.results.items()
            },
            "client_cost": self.client_cost(),
            "disk_durable_creates_per_second": self.disk_creates,
        }
        return orjson.dumps(document, option=orjson.OPT_INDENT_2)

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / f"bench-{self.started:%Y%m%d-%H%M%S}"
        json_path, markdown_path = stem.with_suffix(".json"), stem.with_suffix(".md")
        json_path.write_bytes(self.as_json())
        markdown_path.write_text(self.markdown(), encoding="utf-8")
        return json_path, markdown_path
