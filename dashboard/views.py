from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import roles
from .access import environment_for_viewer
from .aws import AWS_EXCEPTIONS, describe_error
from .models import Environment
from .services.health import velaops_health
from .services.resources import environment_resources


@require_GET
def environment_list(request: HttpRequest) -> HttpResponse:
    if not roles.can_view(request.user):
        raise PermissionDenied("You need the viewer role to see environments.")
    return render(request, "dashboard/environment_list.html", {"environments": Environment.objects.all()})


@require_GET
def environment_detail(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_viewer(request, slug)
    started = time.monotonic()
    error = None
    try:
        resources = environment_resources(environment)
    except AWS_EXCEPTIONS as exc:  # e.g. the role cannot be assumed: nothing else can be read
        resources, error = [], describe_error(exc)
    context = {
        "environment": environment,
        "open_migration": environment.migrations.filter(status="open").select_related("started_by").first(),
        "past_migrations": environment.migrations.exclude(status="open").select_related("started_by")[:10],
        "can_operate": roles.can_operate(request.user),
        # The fault page itself decides whether this is the running sandbox's environment.
        "sandbox_faults_link": request.user.is_superuser
        and bool(settings.SANDBOX_CONTROL_URL and environment.aws_endpoint_url),
        "resources": resources,
        "error": error,
        "checked_in_ms": round((time.monotonic() - started) * 1000),
    }
    template = "dashboard/environment_detail.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#resources"
    return render(request, template, context)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = velaops_health()
    return JsonResponse(report, status=200 if report["status"] != "down" else 503)
