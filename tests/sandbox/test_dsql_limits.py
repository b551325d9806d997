"""DSQL's per-transaction limits at the sandbox's DSQL endpoint (rows, size, age), answered as DSQL answers
them (SQLSTATE 54000, dashboard/dsql_sql/transactions.py), simple and extended protocol."""

import time
import uuid
from dataclasses import replace

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from dashboard import dsql
from dashboard.dsql_sql.transactions import AGE_LIMIT, LIMITS, ROW_LIMIT, SIZE_LIMIT
from dashboard.models import Environment
from infra.sandbox.dsql_proxy import DsqlProxy
from infra.sandbox.seed import environment_settings
from tests.sandbox.helpers import create_active_dsql_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_active_dsql_cluster(sandbox)


@pytest.fixture(scope="module")
def login_environment(sandbox):
    return Environment(slug="sandbox", **environment_settings(sandbox.config, sandbox.account))


@pytest.fixture
def connect(login_environment, cluster):
    """Opens a logged-in session (autocommit) on a schema of this test's, with an empty table `t`."""
    endpoint = dsql.cluster_endpoint(cluster["identifier"], "us-east-1")
    schema = f"limits_{uuid.uuid4().hex[:8]}"
    opened = []

    def open_session() -> psycopg.Connection:
        connection = dsql.TimedLogin(login_environment, endpoint).open()
        if not opened:
            connection.execute(f"CREATE SCHEMA {schema}")
            connection.execute(f"CREATE TABLE {schema}.t (id int PRIMARY KEY, note text)")
        connection.execute(f"SET search_path = {schema}")
        opened.append(connection)
        return connection

    yield open_session
    for connection in opened:
        connection.close()


def limited(monkeypatch, **limits) -> None:
    """Sessions opened from now on have these limits (DSQL's own cannot be changed; tests make them small)."""
    monkeypatch.setattr(DsqlProxy, "limits", replace(LIMITS, **limits))


def assert_limit(error: psycopg.Error, answer) -> None:
    assert (error.sqlstate, error.diag.message_primary) == ("54000", answer.message)
    assert error.diag.severity_nonlocalized == "ERROR"


def rows(conn) -> int:
    return conn.execute("SELECT count(*) FROM t").fetchone()[0]


def test_the_guides_limits_are_the_defaults():
    assert (LIMITS.rows, LIMITS.bytes, LIMITS.seconds) == (3000, 10 * 1024 * 1024, 300)
    assert DsqlProxy.limits == LIMITS


def test_an_autocommit_insert_of_more_rows_than_the_limit_leaves_none(connect):
    conn = connect()
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as caught:
        conn.execute("INSERT INTO t SELECT g FROM generate_series(1, 3001) g")
    assert_limit(caught.value, ROW_LIMIT)
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert rows(conn) == 0
    # At the limit it commits (extended protocol this time).
    conn.execute("INSERT INTO t SELECT g FROM generate_series(1, %s) g", [3000])
    assert rows(conn) == 3000


def test_the_extended_protocol_autocommit_write_is_refused_before_its_commit(connect):
    conn = connect()
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as caught:
        conn.execute("INSERT INTO t SELECT g, %s FROM generate_series(1, 3001) g", ["x"])
    assert_limit(caught.value, ROW_LIMIT)
    assert rows(connect()) == 0  # seen from another session: nothing was committed


def test_rows_count_across_the_statements_of_a_transaction(connect, monkeypatch):
    limited(monkeypatch, rows=5)
    conn = connect()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t SELECT g FROM generate_series(1, 3) g")
    conn.execute("UPDATE t SET note = 'n' WHERE id <= 2")  # 5 rows modified: at the limit
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as caught:
        conn.execute("DELETE FROM t WHERE id = %s", [3])
    assert_limit(caught.value, ROW_LIMIT)
    assert conn.info.transaction_status == TransactionStatus.INERROR  # rolled back as after any error
    conn.execute("ROLLBACK")
    assert rows(conn) == 0
    # A new transaction counts from zero.
    with conn.transaction():
        conn.execute("INSERT INTO t SELECT g FROM generate_series(1, 5) g")
    assert rows(conn) == 5


def test_a_pipelined_executemany_past_the_limit_commits_nothing(connect, monkeypatch):
    limited(monkeypatch, rows=5)
    conn = connect()
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):
        conn.cursor().executemany("INSERT INTO t VALUES (%s)", [(n,) for n in range(6)])
    assert rows(conn) == 0
    conn.cursor().executemany("INSERT INTO t VALUES (%s)", [(n,) for n in range(5)])
    assert rows(conn) == 5


def test_a_transaction_older_than_the_limit_cannot_commit(connect, monkeypatch):
    limited(monkeypatch, seconds=1)
    conn = connect()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (1)")
    time.sleep(1.2)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as caught:
        conn.execute("COMMIT")
    assert_limit(caught.value, AGE_LIMIT)
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert rows(conn) == 0


def test_a_statement_past_the_age_limit_is_refused(connect, monkeypatch):
    limited(monkeypatch, seconds=1)
    conn = connect()
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as caught, conn.transaction():
        conn.execute("INSERT INTO t VALUES (%s)", [1])
        time.sleep(1.2)
        conn.execute("INSERT INTO t VALUES (%s)", [2])
    assert_limit(caught.value, AGE_LIMIT)
    assert rows(conn) == 0
    # Quick transactions are untouched by it.
    with conn.transaction():
        conn.execute("INSERT INTO t VALUES (%s)", [3])
    assert rows(conn) == 1


def test_a_transaction_writing_more_than_the_size_limit_is_refused(connect, monkeypatch):
    limited(monkeypatch, bytes=4096)
    conn = connect()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t VALUES (%s, %s)", [1, "x" * 2000])
    with pytest.raises(psycopg.errors.ProgramLimitExceeded) as caught:
        conn.execute("INSERT INTO t VALUES (%s, %s)", [2, "y" * 3000])
    assert_limit(caught.value, SIZE_LIMIT)
    assert caught.value.diag.message_detail.startswith("Current transaction size")
    conn.execute("ROLLBACK")
    assert rows(conn) == 0
