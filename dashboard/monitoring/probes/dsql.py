"""DSQL: log in to the target's cluster with an IAM token and run SELECT 1, timed phase by phase.

Phases (ms): "token" (a local presign, no network; about nothing when this thread's token is reused, see
probes.clients), "connect" (TCP, startup and the token check),
"query" (SELECT 1), and with `write_check` "write": an upsert and a read-back of this target's row in
`velaops_probe`. DSQL has no temporary tables, so the probe keeps one small ordinary table, created on
first use (DDL and DML in separate transactions, as DSQL requires: the connection is in autocommit),
with one row per target, rewritten by each probe. It needs a user allowed to create a table in the
default schema and write to it; for other users, create the table once beforehand and grant them
INSERT, UPDATE and SELECT on it.

The login is dashboard.dsql's TimedLogin (the runbook's verify step uses the same). The whole probe is
bounded by `timeout_seconds`: the connect timeout (libpq waits at least 2 s whatever is asked), and then
a cancel of whatever query is still running when the time left is used up.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
from psycopg import errors

from dashboard.aws import AWS_EXCEPTIONS
from dashboard.dsql import TimedLogin, cancel_after, cluster_endpoint
from dashboard.models import Target
from dashboard.monitoring.outcome import ProbeOutcome
from dashboard.monitoring.probes.clients import forget_token, probe_client, probe_token
from dashboard.monitoring.probes.failures import aws_failure, clean, database_error, since_ms

PROBE_TABLE = "velaops_probe"  # as the DSQL user, in its default schema
# As the monitoring role (the database-role step's velaops_monitor): its own table in its own schema, made and
# granted by that step, so the probes never write into the application's schema.
MONITOR_TABLE = "velaops.probe"
# A DSQL cluster with no connection for a while goes IDLE, later INACTIVE, and the next login wakes it, slower
# than usual (Aurora DSQL user guide, "Aurora DSQL cluster lifecycle", checked 2026-12-02; AWS publishes no
# figure for "a while"). Probing every 30 s (the default) is activity that keeps the cluster from ever idling:
# a choice the monitoring docs state. A target probed less often may find its cluster asleep: after this long
# without a probe, the probe reads the cluster's state first and records a cold start as one, not as slowness.
IDLE_SUSPECT_AFTER_S = 600
ASLEEP = ("IDLE", "INACTIVE")
_CREATE = "CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, at timestamptz NOT NULL)"
_UPSERT = "INSERT INTO {table} (id, at) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET at = excluded.at"
_READ = "SELECT at FROM {table} WHERE id = %s"


def probe_dsql(target: Target) -> ProbeOutcome:
    environment = target.environment
    endpoint = cluster_endpoint(target.name, environment.region)
    details: dict[str, object] = {"endpoint": endpoint}
    started = time.perf_counter()
    try:
        signer = probe_client(environment, "dsql", target.timeout_seconds)
    except AWS_EXCEPTIONS as exc:
        return aws_failure(exc, started, details)
    asleep = _asleep_before(target, signer)
    if asleep:
        details["woke_from"] = asleep  # this login wakes the cluster: its connect phase is a cold start
    # The login's clock starts once the client is there (usually cached): the token phase is the presign alone.
    user = environment.dsql_probe_user or None
    login = TimedLogin(
        environment,
        endpoint,
        connect_timeout=target.timeout_seconds,
        within=target.timeout_seconds,
        signer=signer,
        user=user,
        token=lambda: probe_token(environment, endpoint, signer, user),
    )
    try:
        connection = login.open()
    except AWS_EXCEPTIONS as exc:
        return aws_failure(exc, login.started, details)
    except (psycopg.Error, OSError) as exc:
        forget_token(environment, endpoint, user)  # whatever refused it, the next probe signs afresh
        return _failed(_describe(exc, login.secrets), login.started, details)
    with connection:
        phases = login.timings.phases()
        latency = login.timings.total_ms
        # A login that woke the cluster is a cold start, recorded as one (as a Lambda's Init Duration is).
        cold = True if asleep else None
        if not target.write_check:
            return ProbeOutcome(ok=True, latency_ms=latency, phases=phases, details=details, cold_start=cold)
        write_started = time.perf_counter()
        try:
            with cancel_after(connection, login.left()):
                details["created_table"] = write_round_trip(
                    connection, f"target-{target.pk}", MONITOR_TABLE if user else PROBE_TABLE
                )
        except (psycopg.Error, OSError, WriteMismatch) as exc:
            # The login worked, so its timings stand; only the write phase is missing.
            return ProbeOutcome(
                ok=False,
                latency_ms=latency,
                phases=phases,
                error=f"write check: {_describe(exc, login.secrets)}",
                details=details,
            )
        phases["write"] = since_ms(write_started)
        return ProbeOutcome(ok=True, latency_ms=latency, phases=phases, details=details, cold_start=cold)


class WriteMismatch(Exception):
    pass


def _asleep_before(target: Target, dsql) -> str:
    """The cluster's IDLE/INACTIVE state when it may have fallen asleep since the last probe; "" otherwise (and
    when the state cannot be read: the login then says what it says)."""
    last = target.last_probed_at
    if last is not None and (datetime.now(UTC) - last).total_seconds() < IDLE_SUSPECT_AFTER_S:
        return ""
    try:
        status = dsql.get_cluster(identifier=target.name).get("status", "")
    except AWS_EXCEPTIONS:
        return ""
    return status if status in ASLEEP else ""


def write_round_trip(connection: psycopg.Connection, key: str, table: str = PROBE_TABLE) -> bool:
    """Upsert this key's row and read it back; True if the table had to be created first."""
    written = datetime.now(UTC)
    created = False
    upsert, read = _UPSERT.format(table=table), _READ.format(table=table)
    try:
        connection.execute(upsert, (key, written))
    except errors.UndefinedTable:
        connection.execute(_CREATE.format(table=table))
        created = True
        try:
            connection.execute(upsert, (key, written))
        except errors.SerializationFailure:
            # DSQL may refuse the first write after a schema change once ("schema has been updated").
            connection.execute(upsert, (key, written))
    row = connection.execute(read, (key,)).fetchone()
    if row is None or row[0] != written:
        found = "no row" if row is None else row[0].isoformat()
        raise WriteMismatch(f"wrote {written.isoformat()} for {key}, read back {found}")
    return created


def _describe(exc: Exception, secrets: tuple[str, ...]) -> str:
    if isinstance(exc, errors.QueryCanceled):
        return f"{exc.sqlstate}: no answer within the target's timeout, so the query was cancelled"
    if isinstance(exc, psycopg.Error):
        return database_error(exc, *secrets)
    return clean(str(exc) or type(exc).__name__, *secrets)


def _failed(error: str, started: float, details: dict[str, object]) -> ProbeOutcome:
    return ProbeOutcome(ok=False, error=clean(error), details={**details, "elapsed_ms": round(since_ms(started), 3)})
