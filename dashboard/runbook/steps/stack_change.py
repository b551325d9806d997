"""The change-set runbook's changes: each one a review step (the change set made or picked, described as a diff,
judged) and an execute step (gated, executed, its events streamed, its result verified against the stack).

The change comes from the environment's `stack_changes` (a template URL or a change set the CI prepared); the
stack is the one that owns the resource the change is about (the Lambda: the API stack; Aurora or DSQL: the
database stack), read from the stacks' resource lists. Rolling an execute step back deploys the template the
stack had at review time, through a change set of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dashboard.dsql import DSQL_VARIABLES
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps.point_lambda import vpc_facts
from dashboard.stacks import changesets, ownership
from dashboard.stacks.changesets import Source, StackOperationFailed

API, DATABASE = "api", "database"
TEMPLATE_BODY_LIMIT = 51_200  # CreateChangeSet's TemplateBody, in bytes
AURORA_VARIABLES = ("AURORA_CLUSTER_ARN", "AURORA_SECRET_ARN")
REVIEW_ROLLBACK = "Delete the reviewed change set, so the review can run again."


def owning_stack(ctx: StepContext, role: str) -> str:
    """The configured stack that owns the Lambda (API) or a database cluster (database)."""
    environment = ctx.environment
    owned = ownership.owned_resources(ctx.aws("cloudformation"), environment.cloudformation_stacks)
    wanted = (
        [(ownership.LAMBDA, environment.lambda_function_name)]
        if role == API
        else [
            (ownership.AURORA, environment.aurora_cluster_identifier),
            (ownership.DSQL, environment.dsql_cluster_identifier),
        ]
    )
    for key in wanted:
        if key[1] and key in owned:
            return owned[key].stack
    names = ", ".join(name for _, name in wanted if name) or "nothing configured"
    raise StepFailed(f"None of the stacks {', '.join(environment.cloudformation_stacks)} owns {names}.")


def _failed(exc: StackOperationFailed) -> StepFailed:
    if exc.data.get("status") == "UPDATE_ROLLBACK_FAILED":
        return StepFailed(
            f"{exc} The stack takes no change until its rollback finishes: fix what failed (often a resource "
            "changed or deleted outside CloudFormation), then roll this step back, which continues the rollback "
            "(ContinueUpdateRollback) and restores the template from before the change.",
            exc.data,
        )
    return StepFailed(str(exc), exc.data)


@dataclass(frozen=True)
class ReviewChange(StepDefinition):
    purpose: str = ""
    role: str = DATABASE

    def findings(self, outputs: dict[str, Any]) -> list[str]:
        return list(outputs.get("blockers") or [])

    def run(self, ctx: StepContext) -> dict[str, Any]:
        cfn = ctx.aws("cloudformation")
        stack = owning_stack(ctx, self.role)
        source = Source.parse(ctx.environment.stack_changes.get(self.purpose))
        if not source:
            raise StepFailed(
                f"No change is configured for {self.purpose} of {stack}: set the environment's stack changes "
                "(a template URL, or a change set prepared on the stack)."
            )
        # What the stack is before the change: what a rollback deploys again, and where its events start.
        previous = cfn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
        previous_body = previous if isinstance(previous, str) else json.dumps(previous, separators=(",", ":"))
        since = changesets.latest_event_id(cfn, stack)
        try:
            described = changesets.prepare(
                cfn,
                stack,
                changesets.change_set_name(ctx.migration.pk, self.key),
                source,
                log=ctx.log,
                sleep=ctx.sleep,
                role_arn=ctx.environment.cloudformation_role_arn,
            )
        except StackOperationFailed as exc:
            raise _failed(exc) from None
        rows = changesets.diff(described)
        empty = changesets.is_empty(described)
        for row in rows:
            ctx.log(
                f"{row['action']} {row['logical_id']} ({row['type']})"
                + (f", replacement {row['replacement']}" if row["replacement"] else "")
                + (f", {row['policy_action']}" if row["policy_action"] else "")
            )
        ctx.log("the change set changes nothing" if empty else f"{len(rows)} resource changes to review")
        found = changesets.blockers(rows, snapshot_taken=bool(ctx.output_of("snapshot_aurora").get("snapshot")))
        outputs = {
            "stack": stack,
            "change_set": described.get("ChangeSetName", ""),
            "change_set_id": described.get("ChangeSetId", ""),
            "empty": empty,
            "diff": rows,
            "blockers": found,
            "previous_template": previous_body,
            "since_event": since,
        }
        if found:
            raise StepFailed(f"The change set of {stack} may not run: " + "; ".join(found) + ".", outputs)
        return outputs

    def rollback(self, ctx: StepContext) -> dict[str, Any]:
        """Drop the reviewed change set, so the review can run again (from another template, say)."""
        stack, name = ctx.step.outputs.get("stack"), ctx.step.outputs.get("change_set")
        if not stack or not name or name != changesets.change_set_name(ctx.migration.pk, self.key):
            ctx.log("no change set of this step to delete (a CI-prepared one is left alone)")
            return {"deleted": None}
        cfn = ctx.aws("cloudformation")
        if changesets.describe(cfn, stack, name) is not None:
            cfn.delete_change_set(StackName=stack, ChangeSetName=name)
            ctx.log(f"change set {name} deleted")
        return {"deleted": name}


@dataclass(frozen=True)
class ExecuteChange(StepDefinition):
    review: str = ""
    verify: Callable[[StepContext, str, dict[str, str]], dict[str, Any]] | None = field(default=None, compare=False)

    def confirmation_name(self, step, environment) -> str:
        review = step.migration.steps.filter(key=self.review).first()
        return (review.outputs or {}).get("stack", "") if review else ""

    def run(self, ctx: StepContext) -> dict[str, Any]:
        review = ctx.output_of(self.review)
        if not review.get("stack"):
            raise StepFailed("Review the change set first.")
        cfn, stack = ctx.aws("cloudformation"), review["stack"]
        if review.get("overridden"):
            overridden = review["overridden"]
            ctx.log(
                f"executing over {len(overridden['findings'])} blocker(s) {overridden['by']} accepted: "
                f"{overridden['reason']}",
                level="warning",
            )
        if review["empty"]:
            ctx.log(f"the reviewed change set changes nothing on {stack}")
        else:
            described = cfn.describe_change_set(StackName=stack, ChangeSetName=review["change_set"])
            if described["ChangeSetId"] != review["change_set_id"]:
                raise StepFailed(f"Change set {review['change_set']} is not the one reviewed: review it again.")
            try:
                changesets.execute(
                    cfn, stack, review["change_set"], log=ctx.log, sleep=ctx.sleep, since_event=review["since_event"]
                )
            except StackOperationFailed as exc:
                raise _failed(exc) from None
        outputs = changesets.outputs(cfn, stack)
        result = {"stack": stack, "change_set": review["change_set"], "executed": not review["empty"]}
        return result | (self.verify(ctx, stack, outputs) if self.verify else {})

    def rollback(self, ctx: StepContext) -> dict[str, Any]:
        review = ctx.output_of(self.review)
        stack, previous = review.get("stack"), review.get("previous_template", "")
        if not stack or not previous:
            raise StepFailed("The review recorded no previous template to deploy again.")
        if len(previous.encode()) > TEMPLATE_BODY_LIMIT:
            raise StepFailed(
                f"The previous template of {stack} is over {TEMPLATE_BODY_LIMIT} bytes: deploy it from S3."
            )
        cfn = ctx.aws("cloudformation")
        name = changesets.change_set_name(ctx.migration.pk, f"{self.key}-rollback", ctx.attempt.number)
        if cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_FAILED":
            try:
                changesets.continue_rollback(
                    cfn,
                    stack,
                    token=name,
                    log=ctx.log,
                    sleep=ctx.sleep,
                    role_arn=ctx.environment.cloudformation_role_arn,
                )
            except StackOperationFailed as exc:
                raise _failed(exc) from None
        if not changesets.describe(cfn, stack, name):
            cfn.create_change_set(
                **changesets.create_arguments(
                    cfn,
                    stack,
                    name,
                    template_body=previous,
                    role_arn=ctx.environment.cloudformation_role_arn,
                    description=f"VelaOps: roll back {self.key}",
                )
            )
        since = changesets.latest_event_id(cfn, stack)
        try:
            described = changesets.prepare(cfn, stack, name, Source(change_set=name), log=ctx.log, sleep=ctx.sleep)
            if changesets.is_empty(described):
                ctx.log(f"{stack} has its previous template already")
                return {"stack": stack, "restored": True, "change_set": name}
            changesets.execute(cfn, stack, name, log=ctx.log, sleep=ctx.sleep, since_event=since)
        except StackOperationFailed as exc:
            raise _failed(exc) from None
        return {"stack": stack, "restored": True, "change_set": name}


# --- what each change must have done --------------------------------------------------------------------


def _verify_dsql_added(ctx: StepContext, stack: str, outputs: dict[str, str]) -> dict[str, Any]:
    identifier = outputs.get("DsqlClusterIdentifier", "")
    if not identifier:
        raise StepFailed(f"{stack} has no DsqlClusterIdentifier output: is this the DSQL change?")
    dsql = ctx.aws("dsql")

    def active() -> tuple[bool, str]:
        status = dsql.get_cluster(identifier=identifier)["status"]
        if status in ("FAILED", "PENDING_SETUP", "DELETING", "DELETED", "PENDING_DELETE"):
            raise StepFailed(f"cluster {identifier} is {status}: not a cluster this runbook can use")
        # IDLE/INACTIVE: usable, the next login (the verify step's) wakes it.
        return status in ("ACTIVE", "IDLE", "INACTIVE"), status

    ctx.wait_for(f"cluster {identifier}", active, timeout=1800, interval=3)
    described = dsql.get_cluster(identifier=identifier)
    environment = ctx.environment
    environment.dsql_cluster_identifier = identifier
    environment.save(update_fields=["dsql_cluster_identifier", "updated_at"])
    ctx.log(f"the environment now points at {identifier}, owned by {stack}")
    return {
        "identifier": identifier,
        "arn": outputs.get("DsqlClusterArn") or described["arn"],
        "endpoint": outputs.get("DsqlEndpoint", ""),
        "vpc_endpoint_service_name": dsql.get_vpc_endpoint_service_name(identifier=identifier)["serviceName"],
        "deletion_protection": described.get("deletionProtectionEnabled"),
    }


def _lambda_variables(ctx: StepContext) -> tuple[dict[str, str], dict[str, Any]]:
    configuration = ctx.aws("lambda").get_function_configuration(FunctionName=ctx.environment.lambda_function_name)
    return (configuration.get("Environment") or {}).get("Variables") or {}, configuration


def _verify_lambda_points_at_dsql(ctx: StepContext, stack: str, outputs: dict[str, str]) -> dict[str, Any]:
    cluster = ctx.output_of("execute_add_dsql")
    variables, configuration = _lambda_variables(ctx)
    promised = {
        "DSQL_CLUSTER_ARN": cluster.get("arn"),
        "DSQL_ENDPOINT": cluster.get("endpoint"),
        "DSQL_REGION": ctx.environment.region,
    }
    wrong = {key: variables.get(key) for key, value in promised.items() if variables.get(key) != value}
    if wrong:
        raise StepFailed(f"After {stack}'s update the Lambda's variables are not the DSQL cluster's: {wrong}")
    ctx.log("the Lambda's " + ", ".join(DSQL_VARIABLES) + f" come from {stack}")
    return {"set": promised, "vpc": vpc_facts(configuration)}


def _verify_aurora_let_go(ctx: StepContext, stack: str, outputs: dict[str, str]) -> dict[str, Any]:
    variables, _ = _lambda_variables(ctx)
    left = [key for key in AURORA_VARIABLES if key in variables]
    if left:
        raise StepFailed(f"The Lambda still has {', '.join(left)} after {stack}'s update.")
    return {"removed_variables": list(AURORA_VARIABLES)}


def _verify_aurora_removed(ctx: StepContext, stack: str, outputs: dict[str, str]) -> dict[str, Any]:
    identifier = ctx.environment.aurora_cluster_identifier
    owner = ownership.owner_of(ctx.aws("cloudformation"), [stack], ownership.AURORA, identifier)
    if owner is not None:
        raise StepFailed(f"{stack} still owns {identifier} ({owner.logical_id}).")
    ctx.log(f"{stack} no longer owns {identifier}; what its DeletionPolicy kept is decommissioned next")
    return {"aurora_released": identifier}


REVIEW_ADD_DSQL = ReviewChange(
    key="review_add_dsql",
    title="Review: DSQL into the database stack",
    summary="The change set that adds the DSQL cluster and its VPC endpoint, as a diff; blocked if it would "
    "replace or delete stateful data or touch a DynamoDB table.",
    rollback_summary=REVIEW_ROLLBACK,
    purpose="add_dsql",
    role=DATABASE,
)
EXECUTE_ADD_DSQL = ExecuteChange(
    key="execute_add_dsql",
    title="Deploy: DSQL into the database stack",
    summary="Execute the reviewed change set, follow the stack's events, wait for the cluster to be ACTIVE.",
    destructive=True,
    rollback_summary="Deploy the stack's template from before the change again (the cluster is retained).",
    review="review_add_dsql",
    verify=_verify_dsql_added,
)
REVIEW_POINT_LAMBDA = ReviewChange(
    key="review_point_lambda",
    title="Review: the API Lambda to DSQL",
    summary="The API stack's change set that gives the Lambda DSQL_* and its dsql:DbConnect grant, as a diff.",
    rollback_summary=REVIEW_ROLLBACK,
    purpose="point_lambda",
    role=API,
)
EXECUTE_POINT_LAMBDA = ExecuteChange(
    key="execute_point_lambda",
    title="Deploy: the API Lambda to DSQL",
    summary="Execute the reviewed change set; the Lambda's variables must be the DSQL cluster's.",
    destructive=True,
    rollback_summary="Deploy the API stack's template from before the change again.",
    review="review_point_lambda",
    verify=_verify_lambda_points_at_dsql,
)
REVIEW_DROP_AURORA_API = ReviewChange(
    key="review_drop_aurora_api",
    title="Review: the API stack lets go of Aurora",
    summary="The API stack's change set that drops the AURORA_* variables and the secret grant: first, "
    "since the database stack cannot drop exports the API stack imports.",
    rollback_summary=REVIEW_ROLLBACK,
    purpose="drop_aurora_api",
    role=API,
)
EXECUTE_DROP_AURORA_API = ExecuteChange(
    key="execute_drop_aurora_api",
    title="Deploy: the API stack lets go of Aurora",
    summary="Execute the reviewed change set; the Lambda must have no AURORA_* variable left.",
    destructive=True,
    rollback_summary="Deploy the API stack's template from before the change again.",
    review="review_drop_aurora_api",
    verify=_verify_aurora_let_go,
)
REVIEW_REMOVE_AURORA = ReviewChange(
    key="review_remove_aurora",
    title="Review: Aurora out of the database stack",
    summary="The database stack's change set that removes Aurora; its DeletionPolicy (Retain in Vela's r1) "
    "decides what happens to the cluster.",
    rollback_summary=REVIEW_ROLLBACK,
    purpose="remove_aurora",
    role=DATABASE,
)
EXECUTE_REMOVE_AURORA = ExecuteChange(
    key="execute_remove_aurora",
    title="Deploy: Aurora out of the database stack",
    summary="Execute the reviewed change set; the stack must no longer own the Aurora cluster.",
    destructive=True,
    rollback_summary="Deploy the database stack's template from before the change again.",
    review="review_remove_aurora",
    verify=_verify_aurora_removed,
)
