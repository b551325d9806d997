"""A real Celery worker on the real Redis broker (no eager mode), and the schedule synced into beat's tables."""

import pytest
from celery.contrib.testing.worker import start_worker
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from dashboard.redis_client import redis_client, redis_key
from dashboard.services.heartbeat import HEARTBEAT_KEY
from tasks.heartbeat import record_worker_heartbeat
from tasks.schedule import BEAT_SCHEDULE, MANAGED_PREFIX, prune_stale_entries
from velaops.celery import app


@pytest.fixture(scope="module")
def celery_worker():
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_heartbeat_and_healthz_sees_it(celery_worker, client):
    redis_client().delete(redis_key(HEARTBEAT_KEY))
    result = record_worker_heartbeat.delay()
    result.get(timeout=20)
    assert client.get("/healthz").json()["checks"]["worker"]["ok"] is True


def test_broker_keys_carry_the_run_prefix(celery_worker, settings):
    record_worker_heartbeat.delay().get(timeout=20)
    assert any(redis_client().scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*"))


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
