"""Health: an environment's targets with their live state and latency over a range, one target's history for a
range, its raw results and incidents (filtered, paginated), and pausing or resuming a target. The reads are
dashboard.monitoring's (selectors, stats); the pause is dashboard.monitoring.targets.set_paused, as the page's."""

# No `from __future__ import annotations`: ninja reads the operations' annotations at run time (see migrations).

from datetime import datetime, timedelta
from typing import Literal

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Schema

from dashboard.api import lookups
from dashboard.api.errors import ApiError, responses
from dashboard.api.idempotency import idempotent
from dashboard.models import Incident, ProbeResult, Target
from dashboard.monitoring import selectors, stats, targets
from dashboard.monitoring.charts import RANGES

router = Router(tags=["health"])

RangeKey = Literal["1h", "24h", "7d", "30d", "1y"]


class TargetOut(Schema):
    id: int
    name: str
    label: str
    kind: str
    state: str  # up | down | unknown | paused (paused wins, as on the page)
    status: str  # the probes' verdict, whether paused or not
    paused: bool
    managed: bool
    interval_seconds: int
    last_probe_at: datetime | None
    last_ok: bool | None
    last_latency_ms: float | None
    last_error: str
    uptime_24h: float | None
    uptime_7d: float | None
    uptime_30d: float | None
    latency_ms_p50: float | None  # over the requested range
    latency_ms_p95: float | None
    open_incident: int | None


class HealthSummaryOut(Schema):
    range: str
    start: datetime
    end: datetime
    counts: dict[str, int]
    total: int
    open_incidents: int


class HealthOut(Schema):
    targets: list[TargetOut]
    summary: HealthSummaryOut


class HistoryOut(Schema):
    target: int
    range: str
    start: datetime
    end: datetime
    count: int
    ok_count: int
    uptime: float | None
    latency_ms_min: float | None
    latency_ms_avg: float | None
    latency_ms_max: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_p99: float | None
    phase_ms_avg: dict[str, float]
    incidents: int
    downtime_seconds: float


class ResultOut(Schema):
    id: int
    at: datetime
    ok: bool
    latency_ms: float | None
    phases: dict
    cold_start: bool | None
    error: str


class ResultPage(Schema):
    items: list[ResultOut]
    count: int
    limit: int
    offset: int


class IncidentOut(Schema):
    id: int
    target: int
    target_name: str
    opened_at: datetime
    closed_at: datetime | None
    open: bool
    cause: str
    last_error: str
    failure_count: int


class IncidentPage(Schema):
    items: list[IncidentOut]
    count: int
    limit: int
    offset: int


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _target(request: HttpRequest, target_id: int, *, operate: str = "") -> Target:
    target = get_object_or_404(Target.objects.select_related("environment"), pk=target_id)
    environment = lookups.environment(request, target.environment.slug, operate=operate)
    target.environment = environment
    return target


def _window(range_key: str) -> tuple[datetime, datetime]:
    end = timezone.now()
    return end - RANGES[range_key].span, end


def _target_out(target: Target, range_stats: stats.RangeStats | None, open_incident: Incident | None) -> dict:
    return {
        "id": target.pk,
        "name": target.name,
        "label": target.label,
        "kind": target.kind,
        "state": target.shown_status,
        "status": target.status,
        "paused": target.paused,
        "managed": target.managed,
        "interval_seconds": target.interval_seconds,
        "last_probe_at": target.last_probed_at,
        "last_ok": target.last_ok,
        "last_latency_ms": _rounded(target.last_latency_ms),
        "last_error": target.last_error,
        "uptime_24h": target.uptime_24h,
        "uptime_7d": target.uptime_7d,
        "uptime_30d": target.uptime_30d,
        "latency_ms_p50": _rounded(range_stats.percentile(0.5)) if range_stats else None,
        "latency_ms_p95": _rounded(range_stats.percentile(0.95)) if range_stats else None,
        "open_incident": open_incident.pk if open_incident else None,
    }


@router.get("/environments/{slug}/health", response=responses({200: HealthOut}), operation_id="health_summary")
def health_summary(request: HttpRequest, slug: str, range: RangeKey = "24h"):  # noqa: A002 - the page's name
    environment = lookups.environment(request, slug)
    start, end = _window(range)
    rows = list(Target.objects.filter(environment=environment).order_by("kind", "name"))
    figures = stats.range_stats([t.pk for t in rows], start, end)
    incidents = selectors.open_incidents(environment)
    counts = dict.fromkeys(selectors.STATUS_ORDER, 0)
    for target in rows:
        counts[target.shown_status] += 1
    return {
        "targets": [_target_out(t, figures.get(t.pk), incidents.get(t.pk)) for t in rows],
        "summary": {
            "range": range,
            "start": start,
            "end": end,
            "counts": {str(k): v for k, v in counts.items()},
            "total": len(rows),
            "open_incidents": len(incidents),
        },
    }


@router.get("/targets/{int:target_id}", response=responses({200: TargetOut}), operation_id="target_get")
def target_get(request: HttpRequest, target_id: int, range: RangeKey = "24h"):  # noqa: A002
    target = _target(request, target_id)
    start, end = _window(range)
    figures = stats.range_stats([target.pk], start, end)[target.pk]
    return _target_out(target, figures, selectors.open_incident(target))


@router.get("/targets/{int:target_id}/history", response=responses({200: HistoryOut}), operation_id="target_history")
def target_history(request: HttpRequest, target_id: int, range: RangeKey = "24h"):  # noqa: A002
    """The target's probe history over the range: counts, uptime, latency percentiles, incidents, downtime."""
    target = _target(request, target_id)
    start, end = _window(range)
    figures = stats.range_stats([target.pk], start, end)[target.pk]
    overlapping = stats.incidents_overlapping([target.pk], start, end)
    return {
        "target": target.pk,
        "range": range,
        "start": start,
        "end": end,
        "count": figures.count,
        "ok_count": figures.ok_count,
        "uptime": figures.uptime,
        "latency_ms_min": _rounded(figures.latency_min),
        "latency_ms_avg": _rounded(figures.latency_avg),
        "latency_ms_max": _rounded(figures.latency_max),
        "latency_ms_p50": _rounded(figures.percentile(0.5)),
        "latency_ms_p95": _rounded(figures.percentile(0.95)),
        "latency_ms_p99": _rounded(figures.percentile(0.99)),
        "phase_ms_avg": {k: round(v, 3) for k, v in figures.phase_averages.items()},
        "incidents": len(overlapping),
        "downtime_seconds": round(stats.downtime_seconds(overlapping, start, end, end), 3),
    }


MAX_WINDOW = timedelta(days=400)


@router.get("/targets/{int:target_id}/results", response=responses({200: ResultPage}), operation_id="target_results")
def target_results(
    request: HttpRequest,
    target_id: int,
    ok: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(50, ge=1, le=lookups.MAX_LIMIT),
    offset: int = Query(0, ge=0, le=1_000_000),
):
    """Raw probe results, newest first (kept for PROBE_RAW_RETENTION: older history is in `history`)."""
    target = _target(request, target_id)
    results = ProbeResult.objects.filter(target=target).order_by("-at", "-id")
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and timezone.is_naive(moment):
            raise ApiError(422, "validation", "Give times with a zone.", {name: ["A time zone offset is needed."]})
    if since is not None:
        results = results.filter(at__gte=since)
    if until is not None:
        results = results.filter(at__lt=until)
    if ok is not None:
        results = results.filter(ok=ok)
    items, count = lookups.page(results, limit, offset)
    out = [
        {
            "id": r.pk,
            "at": r.at,
            "ok": r.ok,
            "latency_ms": _rounded(r.latency_ms),
            "phases": r.phases or {},
            "cold_start": r.cold_start,
            "error": r.error,
        }
        for r in items
    ]
    return {"items": out, "count": count, "limit": limit, "offset": offset}


@router.get("/environments/{slug}/incidents", response=responses({200: IncidentPage}), operation_id="incident_list")
def incident_list(
    request: HttpRequest,
    slug: str,
    target: int | None = Query(None, ge=1, le=2**31 - 1),
    open: bool | None = None,  # noqa: A002 - the filter's name
    limit: int = Query(50, ge=1, le=lookups.MAX_LIMIT),
    offset: int = Query(0, ge=0, le=1_000_000),
):
    """The environment's incidents, newest first."""
    environment = lookups.environment(request, slug)
    incidents = Incident.objects.filter(target__environment=environment).select_related("target")
    incidents = incidents.order_by("-opened_at", "-id")
    if target is not None:
        incidents = incidents.filter(target_id=target)
    if open is not None:
        incidents = incidents.filter(closed_at__isnull=open)
    items, count = lookups.page(incidents, limit, offset)
    out = [
        {
            "id": i.pk,
            "target": i.target_id,
            "target_name": i.target.display_name,
            "opened_at": i.opened_at,
            "closed_at": i.closed_at,
            "open": i.closed_at is None,
            "cause": i.cause,
            "last_error": i.last_error,
            "failure_count": i.failure_count,
        }
        for i in items
    ]
    return {"items": out, "count": count, "limit": limit, "offset": offset}


def _set_paused(request: HttpRequest, target_id: int, paused: bool):
    event = "target.pause" if paused else "target.resume"
    target = _target(request, target_id, operate=event)
    targets.set_paused(target, paused, user=request.user, source_address=lookups.source(request))
    target.refresh_from_db()
    return _target_out(target, None, selectors.open_incident(target))


@router.post("/targets/{int:target_id}/pause", response=responses({200: TargetOut}), operation_id="target_pause")
@idempotent
def target_pause(request: HttpRequest, target_id: int):
    """Pause probing (already paused: no change, same answer)."""
    return _set_paused(request, target_id, True)


@router.post("/targets/{int:target_id}/resume", response=responses({200: TargetOut}), operation_id="target_resume")
@idempotent
def target_resume(request: HttpRequest, target_id: int):
    return _set_paused(request, target_id, False)
