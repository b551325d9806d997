"""Alerts: raised on status changes and failed steps, quiet in maintenance windows, resent while down,
each delivery retried and recorded."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from dashboard.alerts.rules import alerts_resend
from dashboard.alerts.sending import alert_delivery_send
from dashboard.models import Alert, AlertDelivery, Attempt, MaintenanceWindow
from dashboard.runbook.service import migration_start
from dashboard.runbook.worker import attempts_sweep
from tests.alerts.helpers import probe

pytestmark = pytest.mark.django_db


def go_down(target, at):
    probe(target, at, None, ok=False)
    probe(target, at + timedelta(seconds=30), None, ok=False)


def send_all():
    return [
        alert_delivery_send(pk).status
        for pk in AlertDelivery.objects.filter(status="pending").values_list("pk", flat=True)
    ]


def test_down_and_recovered_reach_email_and_the_webhook(alerting, receiver, django_capture_on_commit_callbacks):
    environment, target = alerting
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        go_down(target, now - timedelta(minutes=5))
    alert = Alert.objects.get()
    assert alert.kind == "target_down" and "DOWN: DSQL cluster login vela-dsql" in alert.subject
    assert "connection refused" in alert.body
    assert sorted(send_all()) == ["sent", "sent"]
    (email,) = mail.outbox
    assert email.to == ["oncall@example.com"] and email.subject == alert.subject
    (post,) = receiver.posts
    assert post["text"].startswith(alert.subject) and post["blocks"][0]["text"]["text"] == alert.subject[:150]
    with django_capture_on_commit_callbacks(execute=True):
        probe(target, now, 12.0)
    recovered = Alert.objects.get(kind="target_up")
    assert "RECOVERED" in recovered.subject and "after 5 min 00 s" in recovered.subject
    assert recovered.incident == alert.incident
    send_all()
    assert len(mail.outbox) == 2 and len(receiver.posts) == 2


def test_a_maintenance_window_keeps_alerts_quiet_but_recorded(alerting, receiver, django_capture_on_commit_callbacks):
    environment, target = alerting
    now = timezone.now()
    MaintenanceWindow.objects.create(
        environment=environment,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=1),
        reason="DSQL cutover",
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        go_down(target, now - timedelta(minutes=10))
    alert = Alert.objects.get()
    assert "maintenance window" in alert.suppressed_reason and "DSQL cutover" in alert.suppressed_reason
    assert set(alert.deliveries.values_list("status", flat=True)) == {"suppressed"}
    assert len(callbacks) == 1  # the status signal only: no delivery task was sent
    assert alerts_resend(now) == 0  # still in the window: nothing new
    # The window ends while the target is still down: people are told at once.
    MaintenanceWindow.objects.update(ends_at=now - timedelta(seconds=1))
    assert alerts_resend(now) == 1
    still = Alert.objects.get(kind="target_still_down")
    assert not still.suppressed and "STILL DOWN" in still.subject
    send_all()
    assert len(mail.outbox) == 1 and len(receiver.posts) == 1


def test_still_down_alerts_follow_the_resend_interval(alerting, django_capture_on_commit_callbacks):
    environment, target = alerting
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        go_down(target, now - timedelta(hours=2))
    Alert.objects.update(created_at=now - timedelta(minutes=31))
    assert alerts_resend(now) == 1
    assert alerts_resend(now) == 0
    assert alerts_resend(now + timedelta(minutes=29)) == 0
    assert alerts_resend(now + timedelta(minutes=31)) == 1
    environment.alert_settings.resend_minutes = 0
    environment.alert_settings.save()
    assert alerts_resend(now + timedelta(hours=5)) == 0


def test_a_failing_webhook_is_retried_then_recorded_without_its_secret(alerting, receiver, settings):
    settings.DELIVERY_MAX_ATTEMPTS = 3
    environment, target = alerting
    from dashboard.alerts.rules import alert_raise

    alert = alert_raise(environment=environment, kind="target_down", subject="DOWN: x", body="b")
    webhook = alert.deliveries.get(channel="webhook")
    receiver.answers = [500, 503, 500]
    first = alert_delivery_send(webhook.pk)
    assert first.status == "pending" and first.retry_in == settings.DELIVERY_RETRY_BASE_SECONDS
    assert alert_delivery_send(webhook.pk).retry_in == settings.DELIVERY_RETRY_BASE_SECONDS * 4
    assert alert_delivery_send(webhook.pk).status == "failed"
    webhook.refresh_from_db()
    assert (webhook.status, webhook.attempts) == ("failed", 3)
    assert "HTTP 500" in webhook.last_error and "127.0.0.1" in webhook.last_error
    assert "secret-token-xyz" not in webhook.last_error
    assert receiver.posts == []


def test_a_failed_or_interrupted_step_raises_an_alert(alerting, operator, django_capture_on_commit_callbacks):
    environment, _ = alerting
    migration = migration_start(environment=environment, user=operator, source_address=None)
    step = migration.steps.order_by("position").first()
    stale = timezone.now() - timedelta(minutes=5)
    Attempt.objects.create(
        migration=migration,
        step=step,
        number=1,
        action="run",
        status="running",
        requested_by=operator,
        started_at=stale,
        heartbeat_at=stale,
        worker="celery@gone",
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert attempts_sweep() == 1
    alert = Alert.objects.get()
    assert alert.kind == "step_interrupted" and "interrupted" in alert.subject and step.title in alert.subject
    assert "celery@gone" in alert.body and "otto" in alert.body
    assert alert.link.endswith(f"/migrations/{migration.pk}/attempts/{alert.attempt_id}/")


def test_no_settings_or_alerts_off_records_the_alert_and_sends_nothing(db, django_capture_on_commit_callbacks):
    from dashboard.models import AlertSettings, ProbeKind, Target
    from tests.alerts.helpers import make_environment

    environment = make_environment("quiet")
    target = Target.objects.create(environment=environment, kind=ProbeKind.AURORA, name="vela-aurora", down_after=1)
    with django_capture_on_commit_callbacks(execute=True):
        probe(target, timezone.now(), None, ok=False)
    assert Alert.objects.get().suppressed_reason == "this environment has no alert settings"
    AlertSettings.objects.create(environment=environment, emails=["a@example.com"], enabled=False)
    with django_capture_on_commit_callbacks(execute=True):
        probe(target, timezone.now(), 3.0)
    recovered = Alert.objects.get(kind="target_up")
    assert recovered.suppressed_reason == "alerts are turned off for this environment"
    assert list(recovered.deliveries.values_list("status", flat=True)) == ["suppressed"]
