"""What the alerts pages change: an environment's alert settings and its maintenance windows."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from dashboard.models import AlertSettings, MaintenanceWindow


class WindowEnded(StrEnum):
    REMOVED = "removed"  # it had not started: nothing refers to it
    SHORTENED = "shortened"  # it was on: it now ends at once
    ALREADY_OVER = "already over"


def alert_settings_save(alert_settings: AlertSettings) -> AlertSettings:
    alert_settings.save()
    return alert_settings


def maintenance_window_add(window: MaintenanceWindow, *, created_by: AbstractBaseUser) -> MaintenanceWindow:
    window.created_by = created_by
    window.save()
    return window


def maintenance_window_end(window: MaintenanceWindow, now: datetime | None = None) -> WindowEnded:
    """End a window now: a planned one is removed, a current one is shortened to end now."""
    now = now or timezone.now()
    if window.starts_at > now:
        window.delete()
        return WindowEnded.REMOVED
    if window.ends_at > now:
        # Kept, shortened: the alerts it kept quiet still point at it.
        MaintenanceWindow.objects.filter(pk=window.pk).update(ends_at=now)
        return WindowEnded.SHORTENED
    return WindowEnded.ALREADY_OVER
