"""Cutover readiness: every reason the Lambda's switch to DSQL would fail, found before it is made.

`assess()` reads the live state (the Lambda's network path to the cluster, its role's grant, the cluster's
state and quota, the schema's translation, VelaOps's own permissions for the steps left) and returns the
findings; it changes nothing except waking an idle cluster with one login. The runbook's readiness step and
the environment page's check both call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from dashboard import aurora, dsql
from dashboard.aws import AWS_EXCEPTIONS, client, describe_error
from dashboard.models import Environment
from dashboard.readiness import cluster, network, permissions
from dashboard.readiness.findings import BLOCKER, OK, WARNING, Finding
from dashboard.schema import catalog
from dashboard.schema.translate import BLOCKER as SCHEMA_BLOCKER
from dashboard.schema.translate import DROPPED, translate

# What the steps after the readiness check call, per runbook mode (the rest is read-only and checked by use).
REMAINING_CALLS = {
    "direct": ("lambda:UpdateFunctionConfiguration", "rds:DeleteDBCluster", "secretsmanager:DeleteSecret"),
    "stacks": (
        "cloudformation:ExecuteChangeSet",
        "cloudformation:CreateChangeSet",
        "rds:DeleteDBCluster",
        "secretsmanager:DeleteSecret",
    ),
}


@dataclass(frozen=True)
class Target:
    """The cluster the Lambda is to use."""

    identifier: str
    arn: str
    endpoint: str


def assess(
    environment: Environment,
    target: Target,
    *,
    mode: str,
    log: Callable[[str], None],
    sleep: Callable[[float], None],
    session: boto3.Session | None = None,
    policy_change: str = "",
) -> list[Finding]:
    """`policy_change`: the reviewed change set's IAM change to the Lambda's role, if any (the stacks runbook)."""
    aws = lambda service: client(environment, service, session)  # noqa: E731
    findings: list[Finding] = []
    configuration = aws("lambda").get_function_configuration(FunctionName=environment.lambda_function_name)
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    function = f"Lambda {environment.lambda_function_name}"

    service_name = aws("dsql").get_vpc_endpoint_service_name(identifier=target.identifier)["serviceName"]
    report = network.check(configuration.get("VpcConfig"), service_name, aws("ec2"), function=function)
    findings += report.findings

    user = variables.get("DSQL_USER") or "admin"
    findings.append(
        permissions.lambda_login(aws("iam"), configuration["Role"], target.arn, user, granted_by_change=policy_change)
    )
    findings += _own_permissions(environment, aws, mode, target)

    def wake() -> None:
        dsql.TimedLogin(environment, target.endpoint, session=session).open().close()

    findings += cluster.check(aws("dsql"), target.identifier, wake=wake, log=log, sleep=sleep)
    findings += schema_findings(environment, session)
    return findings


def _own_permissions(environment: Environment, aws, mode: str, target: Target) -> list[Finding]:
    try:
        principal = permissions.caller_role_arn(aws("iam"), aws("sts"))
    except AWS_EXCEPTIONS as exc:
        return [
            Finding(
                "permissions",
                WARNING,
                f"Could not tell which principal VelaOps acts as ({describe_error(exc)})",
            )
        ]
    account, region = environment.account_id, environment.region
    resources = {
        "lambda:UpdateFunctionConfiguration": f"arn:aws:lambda:{region}:{account}:function:"
        f"{environment.lambda_function_name}",
        "rds:DeleteDBCluster": f"arn:aws:rds:{region}:{account}:cluster:{environment.aurora_cluster_identifier}",
        "secretsmanager:DeleteSecret": environment.aurora_secret_id
        if environment.aurora_secret_id.startswith("arn:")
        else f"arn:aws:secretsmanager:{region}:{account}:secret:{environment.aurora_secret_id}",
    }
    for stack in environment.cloudformation_stacks:
        for action in ("cloudformation:ExecuteChangeSet", "cloudformation:CreateChangeSet"):
            resources.setdefault(action, f"arn:aws:cloudformation:{region}:{account}:stack/{stack}/*")
    needed = {action: resources[action] for action in REMAINING_CALLS.get(mode, ()) if action in resources}
    return permissions.own_actions(aws("iam"), principal, needed)


def schema_findings(environment: Environment, session: boto3.Session | None = None) -> list[Finding]:
    """The schema's translation as readiness findings: what DSQL would refuse (a blocker), what the translation
    leaves out (a warning each: the application may depend on it), the rest counted."""
    if not environment.aurora_cluster_identifier:
        return [Finding("schema", OK, "No Aurora cluster: no schema to carry over")]
    try:
        with aurora.connect(environment, session) as conn:
            translation = translate(catalog.read(conn))
    except (*AWS_EXCEPTIONS, ClientError) as exc:
        return [Finding("schema", WARNING, f"Aurora's schema could not be read ({describe_error(exc)})")]
    except Exception as exc:  # psycopg's errors: a login or catalog query that failed
        return [Finding("schema", WARNING, f"Aurora's schema could not be read ({type(exc).__name__}: {exc})")]
    out = []
    for finding in translation.findings:
        if finding.severity == SCHEMA_BLOCKER:
            out.append(Finding("schema", BLOCKER, f"{finding.object}: {finding.action}", {"rule": finding.rule}))
        elif finding.severity == DROPPED:
            out.append(
                Finding(
                    "schema",
                    WARNING,
                    f"{finding.object} is left out of DSQL: {finding.detail[:120]}",
                    {"rule": finding.rule, "rule_message": finding.rule_message},
                    finding.action,
                )
            )
    rewritten = sum(1 for f in translation.findings if f.severity == "rewritten")
    out.append(
        Finding(
            "schema",
            OK,
            f"{len(translation.statements)} objects translate for DSQL ({rewritten} rewrites; the schema step "
            "lists them)",
            {"objects": len(translation.statements), "rewrites": rewritten},
        )
    )
    return out


def summary(findings: list[Finding]) -> dict[str, Any]:
    counts = {severity: sum(1 for f in findings if f.severity == severity) for severity in (BLOCKER, WARNING, OK)}
    return {"ready": counts[BLOCKER] == 0, **counts}
