"""`iam:SimulatePrincipalPolicy` in the sandbox's moto, which lacks it: a deliberate extension (docs/sandbox.md).

VelaOps's readiness check asks IAM whether the Lambda's role may log in to the new cluster, and whether its own
principal may make the calls the steps left need. moto 5.2 answers SimulatePrincipalPolicy with an error, so a
rehearsal could never find a missing grant. Here it evaluates the principal's identity policies (a role's
inline and attached policies; a user's, with its groups') for each action on each resource, with the
resource-aware statement evaluation of `iam_auth` (ARNs and wildcards; an explicit Deny wins), and answers in
AWS's shape: EvalActionName, EvalResourceName, EvalDecision (allowed / explicitDeny / implicitDeny),
MatchedStatements (SourcePolicyId).

Also: `GetCallerIdentity` answers the principal of whatever access key signed the request (moto recognised only
keys shaped like AWS's, 20 upper-case characters, and named a default `user/moto` otherwise).

AWS differs: it also evaluates permissions boundaries, SCPs, session policies and context keys
(`ContextEntries`), pages long answers, and names each matched statement's position in the policy.
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    import re

    from moto.core.responses import BaseResponse
    from moto.iam import responses

    responses.IamResponse.simulate_principal_policy = _simulate_principal_policy
    # moto finds the caller's access key only if it looks like AWS's (20 upper-case characters), so
    # GetCallerIdentity named a default `user/moto` for VelaOps's key `sandbox`: any key in the credential scope.
    BaseResponse.access_key_regex = re.compile(r"Credential=(?P<access_key>[^/,\s]+)/")
    _installed = True


def _policies(backend: Any, principal_arn: str) -> list[tuple[str, Any]]:
    """(policy id, document or ManagedPolicy) for every identity policy of the principal."""
    name = principal_arn.rsplit("/", 1)[-1]
    found: list[tuple[str, Any]] = []
    if ":role/" in principal_arn:
        role = backend.get_role_by_arn(principal_arn)
        for policy_name in backend.list_role_policies(role.name):
            found.append((policy_name, backend.get_role_policy(role.name, policy_name)[1]))
        found += [(p.name, p) for p in role.managed_policies.values()]
        return found
    if ":user/" in principal_arn:
        user = backend.get_user(name)
        for policy_name in user.policies:
            found.append((policy_name, user.get_policy(policy_name)["policy_document"]))
        found += [(p.name, p) for p in user.managed_policies.values()]
        for group in backend.get_groups_for_user(user.name):
            for policy_name in group.policies:
                found.append((policy_name, group.get_policy(policy_name)["policy_document"]))
            found += [(p.name, p) for p in group.managed_policies.values()]
        return found
    raise ValueError(principal_arn)


def decide(policies: list[tuple[str, Any]], action: str, resource: str) -> tuple[str, list[str]]:
    """IAM's identity-based decision for one action on one resource, and the policies that decided it."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    allowing = []
    for policy_id, policy in policies:
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return "explicitDeny", [policy_id]
        if result == PermissionResult.PERMITTED:
            allowing.append(policy_id)
    return ("allowed", allowing) if allowing else ("implicitDeny", [])


def _simulate_principal_policy(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.iam.exceptions import InvalidInput, NoSuchEntity, NotFoundException

    principal = self._get_param("PolicySourceArn")
    actions = self._get_param("ActionNames", [])
    resources = self._get_param("ResourceArns", []) or ["*"]
    try:
        policies = _policies(self.backend, principal)
    except (NotFoundException, NoSuchEntity, KeyError):
        raise NoSuchEntity(f"The principal {principal} cannot be found.") from None
    except ValueError:
        raise InvalidInput(f"Invalid ARN for a principal: {principal}") from None
    results = []
    for action in actions:
        for resource in resources:
            decision, matched = decide(policies, action, resource)
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": decision,
                    "MatchedStatements": [{"SourcePolicyId": policy_id} for policy_id in matched],
                    "MissingContextValues": [],
                }
            )
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})
