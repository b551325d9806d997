"""Health pages: the overview of an environment's targets, one target's history, their live polls,
and pausing or resuming a target. Thin: contexts from monitoring.overview and monitoring.target_page, the pause in
monitoring.targets; one template per page whose named partials serve HTMX swaps and polls."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRefresh

from dashboard.access import environment_for_operator, environment_for_viewer, target_for_viewer
from dashboard.models import Target
from dashboard.monitoring import overview, selectors, target_page, targets
from dashboard.monitoring.charts import range_spec
from dashboard.params import int_param

OVERVIEW = "monitoring/health_overview.html"
DETAIL = "monitoring/health_target.html"


def _partial_request(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _since(request: HttpRequest):
    return selectors.from_micros(int_param(request.GET, "since"))


# --- the overview -------------------------------------------------------------------------------------


@require_GET
def health_overview(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_viewer(request, slug)
    context = overview.overview(environment, request.GET.get("sort"), timezone.now())
    return render(request, OVERVIEW, context)


@never_cache
@require_GET
def health_overview_live(request: HttpRequest, slug: str) -> HttpResponse:
    """204 unless a target changed after `since`; else the changed rows, counts and open incidents,
    each swapped out of band, and the new `since`."""
    environment = environment_for_viewer(request, slug)
    shown = int_param(request.GET, "n", None)
    context = overview.overview_changes(environment, _since(request), shown, request.GET.get("axis"), timezone.now())
    if context is None:
        return HttpResponse(status=204)
    if context == overview.RELOAD:
        return HttpResponseClientRefresh()
    return render(request, OVERVIEW + "#live", context)


# --- one target ---------------------------------------------------------------------------------------


def _target(request: HttpRequest, slug: str, pk: int, *, operate: bool = False) -> Target:
    if operate:
        environment = environment_for_operator(request, slug)
        target = get_object_or_404(Target, pk=pk, environment=environment)
        target.environment = environment  # get_absolute_url without another query
        return target
    return target_for_viewer(request, slug, pk)


@require_GET
def target_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    target = _target(request, slug, pk)
    spec = range_spec(request.GET.get("range"))
    now = timezone.now()
    if _partial_request(request):
        # Range links, and the pagers of results and incidents, swap only their own part.
        part = {
            "range-body": lambda: target_page.range_part(target, spec, now),
            "results": lambda: target_page.results_part(target, request.GET),
            "incidents": lambda: target_page.incidents_part(target, request.GET, now),
        }.get(request.htmx.target)
        if part is not None:
            context = {**target_page.target_base(target, spec), **part()}
            return render(request, f"{DETAIL}#{request.htmx.target}", context)
    context = target_page.target_page(target, spec, request.GET, request.user, now)
    return render(request, DETAIL, context)


@never_cache
@require_GET
def target_detail_live(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """204 unless the target changed after `since`; else what changed, swapped out of band."""
    target = _target(request, slug, pk)
    context = target_page.target_changes(
        target,
        range_spec(request.GET.get("range")),
        _since(request),
        page=int_param(request.GET, "page", 1, minimum=1),
        after=int_param(request.GET, "after", None),
        user=request.user,
        now=timezone.now(),
    )
    if context is None:
        return HttpResponse(status=204)
    return render(request, DETAIL + "#live", context)


# --- pause and resume -----------------------------------------------------------------------------------


@require_POST
def target_pause(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _set_paused(request, slug, pk, paused=True)


@require_POST
def target_resume(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    return _set_paused(request, slug, pk, paused=False)


def _set_paused(request: HttpRequest, slug: str, pk: int, *, paused: bool) -> HttpResponse:
    target = _target(request, slug, pk, operate=True)
    changed = targets.set_paused(target, paused, user=request.user, source_address=request.META.get("REMOTE_ADDR"))
    verb = "paused" if paused else "resumed"
    if changed:
        messages.success(request, f"Probing of “{target.display_name}” {verb}.")
    else:
        messages.info(request, f"“{target.display_name}” was already {verb}.")
    if not _partial_request(request):
        return redirect(target)
    environment = target.environment
    target.refresh_from_db()
    target.environment = environment
    context = {
        "environment": environment,
        "target": target,
        "show_messages": True,
        **target_page.status_part(target, request.user, timezone.now()),
    }
    return render(request, DETAIL + "#status", context)
