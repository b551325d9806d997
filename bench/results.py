"""Figures, their goals, and the table and JSON they end up in."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

MB = 1_000_000
MISSING = "MISSING"
FAILED_VERDICTS = ("FAIL", MISSING)

# name: (comparison, goal). Goals from the probes issue (#5); they hold for the full seed (1,000 targets).
GOALS: dict[str, tuple[str, float]] = {
    "overview_ms_1000_targets_1y": ("<=", 150),
    "overview_growth_ratio": ("<=", 1.5),
    "detail_ms_1y": ("<=", 50),
    "probe_overhead_ratio": ("<=", 1.10),
    "probes_per_second": (">=", 50),
    "live_poll_p95_ms_50_clients": ("<=", 50),
    # Issue #18: the minute job's own cost, the live poll with it running, cold and warm target pages.
    "minute_job_ms_1000_targets": ("<=", 1500),
    "minute_job_ms_2000_targets": ("<=", 3000),
    "live_poll_full_resend_share": ("<=", 1),
    "detail_ms_24h_cold": ("<=", 80),
    "detail_ms_24h_warm": ("<=", 50),
    "detail_ms_1y_cold": ("<=", 100),
    "detail_ms_1y_warm": ("<=", 50),
    "storage_bytes_per_target_year": ("<=", 10 * MB),
    # Issue #6: generating a report from the same synthetic history.
    "report_ms_30d_20_targets": ("<=", 1000),
    "report_ms_1y_20_targets": ("<=", 3000),
    # Issue #13: the change-set diff under its review step, 200 resource changes.
    "change_set_diff_page_ms_200_changes": ("<=", 250),
    # Issue #18: the environment page's shared resources snapshot (AWS calls follow time, not viewers).
    "environment_poll_p95_ms_50_viewers": ("<=", 100),
    "environment_aws_calls_ratio_50_to_1_viewers": ("<=", 1.1),
    # The readiness check (issue #15): 0.5 s against the sandbox; real AWS answers each of its ~15 calls in
    # tens of ms and DSQL's login takes longer than the sandbox's, so 2 s leaves room and still catches a
    # check that reads something per resource or waits where it should not.
    "readiness_check_ms": ("<=", 2000),
    "attempt_page_5000_log_lines_ms": ("<=", 60),
    # The health overview in Chromium, from navigation to every row drawn (bench/overview_browser.py).
    "overview_browser_ms_1000_rows_cold": ("<=", 1500),
    "overview_browser_ms_1000_rows_warm": ("<=", 1000),
    # Issue #16: the bake's verdict, computed in the bake's loop every 5 s between probes 2 s apart: a quarter
    # of a probe interval at most, so the raised rate stays the rate.
    "bake_verdict_ms_24h_baseline": ("<=", 500),
}


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    note: str = ""

    def verdict(self) -> str:
        """pass / FAIL against its goal; MISSING when a figure with a goal came out empty (a fail too)."""
        goal = GOALS.get(self.name)
        if goal is None:
            return ""
        if self.value is None:
            return MISSING
        comparison, target = goal
        met = self.value <= target if comparison == "<=" else self.value >= target
        return "pass" if met else "FAIL"

    def goal_text(self) -> str:
        goal = GOALS.get(self.name)
        return f"{goal[0]} {_number(goal[1], self.unit)}" if goal else ""


def write_figures(path: str | os.PathLike, figures: list[Figure], extra: dict | None = None) -> None:
    """What a section's child process hands back to `python -m bench`."""
    Path(path).write_text(json.dumps({"figures": [asdict(f) for f in figures], **(extra or {})}, indent=2))


def read_figures(path: str | os.PathLike) -> tuple[list[Figure], dict]:
    data = json.loads(Path(path).read_text())
    figures = [Figure(**f) for f in data.pop("figures")]
    return figures, data


def missed(figures: list[Figure], *, every_section_ran: bool) -> list[str]:
    """The figures that make `make bench` fail: below goal, empty, or (after a full run) never measured."""
    failed = [f.name for f in figures if f.verdict() in FAILED_VERDICTS]
    if every_section_ran:
        measured = {f.name for f in figures}
        failed += [f"{name} (not measured)" for name in GOALS if name not in measured]
    return failed


def markdown_table(report: dict) -> str:
    """The figures table of docs/benchmarks.md, made from results.json (so the two cannot disagree)."""
    lines = [
        f"Run of {report.get('date', '?')} at commit {report.get('commit') or '?'}"
        + (" (a modified tree)" if report.get("dirty") else "")
        + f", {report.get('machine', '?')}; {report.get('seconds', '?')} s"
        + (", quick seed" if report.get("quick") else "")
        + ".",
        "",
        "| figure | goal | measured | verdict | note |",
        "|---|---|---|---|---|",
    ]
    for name, figure in report.get("figures", {}).items():
        value = figure.get("value")
        shown = "—" if value is None else _number(value, figure.get("unit", ""))
        lines.append(
            f"| `{name}` | {figure.get('goal') or '—'} | {shown} | {figure.get('verdict') or '—'} | "
            f"{(figure.get('note') or '').replace('|', '/')} |"
        )
    speed = report.get("cpu_reference_ms")
    if speed:
        lines += [
            "",
            f"The machine's speed (`cpu_reference_ms`, a fixed pure-Python loop; lower is faster): "
            f"{speed.get('before')} ms before the first section, {speed.get('after')} ms after the last.",
        ]
    loads = {name: section.get("load_average_after") for name, section in (report.get("sections") or {}).items()}
    if any(loads.values()):
        lines += ["", "Load average after each section: " + "; ".join(f"{k} {v}" for k, v in loads.items() if v)]
    return "\n".join(lines)


def table(figures: list[Figure]) -> str:
    lines = [f"{'figure':48} {'value':>14} {'goal':>14}  {'':4}  note", "-" * 100]
    for figure in figures:
        value = "n/a" if figure.value is None else _number(figure.value, figure.unit)
        lines.append(f"{figure.name:48} {value:>14} {figure.goal_text():>14}  {figure.verdict():4}  {figure.note}")
    return "\n".join(lines)


def _number(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / MB:.2f} MB"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "ratio":
        return f"{value:.3f}"
    if unit == "s":
        return f"{value:.1f} s"
    return f"{value:.1f} {unit}".strip()
