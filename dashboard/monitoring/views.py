"""Health pages: the overview of an environment's targets, one target's history, their live polls,
and pausing or resuming a target. Thin: reads in monitoring.queries, one template per page whose
named partials serve HTMX swaps and polls."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from dashboard import roles
from dashboard.access import environment_for_operator, environment_for_viewer
from dashboard.models import AuditEvent, Environment, Incident, Target
from dashboard.monitoring import queries as q
from dashboard.monitoring.stats import downtime_seconds, floor_time, incidents_overlapping, range_stats
from dashboard.params import int_param

OVERVIEW = "monitoring/health_overview.html"
DETAIL = "monitoring/health_target.html"


def _partial_request(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


# --- the overview -------------------------------------------------------------------------------------


@require_GET
def health_overview(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_viewer(request, slug)
    now = timezone.now()
    sort = request.GET.get("sort") if request.GET.get("sort") in q.SORTS else "status"
    targets = q.overview_targets(environment)
    incidents = q.open_incidents(environment)
    prefix = q.target_url_prefix(environment)
    rows = q.sort_rows([q.overview_row(t, incidents.get(t["id"]), prefix, now) for t in targets], sort)
    context = {
        "environment": environment,
        "rows": rows,
        "sort": sort,
        "sorts": q.SORTS,
        "counts": q.status_counts(targets),
        "total": len(rows),
        "since": max((t["changed"] for t in targets), default=0),
        "axis": q.micros(q.day_axis(now)[0]),
        **_incidents_block(incidents, prefix, now),
        **_timeline(environment, now),
    }
    return render(request, OVERVIEW, context)


@never_cache
@require_GET
def health_overview_live(request: HttpRequest, slug: str) -> HttpResponse:
    """204 unless a target changed after `since`; else the changed rows, counts and open incidents,
    each swapped out of band, and the new `since`."""
    environment = environment_for_viewer(request, slug)
    since = q.from_micros(int_param(request.GET, "since"))
    changed = q.changed_targets(environment, since)
    if not changed:
        return HttpResponse(status=204)
    counts = q.status_counts_query(environment)
    shown = int_param(request.GET, "n", None)
    if shown is not None and shown != sum(counts.values()):
        return HttpResponseClientRefresh()  # a target was added or removed: rows cannot be patched in
    now = timezone.now()
    incidents = q.open_incidents(environment)
    prefix = q.target_url_prefix(environment)
    context = {
        "environment": environment,
        "rows": [q.overview_row(t, incidents.get(t["id"]), prefix, now) for t in changed],
        "counts": counts,
        "total": sum(counts.values()),
        "since": max(q.micros(since), *(t["changed"] for t in changed)),
        "oob": True,
        **_incidents_block(incidents, prefix, now),
    }
    context["axis"] = q.micros(q.day_axis(now)[0])
    if request.GET.get("axis") != str(context["axis"]):
        context.update(_timeline(environment, now))  # the hour turned: move the timeline with the sparklines
    return render(request, OVERVIEW + "#live", context)


def _incidents_block(incidents: dict[int, Incident], prefix: str, now: datetime) -> dict:
    rows = [
        {
            "url": f"{prefix}{incident.target_id}/",
            "name": incident.target.display_name,
            "opened_at": incident.opened_at,
            "duration": q.format_duration((now - incident.opened_at).total_seconds()),
            "cause": incident.cause,
            "failures": incident.failure_count,
        }
        for incident in sorted(incidents.values(), key=lambda incident: incident.opened_at)
    ]
    return {"open_incidents": rows}


def _timeline(environment: Environment, now: datetime) -> dict:
    start, end = q.day_axis(now)
    events = q.event_rows(q.step_events(environment, start, end), environment, start, end)
    return {
        "timeline": {
            "start": start,
            "end": end,
            "now": f"{(now - start).total_seconds() / (end - start).total_seconds() * 100:.3f}",
            "ticks": [
                {"left": f"{hours / 24 * 100:.3f}", "label": f"{(start + q.HOUR * hours):%H:%M}"}
                for hours in range(0, 25, 6)
            ],
            "events": events,
        }
    }


# --- one target ---------------------------------------------------------------------------------------


def _target(request: HttpRequest, slug: str, pk: int, *, operate: bool = False) -> Target:
    environment = (environment_for_operator if operate else environment_for_viewer)(request, slug)
    target = get_object_or_404(Target, pk=pk, environment=environment)
    target.environment = environment  # get_absolute_url without another query
    return target


def _range(request: HttpRequest) -> q.RangeSpec:
    return q.RANGES.get(request.GET.get("range", ""), q.RANGES[q.DEFAULT_RANGE])


@require_GET
def target_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    target = _target(request, slug, pk)
    spec = _range(request)
    now = timezone.now()
    base = {"environment": target.environment, "target": target, "spec": spec, "ranges": q.RANGES.values()}
    if _partial_request(request):
        # Range links, and the pagers of results and incidents, swap only their own part.
        if request.htmx.target == "range-body":
            return render(request, DETAIL + "#range-body", {**base, **_range_context(target, spec, now)})
        if request.htmx.target == "results":
            return render(request, DETAIL + "#results", {**base, **_results_context(request, target)})
        if request.htmx.target == "incidents":
            return render(request, DETAIL + "#incidents", {**base, **_incidents_context(request, target, now)})
    context = {
        **base,
        **_status_context(request, target, now),
        **_range_context(target, spec, now),
        **_results_context(request, target),
        **_incidents_context(request, target, now),
        "since": q.micros(target.changed_at),
    }
    return render(request, DETAIL, context)


@never_cache
@require_GET
def target_detail_live(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """204 unless the target changed after `since` (a probe result, the rollup job, a pause); else its
    status, the range summary, results newer than `after` (on the first page) and the chart's newest
    buckets for health.js to merge."""
    target = _target(request, slug, pk)
    since = q.from_micros(int_param(request.GET, "since"))
    if target.changed_at <= since:
        return HttpResponse(status=204)
    spec = _range(request)
    now = timezone.now()
    range_start = now - spec.span
    tail_start = max(range_start, min(since, now - q.LIVE_TAIL))
    points = q.chart_points(target, spec, tail_start, now)
    context = {
        "environment": target.environment,
        "target": target,
        "spec": spec,
        "since": q.micros(target.changed_at),
        "oob": True,
        "chart_tail": {
            **q.chart_data(points, spec, q.gap_seconds(target, spec)),
            # The first bucket the page's chart keeps: older ones have left the range.
            "start": floor_time(range_start, spec.step).timestamp(),
        },
        **_status_context(request, target, now),
        **_summary_context(target, spec, now),
    }
    if int_param(request.GET, "page", 1, minimum=1) == 1:
        after = int_param(request.GET, "after", None)
        newer = q.newer_results(target, after) if after is not None else []
        context["new_results"] = q.result_rows(newer)
        context["after"] = newer[0].pk if newer else None
    return render(request, DETAIL + "#live", context)


def _status_context(request: HttpRequest, target: Target, now: datetime) -> dict:
    incident = target.incidents.filter(closed_at=None).first()
    return {
        "status": target.shown_status,
        "open_incident": incident,
        "open_for": q.format_duration(incident.duration_seconds(now)) if incident else "",
        "last_latency": q.format_ms(target.last_latency_ms),
        "can_operate": roles.can_operate(request.user),
    }


def _summary_context(target: Target, spec: q.RangeSpec, now: datetime) -> dict:
    start = now - spec.span
    stats = range_stats([target.pk], start, now)[target.pk]
    p50, p95, p99 = stats.histogram.percentiles(*q.CHART_QUANTILES)
    incidents = incidents_overlapping([target.pk], start, now)
    summary = {
        "uptime": q.format_uptime(stats.uptime),
        "uptime_class": q.uptime_class(stats.uptime),
        "count": stats.count,
        "failures": stats.count - stats.ok_count,
        "p50": q.format_ms(p50),
        "p95": q.format_ms(p95),
        "p99": q.format_ms(p99),
        "avg": q.format_ms(stats.latency_avg),
        "min": q.format_ms(stats.latency_min),
        "max": q.format_ms(stats.latency_max),
        "incidents": len(incidents),
        "downtime": q.format_duration(downtime_seconds(incidents, start, now, now)),
    }
    context = {"summary": summary}
    if target.reports_cold_starts:
        context["cold_warm"] = {
            "cold_count": stats.cold_count,
            "warm_count": stats.latency_count - stats.cold_count,
            "cold_avg": q.format_ms(stats.cold_latency_avg),
            "warm_avg": q.format_ms(stats.warm_latency_avg),
        }
    return context


def _range_context(target: Target, spec: q.RangeSpec, now: datetime) -> dict:
    start = now - spec.span
    points = q.chart_points(target, spec, start, now)
    attempts = q.step_events(target.environment, start, now)
    events = q.event_rows(attempts, target.environment, start, now)
    chart = {
        **q.chart_data(points, spec, q.gap_seconds(target, spec)),
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
    context.update(_summary_context(target, spec, now))
    if target.reports_cold_starts:
        percentiles = q.cold_warm_percentiles(target, now)
        context["cold_warm"].update(
            {
                kind: {"n": values["n"], "p50": q.format_ms(values["p50"]), "p95": q.format_ms(values["p95"])}
                for kind, values in percentiles.items()
            }
        )
    return context


def _page_number(request: HttpRequest, name: str) -> int:
    return int_param(request.GET, name, 1, minimum=1)


def _pager(request: HttpRequest, page, param: str) -> dict:
    """Links to the first, previous, next and last pages, keeping the other parameters (range, the other pager)."""

    def href(number: int) -> str:
        params = request.GET.copy()
        params[param] = number
        return "?" + params.urlencode()

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


def _results_context(request: HttpRequest, target: Target) -> dict:
    page = Paginator(q.results_queryset(target), q.RESULTS_PER_PAGE).get_page(_page_number(request, "page"))
    rows = q.result_rows(page.object_list)
    return {
        "results_pager": _pager(request, page, "page"),
        "results": rows,
        "results_page_number": page.number,
        "after": rows[0]["id"] if rows and page.number == 1 else 0,
    }


def _incidents_context(request: HttpRequest, target: Target, now: datetime) -> dict:
    page = Paginator(q.incidents_queryset(target), q.INCIDENTS_PER_PAGE).get_page(_page_number(request, "ipage"))
    rows = [
        {
            "opened_at": incident.opened_at,
            "closed_at": incident.closed_at,
            "duration": q.format_duration(incident.duration_seconds(now)),
            "cause": incident.cause,
            "last_error": incident.last_error,
            "failures": incident.failure_count,
        }
        for incident in page.object_list
    ]
    return {"incidents_pager": _pager(request, page, "ipage"), "incidents": rows}


# --- pause and resume -----------------------------------------------------------------------------------


@require_POST
def target_pause(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _set_paused(request, slug, pk, paused=True)


@require_POST
def target_resume(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _set_paused(request, slug, pk, paused=False)


def _set_paused(request: HttpRequest, slug: str, pk: int, *, paused: bool) -> HttpResponse:
    target = _target(request, slug, pk, operate=True)
    verb = "paused" if paused else "resumed"
    with transaction.atomic():
        # Compare-and-set: two clicks record one change. A resumed target is due at once (its
        # next_due_at passed while it was paused).
        changed = Target.objects.filter(pk=target.pk, paused=not paused).update(
            paused=paused, changed_at=timezone.now()
        )
        if changed:
            AuditEvent.objects.create(
                environment=target.environment,
                user=request.user,
                source_address=request.META.get("REMOTE_ADDR") or None,
                action="target.pause" if paused else "target.resume",
                details={"target_id": target.pk, "target": target.name, "kind": target.kind},
            )
    if changed:
        messages.success(request, f"Probing of “{target.display_name}” {verb}.")
    else:
        messages.info(request, f"“{target.display_name}” was already {verb}.")
    if _partial_request(request):
        environment = target.environment
        target.refresh_from_db()
        target.environment = environment
        context = {
            "environment": environment,
            "target": target,
            "show_messages": True,
            **_status_context(request, target, timezone.now()),
        }
        return render(request, DETAIL + "#status", context)
    return redirect(target)
