"""What reports and alerts deliver share: one message to one destination, with its attempts and outcome
(dashboard/notifications/delivery.py sends and retries it)."""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    SENDING = "sending", "sending"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"
    SUPPRESSED = "suppressed", "suppressed"


class DeliveryRecord(models.Model):
    """One message to one destination: attempts, the last error and the outcome are all kept."""

    Status = DeliveryStatus

    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)
    next_attempt_at = models.DateTimeField(default=now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
