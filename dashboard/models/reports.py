"""Health-history reports: when they are made (ReportSchedule), each request to make one
(ReportRequest, the job's record), the generated documents (Report, immutable) and each email sent
with one (ReportDelivery)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.timezone import now

from dashboard.models.environment import Environment
from dashboard.models.notifications import DeliveryRecord
from dashboard.periods import PeriodKind, next_occurrence, schedule_expression, validate_cron, validate_timezone


class ReportFormat(models.TextChoices):
    PDF = "pdf", "PDF"
    CSV = "csv", "CSV"


class ReportSchedule(models.Model):
    """A report made on a calendar (or cron) rhythm for one environment, emailed to its recipients."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="report_schedules")
    name = models.CharField(max_length=100)
    frequency = models.CharField(
        max_length=8,
        choices=[(kind.value, kind.label) for kind in (PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY)]
        + [(PeriodKind.CRON.value, PeriodKind.CRON.label)],
        default=PeriodKind.DAILY,
    )
    cron_expression = models.CharField(
        max_length=100,
        blank=True,
        help_text="Cron only: five fields (minute hour day month weekday), e.g. “0 6 * * 1-5”. "
        "The report covers the time since the previous occurrence.",
    )
    timezone = models.CharField(
        max_length=64, default="UTC", validators=[validate_timezone], help_text="e.g. UTC, Europe/Berlin."
    )
    hour = models.PositiveSmallIntegerField(
        default=7,
        validators=[MaxValueValidator(23)],
        help_text="Daily, weekly (Mondays) and monthly (the 1st): the local hour the report is sent.",
    )
    recipients = ArrayField(models.EmailField(), default=list, blank=True, help_text="Comma-separated email addresses.")
    formats = ArrayField(
        models.CharField(max_length=8, choices=ReportFormat.choices),
        default=list,
        blank=True,
        help_text="Attached to the email besides the HTML body: pdf, csv.",
    )
    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["environment", "name"]
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="unique_report_schedule_name"),
        ]
        indexes = [
            # The minute job: enabled schedules that are due.
            models.Index(fields=["next_run_at"], condition=Q(enabled=True), name="report_schedule_due"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.environment})"

    def save(self, *args, **kwargs) -> None:
        # Any edit (or re-enabling) schedules the next occurrence from now: no catch-up for the time it was
        # off. The minute job moves next_run_at with conditional updates, never through save().
        self.next_run_at = self.upcoming_run() if self.enabled else None
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "next_run_at"}
        super().save(*args, **kwargs)

    @property
    def expression(self) -> str:
        return schedule_expression(self.frequency, self.hour, self.cron_expression)

    def clean(self) -> None:
        if self.frequency == PeriodKind.CRON:
            if not self.cron_expression.strip():
                raise ValidationError({"cron_expression": "A cron schedule needs an expression."})
            try:
                validate_cron(self.cron_expression)
            except ValidationError as exc:
                raise ValidationError({"cron_expression": exc.messages}) from None
        if set(self.formats) - set(ReportFormat.values):
            raise ValidationError({"formats": "Formats are pdf and csv."})

    def upcoming_run(self, after=None):
        return next_occurrence(self.expression, after or now(), self.timezone)


class Report(models.Model):
    """A generated report: the content snapshot and every format rendered from it, never changed after.

    `save()` refuses updates and a database trigger (migration 0006) refuses any UPDATE except the
    ON DELETE SET NULL of a deleted schedule.
    """

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="reports")
    schedule = models.ForeignKey(
        ReportSchedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="reports"
    )
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=PeriodKind.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    timezone = models.CharField(max_length=64, default="UTC")
    generated_at = models.DateTimeField()
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    content = models.JSONField()
    html = models.TextField(help_text="The report body: self-contained HTML with inline SVG charts and styles.")
    csv = models.TextField()
    pdf = models.BinaryField()
    sha256 = models.CharField(max_length=64, help_text="Digest of the content and every format, in order.")

    class Meta:
        ordering = ["-period_end", "-id"]
        indexes = [
            # The archive page: an environment's reports, newest period first.
            models.Index(fields=["environment", "-period_end"], name="report_archive"),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ValidationError("A generated report is immutable; generate a new one instead.")
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("report-detail", args=[self.environment.slug, self.pk])

    @property
    def summary(self) -> dict:
        return self.content.get("summary", {})


class ReportRequest(models.Model):
    """One request to generate a report (scheduled or on demand): the job's record, with its outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="report_requests")
    schedule = models.ForeignKey(
        ReportSchedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests"
    )
    kind = models.CharField(max_length=8, choices=PeriodKind.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    timezone = models.CharField(max_length=64, default="UTC")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(default=now)
    recipients = ArrayField(models.EmailField(), default=list, blank=True)
    formats = ArrayField(models.CharField(max_length=8, choices=ReportFormat.choices), default=list, blank=True)
    # Scheduled reports wait (a few minutes at most) until the rollups cover their period.
    wait_for_history = models.BooleanField(default=False)

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    report = models.OneToOneField(Report, on_delete=models.PROTECT, null=True, blank=True, related_name="request")

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # A schedule never reports twice on one period, whatever several beats or workers do.
            models.UniqueConstraint(
                fields=["schedule", "period_start", "period_end"],
                condition=Q(schedule__isnull=False),
                name="one_request_per_schedule_period",
            ),
        ]
        indexes = [
            # The minute job: requests not finished (queued ones to enqueue, running ones gone stale).
            models.Index(fields=["requested_at"], condition=Q(status__in=["queued", "running"]), name="report_pending"),
        ]

    def __str__(self) -> str:
        return f"Report request {self.pk} for {self.environment} ({self.status})"


class ReportDelivery(DeliveryRecord):
    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="deliveries")
    recipient = models.EmailField()

    class Meta:
        ordering = ["id"]
        indexes = [
            # The minute job: deliveries whose retry is due or whose sender vanished.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="report_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.report} to {self.recipient} ({self.status})"
