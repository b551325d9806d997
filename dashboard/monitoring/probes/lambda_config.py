"""Lambda configuration audit: is the API function active, updated, in its VPC, and pointed at the
environment's current DSQL cluster?

Only the DSQL_* variables are ever read into the result: the function's other variables may hold
secrets and never leave AWS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from dashboard.aws import AWS_EXCEPTIONS
from dashboard.dsql import DSQL_VARIABLES, cluster_endpoint
from dashboard.models import Environment, Target
from dashboard.monitoring.outcome import ProbeOutcome
from dashboard.monitoring.probes.clients import probe_client
from dashboard.monitoring.probes.failures import aws_failure, clean, since_ms


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    expected: str
    # In plain words, for a failed check.
    problem: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "found": self.found, "expected": self.expected}


def probe_lambda_config(target: Target) -> ProbeOutcome:
    environment = target.environment
    started = time.perf_counter()
    try:
        lam = probe_client(environment, "lambda", target.timeout_seconds)
        started = time.perf_counter()  # the API call alone, not the client's construction
        configuration = lam.get_function_configuration(FunctionName=target.name)
    except AWS_EXCEPTIONS as exc:
        return aws_failure(exc, started)
    latency = since_ms(started)
    checks = audit(configuration, environment)
    variables = dsql_variables(configuration)
    details = {
        "checks": {check.name: check.as_dict() for check in checks},
        "dsql_variables": variables,
        "expected_cluster": environment.dsql_cluster_identifier,
    }
    problems = [check.problem for check in checks if not check.ok]
    return ProbeOutcome(ok=not problems, latency_ms=latency, error=clean("; ".join(problems)), details=details)


def dsql_variables(configuration: dict) -> dict[str, str | None]:
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    return {name: variables.get(name) for name in DSQL_VARIABLES}


def audit(configuration: dict, environment: Environment) -> list[Check]:
    """Every check of one GetFunctionConfiguration answer, passed or not."""
    state = configuration.get("State") or ""
    update = configuration.get("LastUpdateStatus") or ""
    vpc = configuration.get("VpcConfig") or {}
    subnets, groups = len(vpc.get("SubnetIds") or []), len(vpc.get("SecurityGroupIds") or [])
    update_problem = f"the last update is {update or 'unknown'}"
    if configuration.get("LastUpdateStatusReason"):
        update_problem += f": {configuration['LastUpdateStatusReason']}"
    vpc_problem = (
        "the function is not in a VPC"
        if not (subnets or groups)
        else f"the function's VPC configuration has {subnets} subnets and {groups} security groups; "
        "it needs at least one of each"
    )
    checks = [
        Check("state", state == "Active", state, "Active", f"the function is {state or 'in no state'}, not Active"),
        # Lambda leaves LastUpdateStatus out for a function never updated since it was created.
        Check("last_update", update in ("Successful", ""), update, "Successful", update_problem),
        Check(
            "vpc",
            subnets > 0 and groups > 0,
            f"{subnets} subnets, {groups} security groups",
            "at least one subnet and one security group",
            vpc_problem,
        ),
    ]
    cluster = environment.dsql_cluster_identifier
    if not cluster:
        return checks  # nothing to compare against yet: the variables are reported, not judged
    found = dsql_variables(configuration)
    arn_ok = (found["DSQL_CLUSTER_ARN"] or "").endswith(f":cluster/{cluster}")
    return checks + [
        _variable("dsql_endpoint", "DSQL_ENDPOINT", found, cluster_endpoint(cluster, environment.region)),
        _variable("dsql_region", "DSQL_REGION", found, environment.region),
        _variable("dsql_cluster_arn", "DSQL_CLUSTER_ARN", found, f"…cluster/{cluster}", ok=arn_ok),
    ]


def _variable(
    name: str, variable: str, found: dict[str, str | None], expected: str, *, ok: bool | None = None
) -> Check:
    value = found[variable]
    shown = "not set" if value is None else f"{value!r}"
    passed = value == expected if ok is None else ok
    return Check(name, passed, value or "", expected, f"{variable} is {shown}, expected {expected!r}")
