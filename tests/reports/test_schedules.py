"""Schedules: claimed once per occurrence, a missed run made once, the report emailed with its PDF."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from dashboard.models import Report, ReportDelivery, ReportRequest, ReportSchedule
from dashboard.periods import scheduled_period, validate_cron
from dashboard.reports.service import report_delivery_send, report_request_run, schedules_run_due

pytestmark = pytest.mark.django_db


def due_schedule(environment, **fields) -> ReportSchedule:
    schedule = ReportSchedule.objects.create(environment=environment, name="Daily", **fields)
    ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=datetime(2026, 11, 2, 7, tzinfo=UTC))
    return schedule


def test_a_due_schedule_is_claimed_once_for_the_most_recent_period(env_a, django_capture_on_commit_callbacks):
    due_schedule(env_a, hour=7, recipients=["lead@example.com"])
    # The scheduler was down from Nov 2 to Nov 5 10:00: one report, for Nov 4, not three.
    now = datetime(2026, 11, 5, 10, tzinfo=UTC)
    with django_capture_on_commit_callbacks():
        (request,) = schedules_run_due(now)
        assert schedules_run_due(now) == []  # claimed: a second beat tick (or a second beat) does nothing
        assert schedules_run_due(now + timedelta(hours=1)) == []
    assert (request.period_start, request.period_end) == (
        datetime(2026, 11, 4, tzinfo=UTC),
        datetime(2026, 11, 5, tzinfo=UTC),
    )
    assert request.recipients == ["lead@example.com"] and request.wait_for_history
    schedule = ReportSchedule.objects.get()
    assert schedule.next_run_at == datetime(2026, 11, 6, 7, tzinfo=UTC) and schedule.last_run_at == now
    assert ReportRequest.objects.count() == 1


def test_a_stale_claim_loses(env_a):
    schedule = due_schedule(env_a)
    read_by_another_beat = ReportSchedule.objects.get(pk=schedule.pk).next_run_at
    ReportSchedule.objects.filter(pk=schedule.pk).update(next_run_at=read_by_another_beat + timedelta(days=1))
    assert schedules_run_due(read_by_another_beat + timedelta(minutes=1)) == []


def test_calendar_and_cron_periods():
    now = datetime(2026, 11, 5, 10, tzinfo=UTC)  # a Thursday
    weekly = scheduled_period("weekly", "", "UTC", now)
    assert (weekly.start, weekly.end) == (datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    monthly = scheduled_period("monthly", "", "America/New_York", now)
    assert monthly.start == datetime(2026, 10, 1, 4, tzinfo=UTC) and monthly.end == datetime(2026, 11, 1, 4, tzinfo=UTC)
    cron = scheduled_period("cron", "0 6,18 * * *", "UTC", now)
    assert (cron.start, cron.end) == (datetime(2026, 11, 4, 18, tzinfo=UTC), datetime(2026, 11, 5, 6, tzinfo=UTC))
    with pytest.raises(Exception, match="at most once an hour"):
        validate_cron("*/10 * * * *")
    with pytest.raises(Exception, match="Not a valid cron"):
        validate_cron("0 25 * * *")


def test_a_request_becomes_a_report_and_an_email_with_the_pdf_and_a_link(
    env_a, settings, django_capture_on_commit_callbacks
):
    settings.VELAOPS_BASE_URL = "https://velaops.example.com"
    schedule = due_schedule(env_a, recipients=["lead@example.com", "ops@example.com"], formats=["pdf", "csv"])
    with django_capture_on_commit_callbacks():
        (request,) = schedules_run_due(datetime(2026, 11, 5, 10, tzinfo=UTC))
    # The rollups have not reached the period's end: a scheduled report waits (a little).
    assert report_request_run(request.pk, now=datetime(2026, 11, 5, 0, 5, tzinfo=UTC))[0] == "waiting"
    with django_capture_on_commit_callbacks() as callbacks:
        assert report_request_run(request.pk, now=datetime(2026, 11, 5, 10, tzinfo=UTC)) == ("done", None)
    assert len(callbacks) == 2  # one email task per recipient, sent after commit
    assert report_request_run(request.pk)[0] == "skipped"  # a duplicate message does nothing
    report = Report.objects.get()
    assert report.schedule == schedule and ReportRequest.objects.get().report == report
    for delivery in ReportDelivery.objects.all():
        assert report_delivery_send(delivery.pk).status == "sent"
    assert {message.to[0] for message in mail.outbox} == {"lead@example.com", "ops@example.com"}
    message = mail.outbox[0]
    assert message.subject == report.title
    names = [name for name, _, _ in message.attachments]
    assert any(name.endswith(".pdf") for name in names) and any(name.endswith(".csv") for name in names)
    assert message.attachments[0][1].startswith(b"%PDF-")
    link = f"https://velaops.example.com/environments/{env_a.slug}/reports/{report.pk}/"
    assert link in message.body and link in message.alternatives[0][0]


def test_a_failing_email_is_retried_then_recorded_as_failed(env_a, settings, monkeypatch):
    from dashboard.periods import Period
    from dashboard.reports.generate import build_report, report_store

    settings.DELIVERY_MAX_ATTEMPTS = 2
    period = Period(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    report = report_store(environment=env_a, period=period, rendered=build_report(env_a, period))
    delivery = ReportDelivery.objects.create(report=report, recipient="lead@example.com")

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)
    first = report_delivery_send(delivery.pk)
    assert first.status == "pending" and first.retry_in == settings.DELIVERY_RETRY_BASE_SECONDS
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and "Connection refused" in delivery.last_error
    assert report_delivery_send(delivery.pk).status == "failed"  # the retry fails too: the last attempt
    assert report_delivery_send(delivery.pk).status == "skipped"  # nothing more to do
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
