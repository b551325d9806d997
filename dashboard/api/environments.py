"""Environments: the list, and one environment with its live resources (the environment page's reads)."""

# No `from __future__ import annotations`: ninja reads the operations' annotations at run time, in the
# globals of the idempotency wrapper, where these modules' names are not.

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Router

from dashboard import roles
from dashboard.api import lookups
from dashboard.api.errors import responses
from dashboard.api.schemas import EnvironmentDetailOut, EnvironmentPage, environment_out
from dashboard.aws import AWS_EXCEPTIONS, describe_error
from dashboard.environments.resources import environment_resources, runbook_mode
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
    """The environment with its live resources, read from AWS now (as the environment page does)."""
    environment = lookups.environment(request, slug)
    open_migration = environment.migrations.filter(status=MigrationRun.Status.OPEN).first()
    error = None
    try:
        resources = environment_resources(environment)
    except AWS_EXCEPTIONS as exc:
        resources, error = [], describe_error(exc)
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
    }
