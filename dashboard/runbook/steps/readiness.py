"""Cutover readiness, just before the Lambda is repointed: network path, the Lambda role's grant, VelaOps's own
permissions, the cluster's state and quota, the schema. Blockers fail the step (each with its evidence and
fix); warnings pass it, recorded. A gate: only an approver skips it or accepts its blockers."""

from __future__ import annotations

from typing import Any

from dashboard.readiness import service
from dashboard.readiness.findings import BLOCKER
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps import dsql_cluster

POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy")


REVIEW = "review_point_lambda"  # the stacks runbook's review of the change that repoints the Lambda


class Readiness(StepDefinition):
    def findings(self, outputs: dict[str, Any]) -> list[str]:
        return [f["title"] for f in outputs.get("findings") or [] if f.get("severity") == BLOCKER]

    def run(self, ctx: StepContext) -> dict[str, Any]:
        cluster = dsql_cluster.cluster(ctx)
        if not cluster.get("identifier"):
            raise StepFailed("No DSQL cluster is known: run the provisioning step first.")
        target = service.Target(
            cluster["identifier"], cluster.get("arn", ""), cluster.get("endpoint") or ctx.environment.dsql_endpoint
        )
        # Through the stacks, the Lambda's grant may come with the very change set that repoints it.
        through_stacks = ctx.migration.steps.filter(key=REVIEW).exists()
        rows = ctx.output_of(REVIEW).get("diff") or [] if through_stacks else []
        policy_change = ", ".join(r["logical_id"] for r in rows if r.get("type") in POLICY_TYPES)
        found = service.assess(
            ctx.environment,
            target,
            mode="stacks" if through_stacks else "direct",
            log=ctx.log,
            sleep=ctx.sleep,
            session=ctx.session,
            policy_change=policy_change,
        )
        for finding in found:
            ctx.log(
                f"{finding.severity}: {finding.title}"
                + (f" — fix: {finding.fix}" if finding.severity == BLOCKER else ""),
                level="warning" if finding.severity != "ok" else "info",
            )
        outputs = {"findings": [f.as_dict() for f in found], "summary": service.summary(found)}
        blockers = [f for f in found if f.severity == BLOCKER]
        if blockers:
            raise StepFailed("Not ready: " + "; ".join(f.title for f in blockers), outputs)
        return outputs


_SUMMARY = (
    "Before the Lambda is repointed: its network path to the cluster (NAT or an interface endpoint with private "
    "DNS, 5432 both ways), its role's DSQL grant, VelaOps's own permissions for the steps left, the cluster's "
    "state (woken if idle) and quota, the schema. A checklist; blockers fail the step."
)
STEP = Readiness(key="readiness", title="Cutover readiness", summary=_SUMMARY)
