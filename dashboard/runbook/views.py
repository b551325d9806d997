"""Pages and actions of a migration run. Thin: access checks here (dashboard.access), the rules and the work
in dashboard.runbook.service, what the pages show in dashboard.runbook.queries."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from dashboard import roles
from dashboard.access import environment_for_operator, environment_for_viewer, refuse, require_operator
from dashboard.models import Approval, Attempt, AttemptLog, MigrationRun, Step
from dashboard.params import int_param
from dashboard.runbook import actions, queries, service, step_definition
from dashboard.runbook.bake_view import bake_view
from dashboard.runbook.change_set_view import change_set_view, page_rows, printed_outputs
from dashboard.runbook.export import migration_as_json, migration_as_markdown
from dashboard.runbook.forms import ActionForm, BakeStopForm
from dashboard.runbook.steps.bake import BASELINE_KEY


def _migration(request: HttpRequest, slug: str, pk: int, *, operate: str = "") -> MigrationRun:
    """The migration if the user may read it; with `operate` (the audit event of the action tried), also act
    on it: a refusal is written to the migration's audit trail before the 403."""
    environment = environment_for_viewer(request, slug)
    migration = get_object_or_404(
        MigrationRun.objects.select_related("environment", "started_by"), pk=pk, environment=environment
    )
    if operate:
        require_operator(request, environment, event=operate, migration=migration)
    return migration


def _action_form(request: HttpRequest) -> ActionForm | None:
    """The bound form if valid; else None, with each field's error shown as a message."""
    form = ActionForm(request.POST)
    if form.is_valid():
        return form
    for name, errors in form.errors.items():
        messages.error(request, f"{form.fields[name].label or name.capitalize()}: {' '.join(errors)}")
    return None


def _source(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a trusted proxy rewrote it.
    return request.META.get("REMOTE_ADDR") or None


@require_POST
def migration_start(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_operator(request, slug, event="migration.start")
    try:
        migration = service.migration_start(environment=environment, user=request.user, source_address=_source(request))
    except service.ActionRefused as refusal:
        messages.error(request, str(refusal))
        return redirect(environment)
    messages.success(request, f"Migration {migration.pk} started with runbook {migration.runbook_version}.")
    return redirect(migration)


def _page(migration: MigrationRun, user: AbstractBaseUser) -> dict:
    context = queries.migration_page(migration, user)
    context["step_rows"] = page_rows(context["rows"])  # each step with its change set, if it has one
    baseline = next((row.step.outputs for row in context["rows"] if row.step.key == BASELINE_KEY), {})
    for row in context["rows"]:
        row.bake = bake_view(row.step, row.latest, baseline, migration.environment)
    context["can_operate"] = roles.can_operate(user)
    return context


@require_GET
def migration_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    migration = _migration(request, slug, pk)
    context = _page(migration, request.user)
    if request.htmx and not request.htmx.history_restore_request:
        if request.GET.get("v") == context["version"]:
            return HttpResponse(status=204)  # nothing changed: the cheapest possible answer
        return render(request, "runbook/migration_detail.html#live", context)
    return render(request, "runbook/migration_detail.html", context)


def _after_action(request: HttpRequest, migration: MigrationRun) -> HttpResponse:
    if request.htmx:
        return render(request, "runbook/migration_detail.html#live", _page(migration, request.user))
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
    event = f"step.{action}" if action in Attempt.Action.values else "step.unknown"
    migration = _migration(request, slug, pk)
    step = get_object_or_404(Step, pk=step_pk, migration=migration)
    if action not in Attempt.Action.values:
        return HttpResponse(status=404)
    definition = step_definition(step.key)
    if not actions.is_gate_call(definition, action):
        require_operator(request, migration.environment, event=event, migration=migration)
    elif not (roles.can_operate(request.user) or roles.can_approve(request.user)):
        refuse(request, migration.environment, event, "You need the operator or approver role.", migration=migration)
    form = _action_form(request)
    if form is None:
        return _after_action(request, migration)
    source, reason = _source(request), form.cleaned_data["reason"]

    def do():
        if action == Attempt.Action.OVERRIDE:
            service.attempt_override(step=step, user=request.user, source_address=source, reason=reason)
            return
        service.attempt_request(
            step=step,
            action=action,
            user=request.user,
            source_address=source,
            confirmation=form.cleaned_data["confirmation"],
            reason=reason,
        )

    verb = {"run": "queued", "rollback": "rollback queued", "skip": "skipped", "override": "passed: findings accepted"}
    return _act(request, migration, do, f"“{step.title}” {verb[action]}.")


@require_POST
def attempt_cancel(request: HttpRequest, slug: str, pk: int, attempt_pk: int) -> HttpResponse:
    migration = _migration(request, slug, pk, operate="attempt.cancel")
    attempt = get_object_or_404(Attempt.objects.select_related("step"), pk=attempt_pk, migration=migration)
    return _act(
        request,
        migration,
        lambda: service.attempt_cancel(attempt=attempt, user=request.user, source_address=_source(request)),
        f"Cancel requested for “{attempt.step.title}”.",
    )


@require_POST
def bake_stop(request: HttpRequest, slug: str, pk: int, attempt_pk: int) -> HttpResponse:
    migration = _migration(request, slug, pk, operate="bake.stop")
    attempt = get_object_or_404(Attempt.objects.select_related("step"), pk=attempt_pk, migration=migration)
    form = BakeStopForm(request.POST)
    if not form.is_valid():
        for name, errors in form.errors.items():
            messages.error(request, f"{form.fields[name].label}: {' '.join(errors)}")
        return _after_action(request, migration)
    outcome = form.cleaned_data["outcome"]
    return _act(
        request,
        migration,
        lambda: service.bake_stop(
            attempt=attempt,
            user=request.user,
            source_address=_source(request),
            outcome=outcome,
            reason=form.cleaned_data["reason"],
        ),
        f"“{attempt.step.title}” ends early with your verdict: {outcome}.",
    )


@require_POST
def approval_request(request: HttpRequest, slug: str, pk: int, step_pk: int, action: str) -> HttpResponse:
    migration = _migration(request, slug, pk, operate="approval.request")
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
    migration = _migration(request, slug, pk, operate="migration.abandon")
    form = _action_form(request)
    if form is None:
        return _after_action(request, migration)
    return _act(
        request,
        migration,
        lambda: service.migration_abandon(
            migration=migration,
            user=request.user,
            source_address=_source(request),
            reason=form.cleaned_data["reason"],
        ),
        "Migration abandoned.",
    )


@require_GET
def attempt_detail(request: HttpRequest, slug: str, pk: int, attempt_pk: int) -> HttpResponse:
    migration = _migration(request, slug, pk)
    attempt = get_object_or_404(
        Attempt.objects.select_related("step", "requested_by"), pk=attempt_pk, migration=migration
    )
    attempt.migration = migration  # loaded already, with its environment: the page's links need both
    htmx = request.htmx and not request.htmx.history_restore_request
    if htmx and "after" in request.GET:
        after = int_param(request.GET, "after")
        lines = queries.attempt_lines(attempt, after, limit=queries.LOG_BATCH)
        if not lines and request.GET.get("status") == attempt.status:
            return HttpResponse(status=204)
        context = _attempt_context(migration, attempt, lines, after)
        return render(request, "runbook/attempt_detail.html#tail", context)
    # The log's last lines; "earlier" pages of it (?before=<line>) and the whole of it as text (attempt_log).
    before = int_param(request.GET, "before", None, minimum=1)
    lines, earlier = queries.attempt_tail(attempt, before)
    context = {
        **_attempt_context(migration, attempt, lines, 0),
        "earlier": earlier,
        "previous": min(earlier, queries.LOG_TAIL),
    }
    if htmx and before:
        return render(request, "runbook/_log_earlier.html", context)
    return render(request, "runbook/attempt_detail.html", context)


@require_GET
def attempt_log(request: HttpRequest, slug: str, pk: int, attempt_pk: int) -> HttpResponse:
    """The attempt's whole log as plain text, streamed: the page shows its end."""
    migration = _migration(request, slug, pk)
    attempt = get_object_or_404(Attempt, pk=attempt_pk, migration=migration)
    response = StreamingHttpResponse(queries.attempt_log_text(attempt), content_type="text/plain; charset=utf-8")
    name = f"velaops-{migration.environment.slug}-migration-{migration.pk}-attempt-{attempt.pk}.log"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _attempt_context(migration: MigrationRun, attempt: Attempt, lines: list[AttemptLog], after: int) -> dict:
    return {
        "environment": migration.environment,
        "migration": migration,
        "attempt": attempt,
        "lines": lines,
        "after": lines[-1].pk if lines else after,
        "change": change_set_view(
            attempt.step.key, attempt.outputs, attempt, failed=attempt.status != Attempt.Status.SUCCEEDED
        ),
        "outputs": printed_outputs(attempt.outputs),
        "previous_template_bytes": len(str(attempt.outputs.get("previous_template", "")).encode()),
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


@require_GET
def schema_script(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The DSQL DDL the schema step translated (the step's outputs, or its latest attempt's if it failed), to read
    before or after it runs."""
    migration = _migration(request, slug, pk)
    step = get_object_or_404(Step, migration=migration, key="apply_schema")
    latest = step.attempts.filter(action=Attempt.Action.RUN).order_by("-number").first()
    script = (step.outputs or {}).get("script") or ((latest.outputs or {}).get("script") if latest else "")
    if not script:
        raise Http404("The schema step has not translated Aurora's schema yet.")
    response = HttpResponse(script, content_type="application/sql; charset=utf-8")
    name = f"velaops-{migration.environment.slug}-migration-{migration.pk}-dsql-schema.sql"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
