"""Reads the health pages make: the overview's rows, a target's chart per range, its raw results and
the runbook's step events in a range. Everything is bounded: the overview reads one row per target
(the summary the rollup job keeps), a chart reads one rollup per bucket of the range's resolution.

Formatting that would cost per row in the template (figures, sparkline points, positions on the
24 h axis) is done here, once, in plain Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Aggregate, BigIntegerField, CharField, Count, F, FloatField, Func, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from dashboard.models import (
    Attempt,
    Environment,
    Incident,
    ProbeKind,
    ProbeResult,
    Resolution,
    Rollup,
    Target,
    TargetStatus,
)
from dashboard.monitoring.stats import DAY, HOUR, ROLLUP_FIELDS, RangeStats, floor_time, rolled_up_until

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

# Raw results not yet folded into minute rollups are read for the chart's newest buckets, but never
# more than this far back: a stalled rollup job shows as a gap, not as a scan of the raw table.
FRESH_WINDOW = timedelta(minutes=15)
# A live poll re-sends the buckets of at least this tail of the range (rollups of the last minutes
# land late, after LATE_RESULT_GRACE).
LIVE_TAIL = timedelta(minutes=15)
COLD_WARM_WINDOW = timedelta(hours=48)
STEP_EVENTS_LIMIT = 200
RESULTS_PER_PAGE = 50
INCIDENTS_PER_PAGE = 20

PHASE_ORDER = ["token", "connect", "query", "write", "read", "init", "duration", "billed"]
STATUS_ORDER = {TargetStatus.DOWN: 0, TargetStatus.UNKNOWN: 1, TargetStatus.UP: 2, TargetStatus.PAUSED: 3}
KIND_LABELS = dict(ProbeKind.choices)
KIND_ORDER = {kind: position for position, kind in enumerate(ProbeKind.values)}
DASH = "—"


# --- formatting ---------------------------------------------------------------------------------------


def format_ms(ms: float | None) -> str:
    if ms is None:
        return DASH
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def format_uptime(ratio: float | None) -> str:
    """Two decimals, truncated rather than rounded: 99.996 % is not 100 %."""
    if ratio is None:
        return DASH
    if ratio >= 1:
        return "100 %"
    return f"{math.floor(ratio * 10000) / 100:.2f} %"


def uptime_class(ratio: float | None) -> str:
    if ratio is None:
        return "u-none"
    if ratio >= 0.999:
        return "u-good"
    if ratio >= 0.99:
        return "u-fair"
    return "u-poor"


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def micros(moment: datetime | None) -> int:
    """A timestamp as integer epoch microseconds: exact, unlike a float, and safe in a URL."""
    if moment is None:
        return 0
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MICROS = micros(datetime(9999, 1, 1, tzinfo=UTC))


def from_micros(value: str | None) -> datetime:
    """The inverse of micros(); a missing or malformed value means "the beginning of time"."""
    try:
        number = int(value or 0)
    except ValueError:
        number = 0
    return _EPOCH + timedelta(microseconds=min(max(0, number), _MAX_MICROS))


# --- the overview -------------------------------------------------------------------------------------

SPARK_WIDTH, SPARK_HEIGHT, SPARK_HOURS = 240, 30, 24
_SPARK_X = [f"{(index + 0.5) * SPARK_WIDTH / SPARK_HOURS:g}," for index in range(SPARK_HOURS)]
_SPARK_EMPTY = mark_safe(
    f'<svg class="spark spark-empty" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" preserveAspectRatio="none" '
    f'aria-hidden="true"><line x1="0" y1="{SPARK_HEIGHT - 1}" x2="{SPARK_WIDTH}" y2="{SPARK_HEIGHT - 1}"/></svg>'
)

# The overview reads plain values, not model instances: at 1,000 rows, building instances and parsing
# timestamps and float arrays cost more than the query. changed_at comes as epoch microseconds (the
# live poll's `since`), the sparkline as PostgreSQL's text of its numbers.
OVERVIEW_VALUES = (
    "id",
    "kind",
    "name",
    "label",
    "paused",
    "status",
    "last_latency_ms",
    "uptime_24h",
    "uptime_7d",
    "uptime_30d",
    "p95_24h_ms",
)
_CHANGED_MICROS = Func(
    F("changed_at"), template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint", output_field=BigIntegerField()
)
_SPARK_TEXT = Func(F("sparkline"), template="array_to_string(%(expressions)s, ',', '')", output_field=CharField())


def sparkline_svg(text: str | None, status: str) -> SafeString:
    """An inline SVG of the 24 hourly latency averages in `text` ("3.1,,4.2,..." oldest first, empty
    for an hour without data): one polyline per run of hours with data, each hour at the middle of its
    slot so it lines up with the 24 h timeline above the column. The numbers go in as PostgreSQL wrote
    them, negated (SVG's y grows downwards); the viewBox scales them. Only numbers and a fixed class
    name go into the markup, hence mark_safe."""
    tokens = text.split(",") if text else []
    values = [token for token in tokens if token]
    if not values:
        return _SPARK_EMPTY
    highest = max(map(float, values))
    xs = _SPARK_X[SPARK_HOURS - len(tokens) :] if len(tokens) <= SPARK_HOURS else _SPARK_X
    runs: list[str] = []
    run: list[str] = []
    for x, token in zip(xs, tokens, strict=False):
        if token:
            run.append(x + "-" + token)
        elif run:
            runs.append(" ".join(run if len(run) > 1 else run * 2))  # a lone hour: a dot (round line cap)
            run = []
    if run:
        runs.append(" ".join(run if len(run) > 1 else run * 2))
    top = highest * 1.1 or 1.0
    lines = "".join(['<polyline points="', '"/><polyline points="'.join(runs), '"/>'])
    return mark_safe(
        f'<svg class="spark spark-{status}" viewBox="0 {-top:.4g} {SPARK_WIDTH} {top * 1.06:.4g}" '
        f'preserveAspectRatio="none" role="img" aria-label="hourly average latency, highest {highest:.1f} ms">'
        f"{lines}</svg>"
    )


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


def status_counts(targets: Iterable[dict]) -> dict[str, int]:
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for target in targets:
        counts[shown_status(target)] += 1
    return counts


def status_counts_query(environment: Environment) -> dict[str, int]:
    counts = dict.fromkeys(STATUS_ORDER, 0)
    rows = Target.objects.filter(environment=environment).values("status", "paused").annotate(n=Count("id"))
    for row in rows.order_by():
        counts[shown_status(row)] += row["n"]
    return counts


def target_url_prefix(environment: Environment) -> str:
    # One reverse() for the page instead of one per row.
    return reverse("health-overview", args=[environment.slug]) + "targets/"


def _figure_cells(target: dict) -> SafeString:
    """The numeric cells of a row: numbers and fixed class names only, so built here, once, unescaped."""
    cells = [f'<td class="num">{format_ms(target["last_latency_ms"])}</td>']
    cells.append(f'<td class="num">{format_ms(target["p95_24h_ms"])}</td>')
    for name in ("uptime_24h", "uptime_7d", "uptime_30d"):
        ratio = target[name]
        cells.append(f'<td class="num {uptime_class(ratio)}">{format_uptime(ratio)}</td>')
    return mark_safe("".join(cells))


def overview_row(target: dict, incident: Incident | None, url_prefix: str, now: datetime) -> dict:
    """What a row shows, as ready strings (its id a string too: the template engine localizes integers,
    which costs more than the rest of the row)."""
    status = shown_status(target)
    label = target["label"]
    pk = str(target["id"])
    row = {
        "pk": pk,
        "url": f"{url_prefix}{pk}/",
        "name": label or target["name"],
        "resource": target["name"] if label else "",
        "kind": target["kind"],
        "kind_label": KIND_LABELS.get(target["kind"], target["kind"]),
        "status": status,
        "badge": _BADGES[status],
        "figures": _figure_cells(target),
        "spark": sparkline_svg(target["spark"], status),
        "incident": "",
        "group": None,
    }
    if incident is not None:
        opened = incident.opened_at
        open_for = format_duration((now - opened).total_seconds())
        row["incident"] = f"since {opened:%H:%M}" if now - opened < 20 * HOUR else f"since {opened:%m-%d %H:%M}"
        row["incident_title"] = f"down since {opened:%Y-%m-%d %H:%M:%S} UTC ({open_for}): {incident.cause[:300]}"
    return row


_BADGES = {status: mark_safe(f'<span class="status st-{status}">{status}</span>') for status in TargetStatus.values}


SORTS = {
    "status": "down first",
    "kind": "by kind",
    "name": "by name",
}


def sort_rows(rows: list[dict], sort: str) -> list[dict]:
    def by_name(row):
        return row["name"].lower()

    if sort == "name":
        return sorted(rows, key=by_name)
    if sort == "kind":
        rows = sorted(rows, key=lambda r: (KIND_ORDER.get(r["kind"], 99), STATUS_ORDER.get(r["status"], 9), by_name(r)))
        _mark_groups(rows)
        return rows
    return sorted(rows, key=lambda r: (STATUS_ORDER.get(r["status"], 9), KIND_ORDER.get(r["kind"], 99), by_name(r)))


def _mark_groups(rows: list[dict]) -> None:
    """Put a group header on the first row of each kind: its label, size and how many are down."""
    sizes: dict[str, list[int]] = {}
    for row in rows:
        size = sizes.setdefault(row["kind"], [0, 0])
        size[0] += 1
        size[1] += row["status"] == TargetStatus.DOWN
    seen: set[str] = set()
    for row in rows:
        if row["kind"] not in seen:
            seen.add(row["kind"])
            total, down = sizes[row["kind"]]
            row["group"] = {"label": row["kind_label"], "total": total, "down": down}


# --- the 24 h axis and runbook step events ------------------------------------------------------------


def day_axis(now: datetime) -> tuple[datetime, datetime]:
    """The 24 h axis of the sparklines: the current hour and the 23 before it."""
    end = floor_time(now, HOUR) + HOUR
    return end - SPARK_HOURS * HOUR, end


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
            "requested_by__username",
        )
        .annotate(event_at=Coalesce("started_at", "requested_at"))
        .order_by("-event_at", "-id")[:limit]
    )
    return list(reversed(attempts))


def event_rows(attempts: list[Attempt], environment: Environment, start: datetime, end: datetime) -> list[dict]:
    """Step events placed on [start, end) as percentages, with what their tooltip and list show."""
    span = (end - start).total_seconds()
    rows = []
    for attempt in attempts:
        at = attempt.started_at or attempt.requested_at
        finished = attempt.finished_at
        left = max(0.0, min(100.0, (at - start).total_seconds() / span * 100))
        width = 0.0
        if finished:
            width = max(0.0, min(100.0 - left, (finished - at).total_seconds() / span * 100))
        rows.append(
            {
                "at": at,
                "t": at.timestamp(),
                "finished": finished,
                "left": f"{left:.3f}",
                "width": f"{width:.3f}",
                "title": attempt.step.title,
                "position": attempt.step.position,
                "action": attempt.action,
                "number": attempt.number,
                "status": attempt.status,
                "operator": attempt.requested_by.get_username(),
                "url": reverse("attempt-detail", args=[environment.slug, attempt.migration_id, attempt.pk]),
            }
        )
    return rows


# --- a target's charts ----------------------------------------------------------------------------------


@dataclass
class _Point(RangeStats):
    """One chart bucket. A settled bucket is one rollup whose quantiles were stored when it was written
    (its histogram is not read); the bucket still filling merges its histogram with the raw results
    not rolled up yet."""

    stored: tuple[float | None, ...] | None = None

    def add_settled(self, count, ok_count, latency_count, latency_sum, phase_sums, p50, p95, p99) -> None:
        self.add_values(count, ok_count, latency_count, None, None, latency_sum, [], phase_sums, 0, 0.0)
        self.stored = (p50, p95, p99)

    def quantiles(self) -> list[float | None]:
        """p50, p95, p99."""
        return list(self.stored) if self.stored is not None else self.histogram.percentiles(*CHART_QUANTILES)


CHART_QUANTILES = (0.5, 0.95, 0.99)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


_BUCKET_EPOCH = Func(
    F("bucket"), template="EXTRACT(EPOCH FROM %(expressions)s)::bigint", output_field=BigIntegerField()
)


def chart_points(target: Target, spec: RangeSpec, start: datetime, now: datetime) -> dict[int, _Point]:
    """Buckets of `spec.resolution` from `start` to now, keyed by their start in epoch seconds: the
    stored rollups (hour and day rollups include the bucket still filling), plus the raw results the
    rollup job has not folded yet."""
    first = floor_time(start, spec.step)
    step = spec.resolution
    points: dict[int, _Point] = {}
    folded_until = rolled_up_until()
    # Buckets before the one holding the rollup cursor are settled: their stored quantiles are all a
    # chart needs. Later ones may still merge raw results, so they come with their histograms.
    boundary = max(first, floor_time(folded_until, spec.step)) if folded_until else first
    rollups = Rollup.objects.filter(target_id=target.pk, resolution=spec.resolution).order_by("bucket")
    settled = rollups.filter(bucket__gte=first, bucket__lt=boundary).values_list(
        _BUCKET_EPOCH, "count", "ok_count", "latency_count", "latency_sum", "phase_sums", "p50_ms", "p95_ms", "p99_ms"
    )
    for bucket, *values in settled:
        points.setdefault(bucket, _Point()).add_settled(*values)
    filling = rollups.filter(bucket__gte=boundary, bucket__lt=now + spec.step).values_list(
        _BUCKET_EPOCH, *ROLLUP_FIELDS[1:]
    )
    for bucket, *values in filling:
        points.setdefault(bucket, _Point()).add_values(*values)
    fresh_from = max(first, now - FRESH_WINDOW, folded_until or first)
    fresh = ProbeResult.objects.filter(target_id=target.pk, at__gte=fresh_from).values_list(
        "at", "ok", "latency_ms", "phases", "cold_start"
    )
    for at, *result in fresh:
        epoch = int(at.timestamp())
        points.setdefault(epoch - epoch % step, _Point()).add_result(*result)
    return points


def phase_order(names: Iterable[str]) -> list[str]:
    """Phases in the order a probe goes through them (token, connect, query; init, duration), others after."""
    return sorted(names, key=lambda name: (PHASE_ORDER.index(name) if name in PHASE_ORDER else 99, name))


def phase_names(points: Iterable[_Point]) -> list[str]:
    names: set[str] = set()
    for point in points:
        names.update(point.phase_sums)
    return phase_order(names)


def chart_data(points: dict[int, _Point], spec: RangeSpec, gap_seconds: float) -> dict:
    """Columns for uPlot: x in epoch seconds, then per-bucket avg/p50/p95/p99, uptime and phase averages.
    A null row goes in wherever no probe ran for longer than `gap_seconds`, so the lines break there."""
    buckets = sorted(points)
    phases = phase_names(points.values())
    columns: dict[str, list] = {name: [] for name in ("x", "avg", "p50", "p95", "p99", "uptime", "count", "failures")}
    phase_columns: dict[str, list] = {name: [] for name in phases}
    previous: int | None = None
    for bucket in buckets:
        if previous is not None and bucket - previous > gap_seconds:
            columns["x"].append((previous + bucket) / 2)
            for name in ("avg", "p50", "p95", "p99", "uptime", "count", "failures"):
                columns[name].append(None)
            for name in phases:
                phase_columns[name].append(None)
        previous = bucket
        point = points[bucket]
        p50, p95, p99 = point.quantiles()
        columns["x"].append(bucket)
        columns["avg"].append(_round(point.latency_sum / point.latency_count) if point.latency_count else None)
        columns["p50"].append(_round(p50))
        columns["p95"].append(_round(p95))
        columns["p99"].append(_round(p99))
        columns["uptime"].append(_round(point.ok_count / point.count * 100, 3) if point.count else None)
        columns["count"].append(point.count)
        columns["failures"].append(point.count - point.ok_count)
        for name in phases:
            total = point.phase_sums.get(name)
            phase_columns[name].append(
                _round(total / point.latency_count) if total is not None and point.latency_count else None
            )
    return {"step": spec.resolution, "columns": columns, "phases": phase_columns}


def gap_seconds(target: Target, spec: RangeSpec) -> float:
    return 2.5 * max(spec.resolution, target.interval_seconds)


# --- cold and warm starts ---------------------------------------------------------------------------


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


# --- pages of raw results and incidents -------------------------------------------------------------


def results_queryset(target: Target):
    # target_id too: the related manager sets each row's target from it (deferred, it costs a query a row).
    fields = ("id", "target_id", "at", "ok", "latency_ms", "phases", "cold_start", "error")
    return target.results.only(*fields).order_by("-at", "-id")


def result_rows(results: Iterable[ProbeResult]) -> list[dict]:
    rows = []
    for result in results:
        phases = result.phases or {}
        ordered = [name for name in phase_order(phases) if isinstance(phases[name], (int, float))]
        rows.append(
            {
                "id": result.pk,
                "at": result.at,
                "ok": result.ok,
                "latency": format_ms(result.latency_ms),
                "phases": [
                    (name, format_ms(phases[name])) for name in ordered if isinstance(phases[name], (int, float))
                ],
                "cold": result.cold_start,
                "error": result.error,
            }
        )
    return rows


def newer_results(target: Target, after_id: int, limit: int = RESULTS_PER_PAGE) -> list[ProbeResult]:
    """Results recorded after the one with id `after_id` (ids grow with recording), newest first."""
    return list(results_queryset(target).filter(id__gt=after_id).order_by("-id")[:limit])


def incidents_queryset(target: Target):
    return target.incidents.order_by("-opened_at")
