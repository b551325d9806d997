"""Sending one recorded message (an alert by email or webhook, a report by email) with retries.

Every delivery is a row. A worker claims it with a conditional update (pending -> sending), sends, and
records the outcome: sent, or the error with the next attempt pushed back (30 s, 2 min, 8 min, ...),
or failed for good after DELIVERY_MAX_ATTEMPTS (at once when the failure is final: a refused webhook URL,
a redirect). A minute job re-sends what is due but was never picked up (a lost broker message, a worker
killed mid-send), so nothing is lost silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from dashboard.models.notifications import DeliveryRecord, DeliveryStatus

log = logging.getLogger(__name__)

# A delivery still "sending" this long after its claim lost its worker: it goes back to pending.
SENDING_STALE_AFTER = timedelta(minutes=10)
# A pending delivery due this long ago was not picked up by its own task: the minute job sends it.
PICKUP_GRACE = timedelta(minutes=1)
MAX_BACKOFF_SECONDS = 3600
MAX_ERROR_CHARS = 1000


class DeliveryFailed(Exception):
    """A send that did not go through; the message is recorded, so it must never hold a secret.

    `final`: retrying cannot help (a refused webhook URL, a redirect), so the delivery fails at once."""

    def __init__(self, message: str, *, final: bool = False):
        super().__init__(message)
        self.final = final


@dataclass(frozen=True)
class Outcome:
    status: str  # sent, failed, pending (retry later) or skipped (not ours to send)
    retry_in: int | None = None


def backoff_seconds(attempts: int) -> int:
    base = settings.DELIVERY_RETRY_BASE_SECONDS
    return int(min(MAX_BACKOFF_SECONDS, base * 4 ** max(0, attempts - 1)))


def delivery_send(model: type[DeliveryRecord], delivery_id: int, send: Callable[[DeliveryRecord], None]) -> Outcome:
    now = timezone.now()
    claimed = model.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:  # sent, failed or suppressed already, or another worker holds it
        return Outcome("skipped")
    delivery = model.objects.get(pk=delivery_id)
    try:
        send(delivery)
    except Exception as exc:  # noqa: BLE001 — every failure is recorded
        error = _describe(exc)
        final = isinstance(exc, DeliveryFailed) and exc.final
        if final or delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
            _finish(model, delivery, status=DeliveryStatus.FAILED, last_error=error)
            log.error(
                "%s %s failed for good after %s attempts%s: %s",
                model.__name__,
                delivery_id,
                delivery.attempts,
                " (not retried)" if final else "",
                error,
            )
            return Outcome(DeliveryStatus.FAILED)
        retry_in = backoff_seconds(delivery.attempts)
        _finish(
            model,
            delivery,
            status=DeliveryStatus.PENDING,
            last_error=error,
            next_attempt_at=timezone.now() + timedelta(seconds=retry_in),
        )
        log.warning(
            "%s %s attempt %s failed, retry in %ss: %s", model.__name__, delivery_id, delivery.attempts, retry_in, error
        )
        return Outcome(DeliveryStatus.PENDING, retry_in)
    _finish(model, delivery, status=DeliveryStatus.SENT, sent_at=timezone.now())
    return Outcome(DeliveryStatus.SENT)


def _finish(model: type[DeliveryRecord], delivery: DeliveryRecord, **fields) -> None:
    # Only the claim we made may be finished: a sweep that reset it meanwhile wins.
    model.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING, claimed_at=delivery.claimed_at).update(**fields)


def _describe(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, DeliveryFailed) else f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def deliveries_due(model: type[DeliveryRecord], now: datetime) -> list[int]:
    """Ids of deliveries to (re)send now: pending ones whose task never came, and ones whose sender died."""
    model.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=now - SENDING_STALE_AFTER).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now
    )
    return list(
        model.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now - PICKUP_GRACE)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
