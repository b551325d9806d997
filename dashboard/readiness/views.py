"""The environment page's readiness card: the latest check's checklist, and the button that runs a new one."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard import roles
from dashboard.access import environment_for_operator, environment_for_viewer
from dashboard.readiness import checks


def _card(request: HttpRequest, environment) -> HttpResponse:
    context = {
        "environment": environment,
        "check": checks.latest(environment),
        "can_operate": roles.can_operate(request.user),
    }
    return render(request, "readiness/_card.html", context)


@require_GET
def readiness_card(request: HttpRequest, slug: str) -> HttpResponse:
    return _card(request, environment_for_viewer(request, slug))


@require_POST
def readiness_check(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_operator(request, slug, event="readiness.check")
    try:
        checks.request_check(environment, request.user, request.META.get("REMOTE_ADDR") or None)
    except checks.CheckRefused as refusal:
        messages.error(request, str(refusal))
    if request.htmx:
        return _card(request, environment)
    return redirect(environment)
