"""The alerts page and its actions: viewers read (never the webhook URL), operators change settings and
windows with POST, nothing crosses environments."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.models import AlertSettings, MaintenanceWindow
from tests.alerts.helpers import make_environment

pytestmark = pytest.mark.django_db


def test_viewers_see_settings_but_never_the_webhook_url(client, viewer, alerting):
    environment, _ = alerting
    client.force_login(viewer)
    page = client.get(reverse("alerts", args=[environment.slug]))
    assert page.status_code == 200
    assert b"oncall@example.com" in page.content and b"http://127.0.0.1/" in page.content
    assert b"secret-token-xyz" not in page.content and b"Change the alert settings" not in page.content
    assert client.get(reverse("alert-settings", args=[environment.slug])).status_code == 403


def test_operators_edit_settings_and_a_blank_webhook_keeps_the_current_one(client, operator, alerting, receiver):
    environment, _ = alerting
    client.force_login(operator)
    url = reverse("alert-settings", args=[environment.slug])
    form = client.get(url)
    assert form.status_code == 200 and b"secret-token-xyz" not in form.content
    data = {"enabled": "on", "emails": "a@example.com, b@example.com", "webhook_format": "text", "resend_minutes": 15}
    assert client.post(url, data).status_code == 302
    saved = AlertSettings.objects.get(environment=environment)
    assert saved.emails == ["a@example.com", "b@example.com"] and saved.webhook_url == receiver.url
    assert client.post(url, {**data, "remove_webhook": "on"}).status_code == 302
    assert AlertSettings.objects.get(environment=environment).webhook_url == ""
    assert client.post(url, {**data, "emails": "nope"}).status_code == 400


def test_maintenance_windows_are_post_for_operators_per_environment(client, viewer, operator, alerting):
    environment, _ = alerting
    other = make_environment("other")
    add = reverse("maintenance-add", args=[environment.slug])
    now = timezone.now()
    data = {
        "starts_at": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "reason": "DSQL cutover",
    }
    client.force_login(operator)
    assert client.get(add).status_code == 405
    client.force_login(viewer)
    assert client.post(add, data).status_code == 403
    client.force_login(operator)
    assert client.post(add, {**data, "ends_at": data["starts_at"]}).status_code == 400
    assert client.post(add, data).status_code == 302
    window = MaintenanceWindow.objects.get()
    assert window.created_by == operator and window.environment == environment
    assert client.post(reverse("maintenance-end", args=[other.slug, window.pk])).status_code == 404
    assert client.post(reverse("maintenance-end", args=[environment.slug, window.pk])).status_code == 302
    assert MaintenanceWindow.objects.get().ends_at <= timezone.now()
