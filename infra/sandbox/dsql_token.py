"""Checking a DSQL IAM auth token the way DSQL does, against the sandbox's moto account.

A token is a SigV4 presigned URL without its scheme:
`HOST/?Action=DbConnectAdmin&X-Amz-Algorithm=...&X-Amz-Credential=AKID/DATE/REGION/dsql/aws4_request
&X-Amz-Date=...&X-Amz-Expires=...&X-Amz-SignedHeaders=host&X-Amz-Signature=...`.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ADMIN_USER = "admin"
CONNECTABLE = ("ACTIVE", "IDLE", "INACTIVE", "UPDATING")  # infra/sandbox/dsql_lifecycle.py
_HOST = re.compile(r"^(?P<identifier>[a-z0-9]+)\.dsql\.(?P<region>[a-z0-9-]+)\.on\.aws$")
_CLOCK_SKEW = timedelta(minutes=5)
MAX_EXPIRES = 604800  # SigV4's own limit (7 days)


@dataclass(frozen=True)
class Refusal:
    sqlstate: str  # 28000 invalid authorization, 28P01 invalid password (a bad or stale token)
    reason: str


def check_token(
    token: str,
    user: str,
    *,
    region: str,
    secret_for: Callable[[str], str | None],
    cluster_status: Callable[[str], str | None],
    now: datetime | None = None,
) -> Refusal | None:
    """None when the token lets `user` in; otherwise why not.

    `secret_for(access_key_id)` returns the secret key the sandbox knows for that key (None: unknown);
    `cluster_status(identifier)` returns the DSQL cluster's status in moto (None: no such cluster).
    A `secret_for` that also has `session_token(key)` and `authorize(key, action, identifier, region)`
    (moto's IAM and STS, infra/sandbox/dsql_login.py) makes this IAM's check too: an STS key's token must carry
    its session token, and the key's principal must be allowed dsql:DbConnect(Admin) on the cluster's ARN.
    """
    host, sep, query = token.partition("/?")
    if not sep:
        return Refusal("28P01", "the password is not a DSQL auth token")
    match = _HOST.match(host)
    if not match:
        return Refusal("28000", f"{host!r} is not a DSQL cluster endpoint")
    if match["region"] != region:
        return Refusal("28000", f"this endpoint serves {region}, not {match['region']}")
    params = {key: values[0] for key, values in parse_qs(query, keep_blank_values=True).items()}

    expected_action = "DbConnectAdmin" if user == ADMIN_USER else "DbConnect"
    if params.get("Action") != expected_action:
        return Refusal("28000", f"user {user!r} needs a {expected_action} token, got {params.get('Action')!r}")
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or params.get("X-Amz-SignedHeaders") != "host":
        return Refusal("28P01", "the token is not signed with SigV4 over the host header")

    scope = params.get("X-Amz-Credential", "").split("/")
    if len(scope) != 5 or scope[2:] != [region, "dsql", "aws4_request"]:
        return Refusal("28P01", "the token's credential scope is not dsql in this region")
    try:
        signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(params["X-Amz-Expires"])
    except (KeyError, ValueError):
        return Refusal("28P01", "the token has no valid X-Amz-Date / X-Amz-Expires")
    now = now or datetime.now(UTC)
    if not 0 < expires <= MAX_EXPIRES or scope[1] != params["X-Amz-Date"][:8]:
        return Refusal("28P01", "the token's expiry or date is malformed")
    if signed_at - _CLOCK_SKEW > now:
        return Refusal("28P01", "the token is signed in the future")
    if signed_at + timedelta(seconds=expires) < now:
        return Refusal("28P01", "the token has expired")

    secret = secret_for(scope[0])
    if secret is None:
        return Refusal("28P01", "the token is signed with an access key the sandbox does not know")
    session_token = getattr(secret_for, "session_token", None)
    if session_token is not None and session_token(scope[0]) != params.get("X-Amz-Security-Token"):
        return Refusal("28P01", "the token's security token is not its access key's session")
    if not hmac.compare_digest(
        params.get("X-Amz-Signature", ""), _signature(host, query, params, region, scope[0], secret)
    ):
        return Refusal("28P01", "the token's signature does not match")

    status = cluster_status(match["identifier"])
    if status is None:
        return Refusal("28000", f"no DSQL cluster {match['identifier']} in this account")
    # IDLE and INACTIVE clusters accept a connection and wake up (the DSQL endpoint makes the client wait);
    # UPDATING keeps serving (an assumption: the guide is silent). Anything else refuses.
    if status not in CONNECTABLE:
        return Refusal("28000", f"cluster {match['identifier']} is {status}, not ACTIVE")
    authorize = getattr(secret_for, "authorize", None)
    if authorize is not None:
        allowed, principal = authorize(scope[0], f"dsql:{expected_action}", match["identifier"], region)
        if not allowed:
            # DSQL's troubleshooting guide: "IAM authentication failed for user ..."; IAM's wording for why.
            return Refusal(
                "28000",
                f'IAM authentication failed for user "{user}": {principal or scope[0]} is not authorized to '
                f"perform: dsql:{expected_action} on resource: "
                f"{_cluster_arn(principal, region, match['identifier'])}",
            )
    return None


def _cluster_arn(principal: str, region: str, identifier: str) -> str:
    account = principal.split(":")[4] if principal.count(":") >= 5 else "*"
    return f"arn:aws:dsql:{region}:{account}:cluster/{identifier}"


def _signature(host: str, query: str, params: dict[str, str], region: str, access_key: str, secret: str) -> str:
    # Sign the same request again at the token's own timestamp; the query keeps its original encoding.
    unsigned = "&".join(pair for pair in query.split("&") if not pair.startswith("X-Amz-Signature="))
    request = AWSRequest(method="GET", url=f"https://{host}/?{unsigned}")
    request.context["timestamp"] = params["X-Amz-Date"]
    credentials = Credentials(access_key, secret, params.get("X-Amz-Security-Token"))
    signer = SigV4QueryAuth(credentials, "dsql", region, expires=int(params["X-Amz-Expires"]))
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    return signer.signature(string_to_sign, request)


def presign(
    host: str,
    region: str,
    *,
    action: str,
    access_key: str,
    secret_key: str,
    session_token: str | None = None,
    expires: int = 900,
) -> str:
    """A DSQL auth token as the SDKs make one (`generate_db_connect[_admin]_auth_token`: a SigV4 presigned GET of
    `https://HOST/?Action=...` for the service `dsql`, without its scheme), for credentials at hand: the health
    route signs each token with the session the Lambda service has just handed it."""
    request = AWSRequest(method="GET", url=f"https://{host}/", params={"Action": action})
    SigV4QueryAuth(Credentials(access_key, secret_key, session_token), "dsql", region, expires=expires).add_auth(
        request
    )
    return request.prepare().url.removeprefix("https://")
