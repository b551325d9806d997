from __future__ import annotations

from dashboard.runbook.context import StepContext
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps.dynamodb_state import dynamodb_snapshot


class BaselineDynamoDB(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        return {"tables": dynamodb_snapshot(ctx)}


STEP = BaselineDynamoDB(
    key="baseline_dynamodb",
    title="Baseline DynamoDB",
    summary="Record each table's status, key schema, billing mode, stream settings and exact item count.",
)
