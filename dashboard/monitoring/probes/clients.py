"""boto3 clients for probes: built by dashboard.aws once per worker thread and reused, never retried.

Building a session and a client costs tens of milliseconds of CPU, far more than the call a probe
makes, so each thread keeps its own (boto3 sessions are not thread-safe) per environment, service
and timeout. A client is rebuilt when the environment row changes (its `updated_at`), and, for an
environment with a role, before the assumed role's credentials can expire: `dashboard.aws` renews
them only when less than its refresh margin is left, so a client younger than that margin never
holds expired credentials.

A DSQL login token (a local presign) is reused too, by the thread that signed it and with the client that
signed it, for TOKEN_REUSE_SECONDS of its lifetime: DSQL checks a token only when a connection opens, and
one token may open several while it lasts (Aurora DSQL user guide, "Generating an authentication token",
checked 2026-12-02). A refused token says so at the next login as a fresh one would (DSQL evaluates the IAM
policy at each login, not at signing); the probe then drops it. It lives in this thread's memory only.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboard import aws, dsql
from dashboard.models import Environment

# Below dashboard.aws's refresh margin: see the module docstring.
ROLE_CLIENT_MAX_AGE = aws.CREDENTIAL_REFRESH_MARGIN - 60
# Well inside the token's lifetime (dsql.TOKEN_LIFETIME_SECONDS), and inside what botocore's refreshable
# credentials keep left before they renew (10 minutes at the least), so a reused token never outlives the
# credentials it was signed with.
TOKEN_REUSE_SECONDS = 300

_local = threading.local()


@dataclass(frozen=True)
class _Cached:
    version: datetime
    expires: float  # time.monotonic() deadline
    value: Any


def probe_client(environment: Environment, service: str, timeout: int) -> Any:
    """This thread's client for `service` in `environment`, with connect and read timeouts of `timeout` s."""
    clients: dict[tuple, _Cached] = _cache("clients")
    key = (environment.pk, service, timeout)
    now = time.monotonic()
    cached = clients.get(key)
    if cached is not None and cached.version == environment.updated_at and now < cached.expires:
        return cached.value
    session = _session(environment, now)
    # Built by dashboard.aws like every client, with a single attempt: a probe reports what it saw, it
    # does not retry (the next probe is the retry).
    client = aws.client(environment, service, session.value, timeout=timeout, max_attempts=1)
    # A client lives no longer than the credentials of the session it came from.
    clients[key] = _Cached(environment.updated_at, session.expires, client)
    return client


def probe_token(environment: Environment, endpoint: str, signer: Any, user: str | None) -> str:
    """A DSQL login token for `endpoint` as `user`, signed by `signer` (this thread's client) or reused."""
    tokens: dict[tuple, tuple[Any, float, str]] = _cache("tokens")
    key = (environment.pk, endpoint, user)
    now = time.monotonic()
    cached = tokens.get(key)
    if cached is not None and cached[0] is signer and now - cached[1] < TOKEN_REUSE_SECONDS:
        return cached[2]
    token = dsql.auth_token(environment, endpoint, dsql=signer, user=user)
    tokens[key] = (signer, now, token)  # signed by, signed at
    return token


def forget_token(environment: Environment, endpoint: str, user: str | None) -> None:
    """Sign afresh next time (the last login with this thread's token failed)."""
    _cache("tokens").pop((environment.pk, endpoint, user), None)


def clear() -> None:
    """Forget this thread's sessions and clients."""
    _local.__dict__.clear()


def _session(environment: Environment, now: float) -> _Cached:
    sessions: dict[int, _Cached] = _cache("sessions")
    cached = sessions.get(environment.pk)
    if cached is not None and cached.version == environment.updated_at and now < cached.expires:
        return cached
    # Without a role, the session's own credential provider refreshes whatever needs refreshing.
    expires = now + ROLE_CLIENT_MAX_AGE if environment.role_arn else math.inf
    sessions[environment.pk] = cached = _Cached(environment.updated_at, expires, aws.boto3_session(environment))
    return cached


def _cache(name: str) -> dict:
    return _local.__dict__.setdefault(name, {})
