"""When an alert is raised, who gets it, and when it stays quiet.

An alert is always recorded. It is sent (one delivery per email address, one for the webhook) unless
the environment has no alert settings, has alerts off, or is inside a maintenance window: then its
deliveries are recorded as suppressed, with the reason on the alert.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from dashboard import queue
from dashboard.alerts import messages
from dashboard.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertKind,
    AlertSettings,
    Attempt,
    DeliveryStatus,
    Environment,
    Incident,
    MaintenanceWindow,
    Target,
    TargetStatus,
)

log = logging.getLogger(__name__)

# Published by name through dashboard.queue (tasks/alerts.py declares it).
DELIVER_ALERT_TASK = "tasks.alerts.deliver_alert"
STEP_KINDS = (AlertKind.STEP_FAILED, AlertKind.STEP_INTERRUPTED)
# An open incident with no alert at all after this long (settings were added later, or the down
# alert was lost) gets a "still down" alert; before it, the "down" alert may simply be on its way.
FIRST_ALERT_GRACE = timedelta(minutes=5)


def active_window(environment: Environment, at: datetime) -> MaintenanceWindow | None:
    return (
        MaintenanceWindow.objects.filter(environment=environment, starts_at__lte=at, ends_at__gt=at)
        .order_by("-ends_at")
        .first()
    )


def _quiet_reason(environment: Environment, alert_settings: AlertSettings | None, kind: str, at: datetime):
    if alert_settings is None:
        return "this environment has no alert settings", None
    if not alert_settings.enabled:
        return "alerts are turned off for this environment", None
    if kind in STEP_KINDS and not alert_settings.notify_steps:
        return "runbook step alerts are turned off", None
    window = active_window(environment, at)
    if window:
        return f"maintenance window until {window.ends_at:%Y-%m-%d %H:%M} UTC: {window.reason}", window
    return "", None


def alert_raise(
    *,
    environment: Environment,
    kind: str,
    subject: str,
    body: str,
    link: str = "",
    target: Target | None = None,
    incident: Incident | None = None,
    attempt: Attempt | None = None,
    now: datetime | None = None,
) -> Alert:
    now = now or timezone.now()
    with transaction.atomic():
        alert_settings = AlertSettings.objects.filter(environment=environment).first()
        reason, window = _quiet_reason(environment, alert_settings, kind, now)
        alert = Alert.objects.create(
            environment=environment,
            kind=kind,
            created_at=now,
            target=target,
            incident=incident,
            attempt=attempt,
            subject=subject,
            body=body,
            link=link,
            suppressed_reason=reason,
            maintenance=window,
        )
        deliveries = []
        if alert_settings is not None:
            status = DeliveryStatus.SUPPRESSED if reason else DeliveryStatus.PENDING
            deliveries = [
                AlertDelivery(alert=alert, channel=AlertChannel.EMAIL, recipient=email, status=status, created_at=now)
                for email in alert_settings.emails
            ]
            if alert_settings.webhook_url:
                deliveries.append(
                    AlertDelivery(
                        alert=alert, channel=AlertChannel.WEBHOOK, recipient="webhook", status=status, created_at=now
                    )
                )
            AlertDelivery.objects.bulk_create(deliveries)
        if not reason:
            # A lost message leaves the delivery pending and due: the alert minute job picks it up.
            queue.send_each_on_commit(DELIVER_ALERT_TASK, [(delivery.pk,) for delivery in deliveries])
    log.info("alert %s %s (%s)%s", alert.pk, kind, subject, f" suppressed: {reason}" if reason else "")
    return alert


# --- the events ---------------------------------------------------------------------------------------


def alert_target_status(*, target: Target, previous: str, incident: Incident | None, now=None) -> Alert | None:
    """A target went down, or came back up after being down."""
    now = now or timezone.now()
    if target.status == TargetStatus.DOWN:
        kind = AlertKind.TARGET_DOWN
    elif target.status == TargetStatus.UP and previous == TargetStatus.DOWN:
        kind = AlertKind.TARGET_UP
    else:
        return None  # unknown -> up is a first probe, not news
    target = Target.objects.select_related("environment").get(pk=target.pk)
    subject, body, link = messages.target_message(kind, target, incident, now)
    return alert_raise(
        environment=target.environment,
        kind=kind,
        subject=subject,
        body=body,
        link=link,
        target=target,
        incident=incident,
        now=now,
    )


def alert_attempt_ended(*, attempt: Attempt, status: str) -> Alert | None:
    kind = {Attempt.Status.FAILED: AlertKind.STEP_FAILED, Attempt.Status.INTERRUPTED: AlertKind.STEP_INTERRUPTED}.get(
        status
    )
    if kind is None:
        return None
    attempt = Attempt.objects.select_related("step", "migration__environment", "requested_by").get(pk=attempt.pk)
    subject, body, link = messages.attempt_message(kind, attempt)
    return alert_raise(
        environment=attempt.migration.environment,
        kind=kind,
        subject=subject,
        body=body,
        link=link,
        attempt=attempt,
    )


def alerts_resend(now: datetime | None = None) -> int:
    """ "Still down" alerts for open incidents: every resend interval, right after a maintenance window
    that kept the first alert quiet ends, and once for an incident nobody was told about. Returns how many."""
    now = now or timezone.now()
    sent = 0
    for incident in Incident.objects.filter(closed_at=None).select_related("target__environment"):
        environment = incident.target.environment
        alert_settings = AlertSettings.objects.filter(environment=environment, enabled=True).first()
        if alert_settings is None or active_window(environment, now):
            continue  # nothing would be sent: record nothing new either
        with transaction.atomic():
            # Serialises resends of one incident across several beats or workers; a busy row is skipped.
            locked = Incident.objects.select_for_update(skip_locked=True).filter(pk=incident.pk, closed_at=None).first()
            if locked is None or not _resend_due(locked, alert_settings, now):
                continue
            subject, body, link = messages.target_message(AlertKind.TARGET_STILL_DOWN, incident.target, locked, now)
            alert_raise(
                environment=environment,
                kind=AlertKind.TARGET_STILL_DOWN,
                subject=subject,
                body=body,
                link=link,
                target=incident.target,
                incident=locked,
                now=now,
            )
            sent += 1
    return sent


def _resend_due(incident: Incident, alert_settings: AlertSettings, now: datetime) -> bool:
    latest = Alert.objects.filter(incident=incident).order_by("-created_at").first()
    if latest is None:
        return now - incident.opened_at >= FIRST_ALERT_GRACE
    if latest.suppressed_reason:
        return True  # whatever kept it quiet is over (checked by the caller): tell people now
    if not alert_settings.resend_minutes:
        return False
    return now - latest.created_at >= timedelta(minutes=alert_settings.resend_minutes)
