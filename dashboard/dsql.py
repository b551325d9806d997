"""Logging in to an Aurora DSQL cluster: IAM auth token as the password, over psycopg.

The same code runs against AWS and the sandbox; only the environment's connection
options (host address override, port, sslmode) differ. `TimedLogin` is the one timed login
(token, connect, SELECT 1): the runbook's verify step and the DSQL probe both use it.

An IAM token is a password for its lifetime: nothing here logs or stores one, and `token_secrets`
names the parts a caller must redact from any error text it keeps.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import psycopg

from dashboard.aws import client

# Re-exported: callers building a DSQL endpoint find it with the login. It lives with the models so that
# they need nothing from here (this module imports them).
from dashboard.models.environment import cluster_endpoint as cluster_endpoint

if TYPE_CHECKING:
    import boto3

    from dashboard.models import Environment

DSQL_ADMIN_USER = "admin"
# The Vela API Lambda's variables naming its DSQL cluster: the runbook points them, the Lambda probe audits
# them. Only these are ever read or written: the function's other variables may hold secrets.
DSQL_VARIABLES = ("DSQL_CLUSTER_ARN", "DSQL_ENDPOINT", "DSQL_REGION")
DEFAULT_CONNECT_TIMEOUT = 10
# Time SELECT 1 gets even when the connection used up the budget: enough for one round trip.
MIN_QUERY_SECONDS = 0.5


def auth_token(
    environment: Environment, endpoint: str, session: boto3.Session | None = None, dsql=None, user: str | None = None
) -> str:
    """A short-lived IAM token (a presigned URL, signed locally: no network call). `dsql`: a DSQL client
    to sign with (probes keep one per thread); else one is made from `session`. `user`: the database role to
    log in as, else the environment's DSQL user (admin needs DbConnectAdmin, any other role DbConnect)."""
    dsql = dsql or client(environment, "dsql", session)
    if (user or environment.dsql_user) == DSQL_ADMIN_USER:
        return dsql.generate_db_connect_admin_auth_token(Hostname=endpoint, Region=environment.region)
    return dsql.generate_db_connect_auth_token(Hostname=endpoint, Region=environment.region)


def connection_kwargs(
    environment: Environment, endpoint: str, token: str, connect_timeout: int, user: str | None = None
) -> dict:
    kwargs = {
        "host": endpoint,
        "port": environment.dsql_port,
        "dbname": environment.dsql_database,
        "user": user or environment.dsql_user,
        "password": token,
        "sslmode": environment.dsql_sslmode,
        "connect_timeout": connect_timeout,
        "application_name": "velaops",
        "autocommit": True,
    }
    if environment.dsql_sslmode == "verify-full":
        kwargs["sslrootcert"] = "system"  # DSQL presents a publicly trusted certificate
    if environment.dsql_host_override:
        # The TLS and SNI host name stays the endpoint; only the address differs.
        kwargs["hostaddr"] = environment.dsql_host_override
    return kwargs


def token_secrets(token: str) -> tuple[str, ...]:
    """The token and the parts of it that grant access, each to be kept out of any text we store."""
    query = token.partition("?")[2]
    params = parse_qs(query)
    parts = [token]
    for name in ("X-Amz-Signature", "X-Amz-Security-Token"):
        parts += params.get(name, [])
    # The session token also appears URL-encoded inside the token itself.
    parts += [pair.partition("=")[2] for pair in query.split("&") if pair.startswith("X-Amz-Security-Token=")]
    return tuple(part for part in parts if part)


@contextlib.contextmanager
def cancel_after(connection: psycopg.Connection, seconds: float) -> Iterator[None]:
    """Cancel the running query if the block outlasts `seconds` (it then raises QueryCanceled)."""
    timer = threading.Timer(seconds, _cancel, (connection,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _cancel(connection: psycopg.Connection) -> None:
    try:
        connection.cancel_safe(timeout=5)
    except (psycopg.Error, OSError):
        pass  # the connection is gone already, or the cancel could not be sent: the query fails anyway


@dataclass(frozen=True)
class LoginTimings:
    """Milliseconds spent in each phase of one login and `SELECT 1`."""

    token_ms: float
    connect_ms: float
    query_ms: float

    @property
    def total_ms(self) -> float:
        return self.token_ms + self.connect_ms + self.query_ms

    def phases(self) -> dict[str, float]:
        return {"token": self.token_ms, "connect": self.connect_ms, "query": self.query_ms}


class TimedLogin:
    """One IAM-token login and SELECT 1, timed phase by phase: "token" (a local presign, no network),
    "connect" (TCP, startup and the token check), "query" (SELECT 1).

    `open()` raises what failed as it is: an AWS error (token) or psycopg.Error / OSError (connect, query),
    so each caller reports it its own way; afterwards `started` (time.perf_counter() when the token phase
    began) and `secrets` (see token_secrets) are set for that report, and after a success `timings`.
    `within` (s) bounds the login: the query is cancelled when it is used up (MIN_QUERY_SECONDS at least,
    since libpq's connect timeout cannot be shorter than 2 s). `signer`: a DSQL client to sign with.
    """

    def __init__(
        self,
        environment: Environment,
        endpoint: str,
        *,
        connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
        within: float | None = None,
        session: boto3.Session | None = None,
        signer: Any = None,
        user: str | None = None,
    ) -> None:
        self.environment = environment
        self.user = user  # the database role, else the environment's DSQL user
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.within = within
        self.session = session
        self.signer = signer
        self.started = time.perf_counter()
        self.secrets: tuple[str, ...] = ()
        self.timings: LoginTimings | None = None

    def open(self) -> psycopg.Connection:
        """The logged-in connection (autocommit), for the caller to use and close."""
        self.started = time.perf_counter()
        token = auth_token(self.environment, self.endpoint, self.session, dsql=self.signer, user=self.user)
        token_done = time.perf_counter()
        self.secrets = token_secrets(token)
        connection = psycopg.connect(
            **connection_kwargs(self.environment, self.endpoint, token, self.connect_timeout, user=self.user)
        )
        try:
            connected = time.perf_counter()
            with self._bounded(connection):
                connection.execute("SELECT 1").fetchone()
            queried = time.perf_counter()
        except BaseException:
            connection.close()
            raise
        self.timings = LoginTimings(
            token_ms=(token_done - self.started) * 1000,
            connect_ms=(connected - token_done) * 1000,
            query_ms=(queried - connected) * 1000,
        )
        return connection

    def left(self) -> float:
        """Seconds of `within` left for a query (MIN_QUERY_SECONDS at least)."""
        assert self.within is not None
        return max(self.started + self.within - time.perf_counter(), MIN_QUERY_SECONDS)

    def _bounded(self, connection: psycopg.Connection) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self.within is None else cancel_after(connection, self.left())
