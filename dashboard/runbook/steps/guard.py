"""CloudFormation owns what it owns: a direct-API step refuses to change a resource a configured stack owns."""

from __future__ import annotations

from dashboard.runbook.context import StepContext, StepFailed
from dashboard.stacks import ownership


def refuse_if_stack_owned(ctx: StepContext, resource_type: str, physical_id: str, doing: str) -> None:
    stacks = ctx.environment.cloudformation_stacks
    if not stacks or not physical_id:
        return
    owner = ownership.owner_of(ctx.aws("cloudformation"), stacks, resource_type, physical_id)
    if owner is not None:
        raise StepFailed(
            f"Refused to {doing}: {owner}. CloudFormation owns it, so it changes only through {owner.stack} "
            "(start a new migration: VelaOps then follows the change-set runbook).",
            {"stack": owner.stack, "logical_id": owner.logical_id, "resource_type": owner.resource_type},
        )
