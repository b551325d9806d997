"""Report jobs: requests (on demand or from a schedule) run by a worker, schedules claimed by the minute
job, and the emails that carry a report to its recipients.

A request is the job's record. It is claimed with a conditional update (queued -> running), so a
duplicate message or a second worker does nothing; its outcome (the report, or the error) stays on it.
A schedule is claimed the same way, by moving its next_run_at from the value read to the next
occurrence: however many beats run, one of them wins each occurrence. A scheduler that was down for
days generates one report, for the most recent completed period, then carries on from now.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from dashboard import queue
from dashboard.models import Environment, Report, ReportDelivery, ReportFormat, ReportRequest, ReportSchedule
from dashboard.notifications.channels import send_email
from dashboard.notifications.delivery import Outcome, deliveries_due, delivery_send
from dashboard.notifications.links import absolute
from dashboard.periods import Period, next_occurrence, scheduled_period
from dashboard.reports.content import history_settled
from dashboard.reports.generate import build_report, report_store
from dashboard.reports.render import render_document

log = logging.getLogger(__name__)

# Published by name through dashboard.queue (tasks/reports.py declares them).
GENERATE_REPORT_TASK = "tasks.reports.generate_report"
DELIVER_REPORT_TASK = "tasks.reports.deliver_report"

REQUEST_MAX_ATTEMPTS = 3
# A running request whose worker vanished (killed, out of memory) is retried after this long.
RUNNING_STALE_AFTER = timedelta(minutes=15)
# A queued request whose message was lost is re-sent after this long.
QUEUED_RESEND_AFTER = timedelta(minutes=2)
# A scheduled report waits for the rollups to cover its period, but no longer than this.
HISTORY_WAIT_LIMIT = timedelta(minutes=15)
HISTORY_WAIT_STEP = 30  # seconds between checks


# --- requests ---------------------------------------------------------------------------------------


def report_request_create(
    *,
    environment: Environment,
    period: Period,
    requested_by: AbstractBaseUser | None = None,
    recipients: list[str] | None = None,
    formats: list[str] | None = None,
    enqueue: bool = True,
    wait_for_history: bool = False,
) -> ReportRequest:
    """Ask for a report of any period; a worker generates it (and emails it to `recipients`, if any).
    With `wait_for_history`, not before the period has ended and its history is rolled up."""
    request = ReportRequest.objects.create(
        environment=environment,
        kind=period.kind,
        period_start=period.start,
        period_end=period.end,
        timezone=period.timezone,
        requested_by=requested_by,
        recipients=list(recipients or []),
        formats=list(formats if formats is not None else [ReportFormat.PDF]),
        enqueued_at=timezone.now() if enqueue else None,
        wait_for_history=wait_for_history,
    )
    if enqueue:
        _enqueue(request.pk)
    return request


def _enqueue(request_id: int) -> None:
    # A lost message (the broker away at commit) is re-sent by report_requests_resend.
    queue.send_on_commit(GENERATE_REPORT_TASK, request_id)


def report_request_run(request_id: int, now: datetime | None = None) -> tuple[str, int | None]:
    """Generate the requested report. Returns (status, retry in seconds or None): "done", "failed",
    "waiting" (history not rolled up yet), "retry" (failed, will be tried again) or "skipped"."""
    now = now or timezone.now()
    request = ReportRequest.objects.filter(pk=request_id).select_related("environment", "schedule").first()
    if request is None or request.status != ReportRequest.Status.QUEUED:
        return "skipped", None
    if request.wait_for_history and not history_settled(request.period_end):
        if now - request.period_end < HISTORY_WAIT_LIMIT:
            # Stamped so the minute job does not start a second chain of waits for this request.
            ReportRequest.objects.filter(pk=request.pk).update(enqueued_at=now)
            return "waiting", HISTORY_WAIT_STEP
        log.warning("report request %s: rollups still behind after %s; reporting what there is", request.pk, now)
    claimed = ReportRequest.objects.filter(pk=request.pk, status=ReportRequest.Status.QUEUED).update(
        status=ReportRequest.Status.RUNNING, started_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return "skipped", None
    request.refresh_from_db()
    period = Period(request.period_start, request.period_end, request.timezone, request.kind)
    try:
        rendered = build_report(request.environment, period)
        with transaction.atomic():
            report = report_store(
                environment=request.environment,
                period=period,
                rendered=rendered,
                schedule=request.schedule,
                generated_by=request.requested_by,
            )
            finished = ReportRequest.objects.filter(pk=request.pk, status=ReportRequest.Status.RUNNING).update(
                status=ReportRequest.Status.DONE, report=report, finished_at=timezone.now(), error=""
            )
            if not finished:  # the stale sweep gave up on us meanwhile: keep nothing, the retry makes it
                transaction.set_rollback(True)
                return "skipped", None
            _create_deliveries(report, request.recipients)
    except Exception as exc:  # noqa: BLE001 — recorded on the request, retried within bounds
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.exception("report request %s failed", request.pk)
        final = request.attempts >= REQUEST_MAX_ATTEMPTS
        ReportRequest.objects.filter(pk=request.pk, status=ReportRequest.Status.RUNNING).update(
            status=ReportRequest.Status.FAILED if final else ReportRequest.Status.QUEUED,
            error=error,
            finished_at=timezone.now() if final else None,
            enqueued_at=timezone.now(),
        )
        return ("failed", None) if final else ("retry", 30 * 2**request.attempts)
    return "done", None


def report_requests_resend(now: datetime | None = None) -> list[int]:
    """Requests whose message got lost (queued, not enqueued recently) or whose worker vanished
    (running for too long): put back in the queue; returns the ids enqueued."""
    now = now or timezone.now()
    ReportRequest.objects.filter(status=ReportRequest.Status.RUNNING, started_at__lt=now - RUNNING_STALE_AFTER).update(
        status=ReportRequest.Status.QUEUED, enqueued_at=None, error="the worker stopped while generating"
    )
    stale = ReportRequest.objects.filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - QUEUED_RESEND_AFTER), status=ReportRequest.Status.QUEUED
    )
    ids = list(stale.order_by("requested_at").values_list("pk", flat=True)[:100])
    with transaction.atomic():
        ReportRequest.objects.filter(pk__in=ids).update(enqueued_at=now)
        # Still lost (the broker away): tried again after QUEUED_RESEND_AFTER.
        queue.send_each_on_commit(GENERATE_REPORT_TASK, [(request_id,) for request_id in ids])
    return ids


# --- schedules --------------------------------------------------------------------------------------


def schedules_run_due(now: datetime | None = None) -> list[ReportRequest]:
    """Claim every due schedule and queue one request for its most recent completed period."""
    now = now or timezone.now()
    created = []
    due = ReportSchedule.objects.filter(enabled=True, next_run_at__lte=now).select_related("environment")
    for schedule in due:
        expression = schedule.expression
        try:
            period = scheduled_period(schedule.frequency, expression, schedule.timezone, now)
            upcoming = next_occurrence(expression, now, schedule.timezone)
        except Exception:  # a schedule that cannot be computed must not stop the others
            log.exception("report schedule %s cannot be computed", schedule.pk)
            continue
        with transaction.atomic():
            claimed = ReportSchedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
                next_run_at=upcoming, last_run_at=now
            )
            if not claimed:  # another beat or worker took this occurrence
                continue
            try:
                with transaction.atomic():
                    request = ReportRequest.objects.create(
                        environment=schedule.environment,
                        schedule=schedule,
                        kind=period.kind,
                        period_start=period.start,
                        period_end=period.end,
                        timezone=period.timezone,
                        recipients=list(schedule.recipients),
                        formats=list(schedule.formats),
                        wait_for_history=True,
                        enqueued_at=now,
                    )
            except IntegrityError:  # this period was already reported on (e.g. the schedule was edited)
                continue
            _enqueue(request.pk)
            created.append(request)
    return created


class ScheduleNameTaken(Exception):
    """Another schedule of the environment has this name (saved since the form checked it)."""


def schedule_save(schedule: ReportSchedule) -> ReportSchedule:
    """Save a schedule (its next occurrence is computed from now); the (environment, name) constraint
    decides between two people saving the same new name at once."""
    try:
        with transaction.atomic():
            schedule.save()
    except IntegrityError:
        raise ScheduleNameTaken(schedule.name) from None
    return schedule


def schedule_delete(schedule: ReportSchedule) -> None:
    schedule.delete()  # its reports stay in the archive (their schedule is set to null)


# --- delivery ---------------------------------------------------------------------------------------


def _create_deliveries(report: Report, recipients: list[str]) -> None:
    deliveries = ReportDelivery.objects.bulk_create(ReportDelivery(report=report, recipient=r) for r in recipients)
    # A lost message leaves the delivery pending and due: report_deliveries_due picks it up.
    queue.send_each_on_commit(DELIVER_REPORT_TASK, [(delivery.pk,) for delivery in deliveries])


def report_delivery_send(delivery_id: int) -> Outcome:
    return delivery_send(ReportDelivery, delivery_id, _send_report_email)


def _send_report_email(delivery: ReportDelivery) -> None:
    report = Report.objects.select_related("environment").get(pk=delivery.report_id)
    formats = getattr(getattr(report, "request", None), "formats", None) or [ReportFormat.PDF]
    link = absolute(report.get_absolute_url())
    attachments = []
    stem = attachment_stem(report)
    if ReportFormat.PDF in formats:
        attachments.append((f"{stem}.pdf", bytes(report.pdf), "application/pdf"))
    if ReportFormat.CSV in formats:
        attachments.append((f"{stem}.csv", report.csv, "text/csv"))
    summary = report.summary
    text = "\n".join(
        [
            report.title,
            "",
            f"Uptime, all targets: {_pct(summary.get('uptime_pct'))}",
            f"Incidents: {summary.get('incidents', 0)}",
            f"Runbook attempts: {summary.get('steps_run', 0)} ({summary.get('steps_failed', 0)} failed or interrupted)",
            "",
            f"The whole report: {link}",
            "The PDF is attached." if ReportFormat.PDF in formats else "",
        ]
    )
    banner = (
        f'<p style="font-family:Helvetica,Arial,sans-serif;font-size:13px;">'
        f'<a href="{link}">Open this report in VelaOps</a></p>'
    )
    html = render_document(banner + report.html, report.content)
    send_email(to=delivery.recipient, subject=report.title, text=text, html=html, attachments=attachments)


def report_deliveries_due(now: datetime) -> list[int]:
    return deliveries_due(ReportDelivery, now)


def attachment_stem(report: Report) -> str:
    start = report.period_start.astimezone(UTC)
    return f"velaops-{report.environment.slug}-{report.kind}-{start:%Y%m%d-%H%M}-{report.pk}"


def _pct(value) -> str:
    return "no probes" if value is None else f"{value:.3f} %"
