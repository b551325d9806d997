"""A real Celery worker on the real Redis broker (no eager mode), and the schedule synced into beat's tables."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from dashboard.redis_client import redis_client, redis_key
from dashboard.system.heartbeat import HEARTBEAT_KEY
from tasks.heartbeat import record_worker_heartbeat
from tasks.schedule import BEAT_SCHEDULE, MANAGED_PREFIX, prune_stale_entries
from velaops.celery import app


@pytest.fixture(scope="module")
def celery_worker():
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@app.task(name="tests.test_celery.record_backend_pid")
def record_backend_pid(key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        redis_client().rpush(key, cursor.fetchone()[0])


def backend_pids(key: str, tasks: int) -> list[int]:
    """Run `tasks` tasks one after another on the worker; the database session each ran in."""
    for done in range(1, tasks + 1):
        record_backend_pid.delay(key)
        deadline = time.monotonic() + 20
        while redis_client().llen(key) < done:
            assert time.monotonic() < deadline, "the worker did not run the task"
            time.sleep(0.02)
    return [int(pid) for pid in redis_client().lrange(key, 0, -1)]


def wait_for_heartbeat(timeout: float = 20) -> None:
    """Tasks store no result (their outcome is a row or a stamp): wait for the stamp itself."""
    deadline = time.monotonic() + timeout
    while redis_client().get(redis_key(HEARTBEAT_KEY)) is None:
        assert time.monotonic() < deadline, "the worker did not run the heartbeat"
        time.sleep(0.1)


def test_tasks_store_no_result():
    # A result backend's reconnect loop would hold every publish for 20 s while Redis is away.
    assert app.conf.task_ignore_result is True and not app.conf.result_backend


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_heartbeat_and_healthz_sees_it(celery_worker, client):
    redis_client().delete(redis_key(HEARTBEAT_KEY))
    record_worker_heartbeat.delay()
    wait_for_heartbeat()
    assert client.get("/healthz").json()["checks"]["worker"]["ok"] is True


def test_broker_keys_carry_the_run_prefix(celery_worker, settings):
    redis_client().delete(redis_key(HEARTBEAT_KEY))
    record_worker_heartbeat.delay()
    wait_for_heartbeat()
    assert any(redis_client().scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*"))


@pytest.mark.django_db(transaction=True)
def test_tasks_keep_their_connection_and_a_dead_one_is_replaced(celery_worker):
    key = redis_key("test-celery-backend-pids")
    redis_client().delete(key)
    try:
        # Celery's Django fixup would close it around each task (six sessions); kept, each thread has one.
        first = backend_pids(key, 6)
        assert len(set(first)) <= 2  # the worker's concurrency
        with connection.cursor() as cursor:  # a database restart, as the worker's sessions see it
            cursor.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [list(set(first))])
        # The health check before a kept connection's first use finds it dead: the tasks still run.
        after = backend_pids(key, 10)[6:]
        assert not set(after) & set(first)
    finally:
        redis_client().delete(key)


def test_tasks_are_discovered_from_the_tasks_package():
    app.loader.import_default_modules()
    assert "tasks.heartbeat.record_worker_heartbeat" in app.tasks


def test_every_task_has_time_limits():
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit


@pytest.mark.django_db(transaction=True)  # the scheduler closes the connection as beat does
def test_beat_syncs_the_declared_schedule_by_name_and_prunes_stale_entries():
    every_minute = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    stale = PeriodicTask.objects.create(name=f"{MANAGED_PREFIX}retired job", task="tasks.gone", interval=every_minute)
    by_hand = PeriodicTask.objects.create(
        name="an operator's own job", task="tasks.heartbeat.record_worker_heartbeat", interval=every_minute
    )
    DatabaseScheduler(app=app)  # what `celery beat` builds at start
    prune_stale_entries()
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert set(BEAT_SCHEDULE) <= names
    assert stale.name not in names and by_hand.name in names
    heartbeat = PeriodicTask.objects.get(name=f"{MANAGED_PREFIX}worker heartbeat")
    assert heartbeat.interval.every == 15 and heartbeat.expire_seconds == 15
