"""Logging in to an Aurora DSQL cluster: IAM auth token as the password, over psycopg.

The same code runs against AWS and the sandbox; only the environment's connection
options (host address override, port, sslmode) differ. `TimedLogin` is the one timed login
(token, connect, SELECT 1): the runbook's verify step and the DSQL probe both use it.

An IAM token is a password for its lifetime: nothing here logs or stores one, and `token_secrets`
names the parts a caller must redact from any error text it keeps.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
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
CANCEL_TIMEOUT_SECONDS = 5
# The SDKs' default lifetime of a token. A token is only checked when a connection is opened, and may open
# several while it lasts (Aurora DSQL user guide, "Generating an authentication token", checked 2026-12-02).
TOKEN_LIFETIME_SECONDS = 900


def auth_token(
    environment: Environment,
    endpoint: str,
    session: boto3.Session | None = None,
    dsql=None,
    user: str | None = None,
) -> str:
    """A short-lived IAM token (a presigned URL, signed locally: no network call), valid for
    TOKEN_LIFETIME_SECONDS. `dsql`: a DSQL client to sign with (probes keep one per thread); else one is made
    from `session`. `user`: the database role to log in as, else the environment's DSQL user (admin needs
    DbConnectAdmin, any other role DbConnect)."""
    dsql = dsql or client(environment, "dsql", session)
    if (user or environment.dsql_user) == DSQL_ADMIN_USER:
        sign = dsql.generate_db_connect_admin_auth_token
    else:
        sign = dsql.generate_db_connect_auth_token
    return sign(Hostname=endpoint, Region=environment.region, ExpiresIn=TOKEN_LIFETIME_SECONDS)


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
    """Cancel the running query if the block outlasts `seconds` (it then raises QueryCanceled). Once the
    block has left, no cancel from it can reach the connection's next query."""
    deadline = _watchdog.watch(connection, seconds)
    try:
        yield
    finally:
        _watchdog.release(deadline)


class _Deadline:
    __slots__ = ("connection", "fired", "sent")

    def __init__(self, connection: psycopg.Connection) -> None:
        self.connection = connection
        self.fired = False
        self.sent = threading.Event()


class _Watchdog:
    """One thread for every cancel_after in the process. A probe worker runs dozens of logins at once, and
    a threading.Timer each started and stopped a thread per login (a tenth of the probe's own overhead)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, connection: psycopg.Connection, seconds: float) -> _Deadline:
        deadline = _Deadline(connection)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dsql-cancel-watchdog", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), deadline))
            if self._heap[0][2] is deadline:
                self._lock.notify()  # sooner than what the thread waits for
        return deadline

    def release(self, deadline: _Deadline) -> None:
        with self._lock:
            fired = deadline.fired
            if not fired:
                self._heap = [entry for entry in self._heap if entry[2] is not deadline]
                heapq.heapify(self._heap)
        if fired:
            deadline.sent.wait(CANCEL_TIMEOUT_SECONDS)  # the cancel is on its way: let it land on this query

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._lock.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                deadline = heapq.heappop(self._heap)[2]
                deadline.fired = True
            # Sending a cancel can take up to its timeout: in a thread of its own, so later deadlines keep time.
            threading.Thread(target=_cancel, args=(deadline,), daemon=True).start()


def _cancel(deadline: _Deadline) -> None:
    try:
        deadline.connection.cancel_safe(timeout=CANCEL_TIMEOUT_SECONDS)
    except (psycopg.Error, OSError):
        pass  # the connection is gone already, or the cancel could not be sent: the query fails anyway
    finally:
        deadline.sent.set()


_watchdog = _Watchdog()
# A forked child (a prefork worker) has the lock and heap but not the thread: it starts its own.
os.register_at_fork(after_in_child=_watchdog._reset)


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
    `token`: where the token comes from instead (the probes reuse one while it lasts); the token phase is
    then the time it takes to give one.
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
        token: Callable[[], str] | None = None,
    ) -> None:
        self.environment = environment
        self.token = token
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
        if self.token is not None:
            token = self.token()
        else:
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
