"""Report jobs: the minute job (due schedules, lost or stale requests, undelivered emails), generating
one requested report, and emailing it."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from dashboard.reports import service


@shared_task(name="tasks.reports.report_jobs", soft_time_limit=50, time_limit=60)
def report_jobs() -> dict[str, int]:
    now = timezone.now()
    scheduled = service.schedules_run_due(now)
    resent = service.report_requests_resend(now)
    deliveries = service.report_deliveries_due(now)
    for delivery_id in deliveries:
        deliver_report.delay(delivery_id)
    return {"scheduled": len(scheduled), "requests_resent": len(resent), "deliveries_resent": len(deliveries)}


# A year of 20 targets renders in a few seconds; the limit leaves room for a slow PDF.
@shared_task(bind=True, name="tasks.reports.generate_report", max_retries=None, soft_time_limit=240, time_limit=300)
def generate_report(self, request_id: int) -> str:
    status, retry_in = service.report_request_run(request_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)
    return status


@shared_task(bind=True, name="tasks.reports.deliver_report", max_retries=None, soft_time_limit=60, time_limit=90)
def deliver_report(self, delivery_id: int) -> str:
    # Attempts are counted on the delivery row, which also decides when to give up.
    outcome = service.report_delivery_send(delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status
