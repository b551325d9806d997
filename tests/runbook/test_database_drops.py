"""A PostgreSQL restart drops every connection: a running step's heartbeat, its log and the recording of
its outcome reconnect and carry on, and what cannot be recorded keeps its true cause. The drop is real:
the server terminates the backends (what a restart or failover does to them), for this test's database
only, never restarting the shared server."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from dashboard.models import Attempt
from dashboard.runbook import service, worker
from dashboard.runbook.context import StepContext
from tests.fixtures.workers import running_worker
from tests.runbook.conftest import mark, step
from tests.runbook.test_worker import wait_finished
from tests.runbook.test_worker_killed import wait_for_log

pytestmark = pytest.mark.django_db(transaction=True)


def terminate_backends(application_name: str | None = None) -> int:
    """Terminate this database's other connections (those of one application, when named)."""
    database = settings.DATABASES["default"]
    with psycopg.connect(
        host=database["HOST"], port=database["PORT"], user=database["USER"], dbname=database["NAME"], autocommit=True
    ) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND (%s::text IS NULL OR application_name = %s)",
            [application_name, application_name],
        ).fetchall()
    return len(rows)


@pytest.fixture(autouse=True)
def _fresh_connection_for_teardown(transactional_db):
    yield
    connection.close()  # whatever a test dropped, the flush after it gets a working connection


@pytest.fixture
def queued_attempt(migration, operator):
    return service.attempt_request(
        step=step(migration, "preflight_stacks"), action="run", user=operator, source_address=None
    )


def test_a_step_log_line_survives_a_dropped_connection(queued_attempt):
    connection.ensure_connection()
    assert terminate_backends() >= 1
    StepContext(queued_attempt).log("written after the drop")
    assert queued_attempt.logs.filter(message="written after the drop").exists()


def test_the_outcome_is_recorded_through_a_dropped_connection(queued_attempt):
    Attempt.objects.filter(pk=queued_attempt.pk).update(status="running")
    connection.ensure_connection()
    terminate_backends()
    worker._finish(queued_attempt, "succeeded", {"ok": True}, {})
    queued_attempt.refresh_from_db()
    assert queued_attempt.status == "succeeded"
    assert step(queued_attempt.migration, "preflight_stacks").state == "succeeded"


def test_an_outcome_that_cannot_be_recorded_keeps_its_true_cause_for_the_sweep(queued_attempt, monkeypatch):
    from django.db import OperationalError

    Attempt.objects.filter(pk=queued_attempt.pk).update(status="running")

    def database_gone(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(worker, "FINISH_WITHIN", 0.5)
    monkeypatch.setattr(worker, "_finish_once", database_gone)
    with pytest.raises(OperationalError):
        worker._finish(queued_attempt, "succeeded", {}, {})
    monkeypatch.undo()
    Attempt.objects.filter(pk=queued_attempt.pk).update(heartbeat_at="2000-01-01T00:00:00Z")
    assert worker.attempts_sweep() == 1
    queued_attempt.refresh_from_db()
    assert queued_attempt.status == "interrupted"
    assert "finished it as succeeded but could not record that" in queued_attempt.reason
    assert "Connection refused" in queued_attempt.reason


def test_the_heartbeat_survives_a_dropped_connection(queued_attempt, monkeypatch):
    import threading

    monkeypatch.setattr(worker, "HEARTBEAT_INTERVAL", 0.2)
    Attempt.objects.filter(pk=queued_attempt.pk).update(status="running", heartbeat_at="2000-01-01T00:00:00Z")
    heartbeat = worker._Heartbeat(queued_attempt.pk, threading.Event())
    heartbeat.start()
    try:
        time.sleep(0.6)
        terminate_backends()
        connection.close()  # ours went too
        time.sleep(0.3)
        dropped_at = time.time()
        time.sleep(1.0)
        assert heartbeat.is_alive(), "the heartbeat thread died with its connection"
        beat = Attempt.objects.get(pk=queued_attempt.pk).heartbeat_at.timestamp()
        assert beat > dropped_at, "no heartbeat since the drop"
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=5)


def test_a_running_step_in_a_real_worker_rides_out_dropped_connections(
    fresh_direct_sandbox_environment, sandbox, operator
):
    environment = fresh_direct_sandbox_environment
    sandbox.moto.configure(40)  # CREATING for 40 s: heartbeats and state polls go on through the drops
    migration = service.migration_start(environment=environment, user=operator, source_address=None)
    mark(migration, "preflight_stacks", "preflight_aurora_empty", "baseline_dynamodb", "snapshot_aurora")
    database = settings.DATABASES["default"]
    url = (
        f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        "?application_name=velaops-drop-test"
    )
    with running_worker(env={"DATABASE_URL": url}):
        attempt = service.attempt_request(
            step=step(migration, "provision_dsql"), action="run", user=operator, source_address=None
        )
        wait_for_log(attempt.pk, ": CREATING")
        dropped = 0
        # A restart, then a flapping failover: every second for longer than a heartbeat interval, so the
        # main thread's connection and the heartbeat's are both dropped, some more than once.
        for _ in range(8):
            dropped += terminate_backends("velaops-drop-test")
            time.sleep(1)
        assert dropped >= 2
        dropped_at = time.time()
        time.sleep(worker.HEARTBEAT_INTERVAL + 2)
        running = Attempt.objects.get(pk=attempt.pk)
        assert running.status == "running" and running.heartbeat_at.timestamp() > dropped_at
        sandbox.moto.configure(1)  # now let the cluster become ACTIVE: the step logs it and finishes
        finished = wait_finished(attempt.pk, timeout=120)
    assert finished.status == "succeeded", (finished.error, finished.reason)
    assert not finished.logs.filter(level="error").exists()
    assert worker.attempts_sweep() == 0
