from __future__ import annotations

from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition

# *_COMPLETE states that still mean the stack is not in a usable shape.
BAD_COMPLETE_STATES = {"ROLLBACK_COMPLETE", "DELETE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}


class PreflightRegionAndStacks(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        # Any answer from the DSQL API (even an empty list) proves the service exists in this region.
        clusters = ctx.aws("dsql").list_clusters(maxResults=1)
        ctx.log(f"DSQL answers in {ctx.environment.region}")
        stacks: dict[str, str] = {}
        problems = []
        for name in ctx.environment.cloudformation_stacks:
            stack = ctx.aws("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
            status = stack["StackStatus"]
            stacks[name] = status
            ctx.log(f"stack {name}: {status}")
            if not status.endswith("_COMPLETE") or status in BAD_COMPLETE_STATES:
                problems.append(f"{name} is {status}")
        if problems:
            raise StepFailed("Stacks are not in a usable *_COMPLETE state: " + "; ".join(problems), {"stacks": stacks})
        return {
            "region": ctx.environment.region,
            "dsql_available": True,
            "stacks": stacks,
            "existing_dsql_clusters_seen": len(clusters.get("clusters", [])),
        }


STEP = PreflightRegionAndStacks(
    key="preflight_stacks",
    title="Preflight: region and stacks",
    summary="DSQL answers in the environment's region; the Vela CloudFormation stacks are in a *_COMPLETE state.",
)
