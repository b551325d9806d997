"""Logging in to an Aurora DSQL cluster: IAM auth token as the password, over psycopg.

The same code runs against AWS and the sandbox; only the environment's connection
options (host address override, port, sslmode) differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import boto3
import psycopg

from dashboard.aws import client
from dashboard.models import Environment

DSQL_ADMIN_USER = "admin"
DEFAULT_CONNECT_TIMEOUT = 10


def cluster_endpoint(identifier: str, region: str) -> str:
    # DSQL's public endpoint form; build it rather than trusting an API field that emulators report differently.
    return f"{identifier}.dsql.{region}.on.aws"


def auth_token(environment: Environment, endpoint: str, session: boto3.Session | None = None, dsql=None) -> str:
    """A short-lived IAM token (a presigned URL, signed locally: no network call). `dsql`: a DSQL client
    to sign with (probes keep one per thread); else one is made from `session`."""
    dsql = dsql or client(environment, "dsql", session)
    if environment.dsql_user == DSQL_ADMIN_USER:
        return dsql.generate_db_connect_admin_auth_token(Hostname=endpoint, Region=environment.region)
    return dsql.generate_db_connect_auth_token(Hostname=endpoint, Region=environment.region)


def connection_kwargs(environment: Environment, endpoint: str, token: str, connect_timeout: int) -> dict:
    kwargs = {
        "host": endpoint,
        "port": environment.dsql_port,
        "dbname": environment.dsql_database,
        "user": environment.dsql_user,
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


def connect(
    environment: Environment,
    endpoint: str,
    *,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
    session: boto3.Session | None = None,
) -> psycopg.Connection:
    token = auth_token(environment, endpoint, session)
    return psycopg.connect(**connection_kwargs(environment, endpoint, token, connect_timeout))


@dataclass(frozen=True)
class LoginTimings:
    """Milliseconds spent in each phase of one login and `SELECT 1`."""

    token_ms: float
    connect_ms: float
    query_ms: float

    @property
    def total_ms(self) -> float:
        return self.token_ms + self.connect_ms + self.query_ms


def timed_select_one(
    environment: Environment,
    endpoint: str,
    *,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT,
    session: boto3.Session | None = None,
) -> LoginTimings:
    """Log in with a fresh token and run SELECT 1; raises on any failure (psycopg.Error or an AWS error)."""
    started = time.perf_counter()
    token = auth_token(environment, endpoint, session)
    token_done = time.perf_counter()
    with psycopg.connect(**connection_kwargs(environment, endpoint, token, connect_timeout)) as connection:
        connected = time.perf_counter()
        connection.execute("SELECT 1").fetchone()
        queried = time.perf_counter()
    return LoginTimings(
        token_ms=(token_done - started) * 1000,
        connect_ms=(connected - token_done) * 1000,
        query_ms=(queried - connected) * 1000,
    )
