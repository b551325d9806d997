"""May the Lambda's execution role log in to the new cluster, and may VelaOps make the calls the remaining steps
need? Asked of IAM itself (`iam:SimulatePrincipalPolicy`), which evaluates identity policies, permissions
boundaries and Deny statements as AWS will at the call.

DSQL's login actions (Aurora DSQL user guide, "Using database roles and IAM authentication", checked
2026-12-02): `dsql:DbConnectAdmin` to log in as `admin`, `dsql:DbConnect` for any other database role, on the
cluster's ARN. Where the account does not allow VelaOps to simulate (AccessDenied), the check says so as a
warning rather than guess.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from dashboard.readiness.findings import BLOCKER, OK, WARNING, Finding

_ASSUMED = re.compile(r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d+):assumed-role/(?P<role>[^/]+)/")


def login_action(user: str) -> str:
    return "dsql:DbConnectAdmin" if user == "admin" else "dsql:DbConnect"


class UnknownPrincipal(Exception):
    pass


def simulate(iam: Any, principal_arn: str, actions: list[str], resource: str) -> dict[str, dict[str, Any]] | None:
    """action → {decision, statements}; None when VelaOps may not simulate (or IAM cannot here).
    UnknownPrincipal when IAM has no such role or user."""
    try:
        answer = iam.simulate_principal_policy(
            PolicySourceArn=principal_arn, ActionNames=actions, ResourceArns=[resource]
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in ("AccessDenied", "AccessDeniedException", "NotImplemented"):
            return None
        if code in ("NoSuchEntity", "InvalidInput"):
            raise UnknownPrincipal(exc.response["Error"].get("Message", code)) from None
        raise
    return {
        result["EvalActionName"]: {
            "decision": result["EvalDecision"],
            "statements": [s.get("SourcePolicyId", "") for s in result.get("MatchedStatements") or []],
        }
        for result in answer.get("EvaluationResults") or []
    }


def lambda_login(iam: Any, role_arn: str, cluster_arn: str, user: str, *, granted_by_change: str = "") -> Finding:
    """The Lambda's role and the cluster: allowed, denied (a blocker, unless the reviewed change set changes the
    role's policy: `granted_by_change` names it), or not simulated (a warning)."""
    action = login_action(user)
    evidence = {"role": role_arn, "action": action, "resource": cluster_arn, "database_user": user}
    try:
        results = simulate(iam, role_arn, [action], cluster_arn)
    except UnknownPrincipal as exc:
        return Finding(
            "permissions",
            BLOCKER,
            f"The Lambda's execution role cannot be found ({exc})",
            evidence,
            "Give the function an existing role (its Role property).",
        )
    if results is None:
        return Finding(
            "permissions",
            WARNING,
            f"Could not simulate the Lambda role's {action}: VelaOps may not call iam:SimulatePrincipalPolicy",
            evidence,
            "Grant iam:SimulatePrincipalPolicy on the role to VelaOps's role, or check the grant by hand.",
        )
    decision = results.get(action, {}).get("decision", "implicitDeny")
    evidence |= {"decision": decision, "matched": results.get(action, {}).get("statements", [])}
    if decision == "allowed":
        return Finding("permissions", OK, f"The Lambda's role may {action} on the cluster", evidence)
    if decision == "implicitDeny" and granted_by_change:
        return Finding(
            "permissions",
            WARNING,
            f"The Lambda's role may not {action} on the cluster yet; the reviewed change set changes its policy "
            f"({granted_by_change}), and the deploy step's verification will find out if it does not grant it",
            evidence,
        )
    return Finding(
        "permissions",
        BLOCKER,
        f"The Lambda's role may not {action} on the cluster ({decision})",
        evidence,
        f"cluster.grant(apiFunction, '{action}') — or a policy statement allowing {action} on {cluster_arn}.",
    )


def caller_role_arn(iam: Any, sts: Any) -> str:
    """The IAM principal VelaOps acts as (a session's role, with its path), for simulation."""
    arn = sts.get_caller_identity()["Arn"]
    match = _ASSUMED.match(arn)
    if not match:
        return arn  # an IAM user
    return iam.get_role(RoleName=match["role"])["Role"]["Arn"]


def own_actions(iam: Any, principal_arn: str, needed: dict[str, str]) -> list[Finding]:
    """VelaOps's principal against the actions the remaining steps call: `needed` maps action → resource ARN."""
    findings = []
    by_resource: dict[str, list[str]] = {}
    for action, resource in needed.items():
        by_resource.setdefault(resource, []).append(action)
    denied, unknown = [], []
    for resource, actions in by_resource.items():
        try:
            results = simulate(iam, principal_arn, actions, resource)
        except UnknownPrincipal:
            results = None  # an identity IAM does not list (a federated or root caller): cannot simulate
        if results is None:
            unknown += actions
            continue
        denied += [
            f"{a} on {resource} ({results.get(a, {}).get('decision', 'implicitDeny')})"
            for a in actions
            if results.get(a, {}).get("decision") != "allowed"
        ]
    evidence = {"principal": principal_arn, "actions": sorted(needed)}
    if denied:
        findings.append(
            Finding(
                "permissions",
                BLOCKER,
                "VelaOps may not make calls the remaining steps need: " + "; ".join(denied),
                evidence | {"denied": denied},
                "Give VelaOps's role infra/iam-policy.json (docs/aws.md).",
            )
        )
    if unknown:
        findings.append(
            Finding(
                "permissions",
                WARNING,
                "Could not simulate VelaOps's own permissions (iam:SimulatePrincipalPolicy not allowed)",
                evidence,
                "Allow VelaOps iam:SimulatePrincipalPolicy on its own role.",
            )
        )
    if not denied and not unknown:
        findings.append(
            Finding("permissions", OK, f"VelaOps may make the {len(needed)} calls the remaining steps need", evidence)
        )
    return findings
