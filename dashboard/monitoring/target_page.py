"""What a target's page shows: the status card, the range (summary, charts, steps, cold and warm
starts), the pages of raw results and incidents, and its live poll's changes; built from the selectors'
reads, stats.range_stats, the chart data and dashboard.formatting. The views parse, call one of these
and render."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.paginator import Paginator
from django.http import QueryDict
from django.utils.html import format_html_join

from dashboard import formatting as fmt
from dashboard import roles
from dashboard.models import Incident, ProbeResult, Target
from dashboard.monitoring import charts, selectors
from dashboard.monitoring.overview import event_rows
from dashboard.monitoring.range_chart import range_chart
from dashboard.monitoring.stats import (
    downtime_seconds,
    floor_time,
    incidents_overlapping,
    range_stats,
    rolled_up_until,
)
from dashboard.params import int_param

# A live poll re-sends the buckets of at least this tail of the range (rollups of the last minutes
# land late, after LATE_RESULT_GRACE).
LIVE_TAIL = timedelta(minutes=15)
RESULTS_PER_PAGE = 50
INCIDENTS_PER_PAGE = 20

# --- one target ---------------------------------------------------------------------------------------


def target_base(target: Target, spec: charts.RangeSpec) -> dict:
    """What every part of the target page needs."""
    return {"environment": target.environment, "target": target, "spec": spec, "ranges": charts.RANGES.values()}


def target_page(target: Target, spec: charts.RangeSpec, params: QueryDict, user, now: datetime) -> dict:
    incidents, newest = _incidents(target, params, now)
    # A target has at most one open incident, and it is its newest: the first page of incidents has it.
    first_page = incidents["incidents_pager"]["number"] == 1
    open_incident = (newest if newest and newest.closed_at is None else None) if first_page else UNREAD
    return {
        **target_base(target, spec),
        **status_part(target, user, now, open_incident),
        **range_part(target, spec, now),
        **results_part(target, params),
        **incidents,
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
    folded_until = rolled_up_until()
    buckets = selectors.chart_buckets(target, spec, tail_start, now, folded_until)
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
        **_summary(target, spec, now, folded_until),
    }
    if page == 1:
        newer = selectors.newer_results(target, after, RESULTS_PER_PAGE) if after is not None else []
        context["new_results"] = _result_rows(newer)
        context["after"] = newer[0].pk if newer else None
    return context


# status_part's incident argument when the caller has not read the open incident.
UNREAD: Any = object()


def status_part(target: Target, user, now: datetime, incident: Incident | None = UNREAD) -> dict:
    """The status card; `user` decides whether it offers pause and resume. `incident`: the target's open
    incident (or None), if the caller has read it."""
    if incident is UNREAD:
        incident = selectors.open_incident(target)
    return {
        "status": target.shown_status,
        "open_incident": incident,
        "open_for": fmt.duration(incident.duration_seconds(now)) if incident else "",
        "last_latency": fmt.latency_ms(target.last_latency_ms),
        "can_operate": roles.can_operate(user),
    }


def _summary(target: Target, spec: charts.RangeSpec, now: datetime, folded_until: datetime | None) -> dict:
    start = now - spec.span
    stats = range_stats([target.pk], start, now, settled=folded_until)[target.pk]
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
    folded_until = rolled_up_until()  # one reading for the chart and the summary
    events = event_rows(selectors.step_events(target.environment, start, now), target.environment, start, now)
    chart = {
        **range_chart(target, spec, start, now, folded_until),
        "start": start.timestamp(),
        "end": now.timestamp(),
        "events": [
            {
                "t": event["t"],
                "label": f"{event['title']}: {event['action']} #{event['number']} {event['status']} "
                f"by {event['operator']}",
                "status": event["status"],
                # A bake's window is shaded on the chart: its probes are the points inside it.
                "until": event["finished"].timestamp() if event["bake"] and event["finished"] else None,
            }
            for event in events
        ],
    }
    context = {"chart": chart, "events": events, "has_phases": bool(chart["phases"])}
    context.update(_summary(target, spec, now, folded_until))
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
                # Formatted here: the template's date filter was a fifth of the rows' rendering.
                "at": fmt.utc_clock(result.at),
                "ok": result.ok,
                "latency": fmt.latency_ms(result.latency_ms),
                # Markup made here: a template loop inside the 50 rows' loop was a fifth of the page's rendering.
                "phases": format_html_join(
                    "",
                    '<span class="kv">{} <span class="mono">{}</span></span>',
                    ((name, fmt.latency_ms(phases[name])) for name in ordered),
                ),
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
    return _incidents(target, params, now)[0]


def _incidents(target: Target, params: QueryDict, now: datetime) -> tuple[dict, Incident | None]:
    """incidents_part's context, and the first incident on its page (the newest, on the first page)."""
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
    context = {"incidents_pager": _pager(params, page, "ipage"), "incidents": rows}
    return context, (page.object_list[0] if page.object_list else None)
