"""What the health pages read: the overview's targets and open incidents, the runbook's step events in
a range, a target's chart buckets, its cold/warm percentiles (a SQL aggregate) and its pages of raw
results and incidents. Everything is bounded: the overview reads one row per target (the summary the
rollup job keeps), a chart reads one rollup per bucket of the range's resolution.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Aggregate, BigIntegerField, CharField, Count, F, FloatField, Func, Q
from django.db.models.functions import Coalesce

from dashboard.models import Attempt, Environment, Incident, ProbeResult, Rollup, Target, TargetStatus
from dashboard.models.monitoring import decode_phase_sums
from dashboard.monitoring.charts import Bucket, RangeSpec, chart_columns
from dashboard.monitoring.histogram import MAX_INDEX, index_value
from dashboard.monitoring.stats import ALL_ROLLUPS_SQL, READ_CURSOR, ROLLUP_FIELDS, floor_time, rolled_up_until

# Raw results not yet folded into minute rollups are read for the chart's newest buckets, but never
# more than this far back: a stalled rollup job shows as a gap, not as a scan of the raw table.
FRESH_WINDOW = timedelta(minutes=15)
COLD_WARM_WINDOW = timedelta(hours=48)
STEP_EVENTS_LIMIT = 200
STATUS_ORDER = {TargetStatus.DOWN: 0, TargetStatus.UNKNOWN: 1, TargetStatus.UP: 2, TargetStatus.PAUSED: 3}

# --- the live polls' `since`: epoch microseconds, in SQL and in Python alike -----------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(moment: datetime | None) -> int:
    """A timestamp as integer epoch microseconds: exact, unlike a float, and safe in a URL."""
    if moment is None:
        return 0
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


_MAX_MICROS = micros(datetime(9999, 1, 1, tzinfo=UTC))


def from_micros(value: str | int | None) -> datetime:
    """The inverse of micros(); a missing or malformed value means "the beginning of time"."""
    try:
        number = int(value or 0)
    except ValueError:
        number = 0
    return _EPOCH + timedelta(microseconds=min(max(0, number), _MAX_MICROS))


# --- the overview -------------------------------------------------------------------------------------

# The overview reads plain values, not model instances: at 1,000 rows, building instances and parsing
# timestamps and float arrays cost more than the query. changed_at comes as epoch microseconds (the
# live poll's `since`, as micros() computes it), the sparkline as PostgreSQL's text of its numbers.
# A target's live state as the probes and the summary job keep it: what the overview and /metrics read.
LIVE_STATE_FIELDS = ("paused", "status", "last_latency_ms", "uptime_24h", "uptime_7d", "uptime_30d", "p95_24h_ms")
OVERVIEW_VALUES = ("id", "kind", "name", "label", *LIVE_STATE_FIELDS)
_CHANGED_MICROS = Func(
    F("changed_at"), template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint", output_field=BigIntegerField()
)
_SPARK_TEXT = Func(F("sparkline"), template="array_to_string(%(expressions)s, ',', '')", output_field=CharField())


def _overview_values(queryset) -> list[dict]:
    return list(queryset.values(*OVERVIEW_VALUES, changed=_CHANGED_MICROS, spark=_SPARK_TEXT).order_by())


def overview_targets(environment: Environment) -> list[dict]:
    """The environment's targets, with only what the overview shows: one query, no history."""
    return _overview_values(Target.objects.filter(environment=environment))


def changed_targets(environment: Environment, since: datetime) -> list[dict]:
    """Targets changed after `since`: one query on the (environment, changed_at) index."""
    return _overview_values(Target.objects.filter(environment=environment, changed_at__gt=since))


def open_incidents(environment: Environment) -> dict[int, Incident]:
    """The open incident of each target that has one (at most one per target, by constraint)."""
    incidents = (
        Incident.objects.filter(target__environment=environment, closed_at=None)
        .select_related("target")
        .only("id", "target_id", "opened_at", "cause", "failure_count", "target__name", "target__label")
    )
    return {incident.target_id: incident for incident in incidents}


def shown_status(target: dict) -> str:
    return TargetStatus.PAUSED if target["paused"] else target["status"]


def status_counts(targets: list[dict]) -> dict[str, int]:
    """Targets per shown status, from rows already read."""
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for target in targets:
        counts[shown_status(target)] += 1
    return counts


def status_counts_query(environment: Environment) -> dict[str, int]:
    """Targets per shown status, counted by the database (the live poll reads changed rows only)."""
    counts = dict.fromkeys(STATUS_ORDER, 0)
    rows = Target.objects.filter(environment=environment).values("status", "paused").annotate(n=Count("id"))
    for row in rows.order_by():
        counts[shown_status(row)] += row["n"]
    return counts


# --- runbook step events ------------------------------------------------------------------------------


def step_events(
    environment: Environment, start: datetime, end: datetime, limit: int = STEP_EVENTS_LIMIT
) -> list[Attempt]:
    """Attempts at the environment's migration steps that started (or, never started, were requested)
    in [start, end): one query, newest last."""
    attempts = (
        Attempt.objects.filter(migration__environment=environment)
        .filter(
            Q(started_at__gte=start, started_at__lt=end)
            | Q(started_at=None, requested_at__gte=start, requested_at__lt=end)
        )
        .select_related("step", "requested_by")
        .only(
            "id",
            "migration_id",
            "number",
            "action",
            "status",
            "requested_at",
            "started_at",
            "finished_at",
            "step__title",
            "step__position",
            "step__key",
            "requested_by__username",
        )
        .annotate(event_at=Coalesce("started_at", "requested_at"))
        .order_by("-event_at", "-id")[:limit]
    )
    return list(reversed(attempts))


# --- a target -----------------------------------------------------------------------------------------


def open_incident(target: Target) -> Incident | None:
    return target.incidents.filter(closed_at=None).first()


def settled_boundary(spec: RangeSpec, first: datetime, folded_until: datetime | None) -> datetime:
    """Buckets before the one holding the rollup cursor are settled: their rollups are written once and
    their stored quantiles are all a chart needs. Later ones may still merge raw results."""
    return max(first, floor_time(folded_until, spec.step)) if folded_until else first


def _settled_rows(target: Target, spec: RangeSpec, start: datetime, end: datetime) -> list[tuple]:
    """The settled rollups of `spec.resolution` in [start, end), oldest first: (epoch seconds, count,
    ok_count, latency_count, latency_sum, phase sums text, p50, p95 and p99 bucket indexes). A plain cursor:
    a 24 h chart reads 1,440 rows, and the ORM's per-row conversions cost as much as the query."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT EXTRACT(EPOCH FROM "bucket")::bigint, "count", "ok_count", "latency_count", "latency_sum",'
            f' "phase_sums", "p50_index", "p95_index", "p99_index" FROM "{Rollup._meta.db_table}"'
            ' WHERE "target_id" = %s AND "resolution" = %s AND "bucket" >= %s AND "bucket" < %s ORDER BY "bucket"',
            [target.pk, spec.resolution, start, end],
        )
        return cursor.fetchall()


def settled_buckets(target: Target, spec: RangeSpec, start: datetime, end: datetime) -> dict[int, Bucket]:
    """The settled buckets of `spec.resolution` in [start, end), without their histograms. Settled buckets
    are all in Rollup: an hour or day before the one holding the minute cursor is one its cursor has passed."""
    buckets: dict[int, Bucket] = {}
    for at, count, ok, latency_count, latency_sum, phases, *quantiles in _settled_rows(target, spec, start, end):
        values = (count, ok, latency_count, latency_sum, decode_phase_sums(phases), *map(index_value, quantiles))
        buckets.setdefault(at, Bucket()).add_settled(*values)
    return buckets


# A stored quantile's bucket index -> its value as a chart shows it (rounded to 3 places).
_CHART_VALUES = [round(index_value(index), 3) for index in range(MAX_INDEX + 1)]


def settled_chart(target: Target, spec: RangeSpec, start: datetime, end: datetime, gap: float) -> dict:
    """charts.chart_data(settled_buckets(...), spec, gap), straight from the rows."""
    values = _CHART_VALUES
    rows = [
        (
            at,
            count,
            ok,
            latency_count,
            latency_sum,
            decode_phase_sums(phases),
            None if p50 is None else values[p50],
            None if p95 is None else values[p95],
            None if p99 is None else values[p99],
        )
        for at, count, ok, latency_count, latency_sum, phases, p50, p95, p99 in _settled_rows(target, spec, start, end)
    ]
    return chart_columns(rows, spec, gap)


def chart_buckets(
    target: Target, spec: RangeSpec, start: datetime, now: datetime, folded_until: datetime | None = READ_CURSOR
) -> dict[int, Bucket]:
    """Buckets of `spec.resolution` from `start` to now, keyed by their start in epoch seconds: the
    stored rollups (hour and day rollups include the bucket still filling), plus the raw results the
    rollup job has not folded yet (after `folded_until`, rolled_up_until()'s if not given)."""
    first = floor_time(start, spec.step)
    if folded_until is READ_CURSOR:
        folded_until = rolled_up_until()
    boundary = settled_boundary(spec, first, folded_until)
    buckets = settled_buckets(target, spec, first, boundary)
    buckets.update(unsettled_buckets(target, spec, boundary, folded_until, now))
    return buckets


# The rollups of unsettled_buckets, settled and still filling, with ROLLUP_FIELDS' values (but the target):
# raw SQL, as the page reads it on every view, with each field's own conversion from the database.
_ROLLUP_VALUE_FIELDS = [Rollup._meta.get_field(name) for name in ROLLUP_FIELDS[1:]]
_UNSETTLED_SQL = (
    'SELECT EXTRACT(EPOCH FROM r."bucket")::bigint, '
    + ", ".join(f'r."{field.column}"' for field in _ROLLUP_VALUE_FIELDS)
    + f' FROM {ALL_ROLLUPS_SQL} r WHERE r."target_id" = %s AND r."resolution" = %s AND r."bucket" >= %s'
    ' AND r."bucket" < %s'
)
_UNSETTLED_CONVERTERS = [
    (index, field.from_db_value) for index, field in enumerate(_ROLLUP_VALUE_FIELDS) if hasattr(field, "from_db_value")
]


def unsettled_buckets(
    target: Target, spec: RangeSpec, boundary: datetime, folded_until: datetime | None, now: datetime
) -> dict[int, Bucket]:
    """The buckets from `boundary` (settled_boundary's) to now: rollups with their histograms (the hour or
    day still filling among them), merged with the raw results after `folded_until` (the minute cursor)
    that the rollup job has not folded."""
    buckets: dict[int, Bucket] = {}
    step = spec.resolution
    with connection.cursor() as cursor:
        cursor.execute(_UNSETTLED_SQL, [target.pk, spec.resolution, boundary, now + spec.step])
        for at, *values in cursor.fetchall():
            for index, convert in _UNSETTLED_CONVERTERS:
                values[index] = convert(values[index], None, connection)
            buckets.setdefault(at, Bucket()).add_values(*values)
    fresh_from = max(boundary, now - FRESH_WINDOW, folded_until or boundary)
    fresh = ProbeResult.objects.filter(target_id=target.pk, at__gte=fresh_from).values_list(
        "at", "ok", "latency_ms", "phases", "cold_start"
    )
    for at, *result in fresh:
        epoch = int(at.timestamp())
        buckets.setdefault(epoch - epoch % step, Bucket()).add_result(*result)
    return buckets


class PercentileCont(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def cold_warm_percentiles(target: Target, now: datetime) -> dict[str, dict]:
    """p50/p95 of cold and warm invokes over the raw results of the last 48 h: exact, one bounded
    query (the target's results in the window, on the (target, -at) index). Targets probed by invoke only."""
    if not target.reports_cold_starts:
        return {}
    rows = (
        ProbeResult.objects.filter(target=target, at__gte=now - COLD_WARM_WINDOW, latency_ms__isnull=False)
        .annotate(cold=Coalesce(F("cold_start"), False))
        .values("cold")
        .annotate(
            n=Count("id"),
            p50=PercentileCont("latency_ms", 0.5),
            p95=PercentileCont("latency_ms", 0.95),
        )
        .order_by()
    )
    found = {"cold": {"n": 0, "p50": None, "p95": None}, "warm": {"n": 0, "p50": None, "p95": None}}
    for row in rows:
        found["cold" if row["cold"] else "warm"] = {"n": row["n"], "p50": row["p50"], "p95": row["p95"]}
    return found


def results_queryset(target: Target):
    # target_id too: the related manager sets each row's target from it (deferred, it costs a query a row).
    fields = ("id", "target_id", "at", "ok", "latency_ms", "phases", "cold_start", "error")
    return target.results.only(*fields).order_by("-at", "-id")


def newer_results(target: Target, after_id: int, limit: int) -> list[ProbeResult]:
    """Results recorded after the one with id `after_id` (ids grow with recording), newest first."""
    return list(results_queryset(target).filter(id__gt=after_id).order_by("-id")[:limit])


def incidents_queryset(target: Target):
    return target.incidents.order_by("-opened_at")
