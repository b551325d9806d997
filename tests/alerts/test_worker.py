"""An alert goes through a real worker (a subprocess on the test database) into the file email backend
and a local webhook receiver; a webhook that fails once is retried by Celery and recorded."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.models import Alert, AlertDelivery
from tests.alerts.helpers import probe
from tests.fixtures.workers import stop_worker, wait_for, worker_process

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_target_going_down_reaches_the_mailbox_and_the_webhook(alerting, receiver, tmp_path):
    environment, target = alerting
    mailbox = tmp_path / "mail"
    receiver.answers = [503]  # the webhook fails once: retried after DELIVERY_RETRY_BASE_SECONDS
    worker = worker_process(
        env={
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(mailbox),
            "DELIVERY_RETRY_BASE_SECONDS": "1",
            "VELAOPS_BASE_URL": "https://velaops.example.com",
        }
    )
    try:
        now = timezone.now()
        probe(target, now - timedelta(seconds=40), None, ok=False)
        probe(target, now - timedelta(seconds=10), None, ok=False)  # down after two failures
        wait_for(
            lambda: AlertDelivery.objects.filter(status="sent").count() == 2, timeout=60, what="both deliveries sent"
        )
    finally:
        stop_worker(worker)
    alert = Alert.objects.get()
    webhook = alert.deliveries.get(channel="webhook")
    assert webhook.attempts == 2 and "HTTP 503" in webhook.last_error
    (post,) = receiver.posts
    assert alert.subject in post["text"] and any(block["type"] == "header" for block in post["blocks"])
    (message,) = list(mailbox.iterdir())
    text = message.read_text()
    assert "To: oncall@example.com" in text and alert.subject in text and "connection refused" in text
