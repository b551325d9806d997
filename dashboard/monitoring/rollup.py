"""Background jobs over probe history: fold raw results into minute, hour and day rollups,
refresh each target's overview summary, and prune what is past its retention.

Every job works in bounded batches and is idempotent (a bucket is recomputed whole and
upserted), so a job that dies or runs twice does no harm. Complete buckets advance a cursor;
the bucket still filling is recomputed on every run so the pages see it grow.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from dashboard.models import ProbeResult, Resolution, Rollup, RollupCursor, Target
from dashboard.monitoring.stats import (
    DAY,
    HOUR,
    MINUTE,
    ROLLUP_FIELDS,
    RangeStats,
    cover,
    floor_time,
    range_stats,
    rolled_up_until,
    spans_filter,
)

# A result is recorded when its probe ends but filed under when it started: wait this long
# before calling a minute complete, so late results still land in it.
LATE_RESULT_GRACE = timedelta(seconds=150)
MAX_MINUTES_PER_RUN = 120
MAX_HOURS_PER_RUN = 48
MAX_DAYS_PER_RUN = 14
PRUNE_BATCH = 5000
PRUNE_MAX_BATCHES = 40
SPARKLINE_HOURS = 24

# What an upsert rewrites: every column but the key.
ROLLUP_UPDATE_FIELDS = [*ROLLUP_FIELDS[1:], "p50_ms", "p95_ms", "p99_ms"]
BUCKET_QUANTILES = (0.5, 0.95, 0.99)


class _Bucket(RangeStats):
    """Accumulates raw results, or finer rollups, into one rollup row."""

    def row(self, target_id: int, resolution: int, bucket: datetime) -> Rollup:
        return Rollup(
            target_id=target_id,
            resolution=resolution,
            bucket=bucket,
            count=self.count,
            ok_count=self.ok_count,
            latency_count=self.latency_count,
            latency_min=self.latency_min,
            latency_max=self.latency_max,
            latency_sum=self.latency_sum,
            histogram=self.histogram.encode(),
            phase_sums={phase: round(total, 3) for phase, total in self.phase_sums.items()},
            cold_count=self.cold_count,
            cold_latency_sum=self.cold_latency_sum,
            **dict(zip(("p50_ms", "p95_ms", "p99_ms"), self.histogram.percentiles(*BUCKET_QUANTILES), strict=True)),
        )


def _upsert(rows: list[Rollup]) -> None:
    if rows:
        Rollup.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["target", "resolution", "bucket"],
            update_fields=ROLLUP_UPDATE_FIELDS,
        )


def _cursor(resolution: int, start: Callable[[], datetime]) -> RollupCursor:
    """The resolution's cursor, created at `start()` the first time (a full scan: only ever once)."""
    cursor = RollupCursor.objects.select_for_update().filter(resolution=resolution).first()
    if cursor is None:
        cursor, _ = RollupCursor.objects.get_or_create(resolution=resolution, defaults={"done_until": start()})
    return cursor


def rollup_minutes(now: datetime) -> int:
    """Fold raw results of complete minutes into minute rollups; returns how many minutes were done."""
    settled = floor_time(now - LATE_RESULT_GRACE, MINUTE)
    with transaction.atomic():
        cursor = _cursor(Resolution.MINUTE, lambda: _oldest_result_minute(settled))
        start = cursor.done_until
        end = min(settled, start + MAX_MINUTES_PER_RUN * MINUTE)
        if end <= start:
            return 0
        buckets: dict[tuple[int, datetime], _Bucket] = defaultdict(_Bucket)
        results = ProbeResult.objects.filter(at__gte=start, at__lt=end).values_list(
            "target_id", "at", "ok", "latency_ms", "phases", "cold_start"
        )
        for target_id, at, ok, latency, phases, cold_start in results.iterator(chunk_size=5000):
            buckets[(target_id, floor_time(at, MINUTE))].add_result(ok, latency, phases, cold_start)
        _upsert([bucket.row(target_id, Resolution.MINUTE, minute) for (target_id, minute), bucket in buckets.items()])
        cursor.done_until = end
        cursor.save(update_fields=["done_until"])
    return int((end - start) / MINUTE)


def _oldest_result_minute(fallback: datetime) -> datetime:
    oldest = ProbeResult.objects.order_by("at").values_list("at", flat=True).first()
    return floor_time(oldest, MINUTE) if oldest else fallback


def _oldest_bucket(resolution: int) -> datetime | None:
    return Rollup.objects.filter(resolution=resolution).order_by("bucket").values_list("bucket", flat=True).first()


def rollup_coarser(resolution: int) -> int:
    """Recompute hour (or day) buckets from the finer rollups, up to and including the one still
    filling; the cursor moves only past complete buckets. Returns how many buckets were written."""
    step, finer, max_buckets = (HOUR, Resolution.MINUTE, MAX_HOURS_PER_RUN)
    if resolution == Resolution.DAY:
        step, finer, max_buckets = (DAY, Resolution.HOUR, MAX_DAYS_PER_RUN)
    with transaction.atomic():
        finer_done = RollupCursor.objects.filter(resolution=finer).values_list("done_until", flat=True).first()
        if finer_done is None:
            return 0
        cursor = _cursor(resolution, lambda: floor_time(_oldest_bucket(finer) or finer_done, step))
        start = cursor.done_until
        end = min(floor_time(finer_done, step) + step, start + max_buckets * step)
        if end <= start:
            return 0
        buckets: dict[tuple[int, datetime], _Bucket] = defaultdict(_Bucket)
        finer_rows = Rollup.objects.filter(resolution=finer, bucket__gte=start, bucket__lt=end).values_list(
            "bucket", *ROLLUP_FIELDS
        )
        for bucket, target_id, *values in finer_rows.iterator(chunk_size=5000):
            buckets[(target_id, floor_time(bucket, step))].add_values(*values)
        _upsert([bucket.row(target_id, resolution, moment) for (target_id, moment), bucket in buckets.items()])
        cursor.done_until = min(end, floor_time(finer_done, step))
        cursor.save(update_fields=["done_until"])
    return len(buckets)


def rollup_all(now: datetime) -> dict[str, int]:
    return {
        "minutes": rollup_minutes(now),
        "hours": rollup_coarser(Resolution.HOUR),
        "days": rollup_coarser(Resolution.DAY),
    }


def refresh_summaries(now: datetime, target_ids: list[int] | None = None) -> int:
    """Recompute what the overview shows of each target's history: uptime over 24 h, 7 d and
    30 d, p95 over 24 h and an hourly sparkline. Rollups cover history up to the minute cursor;
    the few minutes since come from raw results, so a new target shows figures at once.
    Returns how many targets were updated."""
    targets = Target.objects.all() if target_ids is None else Target.objects.filter(pk__in=target_ids)
    ids = list(targets.values_list("pk", flat=True))
    if not ids:
        return 0
    cursor = rolled_up_until()
    settled = min(now, cursor or now - 30 * DAY)
    tail = _recent_results(ids, settled, now)
    uptimes = {
        label: _uptimes(ids, now - span, settled, tail)
        for label, span in (("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY))
    }
    last_day = range_stats(ids, now - DAY, now)
    sparklines = _sparklines(ids, now, tail)
    updated = []
    for target in Target.objects.filter(pk__in=ids).only("pk"):
        target.uptime_24h = uptimes["24h"].get(target.pk)
        target.uptime_7d = uptimes["7d"].get(target.pk)
        target.uptime_30d = uptimes["30d"].get(target.pk)
        target.p95_24h_ms = last_day[target.pk].percentile(0.95)
        target.sparkline = sparklines.get(target.pk, [])
        target.summary_updated_at = now
        updated.append(target)
    # Stamped at the write, not the job's start: a live poll that already saw a later probe must still see this.
    written_at = timezone.now()
    for target in updated:
        target.changed_at = written_at
    Target.objects.bulk_update(
        updated,
        ["uptime_24h", "uptime_7d", "uptime_30d", "p95_24h_ms", "sparkline", "summary_updated_at", "changed_at"],
        batch_size=500,
    )
    return len(updated)


class _Recent:
    """A target's raw results not yet in the rollups."""

    def __init__(self) -> None:
        self.count = self.ok_count = 0
        self.hourly: dict[datetime, list[float]] = defaultdict(list)


def _recent_results(ids: list[int], start: datetime, end: datetime) -> dict[int, _Recent]:
    recent: dict[int, _Recent] = defaultdict(_Recent)
    rows = ProbeResult.objects.filter(target_id__in=ids, at__gte=start, at__lt=end).values_list(
        "target_id", "at", "ok", "latency_ms"
    )
    for target_id, at, ok, latency in rows.iterator(chunk_size=5000):
        entry = recent[target_id]
        entry.count += 1
        entry.ok_count += ok
        if latency is not None:
            entry.hourly[floor_time(at, HOUR)].append(latency)
    return recent


def _uptimes(ids: list[int], start: datetime, settled: datetime, tail: dict[int, _Recent]) -> dict[int, float]:
    # Summed in the database: only one row per target crosses the wire.
    probes = {target_id: [entry.count, entry.ok_count] for target_id, entry in tail.items()}
    condition = spans_filter(cover(start, settled))
    if condition:
        totals = (
            Rollup.objects.filter(condition, target_id__in=ids)
            .values("target_id")
            .annotate(probes=Sum("count"), ok=Sum("ok_count"))
        )
        for row in totals:
            entry = probes.setdefault(row["target_id"], [0, 0])
            entry[0] += row["probes"]
            entry[1] += row["ok"]
    return {target_id: ok / count for target_id, (count, ok) in probes.items() if count}


def _sparklines(ids: list[int], now: datetime, tail: dict[int, _Recent]) -> dict[int, list[float | None]]:
    """Average latency per hour over the last 24 hours, oldest first (None for an hour without data)."""
    first = floor_time(now, HOUR) - (SPARKLINE_HOURS - 1) * HOUR
    sums: dict[int, list[list[float]]] = {target_id: [[0.0, 0] for _ in range(SPARKLINE_HOURS)] for target_id in ids}
    rows = Rollup.objects.filter(
        target_id__in=ids, resolution=Resolution.HOUR, bucket__gte=first, bucket__lt=first + SPARKLINE_HOURS * HOUR
    ).values_list("target_id", "bucket", "latency_sum", "latency_count")
    for target_id, bucket, latency_sum, latency_count in rows.iterator(chunk_size=5000):
        point = sums[target_id][int((bucket - first) / HOUR)]
        point[0] += latency_sum
        point[1] += latency_count
    for target_id, entry in tail.items():
        for hour, latencies in entry.hourly.items():
            if hour >= first:
                point = sums[target_id][int((hour - first) / HOUR)]
                point[0] += sum(latencies)
                point[1] += len(latencies)
    return {
        target_id: [round(total / count, 2) if count else None for total, count in points]
        for target_id, points in sums.items()
    }


def prune(now: datetime) -> dict[str, int]:
    """Delete raw results and rollups past their retention, in batches; returns rows deleted per kind."""
    deleted = {"raw": _prune_table(ProbeResult._meta.db_table, "at", now - settings.PROBE_RAW_RETENTION)}
    for resolution, retention in settings.ROLLUP_RETENTION.items():
        deleted[Resolution(resolution).label] = _prune_table(
            Rollup._meta.db_table, "bucket", now - retention, f"AND resolution = {int(resolution)}"
        )
    return deleted


def _prune_table(table: str, column: str, before: datetime, extra: str = "") -> int:
    total = 0
    sql = f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < %s {extra} LIMIT {PRUNE_BATCH})"
    for _ in range(PRUNE_MAX_BATCHES):
        with connection.cursor() as cursor:
            cursor.execute(sql, [before])
            total += cursor.rowcount
            if cursor.rowcount < PRUNE_BATCH:
                break
    return total
