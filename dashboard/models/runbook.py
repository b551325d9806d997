"""The recorded migration: a run of the runbook, its steps, every attempt at a step, and their logs.

Modelled on Bytebase's task / task_run / task_run_log: a retry is a new Attempt, never an
overwrite; logs are append-only rows; history is never edited.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from dashboard.models.environment import Environment


class MigrationRun(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "open"
        COMPLETED = "completed", "completed"
        ABANDONED = "abandoned", "abandoned"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="migrations")
    runbook_version = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # At most one open migration per environment.
            models.UniqueConstraint(fields=["environment"], condition=Q(status="open"), name="one_open_migration"),
        ]

    def __str__(self) -> str:
        return f"Migration {self.pk} of {self.environment}"

    def get_absolute_url(self) -> str:
        return reverse("migration-detail", args=[self.environment.slug, self.pk])


class Step(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "pending"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped"
        ROLLED_BACK = "rolled_back", "rolled back"

    migration = models.ForeignKey(MigrationRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    key = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    # The outcome of the latest finished attempt; kept here so the page needs no aggregation.
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    outputs = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["migration", "position"]
        constraints = [
            models.UniqueConstraint(fields=["migration", "position"], name="unique_step_position"),
            models.UniqueConstraint(fields=["migration", "key"], name="unique_step_key"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.title}"


class Attempt(models.Model):
    class Action(models.TextChoices):
        RUN = "run", "run"
        ROLLBACK = "rollback", "rollback"
        SKIP = "skip", "skip"
        # An approver accepts what a gate found (a change set's blockers, preflight drift), with a reason.
        OVERRIDE = "override", "override"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        CANCELLING = "cancelling", "cancelling"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"
        INTERRUPTED = "interrupted", "interrupted"
        NOT_STARTED = "not_started", "not started"  # recorded, but its message never reached the broker

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.CANCELLING)

    migration = models.ForeignKey(MigrationRun, on_delete=models.CASCADE, related_name="attempts")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    action = models.CharField(max_length=16, choices=Action.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was skipped, cancelled or interrupted.")
    # When its message was last handed to the broker; the sweep re-sends a queued attempt's lost message.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    outputs = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict, blank=True)  # {"code", "message", "request_id", "operation"}

    class Meta:
        ordering = ["step__position", "number"]
        constraints = [
            models.UniqueConstraint(fields=["step", "number"], name="unique_attempt_number"),
            # The database, not the application, guarantees one active attempt per migration.
            models.UniqueConstraint(
                fields=["migration"],
                condition=Q(status__in=["queued", "running", "cancelling"]),
                name="one_active_attempt_per_migration",
            ),
        ]
        indexes = [
            # The stale-heartbeat sweep: running attempts by heartbeat age.
            models.Index(
                fields=["heartbeat_at"],
                condition=Q(status__in=["running", "cancelling"]),
                name="attempt_sweep_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step.title}: {self.action} #{self.number} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("attempt-detail", args=[self.migration.environment.slug, self.migration_id, self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()


class AttemptLog(models.Model):
    class Level(models.TextChoices):
        INFO = "info", "info"
        WARNING = "warning", "warning"
        ERROR = "error", "error"

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)  # e.g. {"request_id": ..., "operation": ...}

    class Meta:
        ordering = ["id"]
        # The live log tail asks for lines after the last id it has (attempt, id) — the FK index plus pk serve it.

    def __str__(self) -> str:
        return self.message


class Approval(models.Model):
    """An approver's consent for one destructive action on one step; consumed by the attempt it allows."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="approvals")
    action = models.CharField(max_length=16, choices=Attempt.Action.choices)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    used_by_attempt = models.OneToOneField(
        Attempt, on_delete=models.PROTECT, null=True, blank=True, related_name="approval"
    )

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("requested_by")),
                name="approver_is_not_requester",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} of {self.step.title}, asked by {self.requested_by}"


class AuditEvent(models.Model):
    """Who did what, when and from where: every action request, approval and refusal."""

    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="audit_events")
    migration = models.ForeignKey(
        MigrationRun, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, default="ok")  # ok | refused
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.user or 'system'} {self.action} ({self.outcome})"
