"""manage.py report, and what the sandbox environment gets."""

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dashboard.models import AlertSettings, Report, ReportRequest, ReportSchedule
from infra.sandbox.reports import EXAMPLE_REPORT_SPAN, SANDBOX_MAILBOX, sandbox_reporting

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("fmt,start", [("pdf", b"%PDF-"), ("csv", b"block,title"), ("html", b"<!doctype html>")])
def test_report_command_writes_each_format(env_a, tmp_path, fmt, start):
    out = tmp_path / f"report.{fmt}"
    call_command("report", environment=env_a.slug, period="2026-11-01..2026-11-08", format=fmt, out=str(out))
    assert out.read_bytes().startswith(start)
    assert not Report.objects.exists()  # written, not archived (--store archives it)


def test_report_command_refuses_bad_input(env_a, tmp_path):
    out = str(tmp_path / "x")
    with pytest.raises(CommandError, match="No environment"):
        call_command("report", environment="nowhere", period="daily", format="csv", out=out)
    with pytest.raises(CommandError, match="FROM..TO"):
        call_command("report", environment=env_a.slug, period="fortnightly", format="csv", out=out)
    with pytest.raises(CommandError, match="end after"):
        call_command("report", environment=env_a.slug, period="2026-11-08..2026-11-01", format="csv", out=out)
    with pytest.raises(CommandError, match="time zone"):
        call_command("report", environment=env_a.slug, period="daily", format="csv", out=out, timezone="Nowhere/X")


def test_report_command_can_store_in_the_archive(env_a, tmp_path):
    call_command(
        "report",
        environment=env_a.slug,
        period="weekly",
        timezone="Europe/Berlin",
        format="pdf",
        out=str(tmp_path / "r.pdf"),
        store=True,
    )
    report = Report.objects.get()
    assert report.kind == "weekly" and report.timezone == "Europe/Berlin"


def test_the_sandbox_gets_a_daily_schedule_alerts_and_an_example_report_request(env_a):
    sandbox_reporting(env_a)
    sandbox_reporting(env_a)  # seeding again changes nothing
    schedule = ReportSchedule.objects.get(environment=env_a)
    assert schedule.frequency == "daily" and schedule.recipients == [SANDBOX_MAILBOX] and schedule.next_run_at
    assert AlertSettings.objects.get(environment=env_a).emails == [SANDBOX_MAILBOX]
    request = ReportRequest.objects.get(environment=env_a)
    assert request.status == "queued" and request.enqueued_at is None  # the minute job sends it to a worker
    # The example covers the sandbox's first minutes of probing and waits until they are over and rolled up.
    assert request.wait_for_history and request.period_end - request.period_start == EXAMPLE_REPORT_SPAN
    assert request.period_end > timezone.now()
