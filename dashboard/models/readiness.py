"""A cutover-readiness check run from the environment page: read-only, queued to a worker, its findings kept."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dashboard.models.environment import Environment


class ReadinessCheck(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"  # the check itself could not run (AWS unreachable, no cluster): `error` says why

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="readiness_checks")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    findings = models.JSONField(default=list, blank=True)
    summary = models.JSONField(default=dict, blank=True)  # {"ready", "blocker", "warning", "ok"}
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["environment", "-requested_at"], name="readiness_latest")]

    def __str__(self) -> str:
        return f"readiness check {self.pk} of {self.environment}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
