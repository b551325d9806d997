"""Redis away: an action that cannot be queued says so at once and is recorded as not started; a queued
attempt whose message was lost is sent again by the sweep; pages that read through the cache still answer;
a worker waits the broker out instead of dying. Each outage is a Redis of the test's own, stopped."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from dashboard.models import Attempt, Step
from dashboard.runbook import service, worker
from tests.fixtures.outages import publishing_to
from tests.fixtures.workers import running_worker
from tests.runbook.conftest import mark, step
from tests.runbook.test_worker import wait_finished
from tests.runbook.test_worker_killed import wait_for_log

pytestmark = pytest.mark.django_db(transaction=True)


def run_url(migration, key):
    return reverse("step-action", args=[migration.environment.slug, migration.pk, step(migration, key).pk, "run"])


def test_run_with_the_broker_away_answers_within_seconds_and_records_not_started(
    client, migration, operator, own_redis
):
    client.force_login(operator)
    own_redis.stop()
    with publishing_to(own_redis.url):
        started = time.monotonic()
        response = client.post(run_url(migration, "preflight_stacks"))
        elapsed = time.monotonic() - started
    assert response.status_code == 302 and elapsed < 3, elapsed
    attempt = Attempt.objects.get()
    assert attempt.status == Attempt.Status.NOT_STARTED and attempt.finished_at
    assert "unreachable" in attempt.reason and "nothing ran" in attempt.reason
    assert attempt.logs.filter(level="error", message__contains="not started").exists()
    assert step(migration, "preflight_stacks").state == Step.State.PENDING  # nothing ran, nothing failed
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("could not be queued" in m and "Nothing ran" in m for m in shown), shown
    # Nothing is left active: once the queue is back, the same step runs as attempt 2.
    retry = service.attempt_request(
        step=step(migration, "preflight_stacks"), action="run", user=operator, source_address=None
    )
    retry.refresh_from_db()
    assert (retry.number, retry.status) == (2, "queued") and retry.enqueued_at


def test_the_sweep_sends_again_a_queued_attempt_whose_message_was_lost(
    fresh_direct_sandbox_environment, operator, own_redis
):
    migration = service.migration_start(
        environment=fresh_direct_sandbox_environment, user=operator, source_address=None
    )
    with publishing_to(own_redis.url):
        attempt = service.attempt_request(
            step=step(migration, "preflight_stacks"), action="run", user=operator, source_address=None
        )
    # Redis restarts empty (no persistence): the message is gone, the row still says queued.
    own_redis.stop()
    own_redis.start()
    assert own_redis.client().dbsize() == 0
    long_ago = timezone.now() - worker.RESEND_AFTER - timedelta(seconds=1)
    Attempt.objects.filter(pk=attempt.pk).update(requested_at=long_ago, enqueued_at=long_ago)
    with running_worker(env={"REDIS_URL": own_redis.url}), publishing_to(own_redis.url):
        assert worker.attempts_sweep() == 0  # re-sent, not given up on
        finished = wait_finished(attempt.pk, timeout=60)
    assert finished.status == "succeeded", finished.error


def test_a_queued_attempt_nobody_picks_up_ends_not_started_and_leaves_its_step_alone(migration, operator):
    attempt = service.attempt_request(
        step=step(migration, "preflight_stacks"), action="run", user=operator, source_address=None
    )
    Attempt.objects.filter(pk=attempt.pk).update(requested_at=timezone.now() - worker.QUEUED_TIMEOUT)
    assert worker.attempts_sweep() == 1
    attempt.refresh_from_db()
    assert attempt.status == "not_started" and "no worker picked it up" in attempt.reason
    assert step(migration, "preflight_stacks").state == Step.State.PENDING


def dead_cache(own_redis):
    """The cache backend as configured, on a Redis that has stopped."""
    own_redis.stop()
    configured = settings.CACHES["default"]
    backend = import_string(configured["BACKEND"])
    return backend(own_redis.url, {key: value for key, value in configured.items() if key != "LOCATION"})


def test_the_cache_misses_quickly_while_its_redis_is_away(own_redis, caplog, monkeypatch):
    from dashboard import cache as tolerant

    monkeypatch.setattr(tolerant, "_last_warning", 0.0)  # warnings are once a minute: this test wants one
    monkeypatch.setattr(tolerant.log, "disabled", False)  # an in-process Celery worker's logging setup may disable it
    caplog.set_level(logging.WARNING, logger=tolerant.log.name)
    away = dead_cache(own_redis)
    started = time.monotonic()
    away.set("k", 1)
    away.set_many({"a": 1})
    assert away.get("k") is None and away.get("k", "default") == "default" and away.get_many(["a", "b"]) == {}
    assert not away.add("k", 1) and not away.delete("k")
    assert time.monotonic() - started < 3
    assert "cache unavailable" in caplog.text


@pytest.mark.parametrize("range_key", ["30d", "1y"])
def test_long_ranges_of_the_target_page_answer_with_the_cache_away(
    client, viewer, sandbox_environment, own_redis, monkeypatch, range_key
):
    from dashboard.models import Target
    from dashboard.monitoring import stats

    monkeypatch.setattr(stats, "cache", dead_cache(own_redis))
    client.force_login(viewer)
    target = Target.objects.filter(environment=sandbox_environment).first()
    response = client.get(target.get_absolute_url(), {"range": range_key})
    assert response.status_code == 200


# The default worker of make run and the compose file (prefork) and the probes worker (threads).
@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_worker_waits_out_a_broker_outage_while_it_holds_a_message(
    pool, fresh_direct_sandbox_environment, sandbox, operator, own_redis
):
    environment = fresh_direct_sandbox_environment
    sandbox.moto.configure(12)  # a long CREATING phase: the worker holds the unacknowledged message throughout
    migration = service.migration_start(environment=environment, user=operator, source_address=None)
    mark(migration, "preflight_stacks", "preflight_aurora_empty", "baseline_dynamodb", "snapshot_aurora")
    with (
        running_worker("--pool", pool, "--concurrency", "2", env={"REDIS_URL": own_redis.url}) as process,
        publishing_to(own_redis.url),
    ):
        attempt = service.attempt_request(
            step=step(migration, "provision_dsql"), action="run", user=operator, source_address=None
        )
        wait_for_log(attempt.pk, ": CREATING")
        own_redis.stop()
        # The step ends while the broker is away: the worker's acknowledgement (and, before, its result
        # backend's 20 reconnects) meet a dead Redis. It must wait the outage out, not exit.
        sandbox.moto.configure(1)
        finished = wait_finished(attempt.pk, timeout=60)
        assert finished.status == "succeeded", finished.error
        time.sleep(8)
        assert process.poll() is None, "the worker died with the broker"
        own_redis.start()
        # And it consumes new work once the broker is back.
        later = service.attempt_request(
            step=step(migration, "verify_dsql"), action="run", user=operator, source_address=None
        )
        assert wait_finished(later.pk, timeout=60).status in ("succeeded", "failed")
        assert process.poll() is None
