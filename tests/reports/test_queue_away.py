"""The broker away when a report request or a report email is queued: the row is kept (nothing raises
into the caller), the failure is logged, and the minute job sends it again once the broker is back.
Each outage is a Redis of the test's own, stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from dashboard.models import ReportDelivery, ReportRequest
from dashboard.periods import Period
from dashboard.reports.service import (
    DELIVER_REPORT_TASK,
    GENERATE_REPORT_TASK,
    QUEUED_RESEND_AFTER,
    report_request_create,
    report_request_run,
    report_requests_resend,
)
from tasks.reports import report_jobs
from tests.fixtures.outages import publishing_to
from velaops.celery import app

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 2, tzinfo=UTC)
PERIOD = Period(START, START + timedelta(days=1), kind="daily")


def test_the_names_published_are_the_declared_tasks():
    assert {GENERATE_REPORT_TASK, DELIVER_REPORT_TASK} <= set(app.tasks)


def test_a_request_made_while_the_broker_is_away_is_kept_and_sent_again(
    env_a, own_redis, django_capture_on_commit_callbacks, caplog
):
    own_redis.stop()
    with publishing_to(own_redis.url), django_capture_on_commit_callbacks(execute=True):
        request = report_request_create(environment=env_a, period=PERIOD)
    assert ReportRequest.objects.get(pk=request.pk).status == ReportRequest.Status.QUEUED
    assert f"{GENERATE_REPORT_TASK} not queued for ({request.pk},)" in caplog.text
    own_redis.start()
    later = timezone.now() + QUEUED_RESEND_AFTER + timedelta(seconds=1)
    with publishing_to(own_redis.url), django_capture_on_commit_callbacks(execute=True):
        assert report_requests_resend(later) == [request.pk]
    assert own_redis.queued() == [(GENERATE_REPORT_TASK, f"({request.pk},)")]


def test_a_report_email_queued_while_the_broker_is_away_is_sent_by_the_minute_job(
    env_a, own_redis, django_capture_on_commit_callbacks, caplog
):
    request = report_request_create(environment=env_a, period=PERIOD, recipients=["lead@example.com"], enqueue=False)
    own_redis.stop()
    with publishing_to(own_redis.url), django_capture_on_commit_callbacks(execute=True):
        assert report_request_run(request.pk) == ("done", None)
    delivery = ReportDelivery.objects.get()
    assert delivery.status == "pending" and f"{DELIVER_REPORT_TASK} not queued for ({delivery.pk},)" in caplog.text
    own_redis.start()
    # The minute job sends a pending delivery once it is overdue (its own task never came).
    ReportDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    with publishing_to(own_redis.url):
        assert report_jobs()["deliveries_resent"] == 1
    assert (DELIVER_REPORT_TASK, f"({delivery.pk},)") in own_redis.queued()
