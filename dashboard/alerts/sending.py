"""Sending one alert delivery through its channel (the retry and record keeping is in delivery.py)."""

from __future__ import annotations

from datetime import datetime

from dashboard.alerts.messages import email_parts, webhook_payload
from dashboard.models import AlertChannel, AlertDelivery, AlertSettings
from dashboard.notifications.channels import post_webhook, send_email
from dashboard.notifications.delivery import DeliveryFailed, Outcome, deliveries_due, delivery_send


def alert_delivery_send(delivery_id: int) -> Outcome:
    return delivery_send(AlertDelivery, delivery_id, _send)


def alert_deliveries_due(now: datetime) -> list[int]:
    return deliveries_due(AlertDelivery, now)


def _send(delivery: AlertDelivery) -> None:
    alert = delivery.alert
    if delivery.channel == AlertChannel.EMAIL:
        subject, text, html = email_parts(alert)
        send_email(to=delivery.recipient, subject=subject, text=text, html=html)
        return
    # The URL is read now, never copied into records: a rotated webhook takes effect for retries too.
    alert_settings = AlertSettings.objects.filter(environment_id=alert.environment_id).first()
    if alert_settings is None or not alert_settings.webhook_url:
        raise DeliveryFailed("the webhook was removed from the alert settings")
    post_webhook(alert_settings.webhook_url, webhook_payload(alert, alert_settings.webhook_format))
