"""Optimistic concurrency and isolation at the sandbox's DSQL endpoint: two real psycopg sessions logged in
with IAM tokens, simple and extended protocol (dashboard/dsql_sql/transactions.py has DSQL's answers)."""

import threading
import time
import uuid

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from dashboard import dsql
from dashboard.dsql_sql.rules import BY_ID
from dashboard.dsql_sql.transactions import DATA_CONFLICT, SCHEMA_CONFLICT
from dashboard.models import Environment
from infra.sandbox.seed import environment_settings
from tests.sandbox.helpers import create_active_dsql_cluster

pytestmark = pytest.mark.django_db

PROMPT = 0.5  # seconds: well under any lock wait a test would notice, well over the endpoint's 20 ms


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_active_dsql_cluster(sandbox)


@pytest.fixture(scope="module")
def login_environment(sandbox):
    return Environment(slug="sandbox", **environment_settings(sandbox.config, sandbox.account))


@pytest.fixture
def schema():
    return f"occ_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def connect(login_environment, cluster, schema):
    """Opens logged-in sessions (autocommit, as VelaOps's own) on this test's schema; the first makes it,
    with a table `t` holding rows 1 and 2."""
    endpoint = dsql.cluster_endpoint(cluster["identifier"], "us-east-1")
    opened = []

    def open_session() -> psycopg.Connection:
        connection = dsql.TimedLogin(login_environment, endpoint).open()
        if not opened:
            connection.execute(f"CREATE SCHEMA {schema}")
            connection.execute(f"CREATE TABLE {schema}.t (id int PRIMARY KEY, v int NOT NULL)")
            connection.execute(f"INSERT INTO {schema}.t VALUES (1, 10), (2, 20)")
        connection.execute(f"SET search_path = {schema}")
        opened.append(connection)
        return connection

    yield open_session
    for connection in opened:
        connection.close()


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def assert_conflict(error: psycopg.Error, answer=DATA_CONFLICT) -> None:
    assert isinstance(error, psycopg.errors.SerializationFailure)
    assert (error.sqlstate, error.diag.message_primary) == ("40001", answer.message)
    assert error.diag.severity_nonlocalized == "ERROR"


def value(conn, row_id: int) -> int:
    return conn.execute("SELECT v FROM t WHERE id = %s", [row_id]).fetchone()[0]


@pytest.mark.parametrize("extended", [False, True], ids=["simple", "extended"])
def test_the_second_writer_does_not_wait_and_loses_at_commit(connect, extended):
    first, second = connect(), connect()
    first.execute("BEGIN")
    second.execute("BEGIN")
    update = "UPDATE t SET v = %s WHERE id = 1" if extended else "UPDATE t SET v = {} WHERE id = 1"

    def write(conn, v):
        return conn.execute(update, [v]) if extended else conn.execute(update.format(v))

    write(first, 11)
    # DSQL takes no locks: the second writer is answered at once, while the first is still open.
    _, seconds = timed(lambda: write(second, 12))
    assert seconds < PROMPT
    assert second.info.transaction_status == TransactionStatus.INTRANS
    assert second.execute("SELECT 1").fetchone() == (1,)  # its transaction goes on, doomed
    first.execute("COMMIT")
    with pytest.raises(psycopg.Error) as caught:
        second.execute("COMMIT")
    assert_conflict(caught.value)
    assert second.info.transaction_status == TransactionStatus.IDLE
    # The first to commit won; the loser's write is gone and its session is usable.
    assert value(second, 1) == 11
    write(second, 13)
    assert value(first, 1) == 13


def test_first_committer_wins_through_psycopg_transactions(connect):
    first, second = connect(), connect()
    with first.transaction():
        first.execute("UPDATE t SET v = v + 1 WHERE id = 2")
        with pytest.raises(psycopg.errors.SerializationFailure) as caught, second.transaction():
            second.execute("UPDATE t SET v = v + 100 WHERE id = 2")
            second.execute("UPDATE t SET v = v + 100 WHERE id = 1")  # a row nobody else wrote
    assert_conflict(caught.value)
    # Nothing of the loser's transaction stayed, not even its write to the other row.
    assert (value(first, 1), value(first, 2)) == (10, 21)


def test_a_write_to_a_row_committed_after_the_snapshot_conflicts(connect):
    """DSQL takes the snapshot at BEGIN: a row another transaction commits after it cannot be written."""
    first, second = connect(), connect()
    second.execute("BEGIN")
    first.execute("UPDATE t SET v = 15 WHERE id = 1")  # autocommit: committed now
    assert value(second, 1) == 10  # Repeatable Read: the snapshot of its BEGIN
    second.execute("UPDATE t SET v = 16 WHERE id = 1")
    with pytest.raises(psycopg.Error) as caught:
        second.execute("COMMIT")
    assert_conflict(caught.value)
    assert value(second, 1) == 15


def test_an_autocommit_write_against_an_open_writer_fails_at_once(connect):
    first, second = connect(), connect()
    first.execute("BEGIN")
    first.execute("UPDATE t SET v = 11 WHERE id = 1")
    # Its own COMMIT is the end of the statement: the answer comes at once.
    started = time.perf_counter()
    with pytest.raises(psycopg.Error) as caught:
        second.execute("UPDATE t SET v = %s WHERE id = 1", [12])
    assert time.perf_counter() - started < PROMPT
    assert_conflict(caught.value)
    assert second.info.transaction_status == TransactionStatus.IDLE
    first.execute("COMMIT")
    assert value(second, 1) == 11


def test_writers_of_different_rows_both_commit(connect):
    first, second = connect(), connect()
    first.execute("BEGIN")
    second.execute("BEGIN")
    first.execute("UPDATE t SET v = 11 WHERE id = 1")
    second.execute("UPDATE t SET v = 22 WHERE id = 2")
    second.execute("INSERT INTO t VALUES (3, 30)")
    first.execute("COMMIT")
    second.execute("COMMIT")
    assert first.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, 11), (2, 22), (3, 30)]


def test_a_lost_update_is_prevented(connect):
    first, second = connect(), connect()
    first.execute("BEGIN")
    second.execute("BEGIN")
    assert value(first, 1) == value(second, 1) == 10
    first.execute("UPDATE t SET v = 11 WHERE id = 1")
    second.execute("UPDATE t SET v = 11 WHERE id = 1")
    first.execute("COMMIT")
    with pytest.raises(psycopg.Error) as caught:
        second.execute("COMMIT")
    assert_conflict(caught.value)


def test_ddl_against_an_open_writer_gets_a_schema_conflict(connect):
    first, second = connect(), connect()
    first.execute("BEGIN")
    first.execute("INSERT INTO t VALUES (5, 50)")
    started = time.perf_counter()
    with pytest.raises(psycopg.Error) as caught:
        second.execute("ALTER TABLE t ADD COLUMN note text")
    assert time.perf_counter() - started < PROMPT
    assert_conflict(caught.value, SCHEMA_CONFLICT)
    first.execute("COMMIT")
    second.execute("ALTER TABLE t ADD COLUMN note text")  # retried, as DSQL's guide says
    assert first.execute("SELECT count(*) FROM t").fetchone() == (3,)


def test_the_loser_waits_for_nothing_even_while_the_winner_stays_open(connect):
    first, second = connect(), connect()
    first.execute("BEGIN")
    first.execute("UPDATE t SET v = 11 WHERE id = 1")
    finished = threading.Event()
    outcome = []

    def lose():
        try:
            with second.transaction():
                second.execute("UPDATE t SET v = 12 WHERE id = 1")
        except psycopg.Error as exc:
            outcome.append(exc)
        finished.set()

    worker = threading.Thread(target=lose, daemon=True)
    worker.start()
    assert finished.wait(PROMPT * 4), "the second writer sat in a lock wait"
    assert_conflict(outcome[0])
    first.execute("ROLLBACK")


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN ISOLATION LEVEL SERIALIZABLE",
        "START TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
        "SET default_transaction_isolation = 'serializable'",
    ],
)
def test_isolation_levels_other_than_repeatable_read_are_refused(connect, sql):
    conn = connect()
    with pytest.raises(psycopg.errors.FeatureNotSupported) as caught:
        conn.execute(sql)
    assert caught.value.diag.message_primary == BY_ID["isolation_level"].message
    assert conn.info.transaction_status == TransactionStatus.IDLE
    assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)


def test_psycopg_isolation_levels(connect):
    conn = connect()
    conn.autocommit = False
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
    conn.rollback()
    conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
    with pytest.raises(psycopg.errors.FeatureNotSupported):
        conn.execute("SELECT 1")
    conn.rollback()
    conn.isolation_level = None  # the server's default: DSQL's one level
    assert conn.execute("SHOW transaction_isolation").fetchone() == ("repeatable read",)
    conn.rollback()
