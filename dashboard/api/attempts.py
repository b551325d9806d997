"""Attempts: list (filtered, paginated), one attempt, cancel it, and its log tailed with a cursor."""

# No `from __future__ import annotations`: ninja reads the operations' annotations at run time, in the
# globals of the idempotency wrapper, where these modules' names are not.

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Query, Router

from dashboard import roles
from dashboard.access import require_operator
from dashboard.api import lookups
from dashboard.api.errors import responses
from dashboard.api.idempotency import idempotent
from dashboard.api.schemas import (
    FINAL_STATUSES,
    AttemptOut,
    AttemptPage,
    BakeStopIn,
    LogPage,
    attempt_out,
    log_line_out,
)
from dashboard.models import Attempt
from dashboard.runbook import queries, service
from dashboard.runbook.forms import BakeStopForm

router = Router(tags=["attempts"])


@router.get("/attempts", response=responses({200: AttemptPage}), operation_id="attempt_list")
def attempt_list(
    request: HttpRequest,
    environment: str | None = None,
    migration: int | None = Query(None, ge=1, le=2**31 - 1),
    step: str | None = Query(None, max_length=64, description="A step's key"),
    status: Attempt.Status | None = None,
    action: Attempt.Action | None = None,
    limit: int = Query(50, ge=1, le=lookups.MAX_LIMIT),
    offset: int = Query(0, ge=0),
):
    """Newest first."""
    attempts = lookups.attempts().order_by("-requested_at", "-id")
    if migration is not None:
        attempts = attempts.filter(migration=lookups.migration(request, migration))
    if environment is not None:
        attempts = attempts.filter(migration__environment=lookups.environment(request, environment))
    if migration is None and environment is None and not roles.can_view(request.user):
        raise PermissionDenied("You need the viewer role to see attempts.")
    if step is not None:
        attempts = attempts.filter(step__key=step)
    if status is not None:
        attempts = attempts.filter(status=status)
    if action is not None:
        attempts = attempts.filter(action=action)
    items, count = lookups.page(attempts, limit, offset)
    return {"items": [attempt_out(a) for a in items], "count": count, "limit": limit, "offset": offset}


@router.get("/attempts/{int:attempt_id}", response=responses({200: AttemptOut}), operation_id="attempt_get")
def attempt_get(request: HttpRequest, attempt_id: int):
    return attempt_out(lookups.attempt(request, attempt_id))


@router.post("/attempts/{int:attempt_id}/cancel", response=responses({200: AttemptOut}), operation_id="attempt_cancel")
@idempotent
def attempt_cancel(request: HttpRequest, attempt_id: int):
    """A queued attempt is cancelled at once; a running one is asked to stop (status `cancelling`)."""
    attempt = lookups.attempt(request, attempt_id)
    require_operator(request, attempt.migration.environment, event="attempt.cancel", migration=attempt.migration)
    service.attempt_cancel(attempt=attempt, user=request.user, source_address=lookups.source(request))
    return attempt_out(lookups.attempts().get(pk=attempt.pk))


@router.post(
    "/attempts/{int:attempt_id}/bake-stop", response=responses({200: AttemptOut}), operation_id="attempt_bake_stop"
)
@idempotent
def attempt_bake_stop(request: HttpRequest, attempt_id: int, payload: BakeStopIn):
    """End a running bake early with the operator's verdict and a reason (as the page's *End the bake now*); the
    bake records it at its next probe, and a fail starts the automatic rollback of the change it judged."""
    attempt = lookups.attempt(request, attempt_id)
    require_operator(request, attempt.migration.environment, event="bake.stop", migration=attempt.migration)
    data = lookups.validated(BakeStopForm({"outcome": payload.outcome, "reason": payload.reason}))
    service.bake_stop(
        attempt=attempt,
        user=request.user,
        source_address=lookups.source(request),
        outcome=data["outcome"],
        reason=data["reason"],
    )
    return attempt_out(lookups.attempts().get(pk=attempt.pk))


@router.get("/attempts/{int:attempt_id}/log", response=responses({200: LogPage}), operation_id="attempt_log")
def attempt_log(
    request: HttpRequest,
    attempt_id: int,
    after: int = Query(0, ge=0, description="The cursor of the previous page: lines after it"),
    limit: int = Query(queries.LOG_BATCH, ge=1, le=queries.LOG_BATCH),
):
    """Lines after `after`; `finished` once the attempt is final and every line was returned. The status is
    read before the lines, so a final status means no line can come after the ones returned."""
    attempt = lookups.attempt(request, attempt_id)
    status = attempt.status
    lines = queries.attempt_lines(attempt, after, limit=limit)
    cursor = lines[-1].pk if lines else after
    finished = status in FINAL_STATUSES and len(lines) < limit
    return {"lines": [log_line_out(line) for line in lines], "cursor": cursor, "finished": finished, "status": status}
