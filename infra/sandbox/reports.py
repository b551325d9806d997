"""What the offline sandbox environment gets from reports and alerts: a daily report schedule, alert
settings mailing a local address, and one example report in its archive: the sandbox's first minutes of
probing, generated once they are over (by the minute job, so seeding stays quick and the suite's seeds
start no work)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from dashboard.models import AlertSettings, Environment, ReportFormat, ReportRequest, ReportSchedule
from dashboard.periods import custom_period
from dashboard.reports.service import report_request_create

SANDBOX_MAILBOX = "ops@sandbox.invalid"
EXAMPLE_REPORT_SPAN = timedelta(minutes=5)


def sandbox_reporting(environment: Environment) -> None:
    ReportSchedule.objects.get_or_create(
        environment=environment,
        name="Daily health",
        defaults={
            "frequency": "daily",
            "timezone": "UTC",
            "hour": 6,
            "recipients": [SANDBOX_MAILBOX],
            "formats": [ReportFormat.PDF, ReportFormat.CSV],
        },
    )
    AlertSettings.objects.get_or_create(
        environment=environment,
        defaults={"emails": [SANDBOX_MAILBOX], "webhook_url": "", "resend_minutes": 30},
    )
    if not environment.reports.exists() and not ReportRequest.objects.filter(environment=environment).exists():
        now = timezone.now().replace(second=0, microsecond=0)
        # Queued without a message: the minute job sends it to a worker, which waits for the period to end.
        report_request_create(
            environment=environment,
            period=custom_period(now, now + EXAMPLE_REPORT_SPAN),
            enqueue=False,
            wait_for_history=True,
        )
