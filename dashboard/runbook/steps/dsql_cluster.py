"""The DSQL cluster this migration made (the direct runbook's provisioning step) or deployed (the change-set
runbook's), as the later steps read it."""

from __future__ import annotations

from typing import Any

from dashboard.runbook.context import StepContext, StepFailed

MADE_BY = ("provision_dsql", "execute_add_dsql")


def cluster(ctx: StepContext) -> dict[str, Any]:
    """What the step that made the cluster recorded: identifier, arn, endpoint, ... ({} before it ran)."""
    return ctx.output_of(*MADE_BY)


def endpoint(ctx: StepContext) -> str:
    """The cluster's endpoint; StepFailed when no cluster is known yet."""
    found = cluster(ctx).get("endpoint") or ctx.environment.dsql_endpoint
    if not found:
        raise StepFailed("No DSQL cluster is known: run the provisioning step first.")
    return found
