"""Cutover readiness: the latest check's findings, and asking for a new check (dashboard.readiness.checks, as
the environment page's readiness card does)."""

# No `from __future__ import annotations`: ninja reads the operations' annotations at run time (see migrations).

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from dashboard.api import lookups
from dashboard.api.errors import ApiError, responses
from dashboard.api.idempotency import idempotent
from dashboard.models import ReadinessCheck
from dashboard.readiness import checks

router = Router(tags=["readiness"])


class ReadinessOut(Schema):
    id: int
    environment: str
    status: str  # queued | running | done | failed
    requested_by: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    summary: dict[str, Any]
    findings: list[Any]
    error: str


def _out(check: ReadinessCheck) -> dict:
    return {
        "id": check.pk,
        "environment": check.environment.slug,
        "status": check.status,
        "requested_by": check.requested_by.get_username() if check.requested_by else None,
        "requested_at": check.requested_at,
        "started_at": check.started_at,
        "finished_at": check.finished_at,
        "summary": check.summary or {},
        "findings": check.findings or [],
        "error": check.error,
    }


@router.get("/environments/{slug}/readiness", response=responses({200: ReadinessOut}), operation_id="readiness_get")
def readiness_get(request: HttpRequest, slug: str):
    """The latest readiness check; 404 if none was run yet."""
    environment = lookups.environment(request, slug)
    check = checks.latest(environment)
    if check is None:
        raise ApiError(404, "not_found", "No readiness check has been run for this environment yet.")
    return _out(check)


@router.post("/environments/{slug}/readiness", response=responses({202: ReadinessOut}), operation_id="readiness_check")
@idempotent
def readiness_check(request: HttpRequest, slug: str):
    """Queue a read-only readiness check (one at a time per environment: 409 otherwise)."""
    environment = lookups.environment(request, slug, operate="readiness.check")
    try:
        check = checks.request_check(environment, request.user, lookups.source(request))
    except checks.CheckRefused as refusal:
        raise ApiError(409, "refused", str(refusal)) from None
    check = ReadinessCheck.objects.select_related("environment", "requested_by").get(pk=check.pk)
    return 202, _out(check)
