from __future__ import annotations

from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps.guard import refuse_if_stack_owned
from dashboard.stacks import ownership

UPDATE_TIMEOUT = 300
# Only these variables are written, saved and restored: the Lambda's other variables may hold
# secrets and never leave AWS.
DSQL_VARIABLES = ("DSQL_CLUSTER_ARN", "DSQL_ENDPOINT", "DSQL_REGION", "DSQL_USER")


def vpc_facts(configuration: dict) -> dict:
    vpc = configuration.get("VpcConfig") or {}
    return {
        "vpc_id": vpc.get("VpcId", ""),
        "subnets": sorted(vpc.get("SubnetIds") or []),
        "security_groups": sorted(vpc.get("SecurityGroupIds") or []),
    }


def wait_for_update(ctx: StepContext, function: str) -> None:
    def updated() -> tuple[bool, str]:
        status = ctx.aws("lambda").get_function_configuration(FunctionName=function).get("LastUpdateStatus", "")
        # InProgress settles by itself; Failed is the previous update's and does not block a new one.
        return status != "InProgress", status or "Successful"

    ctx.wait_for(f"update of {function}", updated, timeout=UPDATE_TIMEOUT, interval=2)


def set_dsql_variables(ctx: StepContext, function: str, wanted: dict[str, str | None]) -> bool:
    """Write `wanted` (None removes a variable) keeping every other variable; False if already so."""
    refuse_if_stack_owned(ctx, ownership.LAMBDA, function, f"change the variables of {function}")
    # An update already in progress (a deploy, another tool) would refuse ours (ResourceConflictException):
    # wait it out first, then read the variables it left.
    wait_for_update(ctx, function)
    configuration = ctx.aws("lambda").get_function_configuration(FunctionName=function)
    variables = dict((configuration.get("Environment") or {}).get("Variables") or {})
    merged = {**variables, **{k: v for k, v in wanted.items() if v is not None}}
    for key, value in wanted.items():
        if value is None:
            merged.pop(key, None)
    if merged == variables:
        return False
    ctx.aws("lambda").update_function_configuration(FunctionName=function, Environment={"Variables": merged})
    ctx.log("updated variables " + ", ".join(sorted(wanted)) + f" of {function}; the others are kept")
    wait_for_update(ctx, function)
    if ctx.aws("lambda").get_function_configuration(FunctionName=function).get("LastUpdateStatus") == "Failed":
        raise StepFailed(f"The update of {function} failed.")
    return True


class PointLambdaAtDsql(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        function = ctx.environment.lambda_function_name
        cluster = ctx.output_of("provision_dsql")
        if not cluster.get("arn"):
            raise StepFailed("No DSQL cluster was provisioned by this migration.")
        configuration = ctx.aws("lambda").get_function_configuration(FunctionName=function)
        current = (configuration.get("Environment") or {}).get("Variables") or {}
        # An earlier attempt's saved values win: after a partial run, `current` already holds the new ones.
        previous = ctx.step.outputs.get("previous") or {key: current.get(key) for key in DSQL_VARIABLES}
        wanted = {
            "DSQL_CLUSTER_ARN": cluster["arn"],
            "DSQL_ENDPOINT": cluster["endpoint"],
            "DSQL_REGION": ctx.environment.region,
            # The application's own database role where the role step made it; admin otherwise.
            "DSQL_USER": ctx.output_of("database_role").get("role"),
        }
        changed = set_dsql_variables(ctx, function, wanted)
        if not changed:
            ctx.log(f"{function} already points at {cluster['identifier']}")
        return {"function": function, "set": wanted, "previous": previous, "vpc": vpc_facts(configuration)}

    def rollback(self, ctx: StepContext) -> dict:
        function = ctx.environment.lambda_function_name
        previous = ctx.step.outputs.get("previous")
        if previous is None:
            raise StepFailed("The step recorded no previous values to restore.")
        changed = set_dsql_variables(ctx, function, previous)
        ctx.log("restored the previous DSQL variables" if changed else "the previous values are in place already")
        return {"restored": previous}


STEP = PointLambdaAtDsql(
    key="point_lambda",
    title="Point the API Lambda at DSQL",
    summary="Set DSQL_CLUSTER_ARN, DSQL_ENDPOINT and DSQL_REGION on the API Lambda, keeping every other variable.",
    rollback_summary="Restore the DSQL variables' previous values.",
)
