"""What the health pages show: their template contexts, built from the selectors' reads, the chart data
and dashboard.formatting. The views parse the request, call one of these and render.

Figures reach the templates as ready strings (ids too: the template engine localizes integers, which
at 1,000 overview rows costs more than the rest of the row); the markup is in templates/monitoring/.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.paginator import Paginator
from django.http import QueryDict
from django.urls import reverse

from dashboard import formatting as fmt
from dashboard import roles
from dashboard.models import Attempt, Environment, Incident, ProbeKind, ProbeResult, Target, TargetStatus
from dashboard.monitoring import charts, selectors
from dashboard.monitoring.stats import HOUR, downtime_seconds, floor_time, incidents_overlapping, range_stats
from dashboard.params import int_param

# A live poll re-sends the buckets of at least this tail of the range (rollups of the last minutes
# land late, after LATE_RESULT_GRACE).
LIVE_TAIL = timedelta(minutes=15)
RESULTS_PER_PAGE = 50
INCIDENTS_PER_PAGE = 20
SORTS = {
    "status": "down first",
    "kind": "by kind",
    "name": "by name",
}
KIND_LABELS = dict(ProbeKind.choices)
KIND_ORDER = {kind: position for position, kind in enumerate(ProbeKind.values)}
# The live poll answers this when a target was added or removed: rows cannot be patched in.
RELOAD = "reload"

# --- the overview -------------------------------------------------------------------------------------


def overview(environment: Environment, sort: str | None, now: datetime) -> dict:
    sort = sort if sort in SORTS else "status"
    targets = selectors.overview_targets(environment)
    incidents = selectors.open_incidents(environment)
    prefix = _target_url_prefix(environment)
    rows = _sort_rows([_overview_row(t, incidents.get(t["id"]), prefix, now) for t in targets], sort)
    return {
        "environment": environment,
        "rows": rows,
        "sort": sort,
        "sorts": SORTS,
        "counts": selectors.status_counts(targets),
        "total": len(rows),
        "since": max((t["changed"] for t in targets), default=0),
        "axis": selectors.micros(charts.day_axis(now)[0]),
        **_incidents_block(incidents, prefix, now),
        **_timeline(environment, now),
    }


def overview_changes(
    environment: Environment, since: datetime, shown: int | None, axis: str | None, now: datetime
) -> dict | str | None:
    """None when no target changed after `since` (one query); RELOAD when the page shows `shown` targets
    but the environment has another number; else the changed rows, counts and open incidents (each
    swapped out of band), the new `since`, and the timeline when the hour turned (`axis` is stale)."""
    changed = selectors.changed_targets(environment, since)
    if not changed:
        return None
    counts = selectors.status_counts_query(environment)
    if shown is not None and shown != sum(counts.values()):
        return RELOAD
    incidents = selectors.open_incidents(environment)
    prefix = _target_url_prefix(environment)
    context = {
        "environment": environment,
        "rows": [_overview_row(t, incidents.get(t["id"]), prefix, now) for t in changed],
        "counts": counts,
        "total": sum(counts.values()),
        "since": max(selectors.micros(since), *(t["changed"] for t in changed)),
        "oob": True,
        "axis": selectors.micros(charts.day_axis(now)[0]),
        **_incidents_block(incidents, prefix, now),
    }
    if axis != str(context["axis"]):
        context.update(_timeline(environment, now))  # the hour turned: move the timeline with the sparklines
    return context


def _target_url_prefix(environment: Environment) -> str:
    # One reverse() for the page instead of one per row.
    return reverse("health-overview", args=[environment.slug]) + "targets/"


def _uptime_cell(ratio: float | None) -> dict:
    return {"text": fmt.uptime(ratio), "grade": fmt.uptime_grade(ratio)}


def _overview_row(target: dict, incident: Incident | None, url_prefix: str, now: datetime) -> dict:
    status = selectors.shown_status(target)
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
        "last": fmt.latency_ms(target["last_latency_ms"]),
        "p95": fmt.latency_ms(target["p95_24h_ms"]),
        "uptimes": [_uptime_cell(target[name]) for name in ("uptime_24h", "uptime_7d", "uptime_30d")],
        "spark": charts.sparkline(target["spark"]),
        "incident": "",
        "group": None,
    }
    if incident is not None:
        opened = incident.opened_at
        open_for = fmt.duration((now - opened).total_seconds())
        row["incident"] = f"since {opened:%H:%M}" if now - opened < 20 * HOUR else f"since {opened:%m-%d %H:%M}"
        row["incident_title"] = f"down since {fmt.utc(opened)} ({open_for}): {incident.cause[:300]}"
    return row


def _sort_rows(rows: list[dict], sort: str) -> list[dict]:
    def by_name(row):
        return row["name"].lower()

    order = selectors.STATUS_ORDER
    if sort == "name":
        return sorted(rows, key=by_name)
    if sort == "kind":
        rows = sorted(rows, key=lambda r: (KIND_ORDER.get(r["kind"], 99), order.get(r["status"], 9), by_name(r)))
        _mark_groups(rows)
        return rows
    return sorted(rows, key=lambda r: (order.get(r["status"], 9), KIND_ORDER.get(r["kind"], 99), by_name(r)))


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


def _incidents_block(incidents: dict[int, Incident], prefix: str, now: datetime) -> dict:
    rows = [
        {
            "url": f"{prefix}{incident.target_id}/",
            "name": incident.target.display_name,
            "opened_at": incident.opened_at,
            "duration": fmt.duration((now - incident.opened_at).total_seconds()),
            "cause": incident.cause,
            "failures": incident.failure_count,
        }
        for incident in sorted(incidents.values(), key=lambda incident: incident.opened_at)
    ]
    return {"open_incidents": rows}


def _timeline(environment: Environment, now: datetime) -> dict:
    start, end = charts.day_axis(now)
    events = _event_rows(selectors.step_events(environment, start, end), environment, start, end)
    return {
        "timeline": {
            "start": start,
            "end": end,
            "now": f"{(now - start).total_seconds() / (end - start).total_seconds() * 100:.3f}",
            "ticks": [
                {"left": f"{hours / 24 * 100:.3f}", "label": f"{(start + HOUR * hours):%H:%M}"}
                for hours in range(0, 25, 6)
            ],
            "events": events,
        }
    }


def _event_rows(attempts: list[Attempt], environment: Environment, start: datetime, end: datetime) -> list[dict]:
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


# --- one target ---------------------------------------------------------------------------------------


def target_base(target: Target, spec: charts.RangeSpec) -> dict:
    """What every part of the target page needs."""
    return {"environment": target.environment, "target": target, "spec": spec, "ranges": charts.RANGES.values()}


def target_page(target: Target, spec: charts.RangeSpec, params: QueryDict, user, now: datetime) -> dict:
    return {
        **target_base(target, spec),
        **status_part(target, user, now),
        **range_part(target, spec, now),
        **results_part(target, params),
        **incidents_part(target, params, now),
        "since": selectors.micros(target.changed_at),
    }


def target_changes(
    target: Target,
    spec: charts.RangeSpec,
    since: datetime,
    *,
    page: int,
    after: int | None,
    user,
    now: datetime,
) -> dict | None:
    """None unless the target changed after `since` (a probe result, the rollup job, a pause); else its
    status, the range summary, results newer than `after` (on the first page) and the chart's newest
    buckets for health.js to merge."""
    if target.changed_at <= since:
        return None
    range_start = now - spec.span
    tail_start = max(range_start, min(since, now - LIVE_TAIL))
    buckets = selectors.chart_buckets(target, spec, tail_start, now)
    context = {
        "environment": target.environment,
        "target": target,
        "spec": spec,
        "since": selectors.micros(target.changed_at),
        "oob": True,
        "chart_tail": {
            **charts.chart_data(buckets, spec, charts.gap_seconds(target.interval_seconds, spec)),
            # The first bucket the page's chart keeps: older ones have left the range.
            "start": floor_time(range_start, spec.step).timestamp(),
        },
        **status_part(target, user, now),
        **_summary(target, spec, now),
    }
    if page == 1:
        newer = selectors.newer_results(target, after, RESULTS_PER_PAGE) if after is not None else []
        context["new_results"] = _result_rows(newer)
        context["after"] = newer[0].pk if newer else None
    return context


def status_part(target: Target, user, now: datetime) -> dict:
    """The status card; `user` decides whether it offers pause and resume."""
    incident = selectors.open_incident(target)
    return {
        "status": target.shown_status,
        "open_incident": incident,
        "open_for": fmt.duration(incident.duration_seconds(now)) if incident else "",
        "last_latency": fmt.latency_ms(target.last_latency_ms),
        "can_operate": roles.can_operate(user),
    }


def _summary(target: Target, spec: charts.RangeSpec, now: datetime) -> dict:
    start = now - spec.span
    stats = range_stats([target.pk], start, now)[target.pk]
    p50, p95, p99 = stats.histogram.percentiles(*charts.CHART_QUANTILES)
    incidents = incidents_overlapping([target.pk], start, now)
    summary = {
        "uptime": fmt.uptime(stats.uptime),
        "uptime_class": f"u-{fmt.uptime_grade(stats.uptime)}",
        "count": stats.count,
        "failures": stats.count - stats.ok_count,
        "p50": fmt.latency_ms(p50),
        "p95": fmt.latency_ms(p95),
        "p99": fmt.latency_ms(p99),
        "avg": fmt.latency_ms(stats.latency_avg),
        "min": fmt.latency_ms(stats.latency_min),
        "max": fmt.latency_ms(stats.latency_max),
        "incidents": len(incidents),
        "downtime": fmt.duration(downtime_seconds(incidents, start, now, now)),
    }
    context = {"summary": summary}
    if target.reports_cold_starts:
        context["cold_warm"] = {
            "cold_count": stats.cold_count,
            "warm_count": stats.latency_count - stats.cold_count,
            "cold_avg": fmt.latency_ms(stats.cold_latency_avg),
            "warm_avg": fmt.latency_ms(stats.warm_latency_avg),
        }
    return context


def range_part(target: Target, spec: charts.RangeSpec, now: datetime) -> dict:
    start = now - spec.span
    buckets = selectors.chart_buckets(target, spec, start, now)
    events = _event_rows(selectors.step_events(target.environment, start, now), target.environment, start, now)
    chart = {
        **charts.chart_data(buckets, spec, charts.gap_seconds(target.interval_seconds, spec)),
        "start": start.timestamp(),
        "end": now.timestamp(),
        "events": [
            {
                "t": event["t"],
                "label": f"{event['title']}: {event['action']} #{event['number']} {event['status']} "
                f"by {event['operator']}",
                "status": event["status"],
            }
            for event in events
        ],
    }
    context = {"chart": chart, "events": events, "has_phases": bool(chart["phases"])}
    context.update(_summary(target, spec, now))
    if target.reports_cold_starts:
        percentiles = selectors.cold_warm_percentiles(target, now)
        context["cold_warm"].update(
            {
                kind: {"n": values["n"], "p50": fmt.latency_ms(values["p50"]), "p95": fmt.latency_ms(values["p95"])}
                for kind, values in percentiles.items()
            }
        )
    return context


def _pager(params: QueryDict, page, param: str) -> dict:
    """Links to the first, previous, next and last pages, keeping the other parameters (range, the other pager)."""

    def href(number: int) -> str:
        linked = params.copy()
        linked[param] = number
        return "?" + linked.urlencode()

    paginator = page.paginator
    return {
        "number": page.number,
        "pages": paginator.num_pages,
        "count": paginator.count,
        "first": href(1) if page.number > 1 else "",
        "prev": href(page.previous_page_number()) if page.has_previous() else "",
        "next": href(page.next_page_number()) if page.has_next() else "",
        "last": href(paginator.num_pages) if page.number < paginator.num_pages else "",
    }


def _page_number(params: QueryDict, name: str) -> int:
    return int_param(params, name, 1, minimum=1)


def _result_rows(results: list[ProbeResult]) -> list[dict]:
    rows = []
    for result in results:
        phases = result.phases or {}
        ordered = [name for name in charts.phase_order(phases) if isinstance(phases[name], (int, float))]
        rows.append(
            {
                "id": result.pk,
                "at": result.at,
                "ok": result.ok,
                "latency": fmt.latency_ms(result.latency_ms),
                "phases": [(name, fmt.latency_ms(phases[name])) for name in ordered],
                "cold": result.cold_start,
                "error": result.error,
            }
        )
    return rows


def results_part(target: Target, params: QueryDict) -> dict:
    paginator = Paginator(selectors.results_queryset(target), RESULTS_PER_PAGE)
    page = paginator.get_page(_page_number(params, "page"))
    rows = _result_rows(page.object_list)
    return {
        "results_pager": _pager(params, page, "page"),
        "results": rows,
        "results_page_number": page.number,
        "after": rows[0]["id"] if rows and page.number == 1 else 0,
    }


def incidents_part(target: Target, params: QueryDict, now: datetime) -> dict:
    paginator = Paginator(selectors.incidents_queryset(target), INCIDENTS_PER_PAGE)
    page = paginator.get_page(_page_number(params, "ipage"))
    rows = [
        {
            "opened_at": incident.opened_at,
            "closed_at": incident.closed_at,
            "duration": fmt.duration(incident.duration_seconds(now)),
            "cause": incident.cause,
            "last_error": incident.last_error,
            "failures": incident.failure_count,
        }
        for incident in page.object_list
    ]
    return {"incidents_pager": _pager(params, page, "ipage"), "incidents": rows}
