from __future__ import annotations

from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps.dynamodb_state import dynamodb_snapshot


def differences(before: dict[str, dict], after: dict[str, dict]) -> list[str]:
    found = []
    for table in sorted(set(before) | set(after)):
        if table not in after:
            found.append(f"{table}: gone")
        elif table not in before:
            found.append(f"{table}: not in the baseline")
        else:
            for fact in sorted(set(before[table]) | set(after[table])):
                old, new = before[table].get(fact), after[table].get(fact)
                if _normal(old) != _normal(new):
                    found.append(f"{table}.{fact}: {old!r} → {new!r}")
    return found


def _normal(value):
    # JSON storage turns tuples into lists; compare shapes, not container types.
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


class VerifyDynamoDBUnchanged(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        baseline = ctx.output_of("baseline_dynamodb").get("tables")
        if baseline is None:
            raise StepFailed("No DynamoDB baseline was recorded (the baseline step was skipped); nothing to compare.")
        now = dynamodb_snapshot(ctx)
        changed = differences(baseline, now)
        if changed:
            raise StepFailed("DynamoDB changed since the baseline: " + "; ".join(changed), {"differences": changed})
        ctx.log(f"all {len(now)} tables match the baseline")
        return {"tables": now, "differences": []}


STEP = VerifyDynamoDBUnchanged(
    key="verify_dynamodb",
    title="Verify DynamoDB unchanged",
    summary="Compare every table to the baseline; any difference fails the step and is listed.",
)
