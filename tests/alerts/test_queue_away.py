"""The broker away when an alert is raised: the alert and its deliveries are kept (the probe or step that
raised it is not broken), the failure is logged, and the alert minute job sends the deliveries once the
broker is back. Each outage is a Redis of the test's own, stopped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.alerts.rules import DELIVER_ALERT_TASK, alert_raise
from dashboard.models import Alert, AlertDelivery
from tasks.alerts import alert_jobs
from tests.fixtures.outages import publishing_to
from velaops.celery import app

pytestmark = pytest.mark.django_db


def test_the_name_published_is_the_declared_task():
    assert DELIVER_ALERT_TASK in app.tasks


def test_an_alert_raised_while_the_broker_is_away_is_delivered_by_the_minute_job(
    alerting, own_redis, django_capture_on_commit_callbacks, caplog
):
    environment, target = alerting
    own_redis.stop()
    with publishing_to(own_redis.url), django_capture_on_commit_callbacks(execute=True):
        alert_raise(environment=environment, kind="target_down", subject="DOWN: vela-dsql", body="", target=target)
    assert Alert.objects.count() == 1
    deliveries = sorted(AlertDelivery.objects.values_list("pk", flat=True))
    assert len(deliveries) == 2 and set(AlertDelivery.objects.values_list("status", flat=True)) == {"pending"}
    # One failed publish ends the try (the broker is away): the log names every delivery left.
    first, second = deliveries
    assert f"{DELIVER_ALERT_TASK} not queued for ({first},), ({second},)" in caplog.text
    own_redis.start()
    # The minute job sends pending deliveries once they are overdue (their own tasks never came).
    AlertDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    with publishing_to(own_redis.url):
        assert alert_jobs()["deliveries_resent"] == 2
    assert sorted(own_redis.queued()) == [(DELIVER_ALERT_TASK, f"({pk},)") for pk in deliveries]
