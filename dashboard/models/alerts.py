"""Alerts: where an environment's alerts go (AlertSettings), when they stay quiet (MaintenanceWindow),
each event worth telling people about (Alert) and each message sent for it per channel (AlertDelivery)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import F, Q

from dashboard.models.environment import Environment
from dashboard.models.monitoring import Incident, Target
from dashboard.models.notifications import DeliveryRecord
from dashboard.models.runbook import Attempt


class WebhookFormat(models.TextChoices):
    SLACK = "slack", 'Slack-compatible: {"text": ..., "blocks": [...]}'
    TEXT = "text", 'Plain: {"text": ...}'


class AlertSettings(models.Model):
    environment = models.OneToOneField(Environment, on_delete=models.CASCADE, related_name="alert_settings")
    enabled = models.BooleanField(default=True)
    emails = ArrayField(models.EmailField(), default=list, blank=True, help_text="Comma-separated email addresses.")
    webhook_url = models.URLField(
        "webhook URL",
        max_length=2048,
        blank=True,
        help_text="Receives a JSON POST per alert (a Slack incoming webhook works as is). Treated as a secret.",
    )
    webhook_format = models.CharField(max_length=8, choices=WebhookFormat.choices, default=WebhookFormat.SLACK)
    resend_minutes = models.PositiveIntegerField(
        "resend interval (minutes)",
        default=60,
        validators=[MaxValueValidator(7 * 24 * 60)],
        help_text="While a target stays down, alert again this often; 0 alerts once.",
    )
    notify_steps = models.BooleanField(
        "runbook steps", default=True, help_text="Alert when a runbook step attempt fails or is interrupted."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "alert settings"

    def __str__(self) -> str:
        return f"Alerts of {self.environment}"

    @property
    def webhook_display(self) -> str:
        """Enough of the webhook URL to recognise it, never the path or query that carry its secret."""
        if not self.webhook_url:
            return ""
        parts = urlsplit(self.webhook_url)
        return f"{parts.scheme}://{parts.hostname}/…"


class MaintenanceWindow(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="maintenance_windows")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="maintenance_ends_after_start"),
        ]
        indexes = [
            # Every alert asks: is a window of this environment open now?
            models.Index(fields=["environment", "ends_at"], name="maintenance_env_end"),
        ]

    def __str__(self) -> str:
        return f"{self.environment}: {self.reason} ({self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%H:%M})"


class AlertKind(models.TextChoices):
    TARGET_DOWN = "target_down", "target down"
    TARGET_STILL_DOWN = "target_still_down", "target still down"
    TARGET_UP = "target_up", "target recovered"
    STEP_FAILED = "step_failed", "runbook step failed"
    STEP_INTERRUPTED = "step_interrupted", "runbook step interrupted"


class Alert(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    created_at = models.DateTimeField()
    target = models.ForeignKey(Target, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts")
    incident = models.ForeignKey(Incident, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts")
    attempt = models.ForeignKey(Attempt, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts")
    subject = models.CharField(max_length=300)
    body = models.TextField()
    link = models.CharField(max_length=2048, blank=True)
    # Quiet alerts are still recorded: why nothing was sent.
    suppressed_reason = models.CharField(max_length=300, blank=True)
    maintenance = models.ForeignKey(
        MaintenanceWindow, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["environment", "-created_at"], name="alert_env_created"),
            # The resend job: the latest alert sent for an open incident.
            models.Index(fields=["incident", "-created_at"], name="alert_incident_created"),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def suppressed(self) -> bool:
        return bool(self.suppressed_reason)


class AlertChannel(models.TextChoices):
    EMAIL = "email", "email"
    WEBHOOK = "webhook", "webhook"


class AlertDelivery(DeliveryRecord):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=AlertChannel.choices)
    # An email address, or "webhook": the URL itself is read from the settings when sending, never copied.
    recipient = models.CharField(max_length=254)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "alert deliveries"
        indexes = [
            # The minute job: deliveries whose retry is due or whose sender vanished.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="alert_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.alert} via {self.channel} to {self.recipient} ({self.status})"
