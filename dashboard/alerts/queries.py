"""What the alerts page reads: the settings, current and past maintenance windows, the recent alerts."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch

from dashboard.models import Alert, AlertDelivery, AlertSettings, Environment, MaintenanceWindow

RECENT_ALERTS = 50
PAST_WINDOWS = 10


def alert_settings_of(environment: Environment) -> AlertSettings | None:
    return AlertSettings.objects.filter(environment=environment).first()


def alerts_page(environment: Environment, now: datetime) -> dict:
    windows = MaintenanceWindow.objects.filter(environment=environment)
    return {
        "alert_settings": alert_settings_of(environment),
        "windows": windows.filter(ends_at__gt=now).select_related("created_by").order_by("starts_at"),
        "past_windows": windows.filter(ends_at__lte=now)[:PAST_WINDOWS],
        "alerts": Alert.objects.filter(environment=environment).prefetch_related(
            Prefetch("deliveries", queryset=AlertDelivery.objects.order_by("id"))
        )[:RECENT_ALERTS],
    }
