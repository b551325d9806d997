"""The report pages: viewers read, operators act (POST with CSRF), nothing crosses environments."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from dashboard.models import Report, ReportRequest, ReportSchedule
from dashboard.periods import Period
from dashboard.reports.generate import build_report, report_store, stored_digest

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture
def report(env_a):
    period = Period(START, START + timedelta(days=1), kind="daily")
    return report_store(environment=env_a, period=period, rendered=build_report(env_a, period))


def login(client, user):
    client.force_login(user)
    return client


def test_viewers_see_the_archive_and_the_report(client, viewer, report, env_a):
    login(client, viewer)
    archive = client.get(reverse("report-archive", args=[env_a.slug]))
    assert archive.status_code == 200 and report.title.encode() in archive.content
    assert b"Generate now" not in archive.content  # viewers do not act
    page = client.get(report.get_absolute_url())
    assert page.status_code == 200 and b"Availability" in page.content and b"has no probe targets" in page.content


@pytest.mark.parametrize(
    "fmt,content_type,start",
    [("pdf", "application/pdf", b"%PDF-"), ("csv", "text/csv", b"block,"), ("html", "text/html", b"<!doctype html>")],
)
def test_downloads(client, viewer, report, env_a, fmt, content_type, start):
    response = login(client, viewer).get(reverse("report-download", args=[env_a.slug, report.pk, fmt]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response.content.startswith(start)
    assert "attachment" in response["Content-Disposition"]


def test_people_without_a_role_are_refused_and_reports_do_not_cross_environments(
    client, outsider, viewer, report, env_a, env_b
):
    login(client, outsider)
    assert client.get(reverse("report-archive", args=[env_a.slug])).status_code == 403
    assert client.get(report.get_absolute_url()).status_code == 403
    login(client, viewer)
    assert client.get(reverse("report-detail", args=[env_b.slug, report.pk])).status_code == 404
    assert client.get(reverse("report-download", args=[env_b.slug, report.pk, "pdf"])).status_code == 404
    assert client.get(reverse("report-download", args=[env_a.slug, report.pk, "exe"])).status_code == 404
    assert client.get(reverse("report-archive", args=["nowhere"])).status_code == 404


def test_generate_now_is_a_post_for_operators(
    client, viewer, operator, env_a, env_b, django_capture_on_commit_callbacks
):
    url = reverse("report-generate", args=[env_a.slug])
    login(client, operator)
    assert client.get(url).status_code == 405
    login(client, viewer)
    assert client.post(url, {"period": "daily", "timezone": "UTC"}).status_code == 403
    login(client, operator)
    with django_capture_on_commit_callbacks() as callbacks:  # the task is sent after commit: not here
        response = client.post(url, {"period": "weekly", "timezone": "Europe/Berlin", "recipients": "a@example.com"})
    assert response.status_code == 302 and len(callbacks) == 1
    request = ReportRequest.objects.get()
    assert (request.environment, request.kind, request.requested_by) == (env_a, "weekly", operator)
    assert request.recipients == ["a@example.com"] and request.period_end - request.period_start == timedelta(days=7)
    assert request.period_start.astimezone().weekday() in (0, 6)  # a local Monday midnight, seen from UTC
    assert client.post(reverse("report-generate", args=["nowhere"]), {"period": "daily"}).status_code == 404


@pytest.mark.parametrize(
    "data,error",
    [
        (
            {"period": "custom", "timezone": "UTC", "start": "2026-11-02T10:00", "end": "2026-11-02T09:00"},
            b"must end after",
        ),
        ({"period": "custom", "timezone": "UTC", "start": "2026-11-02T10:00"}, b"needs both ends"),
        ({"period": "custom", "timezone": "UTC", "start": "2026-11-02T10:00", "end": "2099-01-01T00:00"}, b"future"),
        ({"period": "daily", "timezone": "Mars/Olympus"}, b"not a time zone"),
        ({"period": "daily", "timezone": "UTC", "recipients": "not-an-address"}, b"email addresses"),
    ],
)
def test_generate_now_validates(client, operator, env_a, data, error):
    response = login(client, operator).post(reverse("report-generate", args=[env_a.slug]), data)
    assert response.status_code == 400 and error in response.content
    assert not ReportRequest.objects.exists()


def test_a_custom_range_is_read_in_its_time_zone(client, operator, env_a):
    data = {"period": "custom", "timezone": "Europe/Berlin", "start": "2026-11-02T00:00", "end": "2026-11-03T00:00"}
    assert login(client, operator).post(reverse("report-generate", args=[env_a.slug]), data).status_code == 302
    request = ReportRequest.objects.get()
    assert request.period_start == datetime(2026, 11, 1, 23, tzinfo=UTC)


def test_schedules_are_edited_by_operators(client, viewer, operator, env_a, env_b):
    new = reverse("report-schedule-new", args=[env_a.slug])
    login(client, viewer)
    assert client.get(new).status_code == 403
    login(client, operator)
    form = {
        "name": "Weekly",
        "frequency": "cron",
        "cron_expression": "*/5 * * * *",
        "hour": 7,
        "timezone": "UTC",
        "recipients": "lead@example.com",
        "formats": ["pdf"],
        "enabled": "on",
    }
    response = client.post(new, form)
    assert response.status_code == 400 and b"at most once an hour" in response.content
    form["cron_expression"] = "0 6 * * 1-5"
    assert client.post(new, form).status_code == 302
    schedule = ReportSchedule.objects.get()
    assert schedule.next_run_at > datetime.now(UTC) and schedule.next_run_at.hour == 6
    assert client.get(reverse("report-schedule-edit", args=[env_b.slug, schedule.pk])).status_code == 404
    delete = reverse("report-schedule-delete", args=[env_a.slug, schedule.pk])
    assert client.get(delete).status_code == 405
    assert client.post(delete).status_code == 302 and not ReportSchedule.objects.exists()


def test_a_report_is_immutable(report, env_a):
    assert stored_digest(Report.objects.get(pk=report.pk)) == report.sha256
    report.title = "edited"
    with pytest.raises(Exception, match="immutable"):
        report.save()
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Report.objects.filter(pk=report.pk).update(title="edited behind save()")
    assert Report.objects.get(pk=report.pk).title != "edited behind save()"


def test_deleting_a_schedule_keeps_its_reports(env_a):
    schedule = ReportSchedule.objects.create(environment=env_a, name="Daily")
    period = Period(START, START + timedelta(days=1), kind="daily")
    report = report_store(environment=env_a, period=period, rendered=build_report(env_a, period), schedule=schedule)
    schedule.delete()
    assert Report.objects.get(pk=report.pk).schedule is None
