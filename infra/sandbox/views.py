"""The sandbox's fault switches, for superusers, on the sandbox environment only.

Which environment is the sandbox is not decided by its name: the page exists only when the
SANDBOX_CONTROL_URL setting names a running sandbox (empty in production: always 404), and only for
the environment whose AWS endpoint URL is the one that sandbox reports.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard.models import Environment
from infra.sandbox.control import ControlError, get_network_path, get_state, set_faults
from infra.sandbox.faults import FaultError, parse_value


def _sandbox_environment(request: HttpRequest, slug: str) -> tuple[Environment, dict[str, Any] | None, str]:
    """The environment if it is the running sandbox's, with the sandbox's state (or why it is unknown)."""
    environment = get_object_or_404(Environment, slug=slug)
    if not request.user.is_superuser:
        raise PermissionDenied("Only superusers can switch sandbox faults.")
    control_url = settings.SANDBOX_CONTROL_URL
    if not control_url or not environment.aws_endpoint_url:
        raise Http404("No sandbox here.")
    try:
        state = get_state(control_url)
    except ControlError as exc:
        return environment, None, str(exc)
    if state.get("aws_endpoint_url", "").rstrip("/") != environment.aws_endpoint_url.rstrip("/"):
        raise Http404("This environment is not the sandbox's.")
    return environment, state, ""


@require_GET
def sandbox_faults(request: HttpRequest, slug: str) -> HttpResponse:
    environment, state, error = _sandbox_environment(request, slug)
    switches = []
    if state:
        descriptions, choices = state.get("descriptions", {}), state.get("choices", {})
        switches = [
            {
                "name": name,
                "value": value,
                "choices": choices.get(name) or [],
                "numeric": isinstance(value, int) and not isinstance(value, bool),
                "on": bool(value) and value != "off",
                "help": descriptions.get(name, ""),
            }
            for name, value in state["faults"].items()
        ]
    context = {
        "environment": environment,
        "switches": switches,
        "network_path": _network_path() if state else None,
        "revoked_rules": (state or {}).get("revoked_rules") or [],
        "error": error,
    }
    return render(request, "sandbox/faults.html", context, status=503 if error else 200)


def _network_path() -> dict[str, Any]:
    try:
        return get_network_path(settings.SANDBOX_CONTROL_URL)
    except ControlError as exc:
        return {"checked": False, "reason": str(exc)}


@require_POST
def sandbox_set_fault(request: HttpRequest, slug: str) -> HttpResponse:
    environment, state, error = _sandbox_environment(request, slug)
    if error:
        messages.error(request, error)
        return redirect("sandbox-faults", slug=environment.slug)
    name, raw = request.POST.get("name", ""), request.POST.get("value", "")
    try:
        value = parse_value(name, raw)
        set_faults(settings.SANDBOX_CONTROL_URL, {name: value})
    except (FaultError, ControlError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{name} is now {value}.")
    return redirect("sandbox-faults", slug=environment.slug)
