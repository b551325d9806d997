"""Reads of probe history for any time range, from rollups only (never raw results).

A range is cut into whole days, then whole hours, then minutes at its edges, so each row
read covers as much time as possible: a year is ~365 day rows plus a few dozen edge rows per
target, whatever the probing rate. Percentiles come from merging the rows' histograms.

Rollups live in two tables: Rollup holds the buckets the rollup job is done with, FillingRollup the hour
and day bucket each target is still filling. A read of settled buckets only (whole hours and days before
the cursors, as range_stats reads) needs Rollup alone; a read that may reach the buckets still filling
goes through all_rollups() (or ALL_ROLLUPS_SQL), one query over both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Q

from dashboard.models import FillingRollup, Incident, ProbeResult, Resolution, Rollup, RollupCursor
from dashboard.monitoring.histogram import Histogram

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SETTLED_DAYS_CACHE_SECONDS = 3600


@dataclass
class RangeStats:
    """Probe history of one target over one range."""

    count: int = 0
    ok_count: int = 0
    latency_count: int = 0
    latency_min: float | None = None
    latency_max: float | None = None
    latency_sum: float = 0.0
    histogram: Histogram = field(default_factory=Histogram)
    phase_sums: dict[str, float] = field(default_factory=dict)
    cold_count: int = 0
    cold_latency_sum: float = 0.0

    def add_values(
        self,
        count: int,
        ok_count: int,
        latency_count: int,
        latency_min: float | None,
        latency_max: float | None,
        latency_sum: float,
        histogram: bytes,
        phase_sums: dict[str, float],
        cold_count: int,
        cold_latency_sum: float,
    ) -> None:
        """One rollup's columns, in ROLLUP_FIELDS order (reading plain values skips building model objects)."""
        self.count += count
        self.ok_count += ok_count
        self.latency_count += latency_count
        self.latency_sum += latency_sum
        if latency_min is not None:
            self.latency_min = latency_min if self.latency_min is None else min(self.latency_min, latency_min)
        if latency_max is not None:
            self.latency_max = latency_max if self.latency_max is None else max(self.latency_max, latency_max)
        self.histogram.merge(histogram)
        for phase, total in phase_sums.items():
            self.phase_sums[phase] = self.phase_sums.get(phase, 0.0) + total
        self.cold_count += cold_count
        self.cold_latency_sum += cold_latency_sum

    def add_result(self, ok: bool, latency: float | None, phases: dict, cold_start: bool | None) -> None:
        """One raw probe result."""
        self.count += 1
        self.ok_count += ok
        if latency is None:
            return
        self.latency_count += 1
        self.latency_sum += latency
        self.latency_min = latency if self.latency_min is None else min(self.latency_min, latency)
        self.latency_max = latency if self.latency_max is None else max(self.latency_max, latency)
        self.histogram.add(latency)
        for phase, ms in phases.items():
            if isinstance(ms, (int, float)):
                self.phase_sums[phase] = self.phase_sums.get(phase, 0.0) + ms
        if cold_start:
            self.cold_count += 1
            self.cold_latency_sum += latency

    def absorb(self, other: RangeStats) -> None:
        """Add another range's figures (disjoint from this one's) into this one."""
        self.add_values(
            other.count,
            other.ok_count,
            other.latency_count,
            other.latency_min,
            other.latency_max,
            other.latency_sum,
            b"",
            other.phase_sums,
            other.cold_count,
            other.cold_latency_sum,
        )
        self.histogram.absorb(other.histogram)

    @property
    def uptime(self) -> float | None:
        """Fraction of probes that succeeded; None without probes."""
        return self.ok_count / self.count if self.count else None

    @property
    def latency_avg(self) -> float | None:
        return self.latency_sum / self.latency_count if self.latency_count else None

    def percentile(self, q: float) -> float | None:
        return self.histogram.percentile(q)

    @property
    def phase_averages(self) -> dict[str, float]:
        if not self.latency_count:
            return {}
        return {phase: total / self.latency_count for phase, total in sorted(self.phase_sums.items())}

    @property
    def cold_latency_avg(self) -> float | None:
        return self.cold_latency_sum / self.cold_count if self.cold_count else None

    @property
    def warm_latency_avg(self) -> float | None:
        warm = self.latency_count - self.cold_count
        return (self.latency_sum - self.cold_latency_sum) / warm if warm > 0 else None


def floor_time(moment: datetime, step: timedelta) -> datetime:
    """Start of the UTC bucket of length `step` holding `moment` (minute, hour or day)."""
    seconds = int(step.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=moment.tzinfo)


def cover(start: datetime, end: datetime) -> list[tuple[int, datetime, datetime]]:
    """Cut [start, end) into (resolution, first bucket, end of last bucket) spans of whole buckets,
    coarsest first. Both ends are rounded down to the minute: rollups know nothing finer."""
    start, end = floor_time(start, MINUTE), floor_time(end, MINUTE)
    if end <= start:
        return []
    spans: list[tuple[int, datetime, datetime]] = []

    def split(lo: datetime, hi: datetime, steps: list[tuple[int, timedelta]]) -> None:
        resolution, step = steps[0]
        if len(steps) == 1:
            spans.append((resolution, lo, hi))
            return
        first = floor_time(lo, step)
        first = first if first == lo else first + step
        last = floor_time(hi, step)
        if first >= last:
            split(lo, hi, steps[1:])
            return
        spans.append((resolution, first, last))
        if lo < first:
            split(lo, first, steps[1:])
        if last < hi:
            split(last, hi, steps[1:])

    split(start, end, [(Resolution.DAY, DAY), (Resolution.HOUR, HOUR), (Resolution.MINUTE, MINUTE)])
    return spans


def spans_filter(spans: Iterable[tuple[int, datetime, datetime]]) -> Q:
    """Rollup rows of the given (resolution, from, to) spans; an empty Q for no spans."""
    condition = Q()
    for resolution, lo, hi in spans:
        condition |= Q(resolution=resolution, bucket__gte=lo, bucket__lt=hi)
    return condition


# "Read rolled_up_until() now": a page showing several figures of one moment reads it once and passes it on,
# so its chart and its summary agree on where the rollups end (and it costs one query, not one a figure).
READ_CURSOR: Any = object()


def range_stats(
    target_ids: Iterable[int], start: datetime, end: datetime, *, settled: datetime | None = READ_CURSOR
) -> dict[int, RangeStats]:
    """History of each target over [start, end): rollups up to where the rollup job has got (`settled`,
    rolled_up_until()'s), raw results after that (a few minutes at most). A target without history gets an
    empty RangeStats."""
    ids = list(target_ids)
    stats = {target_id: RangeStats() for target_id in ids}
    if not ids or end <= start:
        return stats
    if settled is READ_CURSOR:
        settled = rolled_up_until()
    spans = cover(start, min(end, settled)) if settled else []
    for target_id, done in _settled_days(ids, spans).items():
        stats[target_id].absorb(done)
    condition = spans_filter(spans)
    if condition:
        rows = Rollup.objects.filter(condition, target_id__in=ids).values_list(*ROLLUP_FIELDS)
        for target_id, *values in _rows(rows, len(ids)):
            stats[target_id].add_values(*values)
    recent = ProbeResult.objects.filter(target_id__in=ids, at__gte=max(start, settled or start), at__lt=end)
    for target_id, ok, latency, phases, cold_start in _rows(
        recent.values_list("target_id", "ok", "latency_ms", "phases", "cold_start"), len(ids)
    ):
        stats[target_id].add_result(ok, latency, phases, cold_start)
    return stats


def _settled_days(ids: list[int], spans: list[tuple[int, datetime, datetime]]) -> dict[int, RangeStats]:
    """The whole days of `spans` but the newest, read through the cache: their rollups no longer change,
    and a year of them is most of what a long range costs. Takes those days out of `spans`."""
    for position, (resolution, lo, hi) in enumerate(spans):
        if resolution == Resolution.DAY and hi - lo > DAY:
            # The newest day stays out of the cache: its row may still be rewritten by the job now running.
            spans[position] = (resolution, hi - DAY, hi)
            break
    else:
        return {}
    days = f"{int(lo.timestamp())}:{int((hi - DAY).timestamp())}"
    keys = {f"range-days:{target_id}:{days}": target_id for target_id in ids}
    found = cache.get_many(list(keys))
    missing = [target_id for key, target_id in keys.items() if key not in found]
    if missing:
        fresh = {target_id: RangeStats() for target_id in missing}
        rows = Rollup.objects.filter(
            target_id__in=missing, resolution=Resolution.DAY, bucket__gte=lo, bucket__lt=hi - DAY
        ).values_list(*ROLLUP_FIELDS)
        for target_id, *values in _rows(rows, len(missing)):
            fresh[target_id].add_values(*values)
        additions = {key: fresh[target_id] for key, target_id in keys.items() if target_id in fresh}
        cache.set_many(additions, timeout=SETTLED_DAYS_CACHE_SECONDS)
        found.update(additions)
    return {keys[key]: value for key, value in found.items()}


def _rows(queryset, targets: int):
    # A server-side cursor costs round trips; only worth it when many targets make a large result.
    return queryset.iterator(chunk_size=5000) if targets > 20 else queryset


def rolled_up_until() -> datetime | None:
    """Results before this are in the minute rollups; None before the rollup job first ran."""
    return RollupCursor.objects.filter(resolution=Resolution.MINUTE).values_list("done_until", flat=True).first()


ROLLUP_FIELDS = (
    "target_id",
    "count",
    "ok_count",
    "latency_count",
    "latency_min",
    "latency_max",
    "latency_sum",
    "histogram",
    "phase_sums",
    "cold_count",
    "cold_latency_sum",
)


# Every column of a rollup row (its name in the database), in one order for both tables.
ROLLUP_COLUMNS = tuple(
    Rollup._meta.get_field(name).column
    for name in ("target_id", "resolution", "bucket", *ROLLUP_FIELDS[1:], "p50_index", "p95_index", "p99_index")
)
_COLUMN_LIST = ", ".join(ROLLUP_COLUMNS)
# Both tables as one, for raw SQL (`FROM {ALL_ROLLUPS_SQL} r`): the planner pushes a query's conditions into
# each side, so each is read through its own primary key.
ALL_ROLLUPS_SQL = (
    f"(SELECT {_COLUMN_LIST} FROM {Rollup._meta.db_table} UNION ALL "
    f"SELECT {_COLUMN_LIST} FROM {FillingRollup._meta.db_table})"
)


def all_rollups(*fields, **filters):
    """values_list(*fields) of the rollups matching `filters`, settled (Rollup) and still filling
    (FillingRollup) alike. One query: a bucket the rollup job moves from one table to the other meanwhile
    is read once, whichever side of the move the query's snapshot sees."""
    settled = Rollup.objects.filter(**filters).values_list(*fields)
    return settled.union(FillingRollup.objects.filter(**filters).values_list(*fields), all=True)


def incidents_overlapping(target_ids: Iterable[int], start: datetime, end: datetime) -> list[Incident]:
    """Incidents that were open at any moment of [start, end), oldest first."""
    return list(
        Incident.objects.filter(target_id__in=list(target_ids), opened_at__lt=end)
        .filter(Q(closed_at=None) | Q(closed_at__gt=start))
        .select_related("target")
        .order_by("opened_at")
    )


def downtime_seconds(incidents: Iterable[Incident], start: datetime, end: datetime, now: datetime) -> float:
    """Seconds of [start, end) covered by the incidents (which may overlap each other)."""
    intervals = sorted((max(i.opened_at, start), min(i.closed_at or now, end)) for i in incidents)
    total, reach = 0.0, start
    for lo, hi in intervals:
        lo = max(lo, reach)
        if hi > lo:
            total += (hi - lo).total_seconds()
            reach = hi
    return total
