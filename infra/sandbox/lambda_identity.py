"""The Lambda's own credentials: what the Lambda service hands a function, its execution role's session.

On AWS the Lambda service assumes the function's role (its trust policy must allow lambda.amazonaws.com)
and the handler's SDK signs with that session. The health route stands in for the handler, so it asks the
sandbox's moto to do the service's part (`/moto-api/sandbox/iam/function-credentials`,
infra/sandbox/cfn/iam_auth.py) and signs its DSQL token with the answer; with the function's configuration in
the same answer (`function_context`), as the service hands both to a fresh execution environment. Whatever the
function's role becomes (a stack update, another role), the next request signs with that one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import psycopg

from infra.sandbox.config import SandboxConfig


class LambdaCredentialsError(psycopg.OperationalError):
    """The Lambda service could not give the function its role's credentials (no role, role not trusting it).

    A psycopg error: the health route reports it as its DSQL check failing, the handler's view of it.
    """


def _ask(config: SandboxConfig, operation: str, function_name: str) -> Any:
    """POST /moto-api/sandbox/iam/<operation> for the function, its JSON answer (HTTPError on refusal)."""
    payload = json.dumps(
        {"function_name": function_name, "region": config.region, "account_id": config.account_id}
    ).encode()
    request = urllib.request.Request(
        f"{config.moto_url}/moto-api/sandbox/iam/{operation}",
        data=payload,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def function_credentials(config: SandboxConfig, function_name: str) -> dict[str, str]:
    try:
        return _ask(config, "function-credentials", function_name)
    except urllib.error.HTTPError as exc:
        reason = json.loads(exc.read() or b"{}").get("message", exc.reason)
        raise LambdaCredentialsError(f"{function_name}: {reason}") from None


@dataclass(frozen=True)
class FunctionContext:
    """What a fresh execution environment of the function starts with."""

    configuration: dict[str, Any]  # GetFunctionConfiguration's shape: Environment.Variables, VpcConfig, Role
    credentials: dict[str, str] | None  # the execution role's session: AccessKeyId, SecretAccessKey, SessionToken
    credentials_error: str = ""  # why the Lambda service has none to give (no role, a role not trusting it)


class FunctionNotFound(Exception):
    """No such function in the sandbox's account (the Lambda API's ResourceNotFoundException)."""


def function_context(config: SandboxConfig, function_name: str) -> FunctionContext:
    """The function's configuration and its role's session, asked of moto in one loopback call at each use, so a
    repointed function, a changed role or a reset moto is followed at once."""
    try:
        answer = _ask(config, "function-context", function_name)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise FunctionNotFound(function_name) from None
        raise
    return FunctionContext(answer["Configuration"], answer.get("Credentials"), answer.get("CredentialsError", ""))
