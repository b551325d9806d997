from __future__ import annotations

from dashboard.runbook.context import StepContext
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps import dsql_cluster


class Complete(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        steps = list(ctx.migration.steps.exclude(pk=ctx.step.pk).order_by("position"))
        dsql = dsql_cluster.cluster(ctx)
        summary = {
            "dsql_cluster": {k: dsql.get(k) for k in ("identifier", "arn", "endpoint")},
            "lambda_variables": ctx.output_of("point_lambda", "execute_point_lambda").get("set", {}),
            "pre_migration_snapshot": ctx.output_of("snapshot_aurora").get("snapshot"),
            "aurora_final_snapshot": ctx.output_of("decommission_aurora").get("final_snapshot"),
            "dynamodb_unchanged": ctx.output_of("verify_dynamodb").get("differences") == [],
            "steps": {step.key: step.state for step in steps},
            "skipped": [step.key for step in steps if step.state == "skipped"],
            # The change-set runbook: every change set executed, with its diff (empty in the direct runbook).
            "change_sets": [
                {"step": step.key, **{k: step.outputs.get(k) for k in ("stack", "change_set", "diff")}}
                for step in steps
                if step.key.startswith("review_") and step.outputs.get("change_set")
            ],
        }
        ctx.log("migration complete: " + ", ".join(f"{k}={v}" for k, v in summary["steps"].items()))
        return summary


STEP = Complete(key="complete", title="Completion", summary="Summarise what the migration did and close it.")
