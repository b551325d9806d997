"""Pages and actions of a migration run. Thin: access checks here, the work in services.migrations."""

from __future__ import annotations

import hashlib
import json

from django.contrib import messages
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import roles
from .access import environment_for_operator, environment_for_viewer
from .models import Approval, Attempt, AttemptLog, MigrationRun, Step
from .runbook import step_definition
from .services import migrations as service
from .services.migration_export import migration_as_json, migration_as_markdown

LOG_BATCH = 500  # lines per live-tail answer; a fast step catches up over a few polls


def _migration(request: HttpRequest, slug: str, pk: int, *, operate: bool = False) -> MigrationRun:
    environment = (environment_for_operator if operate else environment_for_viewer)(request, slug)
    return get_object_or_404(
        MigrationRun.objects.select_related("environment", "started_by"), pk=pk, environment=environment
    )


def _source(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a trusted proxy rewrote it.
    return request.META.get("REMOTE_ADDR") or None


@require_POST
def migration_start(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    try:
        migration = service.migration_start(environment=environment, user=request.user, source_address=_source(request))
    except service.ActionRefused as refusal:
        messages.error(request, str(refusal))
        return redirect(environment)
    messages.success(request, f"Migration {migration.pk} started with runbook {migration.runbook_version}.")
    return redirect(migration)


@require_GET
def migration_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    migration = _migration(request, slug, pk)
    context = steps_context(request, migration)
    if request.htmx and not request.htmx.history_restore_request:
        if request.GET.get("v") == context["version"]:
            return HttpResponse(status=204)  # nothing changed: the cheapest possible answer
        return render(request, "dashboard/migration_detail.html#steps", context)
    context["audit_events"] = migration.audit_events.select_related("user")[:100]
    return render(request, "dashboard/migration_detail.html", context)


def steps_context(request: HttpRequest, migration: MigrationRun) -> dict:
    attempts = Attempt.objects.select_related("requested_by").order_by("number")
    approvals = Approval.objects.filter(used_by_attempt__isnull=True).select_related("requested_by", "approved_by")
    steps = list(
        migration.steps.prefetch_related(
            Prefetch("attempts", queryset=attempts), Prefetch("approvals", queryset=approvals)
        )
    )
    rows = []
    blocked = False
    for step in steps:
        definition = step_definition(step.key)
        step_attempts = list(step.attempts.all())
        rows.append(
            {
                "step": step,
                "definition": definition,
                "attempts": step_attempts,
                "latest": step_attempts[-1] if step_attempts else None,
                "approvals": list(step.approvals.all()),
                "reachable": not blocked,
                "run_label": {"failed": "Retry", "rolled_back": "Run again"}.get(step.state, "Run"),
                "confirm_run": definition.confirmation_name(step, migration.environment)
                if definition and definition.destructive
                else "",
                "confirm_rollback": definition.confirmation_name(step, migration.environment)
                if definition and definition.rollback_destructive
                else "",
            }
        )
        blocked = blocked or step.state not in service.DONE_STATES
    active = next((a for row in rows for a in row["attempts"] if a.is_active), None)
    fingerprint = json.dumps(
        [
            migration.status,
            [
                (
                    r["step"].state,
                    [(a.pk, a.status) for a in r["attempts"]],
                    [(p.pk, p.approved_by_id) for p in r["approvals"]],
                )
                for r in rows
            ],
        ]
    )
    return {
        "environment": migration.environment,
        "migration": migration,
        "rows": rows,
        "active": active,
        "version": hashlib.blake2s(fingerprint.encode(), digest_size=8).hexdigest(),
        "can_operate": roles.can_operate(request.user) and migration.status == MigrationRun.Status.OPEN,
        "can_approve": roles.can_approve(request.user),
    }


def _after_action(request: HttpRequest, migration: MigrationRun) -> HttpResponse:
    if request.htmx:
        return render(request, "dashboard/migration_detail.html#steps", steps_context(request, migration))
    return redirect(migration)


def _act(request: HttpRequest, migration: MigrationRun, do, success: str) -> HttpResponse:
    try:
        do()
    except service.ActionRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, success)
    return _after_action(request, migration)


@require_POST
def step_action(request: HttpRequest, slug: str, pk: int, step_pk: int, action: str) -> HttpResponse:
    migration = _migration(request, slug, pk, operate=True)
    step = get_object_or_404(Step, pk=step_pk, migration=migration)
    if action not in Attempt.Action.values:
        return HttpResponse(status=404)

    def do():
        service.attempt_request(
            step=step,
            action=action,
            user=request.user,
            source_address=_source(request),
            confirmation=request.POST.get("confirmation", ""),
            reason=request.POST.get("reason", ""),
        )

    verb = {"run": "queued", "rollback": "rollback queued", "skip": "skipped"}[action]
    return _act(request, migration, do, f"“{step.title}” {verb}.")


@require_POST
def attempt_cancel(request: HttpRequest, slug: str, pk: int, attempt_pk: int) -> HttpResponse:
    migration = _migration(request, slug, pk, operate=True)
    attempt = get_object_or_404(Attempt.objects.select_related("step"), pk=attempt_pk, migration=migration)
    return _act(
        request,
        migration,
        lambda: service.attempt_cancel(attempt=attempt, user=request.user, source_address=_source(request)),
        f"Cancel requested for “{attempt.step.title}”.",
    )


@require_POST
def approval_request(request: HttpRequest, slug: str, pk: int, step_pk: int, action: str) -> HttpResponse:
    migration = _migration(request, slug, pk, operate=True)
    step = get_object_or_404(Step, pk=step_pk, migration=migration)
    return _act(
        request,
        migration,
        lambda: service.approval_request(step=step, action=action, user=request.user, source_address=_source(request)),
        f"Approval requested for “{step.title}” ({action}).",
    )


@require_POST
def approval_grant(request: HttpRequest, slug: str, pk: int, approval_pk: int) -> HttpResponse:
    migration = _migration(request, slug, pk)  # approvers need not be operators
    approval = get_object_or_404(Approval.objects.select_related("step"), pk=approval_pk, step__migration=migration)
    return _act(
        request,
        migration,
        lambda: service.approval_grant(approval=approval, user=request.user, source_address=_source(request)),
        f"Approved {approval.action} of “{approval.step.title}”.",
    )


@require_POST
def migration_abandon(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    migration = _migration(request, slug, pk, operate=True)
    return _act(
        request,
        migration,
        lambda: service.migration_abandon(
            migration=migration,
            user=request.user,
            source_address=_source(request),
            reason=request.POST.get("reason", ""),
        ),
        "Migration abandoned.",
    )


@require_GET
def attempt_detail(request: HttpRequest, slug: str, pk: int, attempt_pk: int) -> HttpResponse:
    migration = _migration(request, slug, pk)
    attempt = get_object_or_404(
        Attempt.objects.select_related("step", "requested_by"), pk=attempt_pk, migration=migration
    )
    if request.htmx and not request.htmx.history_restore_request and "after" in request.GET:
        after = int(request.GET["after"]) if request.GET["after"].isdigit() else 0
        lines = list(attempt.logs.filter(id__gt=after)[:LOG_BATCH])
        if not lines and request.GET.get("status") == attempt.status:
            return HttpResponse(status=204)
        context = _attempt_context(migration, attempt, lines, after)
        return render(request, "dashboard/attempt_detail.html#tail", context)
    lines = list(attempt.logs.all())
    return render(request, "dashboard/attempt_detail.html", _attempt_context(migration, attempt, lines, 0))


def _attempt_context(migration: MigrationRun, attempt: Attempt, lines: list[AttemptLog], after: int) -> dict:
    return {
        "environment": migration.environment,
        "migration": migration,
        "attempt": attempt,
        "lines": lines,
        "after": lines[-1].pk if lines else after,
    }


@require_GET
def migration_export(request: HttpRequest, slug: str, pk: int, fmt: str) -> HttpResponse:
    migration = _migration(request, slug, pk)
    if fmt not in ("md", "json"):
        raise Http404("Exports are .md or .json")
    name = f"velaops-{migration.environment.slug}-migration-{migration.pk}"
    if fmt == "json":
        response = HttpResponse(
            json.dumps(migration_as_json(migration), indent=2, default=str), content_type="application/json"
        )
    else:
        response = HttpResponse(migration_as_markdown(migration), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
