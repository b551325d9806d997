"""What a report says about one environment over one period, gathered into a JSON-ready snapshot.

Everything comes from rollups (monitoring.stats.range_stats), incidents and runbook attempts: no raw
probe results, so a year reads as fast as a day. The snapshot is stored with the report; every format
(HTML, CSV, PDF, email) is rendered from it and nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from dashboard.models import Attempt, Environment, ProbeKind, Resolution, RollupCursor, Target
from dashboard.monitoring.histogram import index_value
from dashboard.monitoring.stats import (
    RangeStats,
    all_rollups,
    downtime_seconds,
    floor_time,
    incidents_overlapping,
    range_stats,
    rolled_up_until,
)
from dashboard.periods import Period

CONTENT_VERSION = 1
PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
# Charts: hourly points up to this length, daily points beyond (at most ~400 per target for a year).
HOURLY_CHART_UP_TO = timedelta(days=8)
MAX_TEXT = 500  # an incident cause or step error is cut to this many characters


def gather(environment: Environment, period: Period, *, now: datetime | None = None) -> dict:
    """The report's content for [period.start, period.end)."""
    now = now or timezone.now()
    targets = list(Target.objects.filter(environment=environment).order_by("kind", "name"))
    ids = [target.pk for target in targets]
    previous = period.previous()
    current_stats = range_stats(ids, period.start, period.end)
    previous_stats = range_stats(ids, previous.start, previous.end)
    incidents = incidents_overlapping(ids, period.start, period.end)
    by_target: dict[int, list] = defaultdict(list)
    for incident in incidents:
        by_target[incident.target_id].append(incident)

    rows = [
        _target_row(target, current_stats[target.pk], previous_stats[target.pk], by_target[target.pk], period, now)
        for target in targets
    ]
    steps = _steps(environment, period)
    probes = sum(row["probes"] for row in rows)
    ok = sum(row["ok"] for row in rows)
    previous_probes = sum(row["previous"]["probes"] for row in rows)
    previous_ok = sum(row["previous"]["ok"] for row in rows)
    summary = {
        "targets": len(rows),
        "probes": probes,
        "uptime_pct": _pct(ok, probes),
        "previous_uptime_pct": _pct(previous_ok, previous_probes),
        "incidents": len(incidents),
        "open_incidents": sum(1 for incident in incidents if incident.closed_at is None),
        "downtime_seconds": round(sum(row["downtime_seconds"] for row in rows), 3),
        "steps_run": len(steps),
        "steps_failed": sum(1 for step in steps if step["status"] in ("failed", "interrupted")),
    }
    summary["uptime_delta_pct"] = _delta(summary["uptime_pct"], summary["previous_uptime_pct"])
    return {
        "version": CONTENT_VERSION,
        "environment": {"name": environment.name, "slug": environment.slug},
        "period": _period_dict(period),
        "previous_period": _period_dict(previous),
        "generated_at": _iso(now),
        "history_settled_until": _iso(rolled_up_until()),
        "summary": summary,
        "targets": rows,
        "incidents": [_incident_row(incident, period, now) for incident in incidents],
        "steps": steps,
        "series": _series(ids, period),
    }


def _target_row(
    target: Target, stats: RangeStats, previous: RangeStats, incidents: list, period: Period, now: datetime
) -> dict:
    percentiles = {name: _ms(stats.percentile(q)) for name, q in PERCENTILES.items()}
    previous_p95 = _ms(previous.percentile(PERCENTILES["p95"]))
    uptime = _pct(stats.ok_count, stats.count)
    previous_uptime = _pct(previous.ok_count, previous.count)
    lambda_like = target.reports_cold_starts
    return {
        "id": target.pk,
        "name": target.display_name,
        "kind": target.kind,
        "kind_label": ProbeKind(target.kind).label if target.kind in ProbeKind.values else target.kind,
        "paused": target.paused,
        "status": target.shown_status,
        "probes": stats.count,
        "ok": stats.ok_count,
        "failed": stats.count - stats.ok_count,
        "uptime_pct": uptime,
        "downtime_seconds": round(downtime_seconds(incidents, period.start, period.end, now), 3),
        "incidents": len(incidents),
        **percentiles,
        "latency_avg": _ms(stats.latency_avg),
        "latency_min": _ms(stats.latency_min),
        "latency_max": _ms(stats.latency_max),
        "phases": {name: _ms(value) for name, value in stats.phase_averages.items()},
        "cold": {
            "count": stats.cold_count,
            "share_pct": _pct(stats.cold_count, stats.latency_count),
            "cold_avg": _ms(stats.cold_latency_avg),
            "warm_avg": _ms(stats.warm_latency_avg),
        }
        if stats.cold_count or lambda_like
        else None,
        "previous": {
            "probes": previous.count,
            "ok": previous.ok_count,
            "uptime_pct": previous_uptime,
            "p95": previous_p95,
        },
        "uptime_delta_pct": _delta(uptime, previous_uptime),
        "p95_delta_ms": _delta(percentiles["p95"], previous_p95),
    }


def _incident_row(incident, period: Period, now: datetime) -> dict:
    end = incident.closed_at or now
    in_period = max(0.0, (min(end, period.end) - max(incident.opened_at, period.start)).total_seconds())
    return {
        "target": incident.target.display_name,
        "kind": incident.target.kind,
        "opened_at": _iso(incident.opened_at),
        "closed_at": _iso(incident.closed_at),
        "open": incident.closed_at is None,
        "duration_seconds": round((end - incident.opened_at).total_seconds(), 3),
        "in_period_seconds": round(in_period, 3),
        "cause": incident.cause[:MAX_TEXT],
        "last_error": incident.last_error[:MAX_TEXT],
        "failures": incident.failure_count,
    }


def _steps(environment: Environment, period: Period) -> list[dict]:
    """Runbook attempts that started in the period (or, never started, were requested in it)."""
    in_period = Q(started_at__gte=period.start, started_at__lt=period.end) | Q(
        started_at=None, requested_at__gte=period.start, requested_at__lt=period.end
    )
    attempts = (
        Attempt.objects.filter(in_period, migration__environment=environment)
        .select_related("step", "requested_by", "approval__approved_by")
        .order_by("requested_at", "id")
    )
    rows = []
    for attempt in attempts:
        approval = getattr(attempt, "approval", None)
        rows.append(
            {
                "migration": attempt.migration_id,
                "position": attempt.step.position,
                "step": attempt.step.title,
                "action": attempt.action,
                "number": attempt.number,
                "status": attempt.status,
                "operator": attempt.requested_by.get_username(),
                "approved_by": approval.approved_by.get_username() if approval and approval.approved_by else "",
                "requested_at": _iso(attempt.requested_at),
                "started_at": _iso(attempt.started_at),
                "finished_at": _iso(attempt.finished_at),
                "duration_seconds": round(attempt.duration_seconds, 3)
                if attempt.started_at and attempt.finished_at
                else None,
                "error": (
                    f"{attempt.error.get('code', '')}: {attempt.error.get('message', '')}"
                    if attempt.error
                    else attempt.reason
                )[:MAX_TEXT],
            }
        )
    return rows


def _series(ids: list[int], period: Period) -> dict:
    """Chart points per target from hour or day rollups: [epoch seconds, probes, ok, avg ms, p95 ms]. A period
    reaching the present ends in the hour or day still filling."""
    resolution = Resolution.HOUR if period.length <= HOURLY_CHART_UP_TO else Resolution.DAY
    step = timedelta(seconds=int(resolution))
    first = floor_time(period.start, step)
    points: dict[int, list] = {target_id: [] for target_id in ids}
    rows = all_rollups(
        "target_id",
        "bucket",
        "count",
        "ok_count",
        "latency_count",
        "latency_sum",
        "p95_index",
        target_id__in=ids,
        resolution=resolution,
        bucket__gte=first,
        bucket__lt=period.end,
    ).order_by("target_id", "bucket")
    for target_id, bucket, count, ok_count, latency_count, latency_sum, p95 in rows.iterator(chunk_size=5000):
        points[target_id].append(
            [
                int(bucket.timestamp()),
                count,
                ok_count,
                _ms(latency_sum / latency_count) if latency_count else None,
                _ms(index_value(p95)),
            ]
        )
    return {
        "resolution": int(resolution),
        "start": int(first.timestamp()),
        "end": int(period.end.timestamp()),
        "targets": {str(target_id): values for target_id, values in points.items()},
    }


def history_settled(end: datetime) -> bool:
    """Whether the rollups a report over a range ending at `end` reads are all complete."""
    cursors = dict(RollupCursor.objects.values_list("resolution", "done_until"))
    for resolution in (Resolution.MINUTE, Resolution.HOUR, Resolution.DAY):
        needed = floor_time(end, timedelta(seconds=int(resolution)))
        if cursors.get(resolution) is None or cursors[resolution] < needed:
            return False
    return True


def _period_dict(period: Period) -> dict:
    return {
        "start": _iso(period.start),
        "end": _iso(period.end),
        "timezone": period.timezone,
        "kind": str(period.kind),
        "label": period.label,
        "seconds": period.length.total_seconds(),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 4) if whole else None


def _ms(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _delta(now_value: float | None, before: float | None) -> float | None:
    if now_value is None or before is None:
        return None
    return round(now_value - before, 4)
