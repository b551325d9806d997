"""Chart data of the health pages, from what the selectors read: the target page's ranges and its uPlot
columns per bucket, the overview's 24-hour sparklines and its time axis. Plain Python, no queries and
no markup: templates/monitoring/ draws them."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dashboard import formatting
from dashboard.models import Resolution
from dashboard.monitoring.stats import DAY, HOUR, RangeStats, floor_time

# --- ranges of the target page ----------------------------------------------------------------------


@dataclass(frozen=True)
class RangeSpec:
    key: str
    label: str
    span: timedelta
    resolution: int

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.resolution)

    @property
    def bucket_label(self) -> str:
        return Resolution(self.resolution).label


RANGES: dict[str, RangeSpec] = {
    spec.key: spec
    for spec in (
        RangeSpec("1h", "1 hour", HOUR, Resolution.MINUTE),
        RangeSpec("24h", "24 hours", DAY, Resolution.MINUTE),
        RangeSpec("7d", "7 days", 7 * DAY, Resolution.HOUR),
        RangeSpec("30d", "30 days", 30 * DAY, Resolution.HOUR),
        RangeSpec("1y", "1 year", 365 * DAY, Resolution.DAY),
    )
}
DEFAULT_RANGE = "24h"
CHART_QUANTILES = (0.5, 0.95, 0.99)
PHASE_ORDER = ["token", "connect", "query", "write", "read", "init", "duration", "billed"]


def range_spec(key: str | None) -> RangeSpec:
    """The range a `range` parameter names; the default for anything else."""
    return RANGES.get(key or "", RANGES[DEFAULT_RANGE])


# --- a target's charts ----------------------------------------------------------------------------------


@dataclass
class Bucket(RangeStats):
    """One chart bucket. A settled bucket is one rollup whose quantiles were stored when it was written
    (its histogram is not read); the bucket still filling merges its histogram with the raw results
    not rolled up yet."""

    stored: tuple[float | None, ...] | None = None

    def add_settled(self, count, ok_count, latency_count, latency_sum, phase_sums, p50, p95, p99) -> None:
        self.add_values(count, ok_count, latency_count, None, None, latency_sum, b"", phase_sums, 0, 0.0)
        self.stored = (p50, p95, p99)

    def quantiles(self) -> list[float | None]:
        """p50, p95, p99."""
        return list(self.stored) if self.stored is not None else self.histogram.percentiles(*CHART_QUANTILES)


def phase_order(names: Iterable[str]) -> list[str]:
    """Phases in the order a probe goes through them (token, connect, query; init, duration), others after."""
    return sorted(names, key=lambda name: (PHASE_ORDER.index(name) if name in PHASE_ORDER else 99, name))


def gap_seconds(interval_seconds: int, spec: RangeSpec) -> float:
    """Longer than this without a bucket is a gap in the lines (two and a half buckets or probes)."""
    return 2.5 * max(spec.resolution, interval_seconds)


def chart_data(buckets: dict[int, Bucket], spec: RangeSpec, gap: float) -> dict:
    """Columns for uPlot: x in epoch seconds, then per-bucket avg/p50/p95/p99, uptime and phase averages.
    A null row goes in wherever no probe ran for longer than `gap` seconds, so the lines break there."""
    rows = [
        (at, bucket.count, bucket.ok_count, bucket.latency_count, bucket.latency_sum, bucket.phase_sums)
        + tuple(None if value is None else round(value, 3) for value in bucket.quantiles())
        for at, bucket in sorted(buckets.items())
    ]
    return chart_columns(rows, spec, gap)


def chart_columns(rows: list[tuple], spec: RangeSpec, gap: float) -> dict:
    """chart_data of buckets given as rows (at, count, ok_count, latency_count, latency_sum, phase_sums, p50,
    p95, p99; the quantiles rounded to 3 places), oldest first: a settled 24 h chart is 1,440 rows, and a
    Bucket apiece cost more than its query. A column at a time (a comprehension each), then a null row into
    every column at each gap. round() is most of the cost: stored quantiles come rounded from a table, and an
    all-ok bucket's uptime needs none."""
    phases = phase_order({name for row in rows for name in row[5]})
    columns = {
        "x": [row[0] for row in rows],
        "avg": [round(row[4] / row[3], 3) if row[3] else None for row in rows],
        "p50": [row[6] for row in rows],
        "p95": [row[7] for row in rows],
        "p99": [row[8] for row in rows],
        "uptime": [
            (100.0 if row[2] == row[1] else round(row[2] / row[1] * 100, 3)) if row[1] else None for row in rows
        ],
        "count": [row[1] for row in rows],
        "failures": [row[1] - row[2] for row in rows],
    }
    phase_columns = {
        name: [round(total / row[3], 3) if (total := row[5].get(name)) is not None and row[3] else None for row in rows]
        for name in phases
    }
    xs = columns["x"]
    gaps = [index for index in range(1, len(xs)) if xs[index] - xs[index - 1] > gap]
    for index in reversed(gaps):  # from the end, so the indexes before stay right
        middle = (xs[index - 1] + xs[index]) / 2
        for column in (*columns.values(), *phase_columns.values()):
            column.insert(index, None)
        xs[index] = middle
    return {"step": spec.resolution, "columns": columns, "phases": phase_columns}


def _length(chart: dict) -> int:
    return len(chart["columns"]["x"])


def trim_chart(chart: dict, start: int) -> dict:
    """`chart` without its points before `start` (epoch seconds), nor a gap's null row left first."""
    xs = chart["columns"]["x"]
    cut = bisect.bisect_left(xs, start)
    if cut < len(xs) and chart["columns"]["count"][cut] is None:
        cut += 1
    if cut == 0:
        return chart
    return {
        **chart,
        "columns": {name: values[cut:] for name, values in chart["columns"].items()},
        "phases": {name: values[cut:] for name, values in chart["phases"].items()},
    }


def join_charts(head: dict, tail: dict, gap: float) -> dict:
    """chart_data of head's buckets and tail's together, tail's all later: what chart_data would give
    for the union (a null row at the seam if it is a gap, phases missing on one side as nulls)."""
    if not _length(tail):
        return head
    if not _length(head):
        return tail
    seam = head["columns"]["x"][-1], tail["columns"]["x"][0]
    null = [None] if seam[1] - seam[0] > gap else []
    columns = {
        name: values + ([(seam[0] + seam[1]) / 2] if null and name == "x" else null) + tail["columns"][name]
        for name, values in head["columns"].items()
    }
    phases = {
        name: head["phases"].get(name, [None] * _length(head)) + null + tail["phases"].get(name, [None] * _length(tail))
        for name in phase_order(set(head["phases"]) | set(tail["phases"]))
    }
    return {"step": head["step"], "columns": columns, "phases": phases}


# --- the overview's sparklines and 24 h axis ----------------------------------------------------------

SPARK_WIDTH, SPARK_HEIGHT, SPARK_HOURS = 240, 30, 24
_SPARK_X = [f"{(index + 0.5) * SPARK_WIDTH / SPARK_HOURS:g}," for index in range(SPARK_HOURS)]


def day_axis(now: datetime) -> tuple[datetime, datetime]:
    """The 24 h axis of the sparklines: the current hour and the 23 before it."""
    end = floor_time(now, HOUR) + HOUR
    return end - SPARK_HOURS * HOUR, end


# The line is drawn at the resolution it is seen at: each hour's average snapped to one of SPARK_HEIGHT
# levels (a pixel of the 30 px line) under a top snapped up to a 5 % step. A small change of an average
# then draws nothing new, so the summary job can tell a changed row by comparing what is drawn
# (spark_levels) instead of marking every target changed each minute.
SPARK_LEVELS = SPARK_HEIGHT
_SCALE_LOG_STEP = math.log(1.05)


def spark_levels(values: list[float | None]) -> tuple[float, list[int | None]] | None:
    """The drawn form of 24 hourly averages: the chart's top (ms) and each hour's level (0..SPARK_LEVELS,
    None without data); None when no hour has data."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    highest = max(present)
    top = math.exp(math.ceil(math.log(highest * 1.1) / _SCALE_LOG_STEP) * _SCALE_LOG_STEP) if highest > 0 else 1.0
    return top, [None if value is None else round(value / top * SPARK_LEVELS) for value in values]


def sparkline(text: str | None) -> dict | None:
    """The 24 hourly latency averages in `text` ("3.1,,4.2,..." oldest first, empty for an hour without
    data, as PostgreSQL writes the array) as SVG coordinates: one polyline per run of hours with data,
    each hour at the middle of its slot so it lines up with the 24 h timeline above the column, at the
    levels of spark_levels (negated: SVG's y grows downwards). None without data.

    Strings, built once per row here: at 1,000 rows a template loop over 24 numbers per row costs more
    than the rest of the page."""
    tokens = text.split(",") if text else []
    drawn = spark_levels([float(token) if token else None for token in tokens])
    if drawn is None:
        return None
    top, levels = drawn
    xs = _SPARK_X[SPARK_HOURS - len(tokens) :] if len(tokens) <= SPARK_HOURS else _SPARK_X
    runs: list[str] = []
    run: list[str] = []
    for x, level in zip(xs, levels, strict=False):
        if level is not None:
            run.append(f"{x}{-level}")
        elif run:
            runs.append(" ".join(run if len(run) > 1 else run * 2))  # a lone hour: a dot (round line cap)
            run = []
    if run:
        runs.append(" ".join(run if len(run) > 1 else run * 2))
    highest = max(level for level in levels if level is not None)
    return {
        "view_box": f"0 {-SPARK_LEVELS} {SPARK_WIDTH} {SPARK_LEVELS * 1.06:.4g}",
        "highest": formatting.latency_ms(highest * top / SPARK_LEVELS),
        "runs": runs,
    }
