"""Migrations and their steps: start, list, detail, abandon, export; run, retry, rollback, skip, accept a gate's
findings; ask for and grant approvals. Each operation calls dashboard.runbook.service exactly as
dashboard.runbook.views does, with the same role checks: the rules (one attempt at a time, typed
confirmations, approvals) are the service's, whoever asks."""

# No `from __future__ import annotations`: ninja reads the operations' annotations at run time, in the
# globals of the idempotency wrapper, where these modules' names are not.

import json
from dataclasses import asdict

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import Query, Router

from dashboard import roles
from dashboard.access import refuse, require_operator
from dashboard.api import lookups
from dashboard.api.errors import responses
from dashboard.api.idempotency import idempotent
from dashboard.api.schemas import (
    ActionIn,
    ApprovalIn,
    ApprovalOut,
    AttemptOut,
    ChangeSetOut,
    MigrationOut,
    MigrationPage,
    ReasonIn,
    approval_out,
    attempt_out,
    migration_out,
    migration_summary_out,
)
from dashboard.models import Approval, Attempt, MigrationRun
from dashboard.runbook import actions, queries, service, step_definition
from dashboard.runbook.change_set_view import page_rows
from dashboard.runbook.export import migration_as_json, migration_as_markdown
from dashboard.runbook.forms import ActionForm

router = Router(tags=["migrations"])

Status = MigrationRun.Status


@router.post("/environments/{slug}/migrations", response=responses({201: MigrationOut}), operation_id="migration_start")
@idempotent
def migration_start(request: HttpRequest, slug: str):
    environment = lookups.environment(request, slug, operate="migration.start")
    migration = service.migration_start(
        environment=environment, user=request.user, source_address=lookups.source(request)
    )
    return 201, migration_out(migration, request.user)


@router.get("/migrations", response=responses({200: MigrationPage}), operation_id="migration_list")
def migration_list(
    request: HttpRequest,
    environment: str | None = None,
    status: Status | None = None,
    limit: int = Query(50, ge=1, le=lookups.MAX_LIMIT),
    offset: int = Query(0, ge=0),
):
    migrations = MigrationRun.objects.select_related("environment", "started_by")
    if environment is not None:
        migrations = migrations.filter(environment=lookups.environment(request, environment))
    elif not roles.can_view(request.user):
        raise PermissionDenied("You need the viewer role to see migrations.")
    if status is not None:
        migrations = migrations.filter(status=status)
    items, count = lookups.page(migrations, limit, offset)
    return {"items": [migration_summary_out(m) for m in items], "count": count, "limit": limit, "offset": offset}


@router.get("/migrations/{int:migration_id}", response=responses({200: MigrationOut}), operation_id="migration_get")
def migration_get(request: HttpRequest, migration_id: int):
    return migration_out(lookups.migration(request, migration_id), request.user)


@router.post(
    "/migrations/{int:migration_id}/abandon", response=responses({200: MigrationOut}), operation_id="migration_abandon"
)
@idempotent
def migration_abandon(request: HttpRequest, migration_id: int, payload: ReasonIn):
    migration = lookups.migration(request, migration_id, operate="migration.abandon")
    data = lookups.validated(ActionForm({"reason": payload.reason}))
    service.migration_abandon(
        migration=migration, user=request.user, source_address=lookups.source(request), reason=data["reason"]
    )
    migration.refresh_from_db()
    return migration_out(migration, request.user)


EXPORT_RESPONSES = {
    200: {
        "description": "The migration's record: Markdown or JSON, as the page's export links give it.",
        "content": {
            "text/markdown": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.get(
    "/migrations/{int:migration_id}/export",
    response=responses({}),
    operation_id="migration_export",
    openapi_extra={"responses": EXPORT_RESPONSES},
)
def migration_export(
    request: HttpRequest, migration_id: int, format: str = Query("markdown", pattern="^(markdown|json)$")
):
    migration = lookups.migration(request, migration_id)
    name = f"velaops-{migration.environment.slug}-migration-{migration.pk}"
    if format == "json":
        body = json.dumps(migration_as_json(migration), indent=2, default=str)
        response = HttpResponse(body, content_type="application/json")
        extension = "json"
    else:
        response = HttpResponse(migration_as_markdown(migration), content_type="text/markdown; charset=utf-8")
        extension = "md"
    response["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    return response


@router.get(
    "/migrations/{int:migration_id}/change-sets",
    response=responses({200: list[ChangeSetOut]}),
    operation_id="migration_change_sets",
)
def migration_change_sets(request: HttpRequest, migration_id: int):
    """Each review step's change set with its resource changes and blockers, as the migration page's diffs."""
    migration = lookups.migration(request, migration_id)
    rows = queries.migration_page(migration, request.user)["rows"]
    views = [review for _row, review, _deploys in page_rows(rows) if review is not None]
    return [
        {
            "review_step": view.key,
            "attempt": view.attempt.pk if view.attempt else None,
            "stack": view.stack,
            "change_set": view.change_set,
            "empty": view.empty,
            "failed": view.failed,
            "blockers": view.blockers,
            "overridden": view.overridden,
            "changes": [asdict(change) for change in view.rows],
        }
        for view in views
    ]


# --- steps ---------------------------------------------------------------------------------------------------


def _step_action(request: HttpRequest, migration_id: int, key: str, action: str, payload: ActionIn):
    """As dashboard.runbook.views.step_action: a gate's verdict (skip it, accept its findings) is an approver's
    call, anything else an operator's; then the service decides."""
    event = f"step.{action}"
    migration = lookups.migration(request, migration_id)
    step = lookups.step(migration, key)
    definition = step_definition(step.key)
    if not actions.is_gate_call(definition, action):
        require_operator(request, migration.environment, event=event, migration=migration)
    elif not (roles.can_operate(request.user) or roles.can_approve(request.user)):
        refuse(request, migration.environment, event, "You need the operator or approver role.", migration=migration)
    data = lookups.validated(ActionForm({"confirmation": payload.confirmation, "reason": payload.reason}))
    if action == Attempt.Action.OVERRIDE:
        attempt = service.attempt_override(
            step=step, user=request.user, source_address=lookups.source(request), reason=data["reason"]
        )
    else:
        attempt = service.attempt_request(
            step=step,
            action=action,
            user=request.user,
            source_address=lookups.source(request),
            confirmation=data["confirmation"],
            reason=data["reason"],
        )
    return 202, attempt_out(lookups.attempts().get(pk=attempt.pk))


def _step_operation(verb: str, action: str, summary: str):
    def operation(request: HttpRequest, migration_id: int, key: str, payload: ActionIn = None):
        return _step_action(request, migration_id, key, action, payload or ActionIn())

    operation.__name__ = f"step_{verb}"
    operation.__doc__ = summary
    router.post(
        f"/migrations/{{int:migration_id}}/steps/{{key}}/{verb}",
        response=responses({202: AttemptOut}),
        operation_id=f"step_{verb}",
        summary=summary.split(":")[0],
    )(idempotent(operation))


_step_operation("run", Attempt.Action.RUN, "Run the step: queue an attempt (a destructive step needs `confirmation`).")
_step_operation("retry", Attempt.Action.RUN, "Retry the step: run it again after it failed or was rolled back.")
_step_operation("rollback", Attempt.Action.ROLLBACK, "Roll the step back: queue a rollback attempt.")
_step_operation("skip", Attempt.Action.SKIP, "Skip the step: recorded at once; `reason` is required.")
_step_operation(
    "override", Attempt.Action.OVERRIDE, "Accept a gate's findings: an approver passes a failed gate; `reason` needed."
)


@router.post(
    "/migrations/{int:migration_id}/steps/{key}/approvals",
    response=responses({201: ApprovalOut}),
    operation_id="approval_request",
)
@idempotent
def approval_request(request: HttpRequest, migration_id: int, key: str, payload: ApprovalIn):
    migration = lookups.migration(request, migration_id, operate="approval.request")
    step = lookups.step(migration, key)
    approval = service.approval_request(
        step=step, action=payload.action, user=request.user, source_address=lookups.source(request)
    )
    approval = Approval.objects.select_related("requested_by", "approved_by").get(pk=approval.pk)
    return 201, approval_out(approval, step.key)


@router.post(
    "/approvals/{int:approval_id}/grant", response=responses({200: ApprovalOut}), operation_id="approval_grant"
)
@idempotent
def approval_grant(request: HttpRequest, approval_id: int):
    approval = get_object_or_404(Approval.objects.select_related("step__migration__environment"), pk=approval_id)
    lookups.migration(request, approval.step.migration_id)  # approvers need not be operators
    service.approval_grant(approval=approval, user=request.user, source_address=lookups.source(request))
    approval = Approval.objects.select_related("requested_by", "approved_by", "step").get(pk=approval.pk)
    return approval_out(approval, approval.step.key)
