"""The Lambda's own credentials: what the Lambda service hands a function, its execution role's session.

On AWS the Lambda service assumes the function's role (its trust policy must allow lambda.amazonaws.com)
and the handler's SDK signs with that session. The health route stands in for the handler, so it asks the
sandbox's moto to do the service's part (`/moto-api/sandbox/iam/function-credentials`,
infra/sandbox/cfn/iam_auth.py) and signs its DSQL token with the answer. Whatever the function's role
becomes (a stack update, another role), the next request signs with that one.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import boto3
import psycopg
from botocore.credentials import RefreshableCredentials
from botocore.session import get_session

from infra.sandbox.config import SandboxConfig


class LambdaCredentialsError(psycopg.OperationalError):
    """The Lambda service could not give the function its role's credentials (no role, role not trusting it).

    A psycopg error: the health route reports it as its DSQL check failing, the handler's view of it.
    """


def function_credentials(config: SandboxConfig, function_name: str) -> dict[str, str]:
    payload = json.dumps(
        {"function_name": function_name, "region": config.region, "account_id": config.account_id}
    ).encode()
    request = urllib.request.Request(
        f"{config.moto_url}/moto-api/sandbox/iam/function-credentials",
        data=payload,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        reason = json.loads(exc.read() or b"{}").get("message", exc.reason)
        raise LambdaCredentialsError(f"{function_name}: {reason}") from None


def session(config: SandboxConfig, function_name: str) -> boto3.Session:
    """A boto3 session signing as the function's execution role, fetched at each use.

    Each use asks moto again (one loopback call, moto hands back the same session while it is valid): a
    moto that forgot its sessions (reset) or a function whose role changed is followed at once.
    """

    def fetch() -> dict[str, str]:
        answer = function_credentials(config, function_name)
        # Reported as expiring inside botocore's mandatory refresh window (10 minutes), so every signing fetches
        # again and a failure is raised, not papered over with the previous session.
        expiry = datetime.now(UTC) + timedelta(minutes=10) - timedelta(seconds=1)
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer["SessionToken"],
            "expiry_time": expiry.isoformat(),
        }

    credentials = RefreshableCredentials.create_from_metadata(
        metadata={"access_key": "", "secret_key": "", "token": "", "expiry_time": datetime.now(UTC).isoformat()},
        refresh_using=fetch,
        method="sandbox-lambda-execution-role",
    )
    botocore_session = get_session()
    botocore_session._credentials = credentials  # botocore's documented way is a provider chain; this is one
    return boto3.Session(botocore_session=botocore_session, region_name=config.region)
