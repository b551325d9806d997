"""The Aurora → DSQL runbooks: the seed plan as ordered lists of steps, defined in code.

Two runbooks: through CloudFormation (`THROUGH_STACKS`: every change to a stack-owned resource is a change
set of its stack, reviewed, gated, executed and verified) for an environment whose stacks own the Lambda or
the database clusters, and the direct-API one (`DIRECT`) for an environment whose resources no stack owns.
A migration records its runbook's version when it starts; bump a version whenever its steps are added,
removed, reordered or change meaning, so old migrations stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps import (
    adopt_dsql,
    apply_schema,
    bake,
    baseline_dynamodb,
    complete,
    database_role,
    decommission_aurora,
    point_lambda,
    preflight_aurora_empty,
    preflight_stacks,
    provision_dsql,
    readiness,
    snapshot_aurora,
    stack_change,
    stack_drift,
    verify_api,
    verify_dsql,
    verify_dynamodb,
)


@dataclass(frozen=True)
class Runbook:
    version: str
    mode: str  # dashboard.stacks.ownership.STACKS_MODE or DIRECT_MODE
    title: str
    steps: tuple[StepDefinition, ...]


DIRECT = Runbook(
    version="2026.12-3",
    mode="direct",
    title="Direct-API runbook (no stack owns the resources)",
    steps=(
        preflight_stacks.STEP,
        preflight_aurora_empty.STEP,
        baseline_dynamodb.STEP,
        snapshot_aurora.STEP,
        provision_dsql.STEP,
        verify_dsql.STEP,
        apply_schema.STEP,
        database_role.STEP,
        readiness.STEP,
        bake.BASELINE,
        point_lambda.STEP,
        verify_api.STEP,
        bake.BAKE_REPOINT,
        verify_dynamodb.STEP,
        decommission_aurora.STEP,
        complete.STEP,
    ),
)

THROUGH_STACKS = Runbook(
    version="2026.12-stacks-3",
    mode="stacks",
    title="Through CloudFormation (the stacks own the resources)",
    steps=(
        preflight_stacks.STEP,
        stack_drift.PREFLIGHT,
        preflight_aurora_empty.STEP,
        baseline_dynamodb.STEP,
        snapshot_aurora.STEP,
        adopt_dsql.STEP,
        stack_change.REVIEW_ADD_DSQL,
        stack_change.EXECUTE_ADD_DSQL,
        verify_dsql.STEP,
        apply_schema.STEP,
        database_role.STEP,
        stack_change.REVIEW_POINT_LAMBDA,
        readiness.STEP,
        bake.BASELINE,
        stack_change.EXECUTE_POINT_LAMBDA,
        verify_api.STEP,
        bake.BAKE_REPOINT,
        verify_dynamodb.STEP,
        stack_change.REVIEW_DROP_AURORA_API,
        stack_change.EXECUTE_DROP_AURORA_API,
        bake.BAKE_DROP_AURORA,
        stack_change.REVIEW_REMOVE_AURORA,
        stack_change.EXECUTE_REMOVE_AURORA,
        # Retained by r1's DeletionPolicy, Aurora is no stack's any more: its decommission is VelaOps's.
        decommission_aurora.STEP,
        stack_drift.POSTCHECK,
        complete.STEP,
    ),
)

RUNBOOKS = {runbook.version: runbook for runbook in (DIRECT, THROUGH_STACKS)}
COMPLETE_KEY = complete.STEP.key

_BY_KEY = {step.key: step for runbook in RUNBOOKS.values() for step in runbook.steps}


def runbook_for_mode(mode: str) -> Runbook:
    return THROUGH_STACKS if mode == THROUGH_STACKS.mode else DIRECT


def step_definition(key: str) -> StepDefinition | None:
    """None for a step a newer runbook no longer has: its history still shows, it can no longer run."""
    return _BY_KEY.get(key)
