"""VelaOps's principal in the sandbox's moto: its user, its documented policy and its keys.

The seed makes an IAM user `velaops` whose only policy is `infra/iam-policy.json` (REGION, ACCOUNT and the
CloudFormation service role filled in) and gives it the access keys VelaOps's processes sign with: the one
their default credential chain finds (the same chain the sandbox process has) and the fallback `sandbox`
key the Makefile exports when there is none. Seeding itself signs with the sandbox's admin key. Then moto's
access control is switched on (`SANDBOX_IAM=0` leaves it off), so every call VelaOps makes is evaluated
against its documented policy (infra/sandbox/cfn/iam_auth.py says how far moto's evaluation goes).
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from infra.sandbox.cfn.iam_auth import ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY
from infra.sandbox.config import FALLBACK_ACCESS_KEY_ID, FALLBACK_SECRET_ACCESS_KEY, SandboxConfig

POLICY_PATH = Path(__file__).resolve().parents[1] / "iam-policy.json"
VELAOPS_USER = "velaops"
VELAOPS_POLICY_NAME = "velaops"
# The role the environment would name as CloudFormation's service role (docs/aws.md); the sandbox names none.
CLOUDFORMATION_SERVICE_ROLE = "cdk-hnb659fds-cfn-exec-role-123456789012-us-east-1"

__all__ = ["ADMIN_ACCESS_KEY_ID", "ADMIN_SECRET_ACCESS_KEY", "enforce", "seed_velaops"]


def enforced_by_default() -> bool:
    return os.environ.get("SANDBOX_IAM", "1").strip().lower() not in ("0", "off", "false", "no")


def policy_document(config: SandboxConfig, path: Path = POLICY_PATH) -> dict[str, Any]:
    """infra/iam-policy.json as it would be deployed in the sandbox account."""
    text = path.read_text()
    for placeholder, value in (
        ("CLOUDFORMATION_SERVICE_ROLE", CLOUDFORMATION_SERVICE_ROLE),
        # On AWS VelaOps acts as a role; the sandbox's VelaOps is the IAM user the seed makes.
        ("role/VELAOPS_ROLE", f"user/{VELAOPS_USER}"),
        ("REGION", config.region),
        ("ACCOUNT", config.account_id),
    ):
        text = text.replace(placeholder, value)
    return json.loads(text)


def velaops_keys() -> dict[str, str]:
    """Access key id -> secret of every key VelaOps's processes may sign with on this machine."""
    keys = {FALLBACK_ACCESS_KEY_ID: FALLBACK_SECRET_ACCESS_KEY}
    credentials = boto3.Session().get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        if not frozen.token:  # a session key of a real account cannot be an IAM user's key in moto
            keys[frozen.access_key] = frozen.secret_key
    return keys


def _post(url: str, payload: Any, timeout: float = 10) -> Any:
    data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def seed_velaops(config: SandboxConfig, client: Any, *, policy: dict[str, Any] | None = None) -> None:
    """The `velaops` user with exactly its documented policy and VelaOps's keys (with the admin `client`)."""
    iam = client("iam")
    try:
        iam.get_user(UserName=VELAOPS_USER)
    except iam.exceptions.NoSuchEntityException:
        iam.create_user(UserName=VELAOPS_USER, Tags=[{"Key": "app", "Value": "velaops"}])
    for name in iam.list_user_policies(UserName=VELAOPS_USER)["PolicyNames"]:
        if name != VELAOPS_POLICY_NAME:
            iam.delete_user_policy(UserName=VELAOPS_USER, PolicyName=name)
    document = policy if policy is not None else policy_document(config)
    iam.put_user_policy(UserName=VELAOPS_USER, PolicyName=VELAOPS_POLICY_NAME, PolicyDocument=json.dumps(document))
    for access_key_id, secret in velaops_keys().items():
        _post(
            f"{config.moto_url}/moto-api/sandbox/iam/access-key",
            {"user": VELAOPS_USER, "access_key_id": access_key_id, "secret_access_key": secret},
        )


def enforce(moto_url: str, on: bool) -> None:
    """moto's own switch: every request after this one is authenticated and authorised (or none is)."""
    _post(f"{moto_url}/moto-api/reset-auth", "0" if on else "inf")


LAMBDA_DSQL_POLICY = "vela-dsql-login"


def grant_lambda_dsql(config: SandboxConfig, client: Any, role_arn: str) -> None:
    """The API Lambda's role allowed to log in to the account's DSQL clusters, as r1's ApiStack grants it.

    For an account whose resources no stack owns (the direct-API runbook's), which changes no IAM: on AWS its
    owner grants this before the migration, or the Lambda's DSQL login is refused after point_lambda.
    """
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dsql:DbConnect", "dsql:DbConnectAdmin"],
                "Resource": f"arn:aws:dsql:{config.region}:{config.account_id}:cluster/*",
            }
        ],
    }
    client("iam").put_role_policy(
        RoleName=role_arn.rsplit("/", 1)[-1], PolicyName=LAMBDA_DSQL_POLICY, PolicyDocument=json.dumps(document)
    )
