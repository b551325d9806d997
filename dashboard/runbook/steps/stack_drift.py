"""Drift detection on every configured stack: before the change-set runbook changes anything (a drifted stack
fails the step; an approver may accept the drift with a reason, an override recorded with the drift it
accepted), and after it (in sync, no override)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.stacks import drift
from dashboard.stacks.changesets import StackOperationFailed


@dataclass(frozen=True)
class StacksInSync(StepDefinition):
    when: str = "before"

    def findings(self, outputs: dict[str, Any]) -> list[str]:
        # Drift found before the change may be accepted by an approver; drift after it may not.
        if self.when != "before":
            return []
        return [line.strip() for report in outputs.get("reports") or [] for line in drift.describe_report(report)]

    def run(self, ctx: StepContext) -> dict[str, Any]:
        cfn = ctx.aws("cloudformation")
        reports = []
        for stack in ctx.environment.cloudformation_stacks:
            try:
                report = drift.detect(cfn, stack, sleep=ctx.sleep)
            except StackOperationFailed as exc:
                raise StepFailed(str(exc), exc.data) from None
            ctx.log(f"drift of {stack}: {report['status']}")
            for line in drift.describe_report(report):
                ctx.log(line, level="warning")
            reports.append(report)
        drifted = [line for report in reports for line in drift.describe_report(report)]
        outputs = {"reports": reports, "in_sync": not drifted}
        if drifted:
            advice = (
                "Bring the resources back to their templates, or ask an approver to accept the drift (override)."
                if self.when == "before"
                else "Something changed a stack-owned resource outside its stack during the migration."
            )
            raise StepFailed("Drift: " + "; ".join(line.strip() for line in drifted) + ". " + advice, outputs)
        return outputs


PREFLIGHT = StacksInSync(
    key="preflight_drift",
    title="Preflight: stacks in sync",
    summary="Drift detection on every stack: each drifted resource listed with its property paths, expected "
    "and actual values; an approver may accept the drift (override, with a reason).",
    when="before",
)
POSTCHECK = StacksInSync(
    key="postcheck_drift",
    title="Post-check: stacks in sync",
    summary="Drift detection on every stack once the changes are made: every stack must be IN_SYNC.",
    when="after",
)
