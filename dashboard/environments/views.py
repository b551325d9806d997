"""The environments: the list, and one environment's live resources and migrations."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard import roles
from dashboard.access import environment_for_viewer
from dashboard.environments.resources import runbook_mode
from dashboard.environments.snapshot import POLL_SECONDS, environment_snapshot
from dashboard.models import Environment
from dashboard.readiness.checks import latest as latest_check


@require_GET
def environment_list(request: HttpRequest) -> HttpResponse:
    if not roles.can_view(request.user):
        raise PermissionDenied("You need the viewer role to see environments.")
    return render(request, "environments/environment_list.html", {"environments": Environment.objects.all()})


@require_GET
def environment_detail(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_viewer(request, slug)
    # Shared by every viewer and refreshed at most every POLL_SECONDS (dashboard/environments/snapshot.py).
    snapshot = environment_snapshot(environment)
    resources, error = snapshot.resources, snapshot.error
    context = {
        "environment": environment,
        "open_migration": environment.migrations.filter(status="open").select_related("started_by").first(),
        "past_migrations": environment.migrations.exclude(status="open").select_related("started_by")[:10],
        "can_operate": roles.can_operate(request.user),
        # The fault page itself decides whether this is the running sandbox's environment.
        "sandbox_faults_link": request.user.is_superuser
        and apps.is_installed("infra.sandbox")
        and bool(settings.SANDBOX_CONTROL_URL and environment.aws_endpoint_url),
        "resources": resources,
        "ownership": runbook_mode(environment, resources) if not error else None,
        "error": error,
        "snapshot": snapshot,
        "poll_seconds": POLL_SECONDS,
    }
    template = "environments/environment_detail.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#resources"  # the 15 s poll: the resources only
    else:
        context["readiness_check"] = latest_check(environment)
    return render(request, template, context)
