"""The Aurora → DSQL runbook: the seed plan as an ordered list of steps, defined in code.

A migration records RUNBOOK_VERSION when it starts; bump it whenever steps are added,
removed, reordered or change meaning, so old migrations stay readable.
"""

from __future__ import annotations

from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps import (
    baseline_dynamodb,
    complete,
    decommission_aurora,
    point_lambda,
    preflight_aurora_empty,
    preflight_stacks,
    provision_dsql,
    snapshot_aurora,
    verify_api,
    verify_dsql,
    verify_dynamodb,
)

RUNBOOK_VERSION = "2026.11-1"

STEPS: list[StepDefinition] = [
    preflight_stacks.STEP,
    preflight_aurora_empty.STEP,
    baseline_dynamodb.STEP,
    snapshot_aurora.STEP,
    provision_dsql.STEP,
    verify_dsql.STEP,
    point_lambda.STEP,
    verify_api.STEP,
    verify_dynamodb.STEP,
    decommission_aurora.STEP,
    complete.STEP,
]

_BY_KEY = {step.key: step for step in STEPS}


def step_definition(key: str) -> StepDefinition | None:
    """None for a step a newer runbook no longer has: its history still shows, it can no longer run."""
    return _BY_KEY.get(key)
