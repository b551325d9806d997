"""Environments: the list, and one environment with its live resources (the environment page's reads)."""

# No `from __future__ import annotations`: ninja reads the operations' annotations at run time, in the
# globals of the idempotency wrapper, where these modules' names are not.

from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Router

from dashboard import roles
from dashboard.api import lookups
from dashboard.api.errors import responses
from dashboard.api.schemas import EnvironmentDetailOut, EnvironmentPage, environment_out
from dashboard.environments.resources import runbook_mode
from dashboard.environments.snapshot import environment_snapshot
from dashboard.models import Environment, MigrationRun

router = Router(tags=["environments"])


@router.get("/environments", response=responses({200: EnvironmentPage}), operation_id="environment_list")
def environment_list(request: HttpRequest):
    if not roles.can_view(request.user):
        raise PermissionDenied("You need the viewer role to see environments.")
    environments = list(Environment.objects.all())
    open_runs = {
        run.environment_id: run
        for run in MigrationRun.objects.filter(status=MigrationRun.Status.OPEN, environment__in=environments)
    }
    items = [environment_out(e, open_runs.get(e.pk)) for e in environments]
    return {"items": items, "count": len(items)}


@router.get("/environments/{slug}", response=responses({200: EnvironmentDetailOut}), operation_id="environment_get")
def environment_get(request: HttpRequest, slug: str):
    """The environment with its live resources: the page's shared snapshot, read from AWS at most every
    15 s whoever asks (dashboard/environments/snapshot.py), with when it was read."""
    environment = lookups.environment(request, slug)
    open_migration = environment.migrations.filter(status=MigrationRun.Status.OPEN).first()
    snapshot = environment_snapshot(environment)
    resources, error = snapshot.resources, snapshot.error
    ownership = runbook_mode(environment, resources) if not error else None
    mode = ownership.mode.name if ownership and ownership.mode else None
    return {
        **environment_out(environment, open_migration, mode),
        "resources": [
            {
                "kind": r.kind,
                "name": r.name,
                "exists": r.exists,
                "state": r.state,
                "details": {str(k): str(v) for k, v in (r.details or {}).items()},
                "error_code": r.error_code,
                "error_message": r.error_message,
            }
            for r in resources
        ],
        "resources_error": f"{error.code}: {error.message}" if error else None,
        "resources_read_at": datetime.fromtimestamp(snapshot.read_at, tz=UTC) if snapshot.read_at else None,
    }
