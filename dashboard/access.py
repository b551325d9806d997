"""One place that decides who may see or act on what."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from dashboard import roles
from dashboard.models import AuditEvent, Environment, MigrationRun, Target


def environment_for_viewer(request: HttpRequest, slug: str) -> Environment:
    """The environment named by `slug` if the user may read it; 404 if it does not exist, 403 if not allowed."""
    environment = get_object_or_404(Environment, slug=slug)
    if not roles.can_view(request.user):
        refuse(request, environment, "environment.view", "You need the viewer role to see environments.")
    return environment


def target_for_viewer(request: HttpRequest, slug: str, pk: int) -> Target:
    """Target `pk` of the environment named by `slug`, with its environment, as environment_for_viewer decides;
    one query for a viewer (the pages and polls of a target are most requests)."""
    if not roles.can_view(request.user):
        environment_for_viewer(request, slug)  # 404 or the recorded refusal
    return get_object_or_404(Target.objects.select_related("environment"), pk=pk, environment__slug=slug)


def environment_for_operator(request: HttpRequest, slug: str, *, event: str = "") -> Environment:
    environment = environment_for_viewer(request, slug)
    require_operator(request, environment, event=event)
    return environment


def require_operator(
    request: HttpRequest, environment: Environment, *, event: str = "", migration: MigrationRun | None = None
) -> None:
    """403 unless the user holds the operator role, the refusal written to the audit trail first."""
    if not roles.can_operate(request.user):
        refuse(
            request,
            environment,
            event or _event_of(request),
            "You need the operator role to act on an environment.",
            migration=migration,
        )


def refuse(
    request: HttpRequest, environment: Environment, event: str, reason: str, *, migration: MigrationRun | None = None
) -> None:
    """Record who was refused what, from where and why (like the services' refusals), then raise the 403."""
    user = request.user if request.user.is_authenticated else None
    AuditEvent.objects.create(
        environment=environment,
        migration=migration,
        user=user,
        source_address=request.META.get("REMOTE_ADDR") or None,
        action=event[: AuditEvent._meta.get_field("action").max_length],
        outcome="refused",
        details={"reason": reason, "request": f"{request.method} {request.path}"[:500]},
    )
    raise PermissionDenied(reason)


def _event_of(request: HttpRequest) -> str:
    """The view's URL name (report-generate, maintenance-add, …) names a refusal no caller named."""
    match = request.resolver_match
    return f"view.{match.url_name}" if match and match.url_name else "view"
