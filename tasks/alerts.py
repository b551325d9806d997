"""Alert jobs: sending one alert delivery (with retries), and the minute job that resends "still down"
alerts and picks up deliveries that were never sent."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from dashboard.alerts.rules import alerts_resend
from dashboard.alerts.sending import alert_deliveries_due, alert_delivery_send


@shared_task(bind=True, name="tasks.alerts.deliver_alert", max_retries=None, soft_time_limit=60, time_limit=90)
def deliver_alert(self, delivery_id: int) -> str:
    # Attempts are counted on the delivery row, which also decides when to give up.
    outcome = alert_delivery_send(delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="tasks.alerts.alert_jobs", soft_time_limit=50, time_limit=60)
def alert_jobs() -> dict[str, int]:
    now = timezone.now()
    resent = alerts_resend(now)
    due = alert_deliveries_due(now)
    for delivery_id in due:
        deliver_alert.delay(delivery_id)
    return {"still_down_alerts": resent, "deliveries_resent": len(due)}
