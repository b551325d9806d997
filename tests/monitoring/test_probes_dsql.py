"""The DSQL probe against the sandbox's DSQL endpoint: a real IAM token, a real login, real faults."""

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.conf import settings
from django.utils import timezone

from dashboard import dsql
from dashboard.models import ProbeKind, Target
from dashboard.monitoring.probes import clients, run_probe
from dashboard.monitoring.probes import dsql as dsql_probe
from tests.sandbox.helpers import create_active_dsql_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_active_dsql_cluster(sandbox)


def dsql_target(environment, name, **fields) -> Target:
    target, _ = Target.objects.update_or_create(
        environment=environment, kind=ProbeKind.DSQL, name=name, defaults=fields
    )
    return target


@pytest.fixture
def tokens(monkeypatch):
    """Every IAM token the probe generates (through dashboard.dsql's login), to check that none leaks into
    what it returns. This thread's reused token is forgotten first, so the probe signs one."""
    clients.clear()
    seen = []
    real = dsql.auth_token

    def recording(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(dsql, "auth_token", recording)
    return seen


def stand_in_row(sandbox, key):
    """The probe's row, read directly from the database that stands in for every sandbox cluster."""
    with psycopg.connect(**sandbox.config.pg_params(sandbox.config.dsql_database)) as conn:
        row = conn.execute("SELECT at FROM velaops_probe WHERE id = %s", (key,)).fetchone()
    return row[0] if row else None


def test_a_login_and_select_one_is_timed_in_phases(sandbox_environment, cluster):
    outcome = run_probe(dsql_target(sandbox_environment, cluster["identifier"]))
    assert outcome.ok is True, outcome.error
    assert outcome.error == ""
    assert set(outcome.phases) == {"token", "connect", "query"}
    assert all(ms > 0 for ms in outcome.phases.values())
    assert outcome.latency_ms == pytest.approx(sum(outcome.phases.values()))
    assert outcome.cold_start is None
    assert outcome.details["endpoint"] == f"{cluster['identifier']}.dsql.us-east-1.on.aws"


def test_the_write_check_upserts_and_reads_back_this_targets_row(sandbox, sandbox_environment, cluster):
    target = dsql_target(sandbox_environment, cluster["identifier"], write_check=True)
    before = datetime.now(UTC)
    first = run_probe(target)
    assert first.ok is True, first.error
    assert set(first.phases) == {"token", "connect", "query", "write"}
    assert first.phases["write"] > 0
    # Only the login counts as the probe's latency; the write is a phase of its own.
    assert first.latency_ms == pytest.approx(first.phases["token"] + first.phases["connect"] + first.phases["query"])
    written = stand_in_row(sandbox, f"target-{target.pk}")
    assert before <= written <= datetime.now(UTC)

    second = run_probe(target)
    assert second.ok is True and second.details["created_table"] is False
    assert stand_in_row(sandbox, f"target-{target.pk}") > written


def test_the_write_check_creates_its_table_when_missing(sandbox, sandbox_environment, cluster):
    with psycopg.connect(**sandbox.config.pg_params(sandbox.config.dsql_database)) as conn:
        conn.execute("DROP TABLE IF EXISTS velaops_probe")
    outcome = run_probe(dsql_target(sandbox_environment, cluster["identifier"], write_check=True))
    assert outcome.ok is True, outcome.error
    assert outcome.details["created_table"] is True


def test_a_failed_write_keeps_the_login_timings(sandbox, sandbox_environment, cluster):
    params = sandbox.config.pg_params(sandbox.config.dsql_database)
    with psycopg.connect(**params) as conn:
        conn.execute("DROP TABLE IF EXISTS velaops_probe")
        conn.execute("CREATE TABLE velaops_probe (id integer PRIMARY KEY, at timestamptz)")
    try:
        outcome = run_probe(dsql_target(sandbox_environment, cluster["identifier"], write_check=True))
    finally:
        with psycopg.connect(**params) as conn:
            conn.execute("DROP TABLE velaops_probe")
    assert outcome.ok is False
    assert outcome.error.startswith("write check: 22P02: invalid input syntax for type integer")
    assert set(outcome.phases) == {"token", "connect", "query"} and outcome.latency_ms > 0


def test_a_refused_connection_fails_without_a_latency(sandbox, sandbox_environment, cluster, tokens):
    sandbox.faults.update({"dsql_refuse": True})
    outcome = run_probe(dsql_target(sandbox_environment, cluster["identifier"]))
    assert outcome.ok is False
    assert outcome.latency_ms is None and outcome.phases == {}
    assert "connection" in outcome.error.lower()
    assert outcome.details["elapsed_ms"] > 0
    assert tokens and tokens[0] not in outcome.error


def test_a_slow_endpoint_fails_within_the_targets_timeout(sandbox, sandbox_environment, cluster):
    sandbox.faults.update({"dsql_latency_ms": 5000})
    started = time.perf_counter()
    outcome = run_probe(dsql_target(sandbox_environment, cluster["identifier"], timeout_seconds=1))
    elapsed = time.perf_counter() - started
    assert outcome.ok is False
    assert "timeout" in outcome.error.lower()
    assert 0.9 < elapsed < 4


def test_an_unknown_cluster_is_refused_and_the_token_stays_secret(sandbox_environment, tokens):
    outcome = run_probe(dsql_target(sandbox_environment, "abcdefghijklmnopqrstuvwxyz"))
    assert outcome.ok is False
    assert "access denied" in outcome.error and "no DSQL cluster abcdefghijklmnopqrstuvwxyz" in outcome.error
    token = tokens[0]
    signature = token.split("X-Amz-Signature=")[1].split("&")[0]
    for text in (outcome.error, repr(outcome.details)):
        assert token not in text and signature not in text
        assert "X-Amz-Credential" not in text


def test_a_cluster_still_creating_is_refused(sandbox, sandbox_environment, slow_cluster_creation):
    from tests.sandbox.helpers import aws

    creating = aws(sandbox, "dsql").create_cluster(deletionProtectionEnabled=False)
    outcome = run_probe(dsql_target(sandbox_environment, creating["identifier"]))
    assert outcome.ok is False and "is CREATING, not ACTIVE" in outcome.error


def test_an_error_that_echoes_the_token_is_redacted():
    token = (
        "abc.dsql.us-east-1.on.aws/?Action=DbConnectAdmin&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKID%2F20261120%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Date=20261120T120000Z"
        "&X-Amz-Expires=900&X-Amz-Security-Token=FwoG%2Bsession&X-Amz-SignedHeaders=host&X-Amz-Signature=f00d"
    )
    secrets = dsql.token_secrets(token)
    assert "f00d" in secrets and "FwoG+session" in secrets and "FwoG%2Bsession" in secrets
    error = psycopg.OperationalError(f'invalid password "{token}"; signature f00d; session FwoG+session')
    text = dsql_probe.database_error(error, *secrets)
    assert "f00d" not in text and "FwoG" not in text
    assert text == 'invalid password "[redacted]"; signature [redacted]; session [redacted]'


def test_a_query_that_outlasts_its_time_is_cancelled():
    database = settings.DATABASES["default"]
    params = {"host": database["HOST"], "port": database["PORT"], "user": database["USER"], "dbname": "postgres"}
    with psycopg.connect(**params, password=database["PASSWORD"] or None, autocommit=True) as conn:
        started = time.perf_counter()
        with pytest.raises(psycopg.errors.QueryCanceled):
            with dsql.cancel_after(conn, 0.3):
                conn.execute("SELECT pg_sleep(5)")
        assert time.perf_counter() - started < 2
        # A block that finishes in time is left alone, and so is the connection.
        with dsql.cancel_after(conn, 0.3):
            assert conn.execute("SELECT 1").fetchone() == (1,)
        time.sleep(0.4)
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_the_cancel_watchdog_is_one_thread_and_keeps_each_deadline():
    database = settings.DATABASES["default"]
    params = {"host": database["HOST"], "port": database["PORT"], "user": database["USER"], "dbname": "postgres"}
    with (
        psycopg.connect(**params, password=database["PASSWORD"] or None, autocommit=True) as slow,
        psycopg.connect(**params, password=database["PASSWORD"] or None, autocommit=True) as quick,
    ):
        with dsql.cancel_after(quick, 0.2):
            quick.execute("SELECT 1")  # the watchdog is running
        threads = threading.active_count()
        for _ in range(50):
            with dsql.cancel_after(quick, 0.2):
                quick.execute("SELECT 1")
        assert threading.active_count() == threads  # no thread per block
        # A deadline sooner than the one the watchdog waits for is kept, and the later one stays watched.
        with dsql.cancel_after(slow, 30):
            started = time.perf_counter()
            with pytest.raises(psycopg.errors.QueryCanceled), dsql.cancel_after(quick, 0.3):
                quick.execute("SELECT pg_sleep(5)")
            assert time.perf_counter() - started < 2
            slow.execute("SELECT pg_sleep(0.5)")  # its 30 s are not up: left alone
        with pytest.raises(psycopg.errors.QueryCanceled), dsql.cancel_after(slow, 0.3):
            slow.execute("SELECT pg_sleep(5)")
        time.sleep(0.5)  # the released 30 s deadline never fires on the connection's next query
        assert slow.execute("SELECT 2").fetchone() == (2,)


def test_a_thread_reuses_its_token_while_it_lasts(sandbox, sandbox_environment, cluster, tokens, monkeypatch):
    target = dsql_target(sandbox_environment, cluster["identifier"])
    assert run_probe(target).ok and run_probe(target).ok
    assert len(tokens) == 1  # DSQL lets one token open connections while it lasts
    other = []
    thread = threading.Thread(target=lambda: other.append(run_probe(target)))
    thread.start()
    thread.join()
    assert other[0].ok and len(tokens) == 2  # each thread signs with its own client
    # A refused login drops the token: the next probe signs afresh.
    sandbox.faults.update({"dsql_refuse": True})
    assert not run_probe(target).ok
    sandbox.faults.clear()
    assert run_probe(target).ok and len(tokens) == 3
    monkeypatch.setattr(clients, "TOKEN_REUSE_SECONDS", 0)  # its time in this thread is up
    assert run_probe(target).ok and run_probe(target).ok and len(tokens) == 5


def test_written_value_must_match(monkeypatch):
    class Connection:
        def execute(self, query, params=()):
            return self

        def fetchone(self):
            return (datetime.now(UTC) - timedelta(days=1),)

    with pytest.raises(dsql_probe.WriteMismatch, match="read back"):
        dsql_probe.write_round_trip(Connection(), "target-1")


def test_a_login_that_wakes_an_idle_cluster_is_recorded_as_a_cold_start(sandbox, sandbox_environment, cluster):
    """After a long gap the probe reads the cluster's state first: an IDLE cluster's slower first connect is a
    cold start, not slowness; a probe soon after reads nothing first (the 30 s default keeps clusters awake)."""
    from tests.sandbox.helpers import aws

    target = dsql_target(sandbox_environment, cluster["identifier"], last_probed_at=None)
    sandbox.faults.update({"dsql_idle": "idle"})
    try:
        # The fault idles a cluster once it has had no login for 2 s: an earlier test's may be more recent.
        deadline = time.monotonic() + 10
        while aws(sandbox, "dsql").get_cluster(identifier=cluster["identifier"])["status"] != "IDLE":
            assert time.monotonic() < deadline, "the cluster never went IDLE"
            time.sleep(0.2)
        outcome = run_probe(target)
    finally:
        sandbox.faults.clear()
    assert outcome.ok is True, outcome.error
    assert (outcome.cold_start, outcome.details["woke_from"]) == (True, "IDLE")
    target.last_probed_at = timezone.now()
    target.save(update_fields=["last_probed_at"])
    again = run_probe(target)
    assert again.ok is True and again.cold_start is None and "woke_from" not in again.details
