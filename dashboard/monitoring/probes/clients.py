"""boto3 clients for probes: built by dashboard.aws once per worker thread and reused, never retried.

Building a session and a client costs tens of milliseconds of CPU, far more than the call a probe
makes, so each thread keeps its own (boto3 sessions are not thread-safe) per environment, service
and timeout. A client is rebuilt when the environment row changes (its `updated_at`), and, for an
environment with a role, before the assumed role's credentials can expire: `dashboard.aws` renews
them only when less than its refresh margin is left, so a client younger than that margin never
holds expired credentials.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dashboard import aws
from dashboard.models import Environment

# Below dashboard.aws's refresh margin: see the module docstring.
ROLE_CLIENT_MAX_AGE = aws.CREDENTIAL_REFRESH_MARGIN - 60

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
