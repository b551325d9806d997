"""Ending a maintenance window: a planned one is removed, a current one shortened (the alerts it kept
quiet still point at it), one already over left as it is."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.alerts.service import WindowEnded, maintenance_window_end
from dashboard.models import MaintenanceWindow

pytestmark = pytest.mark.django_db


def window(environment, starts, ends) -> MaintenanceWindow:
    return MaintenanceWindow.objects.create(environment=environment, starts_at=starts, ends_at=ends, reason="cutover")


def test_a_planned_window_is_removed(alerting):
    environment, _ = alerting
    now = timezone.now()
    planned = window(environment, now + timedelta(hours=1), now + timedelta(hours=2))
    assert maintenance_window_end(planned, now) == WindowEnded.REMOVED
    assert not MaintenanceWindow.objects.exists()


def test_a_current_window_ends_now_and_is_kept(alerting):
    environment, _ = alerting
    now = timezone.now()
    current = window(environment, now - timedelta(hours=1), now + timedelta(hours=1))
    assert maintenance_window_end(current, now) == WindowEnded.SHORTENED
    assert MaintenanceWindow.objects.get().ends_at == now


def test_a_window_already_over_is_left_alone(alerting):
    environment, _ = alerting
    now = timezone.now()
    over = window(environment, now - timedelta(hours=2), now - timedelta(hours=1))
    assert maintenance_window_end(over, now) == WindowEnded.ALREADY_OVER
    assert MaintenanceWindow.objects.get().ends_at == over.ends_at
