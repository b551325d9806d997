"""VelaOps's principal in the sandbox's moto, and the questions the DSQL endpoint asks moto about keys.

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
import threading
import time
import urllib.error
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

__all__ = ["ADMIN_ACCESS_KEY_ID", "ADMIN_SECRET_ACCESS_KEY", "MotoPrincipals", "enforce", "seed_velaops"]


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


class MotoPrincipals:
    """What the DSQL endpoint asks about a token's key, answered by the moto that holds the account's IAM.

    Callable as `secret_for(access_key_id)` (dsql_token.check_token), and `authorize(...)` evaluates the
    key's principal's policies for an action on a resource ARN, asked afresh at every login (a policy change
    shows at the next one); a key's secret and session are cached for a moment, since a login asks twice.
    """

    CACHE_SECONDS = 2.0

    def __init__(self, config: SandboxConfig, timeout: float = 5) -> None:
        self.config, self.timeout = config, timeout
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _ask(self, op: str, payload: dict[str, str]) -> dict[str, Any] | None:
        cache_key = (op, *sorted(payload.items()))  # type: ignore[arg-type]
        with self._lock:
            hit = self._cache.get(cache_key)
            if op == "principal" and hit and time.monotonic() - hit[0] < self.CACHE_SECONDS:
                return hit[1]
        try:
            answer = _post(f"{self.config.moto_url}/moto-api/sandbox/iam/{op}", payload, self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            answer = None
        if op == "principal":
            with self._lock:
                self._cache[cache_key] = (time.monotonic(), answer)
        return answer

    def principal(self, access_key_id: str) -> dict[str, Any] | None:
        return self._ask("principal", {"access_key_id": access_key_id, "account_id": self.config.account_id})

    def __call__(self, access_key_id: str) -> str | None:
        found = self.principal(access_key_id)
        return found["secret_access_key"] if found else None

    def session_token(self, access_key_id: str) -> str | None:
        found = self.principal(access_key_id)
        return found.get("session_token") if found else None

    def authorize(self, access_key_id: str, action: str, cluster_identifier: str, region: str) -> tuple[bool, str]:
        """(allowed, principal ARN) for `action` on the cluster's ARN in the sandbox account."""
        resource = f"arn:aws:dsql:{region}:{self.config.account_id}:cluster/{cluster_identifier}"
        answer = self._ask(
            "authorize",
            {
                "access_key_id": access_key_id,
                "action": action,
                "resource": resource,
                "account_id": self.config.account_id,
            },
        )
        if answer is None:
            return False, ""
        return bool(answer["allowed"]), answer["principal"]


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
