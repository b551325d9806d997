"""Background jobs over probe history: fold raw results into minute, hour and day rollups,
refresh each target's overview summary, and prune what is past its retention.

Every job works in bounded batches and is idempotent, so a job that dies or runs twice does no
harm. Complete buckets advance a cursor. The hour and day buckets still filling grow on every run
so the pages see them grow: by the minutes that run folded, added to the stored rows in the same
transaction as the minute cursor's move (rollup_all), so a stored hour or day bucket past its
cursor always holds exactly the results below the minute cursor. After a gap (a cursor behind by
more than the bucket filling) a bucket is recomputed whole from the finer rollups instead.

The buckets still filling (one hour and one day row per target, at their cursors) live in FillingRollup,
rewritten in place by every run; a bucket goes into Rollup once, when its cursor passes it, so Rollup's
rows are written once and never rewritten (issue #18: the 60 and 1,440 versions of each hour and day row
left dead rows and index entries across the big table). Minute buckets go into Rollup as they settle.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from dashboard.models import FillingRollup, ProbeResult, Resolution, Rollup, RollupCursor, Target
from dashboard.models.monitoring import MicrosecondsField, encode_phase_sums
from dashboard.monitoring.histogram import RECORD, Histogram
from dashboard.monitoring.overview import summary_shown
from dashboard.monitoring.stats import (
    ALL_ROLLUPS_SQL,
    DAY,
    HOUR,
    MINUTE,
    ROLLUP_COLUMNS,
    ROLLUP_FIELDS,
    RangeStats,
    all_rollups,
    cover,
    floor_time,
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
UPTIME_WINDOWS = (("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY))

BUCKET_QUANTILES = (0.5, 0.95, 0.99)


class _Bucket(RangeStats):
    """Accumulates raw results, or finer rollups, into one rollup row."""

    def row(self, target_id: int, resolution: int, bucket: datetime) -> tuple:
        """The rollup row, in ROLLUP_COLUMNS order. Phase sums and the latency's extremes are kept to the
        microsecond, as the raw results have phases."""
        phases = {phase: round(total, 3) for phase, total in self.phase_sums.items()}
        return (
            target_id,
            resolution,
            bucket,
            self.count,
            self.ok_count,
            self.latency_count,
            None if self.latency_min is None else MicrosecondsField.to_db(self.latency_min),
            None if self.latency_max is None else MicrosecondsField.to_db(self.latency_max),
            self.latency_sum,
            self.histogram.encode(),
            encode_phase_sums(phases),
            self.cold_count,
            self.cold_latency_sum,
            *self.histogram.percentile_indexes(*BUCKET_QUANTILES),
        )


_COLUMN_TYPES = {
    "target_id": "bigint",
    "bucket": "timestamptz",
    "latency_sum": "float8",
    "cold_latency_sum": "float8",
    "histogram": "bytea",
    "phase_sums": "text",
    "p50_index": "smallint",
    "p95_index": "smallint",
    "p99_index": "smallint",
}
_COLUMNS = ", ".join(ROLLUP_COLUMNS)
_ROLLUP, _FILLING = Rollup._meta.db_table, FillingRollup._meta.db_table


def _upsert_sql(table: str, key: tuple[str, ...]) -> str:
    """Insert rows given as column arrays, or rewrite the row of the same key: one statement (Django's
    bulk_create with update_conflicts spent 2 s of Python on 4,000 rows)."""
    values = ", ".join("v." + name for name in ROLLUP_COLUMNS)
    arrays = ", ".join(f"%s::{_COLUMN_TYPES.get(name, 'int')}[]" for name in ROLLUP_COLUMNS)
    rewritten = ", ".join(f"{name} = excluded.{name}" for name in ROLLUP_COLUMNS if name not in key)
    return f"""
    INSERT INTO {table} ({_COLUMNS}) SELECT {values} FROM unnest({arrays}) AS v({_COLUMNS})
    ON CONFLICT ({", ".join(key)}) DO UPDATE SET {rewritten}
    """


# A settled bucket is written once; the key is there for a bucket recomputed after a gap.
_UPSERT_SETTLED = _upsert_sql(_ROLLUP, ("target_id", "resolution", "bucket"))
# One row per target and resolution: the next bucket takes the place of the one that settled.
_UPSERT_FILLING = _upsert_sql(_FILLING, ("target_id", "resolution"))
# The filling rows the cursor has passed and this run did not write into Rollup itself (targets without
# results since): moved as they are. Those it did write (with the minutes just folded) stay as written.
_SETTLE_SQL = f"""
WITH settled AS (DELETE FROM {_FILLING} WHERE resolution = %s AND bucket < %s RETURNING {_COLUMNS})
INSERT INTO {_ROLLUP} ({_COLUMNS}) SELECT {_COLUMNS} FROM settled ON CONFLICT DO NOTHING
"""


def _upsert(sql: str, rows: list[tuple]) -> None:
    for start in range(0, len(rows), 5000):
        batch = rows[start : start + 5000]
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(column) for column in zip(*batch, strict=True)])


def _store(resolution: int, buckets: dict[tuple[int, datetime], _Bucket], done_until: datetime, moved: bool) -> None:
    """Write hour or day buckets: those before the cursor's new place `done_until` into Rollup, the one at
    it (still filling) into FillingRollup; with `moved` (the cursor passed buckets), the filling rows it
    passed are then moved into Rollup."""
    settled, filling = [], []
    for (target_id, moment), bucket in buckets.items():
        (settled if moment < done_until else filling).append(bucket.row(target_id, resolution, moment))
    _upsert(_UPSERT_SETTLED, settled)
    _upsert(_UPSERT_FILLING, filling)
    if moved:
        with connection.cursor() as cursor:
            cursor.execute(_SETTLE_SQL, [resolution, done_until])


def _cursor(resolution: int, start: Callable[[], datetime]) -> RollupCursor:
    """The resolution's cursor, created at `start()` the first time (a full scan: only ever once)."""
    cursor = RollupCursor.objects.select_for_update().filter(resolution=resolution).first()
    if cursor is None:
        cursor, _ = RollupCursor.objects.get_or_create(resolution=resolution, defaults={"done_until": start()})
    return cursor


class _Folded:
    """The minutes one run folded: [start, end) and their buckets by (target, minute)."""

    def __init__(self, start: datetime, end: datetime, buckets: dict[tuple[int, datetime], _Bucket]) -> None:
        self.start, self.end, self.buckets = start, end, buckets


def rollup_minutes(now: datetime) -> int:
    """Fold raw results of complete minutes into minute rollups; returns how many minutes were done."""
    return _minutes(_fold_minutes(now))


def _minutes(folded: _Folded) -> int:
    return int((folded.end - folded.start) / MINUTE)


def _fold_minutes(now: datetime) -> _Folded:
    settled = floor_time(now - LATE_RESULT_GRACE, MINUTE)
    with transaction.atomic():
        cursor = _cursor(Resolution.MINUTE, lambda: _oldest_result_minute(settled))
        start = cursor.done_until
        end = min(settled, start + MAX_MINUTES_PER_RUN * MINUTE)
        if end <= start:
            return _Folded(start, start, {})
        buckets: dict[tuple[int, datetime], _Bucket] = defaultdict(_Bucket)
        ids = list(Target.objects.values_list("pk", flat=True))
        columns = "r.at, r.ok, r.latency_ms, r.phases, r.cold_start"
        for target_id, at, ok, latency, phases, cold_start in _raw_results(columns, ids, start, end):
            if isinstance(phases, str):
                phases = json.loads(phases)
            buckets[(target_id, floor_time(at, MINUTE))].add_result(ok, latency, phases, cold_start)
        rows = [bucket.row(target_id, Resolution.MINUTE, minute) for (target_id, minute), bucket in buckets.items()]
        _upsert(_UPSERT_SETTLED, rows)
        cursor.done_until = end
        cursor.save(update_fields=["done_until"])
    return _Folded(start, end, buckets)


def _raw_results(columns: str, ids: list[int], start: datetime, end: datetime) -> list[tuple]:
    """(target id, *columns) of the targets' raw results in [start, end), target by target on the (target, at)
    index: the BRIN index on `at` alone turns lossy once pruned pages are reused (it read 1 GB for minutes)."""
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT t.id, {columns} FROM unnest(%s::bigint[]) AS t(id)
            JOIN LATERAL (
                SELECT * FROM {ProbeResult._meta.db_table} r WHERE r.target_id = t.id AND r.at >= %s AND r.at < %s
                OFFSET 0
            ) r ON true
            """,
            [ids, start, end],
        )
        return cursor.fetchall()


def _oldest_result_minute(fallback: datetime) -> datetime:
    oldest = ProbeResult.objects.order_by("at").values_list("at", flat=True).first()
    return floor_time(oldest, MINUTE) if oldest else fallback


def _oldest_bucket(resolution: int) -> datetime | None:
    found = [
        model.objects.filter(resolution=resolution).order_by("bucket").values_list("bucket", flat=True).first()
        for model in (Rollup, FillingRollup)
    ]
    return min((moment for moment in found if moment is not None), default=None)


def rollup_coarser(resolution: int, folded: _Folded | None = None) -> int:
    """Bring hour (or day) buckets up to the minute cursor, up to and including the one still filling;
    the cursor moves only past complete buckets. With `folded`, the minutes this run just folded, and
    the cursor at the bucket they start in, those minutes are added to the stored buckets (reading one
    row per target instead of the filling bucket's every finer row); otherwise the buckets are recomputed
    from the finer rollups. Returns how many buckets were written."""
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
        if folded is not None and start == floor_time(folded.start, step) and folded.end <= end:
            buckets = _grown(resolution, step, folded)
        else:
            buckets = defaultdict(_Bucket)
            # The finer bucket still filling (the day's hour) too: it holds the results below the minute cursor.
            finer_rows = all_rollups("bucket", *ROLLUP_FIELDS, resolution=finer, bucket__gte=start, bucket__lt=end)
            for bucket, target_id, *values in finer_rows.iterator(chunk_size=5000):
                buckets[(target_id, floor_time(bucket, step))].add_values(*values)
        done_until = min(end, floor_time(finer_done, step))
        _store(resolution, buckets, done_until, moved=done_until > start)
        cursor.done_until = done_until
        cursor.save(update_fields=["done_until"])
    return len(buckets)


def _grown(resolution: int, step: timedelta, folded: _Folded) -> dict[tuple[int, datetime], _Bucket]:
    """The stored buckets of `resolution` that the folded minutes fall in, with those minutes added. Only the
    bucket at the cursor can be stored yet, and it is still filling."""
    buckets: dict[tuple[int, datetime], _Bucket] = defaultdict(_Bucket)
    for (target_id, minute), minute_bucket in folded.buckets.items():
        buckets[(target_id, floor_time(minute, step))].absorb(minute_bucket)
    if buckets:
        stored = FillingRollup.objects.filter(
            resolution=resolution,
            bucket__in={moment for _, moment in buckets},
            target_id__in={target_id for target_id, _ in buckets},
        ).values_list("target_id", "bucket", *ROLLUP_FIELDS[1:])
        for target_id, moment, *values in stored.iterator(chunk_size=5000):
            if (target_id, moment) in buckets:
                buckets[(target_id, moment)].add_values(*values)
    return buckets


def rollup_all(now: datetime) -> dict[str, int]:
    # One transaction: the hour and day buckets grow by exactly the minutes whose cursor move commits.
    with transaction.atomic():
        folded = _fold_minutes(now)
        return {
            "minutes": _minutes(folded),
            "hours": rollup_coarser(Resolution.HOUR, folded),
            "days": rollup_coarser(Resolution.DAY, folded),
        }


def refresh_summaries(now: datetime, target_ids: list[int] | None = None) -> int:
    """Recompute what the overview shows of each target's history: uptime over 24 h, 7 d and
    30 d, p95 over 24 h and an hourly sparkline. Rollups cover history up to the minute cursor;
    the few minutes since come from raw results, so a new target shows figures at once.

    Each window is cut into the rollups that no longer change (hours and days before their cursors:
    summed once per target and hour, and cached) and the few that do (its edge minutes, the hour still
    filling); one query reads the latter for every target and one UPDATE writes every target. A target
    is marked changed (changed_at, what the overview's live poll reads) only when what its row shows
    changed (overview.summary_shown). Returns how many targets were updated."""
    targets = Target.objects.all() if target_ids is None else Target.objects.filter(pk__in=target_ids)
    previous = {
        pk: (tuple(uptimes), p95, sparkline or [])
        for pk, *uptimes, p95, sparkline in targets.values_list(
            "pk", "uptime_24h", "uptime_7d", "uptime_30d", "p95_24h_ms", "sparkline"
        )
    }
    ids = list(previous)
    if not ids:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        # Its queries read a few rows per target; JIT would compile for seconds what runs in milliseconds.
        cursor.execute("SET LOCAL jit = off")
        return _refresh(now, ids, previous)


def _refresh(now: datetime, ids: list[int], previous: dict[int, tuple]) -> int:
    window = _Windows(now, ids)
    history = {pk: _Summary(window.spark_first) for pk in ids}
    window.add_settled(history)
    window.add_edges(history)
    window.add_live(history)
    for pk, entry in _recent_results(ids, window.settled, now).items():
        history[pk].add_recent(entry, window)
    rows = []
    for pk, summary in history.items():
        uptimes, p95, sparkline = summary.figures()
        changed = summary_shown(uptimes, p95, sparkline) != summary_shown(*previous[pk])
        rows.append((pk, *uptimes, p95, ",".join("" if v is None else repr(v) for v in sparkline), changed))
    # Stamped at the write, not the job's start: a live poll that already saw a later probe must still see this.
    _write_summaries(rows, now, timezone.now())
    return len(rows)


def _write_summaries(rows: list[tuple], now: datetime, written_at: datetime) -> None:
    columns = [list(column) for column in zip(*rows, strict=True)]
    table = Target._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} t SET uptime_24h = v.u24, uptime_7d = v.u7, uptime_30d = v.u30, p95_24h_ms = v.p95,
                sparkline = string_to_array(v.spark, ',', '')::float8[], summary_updated_at = %s,
                changed_at = CASE WHEN v.changed THEN %s ELSE t.changed_at END
            FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::text[],
                %s::bool[]) AS v(id, u24, u7, u30, p95, spark, changed)
            WHERE t.id = v.id
            """,
            [now, written_at, *columns],
        )


Span = tuple[int, datetime, datetime]


def _where(spans: list[Span]) -> tuple[str, list]:
    sql = " OR ".join("(r.resolution = %s AND r.bucket >= %s AND r.bucket < %s)" for _ in spans)
    return f"({sql})", [value for span in spans for value in span]


def _source(live: bool) -> str:
    """Where rollups in some spans are read: settled spans (whole buckets before their cursors) are all in
    Rollup; `live` spans may hold the buckets still filling, so both tables are read."""
    return ALL_ROLLUPS_SQL if live else _ROLLUP


def _per_target(
    columns: str, spans: list[Span], ids: list[int], tail: str = "", params: list | None = None, *, live: bool = False
) -> list:
    """`SELECT t.id, {columns}` over each target's rollups in `spans`, read target by target through the
    (target, resolution, bucket) index: a LATERAL join kept from being flattened (OFFSET 0), because with
    a list of ids and a few bucket ranges the planner reckons a scan of the whole table cheaper (it read
    7 GB for 2,000 targets' few hundred rows each)."""
    if not spans or not ids:
        return []
    where, values = _where(spans)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT t.id, {columns} FROM unnest(%s::bigint[]) AS t(id)
            JOIN LATERAL (
                SELECT * FROM {_source(live)} r WHERE r.target_id = t.id AND {where} OFFSET 0
            ) r ON true
            {tail}
            """,
            [*(params or []), ids, *values],
        )
        return cursor.fetchall()


def _merged_histograms(
    spans: list[Span], ids: list[int], *, live: bool = False
) -> list[tuple[int, list[int], list[int]]]:
    """Per target, the histogram of its rollups in `spans` merged by the database: (id, indexes, counts).
    One row per target crosses the wire instead of one per rollup, each with its array to parse."""
    if not spans or not ids:
        return []
    where, values = _where(spans)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT id, array_agg(index ORDER BY index), array_agg(count ORDER BY index) FROM (
                SELECT t.id, get_byte(r.histogram, i) AS index,
                    sum(get_byte(r.histogram, i + 1) << 8 | get_byte(r.histogram, i + 2))::bigint AS count
                FROM unnest(%s::bigint[]) AS t(id)
                JOIN LATERAL (
                    SELECT histogram FROM {_source(live)} r WHERE r.target_id = t.id AND {where} OFFSET 0
                ) r ON true
                CROSS JOIN LATERAL generate_series(0, length(r.histogram) - {RECORD}, {RECORD}) i
                GROUP BY 1, 2
            ) merged GROUP BY 1
            """,
            [ids, *values],
        )
        return cursor.fetchall()


def _spans(start: datetime, settled: datetime, filling: datetime | None) -> list[Span]:
    """cover(start, settled), its minutes of the filling hour read as that hour's one row."""
    spans = cover(start, settled)
    if filling is None or start >= filling:
        return spans
    kept = [span for span in spans if not (span[0] == Resolution.MINUTE and span[1] >= filling)]
    return [*kept, (Resolution.HOUR, filling, filling + HOUR)] if len(kept) < len(spans) else spans


class _Windows:
    """The rollup spans of the summary's windows at `now`, each cut into settled and live spans."""

    def __init__(self, now: datetime, ids: list[int]) -> None:
        # Always by id, even for every target: the (target, resolution, bucket) index finds a few rows per
        # target, where a range of buckets alone reads the BRIN index's every block of mixed ages.
        self.ids = ids
        cursors = dict(RollupCursor.objects.values_list("resolution", "done_until"))
        minutes_done = cursors.get(Resolution.MINUTE)
        self.settled = min(now, minutes_done or now - 30 * DAY)
        hours_done, days_done = cursors.get(Resolution.HOUR), cursors.get(Resolution.DAY)
        # The hour holding the minute cursor, when its hour rollup is current (rollup_all grows it right
        # after the minutes): that one row then stands for the window's minutes [hour, settled).
        hour = floor_time(self.settled, HOUR)
        filling = hour if minutes_done and hours_done == hour and hour < self.settled else None
        oldest_minute = now - settings.ROLLUP_RETENTION[Resolution.MINUTE]

        def is_settled(span: Span) -> bool:
            resolution, _, hi = span
            done = {Resolution.HOUR: hours_done, Resolution.DAY: days_done}.get(resolution)
            return done is not None and hi <= done

        self.settled_spans: dict[str, list[Span]] = {}
        self.live_spans: dict[str, list[Span]] = {}
        self.edges: dict[str, Span] = {}
        for label, length in UPTIME_WINDOWS:
            start = floor_time(now - length, MINUTE)
            spans = _spans(now - length, self.settled, filling)
            # Minutes past their retention are pruned: no rows to look for.
            spans = [span for span in spans if span[0] != Resolution.MINUTE or span[2] > oldest_minute]
            # The window's oldest minutes, up to the hour: they shrink by a minute a minute (_Edges).
            edge = next((span for span in spans if span[0] == Resolution.MINUTE and span[1] == start), None)
            if edge is not None and edge[2] == floor_time(start, HOUR) + HOUR and edge[2] <= self.settled:
                self.edges[label] = edge
                spans.remove(edge)
            self.settled_spans[label] = [span for span in spans if is_settled(span)]
            self.live_spans[label] = [span for span in spans if not is_settled(span)]
        self.spark_first = floor_time(now, HOUR) - (SPARKLINE_HOURS - 1) * HOUR
        spark_end = self.spark_first + SPARKLINE_HOURS * HOUR
        split = min(max(self.spark_first, hours_done or self.spark_first), spark_end)
        self.spark_settled = [(Resolution.HOUR, self.spark_first, split)] if split > self.spark_first else []
        self.spark_live = [(Resolution.HOUR, split, spark_end)] if split < spark_end else []
        self.day_start = now - DAY

    @staticmethod
    def hours(spans: list[Span], ids: list[int], *, live: bool = False) -> list[tuple[int, int, float, int]]:
        """(target, hour as epoch seconds, latency sum, latency count) of the hour rollups in `spans`."""
        columns = "extract(epoch FROM r.bucket)::bigint, r.latency_sum, r.latency_count"
        return _per_target(columns, spans, ids, live=live)

    @staticmethod
    def sums(
        windows: dict[str, list[Span]], ids: list[int], *, live: bool = False
    ) -> dict[int, dict[str, tuple[int, int]]]:
        """(probes, ok) of each window's spans per target: one aggregate, each window FILTERed out of it."""
        labels = [label for label, spans in windows.items() if spans]
        if not labels:
            return {}
        columns, params = [], []
        for label in labels:
            condition, values = _where(windows[label])
            columns += [f"sum(r.count) FILTER (WHERE {condition})", f"sum(r.ok_count) FILTER (WHERE {condition})"]
            params += values * 2
        union = [span for label in labels for span in windows[label]]
        rows = _per_target(", ".join(columns), union, ids, "GROUP BY t.id", params, live=live)
        return {
            row[0]: {label: (row[1 + 2 * n] or 0, row[2 + 2 * n] or 0) for n, label in enumerate(labels)}
            for row in rows
        }

    def add_settled(self, history: dict[int, _Summary]) -> None:
        """The settled rollups of every window, from the cache when this hour's sums were already made."""
        spans = {**self.settled_spans, "spark": self.spark_settled}
        if not any(spans.values()):
            return
        spans_text = ";".join(
            f"{label}=" + ",".join(f"{r}:{int(lo.timestamp())}-{int(hi.timestamp())}" for r, lo, hi in found)
            for label, found in spans.items()
        )
        key = "summary-settled:v2:" + hashlib.sha1(spans_text.encode()).hexdigest()[:16]
        keys = {f"{key}:{pk}": pk for pk in history}
        found = cache.get_many(list(keys))
        missing = [pk for name, pk in keys.items() if name not in found]
        if missing:
            made = self._settled_sums(missing)
            wanted = set(missing)
            additions = {name: made.get(pk, _EMPTY_SETTLED) for name, pk in keys.items() if pk in wanted}
            # The settled spans move on each hour: a key serves that hour's minute jobs.
            cache.set_many(additions, timeout=2 * 3600)
            found.update(additions)
        for name, value in found.items():
            history[keys[name]].add_settled(value)

    def _settled_sums(self, ids: list[int]) -> dict[int, tuple]:
        """Per target: (count, ok) per window, the 24 h histogram's counts, {hour: (latency sum, count)}."""
        sums: dict[int, tuple] = {pk: (counts, {}, {}) for pk, counts in self.sums(self.settled_spans, ids).items()}
        for pk, indexes, counts in _merged_histograms(self.settled_spans.get("24h", []), ids):
            sums.setdefault(pk, ({}, {}, {}))[1].update(zip(indexes, counts, strict=True))
        if self.spark_settled:
            for pk, hour, latency_sum, latency_count in self.hours(self.spark_settled, ids):
                # A settled hour is complete: its point is final.
                point = round(latency_sum / latency_count, 2) if latency_count else None
                sums.setdefault(pk, ({}, {}, {}))[2][hour] = point
        return sums

    def add_edges(self, history: dict[int, _Summary]) -> None:
        """Each window's oldest minutes (up to its first whole hour): cached per target with the minute they
        start at, so that a run subtracts only the minutes that left the window since the last run (one
        rollup per target) instead of reading them all again; read whole once an hour."""
        for label, (_, lo, hi) in self.edges.items():
            keys = {f"summary-edge:{label}:{int(hi.timestamp())}:{pk}": pk for pk in self.ids}
            cached = cache.get_many(list(keys))
            start = int(lo.timestamp())
            fresh: dict[int, _Edge] = {}
            behind: dict[int, list[int]] = defaultdict(list)  # cached start -> targets
            for name, pk in keys.items():
                found = cached.get(name)
                if found is not None and found[0] <= start:
                    behind[found[0]].append(pk)
                else:
                    fresh[pk] = _Edge()
            if fresh:
                self._edge_rows(label, (Resolution.MINUTE, lo, hi), list(fresh), fresh, sign=1)
            edges = dict(fresh)
            for was, pks in behind.items():
                for pk in pks:
                    edges[pk] = _Edge.decode(cached[f"summary-edge:{label}:{int(hi.timestamp())}:{pk}"])
                if was < start:
                    left = datetime.fromtimestamp(was, tz=lo.tzinfo)
                    self._edge_rows(label, (Resolution.MINUTE, left, lo), pks, edges, sign=-1)
            for pk, edge in edges.items():
                history[pk].add_edge(label, edge)
            cache.set_many({name: edges[pk].encode(start) for name, pk in keys.items()}, timeout=2 * 3600)

    def _edge_rows(self, label: str, span: Span, ids: list[int], edges: dict[int, _Edge], sign: int) -> None:
        for pk, counts in self.sums({label: [span]}, ids).items():
            count, ok = counts[label]
            edges[pk].count += sign * count
            edges[pk].ok += sign * ok
        if label == "24h":
            for pk, indexes, counts in _merged_histograms([span], ids):
                histogram = edges[pk].histogram
                for index, count in zip(indexes, counts, strict=True):
                    histogram[index] = histogram.get(index, 0) + sign * count

    def add_live(self, history: dict[int, _Summary]) -> None:
        """The rollups that still change: the windows' edge minutes, the hour (and day) still filling (from
        both tables: the job may move the hour meanwhile). Their probe counts summed in the database; the
        rows themselves only for the 24 h p95 and the sparkline."""
        for pk, counts in self.sums(self.live_spans, self.ids, live=True).items():
            probes = history[pk].probes
            for label, (count, ok) in counts.items():
                probes[label][0] += count
                probes[label][1] += ok
        for pk, indexes, counts in _merged_histograms(self.live_spans["24h"], self.ids, live=True):
            merged = history[pk].histogram.counts
            for index, count in zip(indexes, counts, strict=True):
                merged[index] = merged.get(index, 0) + count
        if self.spark_live:
            for pk, hour, latency_sum, latency_count in self.hours(self.spark_live, self.ids, live=True):
                history[pk].add_hour(hour, latency_sum, latency_count)


_EMPTY_SETTLED: tuple = ({}, {}, {})


class _Edge:
    """Probes, successes and (24 h only) histogram counts of a window's oldest minutes, for one target."""

    __slots__ = ("count", "ok", "histogram")

    def __init__(self, count: int = 0, ok: int = 0, histogram: dict[int, int] | None = None) -> None:
        self.count, self.ok, self.histogram = count, ok, histogram or {}

    def encode(self, start: int) -> tuple:
        return (start, self.count, self.ok, tuple(i for pair in self.histogram.items() if pair[1] > 0 for i in pair))

    @classmethod
    def decode(cls, value: tuple) -> _Edge:
        _, count, ok, pairs = value
        return cls(count, ok, dict(zip(pairs[::2], pairs[1::2], strict=True)))


class _Summary:
    """One target's summary figures as they are summed up."""

    __slots__ = ("first", "probes", "histogram", "hours", "points")

    def __init__(self, first: datetime) -> None:
        self.first = int(first.timestamp())  # the sparkline's first hour
        self.probes = {label: [0, 0] for label, _ in UPTIME_WINDOWS}
        self.histogram = Histogram()
        self.hours: dict[int, list[float]] = {}  # latency sum and count of the hours still filling
        self.points: dict[int, float | None] = {}  # the settled hours' points

    def add_settled(self, value: tuple) -> None:
        counts, histogram, hours = value
        for label, (count, ok) in counts.items():
            self.probes[label][0] += count
            self.probes[label][1] += ok
        merged = self.histogram.counts
        for index, count in histogram.items():
            merged[index] = merged.get(index, 0) + count
        self.points = hours

    def add_edge(self, label: str, edge: _Edge) -> None:
        self.probes[label][0] += edge.count
        self.probes[label][1] += edge.ok
        if label == "24h":
            merged = self.histogram.counts
            for index, count in edge.histogram.items():
                if count > 0:
                    merged[index] = merged.get(index, 0) + count

    def add_hour(self, hour: int, latency_sum: float, latency_count: int) -> None:
        point = self.hours.setdefault(hour, [0.0, 0])
        point[0] += latency_sum
        point[1] += latency_count

    def add_recent(self, entry: _Recent, window: _Windows) -> None:
        for label, _ in UPTIME_WINDOWS:
            self.probes[label][0] += entry.count
            self.probes[label][1] += entry.ok_count
        for hour, latencies in entry.hourly.items():
            if hour >= self.first:
                self.add_hour(hour, sum(latencies), len(latencies))
        for latency, at in entry.latencies:
            if at >= window.day_start:
                self.histogram.add(latency)

    def figures(self) -> tuple[tuple[float | None, ...], float | None, list[float | None]]:
        uptimes = tuple(ok / count if count else None for count, ok in self.probes.values())
        return uptimes, self.histogram.percentile(0.95), self.sparkline()

    def sparkline(self) -> list[float | None]:
        """Average latency per hour over the last 24 hours, oldest first (None for an hour without data)."""
        points = []
        for hour in range(self.first, self.first + SPARKLINE_HOURS * 3600, 3600):
            if hour in self.points:
                points.append(self.points[hour])
                continue
            total, count = self.hours.get(hour, (0.0, 0))
            points.append(round(total / count, 2) if count else None)
        return points


class _Recent:
    """A target's raw results not yet in the rollups."""

    def __init__(self) -> None:
        self.count = self.ok_count = 0
        self.hourly: dict[int, list[float]] = defaultdict(list)  # by hour, as epoch seconds
        self.latencies: list[tuple[float, datetime]] = []


def _recent_results(ids: list[int], start: datetime, end: datetime) -> dict[int, _Recent]:
    recent: dict[int, _Recent] = defaultdict(_Recent)
    for target_id, at, ok, latency in _raw_results("r.at, r.ok, r.latency_ms", ids, start, end):
        entry = recent[target_id]
        entry.count += 1
        entry.ok_count += ok
        if latency is not None:
            epoch = int(at.timestamp())
            entry.hourly[epoch - epoch % 3600].append(latency)
            entry.latencies.append((latency, at))
    return recent


def prune(now: datetime) -> dict[str, int]:
    """Delete raw results and rollups past their retention, in batches; returns rows deleted per kind. The
    rollups still filling are current by definition: never past their retention."""
    deleted = {"raw": _prune_table(ProbeResult._meta.db_table, "id", "at", now - settings.PROBE_RAW_RETENTION)}
    for resolution, retention in settings.ROLLUP_RETENTION.items():
        # Rollup has no id: a batch is named by its rows' physical places (a TID scan), within the statement.
        deleted[Resolution(resolution).label] = _prune_table(
            _ROLLUP, "ctid", "bucket", now - retention, f"AND resolution = {int(resolution)}"
        )
    return deleted


def _prune_table(table: str, key: str, column: str, before: datetime, extra: str = "") -> int:
    total = 0
    sql = (
        f"DELETE FROM {table} WHERE {key} = ANY(ARRAY("
        f"SELECT {key} FROM {table} WHERE {column} < %s {extra} LIMIT {PRUNE_BATCH}))"
    )
    for _ in range(PRUNE_MAX_BATCHES):
        with connection.cursor() as cursor:
            cursor.execute(sql, [before])
            total += cursor.rowcount
            if cursor.rowcount < PRUNE_BATCH:
                break
    return total
