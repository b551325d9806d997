from __future__ import annotations

from dashboard.health_route import fetch_health
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps import dsql_cluster
from dashboard.runbook.steps.point_lambda import vpc_facts

# A Lambda update reaches new execution environments within seconds; allow for stragglers.
SETTLE_TIMEOUT = 120


class VerifyApi(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        url = ctx.environment.api_health_url
        if not url:
            raise StepFailed("The environment has no API health URL to check.")
        cluster_arn = dsql_cluster.cluster(ctx).get("arn", "")
        last = {}

        def reports_new_cluster() -> tuple[bool, str]:
            reading = fetch_health(url, timeout=10)
            last["reading"] = reading
            if not reading.reachable:
                return False, f"unreachable ({reading.error})"
            state = f"HTTP {reading.http_status}, status {reading.status or '?'}, connected {reading.dsql_connected}"
            if reading.cluster_arn and reading.cluster_arn != cluster_arn:
                state += ", reports another cluster"
            return reading.ok and reading.cluster_arn == cluster_arn, state

        ctx.wait_for("the API's DSQL health route", reports_new_cluster, timeout=SETTLE_TIMEOUT, interval=3)
        reading = last["reading"]

        function = ctx.environment.lambda_function_name
        before = ctx.output_of("point_lambda", "execute_point_lambda").get("vpc")
        now = vpc_facts(ctx.aws("lambda").get_function_configuration(FunctionName=function))
        if before is not None and before != now:
            raise StepFailed(
                f"The Lambda's VPC configuration changed: {before} → {now}", {"before": before, "now": now}
            )
        ctx.log(f"{function} keeps its VPC {now['vpc_id']} and security groups {', '.join(now['security_groups'])}")
        return {
            "health_url": url,
            "status": reading.status,
            "dsql_connected": reading.dsql_connected,
            "dsql_latency_ms": reading.dsql_latency_ms,
            "cluster_arn": reading.cluster_arn,
            "vpc": now,
        }


STEP = VerifyApi(
    key="verify_api",
    title="Verify the API",
    summary="The API's DSQL health route reports connected to the new cluster; the Lambda's VPC is unchanged.",
)
