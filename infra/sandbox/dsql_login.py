"""A DSQL login decided by the sandbox's moto in one question: the DSQL endpoint's check, and its client.

The DSQL endpoint (dsql_proxy) asks `POST /moto-api/sandbox/dsql-login` with the token and the user, and moto
answers from its state at that moment, as DSQL checks a login (`dsql_token.check_token`, in that order): the
token's form, the key's principal and secret (an IAM user's active key, or an STS session whose token the
token carries), the signature, the cluster's status, and the principal's identity policies for
dsql:DbConnect(Admin) on the cluster's ARN. With `record`, an accepted login is recorded as the cluster's
activity at once (dsql_lifecycle: an IDLE cluster wakes, the answer says how long that holds the client); the
endpoint leaves it out for a database role, whose mapping it checks first, and records that login afterwards
(`dsql_lifecycle.login`).

Nothing is remembered between logins, so a change to a policy, a key, a session or a cluster shows at the very
next login (AWS's IAM is itself eventually consistent, for seconds). It used to take four loopback requests a
login (the key's principal, GetCluster through the DSQL API, the policy evaluation, the login's record), and
moto's request handling, not the decision, was most of what a probe cost the machine's CPU.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import asdict, dataclass
from typing import Any

from infra.sandbox.config import SandboxConfig
from infra.sandbox.dsql_token import Refusal, check_token

PATH = "/moto-api/sandbox/dsql-login"


@dataclass(frozen=True)
class Login:
    refusal: Refusal | None
    # The signing principal's ARN (an STS session's assumed-role ARN); "" when the key is unknown.
    principal: str = ""
    # The IAM question asked, once the check got that far ("" before): for the policy test's record.
    action: str = ""
    resource: str = ""
    wake_seconds: float = 0.0  # how long the accepted login waits for its cluster to wake (recorded logins only)


class MotoLogins:
    """The DSQL endpoint's client: one loopback request per login."""

    def __init__(self, config: SandboxConfig, timeout: float = 5) -> None:
        self.config, self.timeout = config, timeout

    def check(self, token: str, user: str, *, record: bool) -> Login:
        payload = {
            "token": token,
            "user": user,
            "region": self.config.region,
            "accountId": self.config.account_id,
            "record": record,
        }
        request = urllib.request.Request(
            f"{self.config.moto_url}{PATH}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            answer = json.loads(response.read())
        refusal = answer.get("refusal")
        return Login(
            refusal=Refusal(refusal["sqlstate"], refusal["reason"]) if refusal else None,
            principal=answer.get("principal") or "",
            action=answer.get("action") or "",
            resource=answer.get("resource") or "",
            wake_seconds=float(answer.get("wakeSeconds") or 0.0),
        )


# -- the moto side ---------------------------------------------------------------------------------------
class _AccountPrincipals:
    """check_token's questions about a key, answered from moto's IAM and STS models (one login's lifetime)."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self._found: dict[str, dict[str, Any] | None] = {}
        self.key = ""  # the token's access key, once the check got to it
        self.asked: tuple[str, str] = ("", "")  # the (action, resource) evaluated

    def principal(self, access_key_id: str) -> dict[str, Any] | None:
        from infra.sandbox.cfn.iam_auth import find_principal

        self.key = access_key_id
        if access_key_id not in self._found:
            self._found[access_key_id] = find_principal(access_key_id, self.account_id)
        return self._found[access_key_id]

    def __call__(self, access_key_id: str) -> str | None:
        found = self.principal(access_key_id)
        return found["secret_access_key"] if found else None

    def session_token(self, access_key_id: str) -> str | None:
        found = self.principal(access_key_id)
        return found.get("session_token") if found else None

    def authorize(self, access_key_id: str, action: str, cluster_identifier: str, region: str) -> tuple[bool, str]:
        from infra.sandbox.cfn.iam_auth import evaluate

        resource = f"arn:aws:dsql:{region}:{self.account_id}:cluster/{cluster_identifier}"
        self.asked = (action, resource)
        found = self.principal(access_key_id)
        if found is None:
            return False, ""
        return evaluate(found["policies"], action, resource), found["arn"]


def _clusters(account_id: str, region: str) -> tuple[Any, dict[str, Any]]:
    """A cluster_status for check_token that reads moto's DSQL backend as GetCluster does, and the clusters it saw."""
    from moto.dsql.exceptions import ResourceNotFoundException
    from moto.dsql.models import dsql_backends

    backend = dsql_backends[account_id][region]
    seen: dict[str, Any] = {}

    def status(identifier: str) -> str | None:
        try:
            seen[identifier] = backend.get_cluster(identifier)  # advances CREATING/DELETING, forgets DELETED
        except ResourceNotFoundException:
            return None
        return seen[identifier].status

    return status, seen


def _json(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload)


def login_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    from moto.core import DEFAULT_ACCOUNT_ID

    from infra.sandbox import dsql_lifecycle

    try:
        body = json.loads(request.get_data() or b"{}")
        token, user, region = str(body["token"]), str(body["user"]), str(body["region"])
    except (ValueError, KeyError, TypeError) as exc:
        return _json(400, {"error": f"expected token, user and region: {exc}"})
    account_id = body.get("accountId") or DEFAULT_ACCOUNT_ID
    principals = _AccountPrincipals(account_id)
    status, seen = _clusters(account_id, region)
    refusal = check_token(token, user, region=region, secret_for=principals, cluster_status=status)
    found = principals.principal(principals.key) if principals.key else None
    action, resource = principals.asked
    answer: dict[str, Any] = {
        "refusal": asdict(refusal) if refusal else None,
        "principal": found["arn"] if found else "",
        "action": action,
        "resource": resource,
        "wakeSeconds": 0.0,
    }
    if refusal is None and body.get("record"):
        cluster = next(iter(seen.values()))  # an accepted token names one cluster, which check_token read
        answer["wakeSeconds"] = dsql_lifecycle.record_login(cluster)["wakeSeconds"]
    return _json(200, answer)


_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.moto_api._internal import urls

    # Before moto builds its moto-api app (lazily, at the first request for it).
    urls.url_paths[f"{{0}}{PATH}$"] = login_view
    _installed = True
