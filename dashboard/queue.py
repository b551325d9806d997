"""Handing work to the Celery workers by task name: the domain never imports `tasks/`, and a publish
that cannot reach the broker fails within about a second (CELERY_TASK_PUBLISH_RETRY_POLICY) with
QueueUnavailable, so the caller can record that the work was not queued instead of hanging.

`send` is for a caller that must know (a runbook attempt is recorded `not started`); `send_on_commit`
is for work whose row is the record and which a minute job re-sends when its message never came
(report requests and deliveries, alert deliveries): a broker outage there is logged, not raised."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class QueueUnavailable(Exception):
    """The broker could not be reached; nothing was queued."""


def send(task_name: str, *args, **options) -> None:
    try:
        current_app.send_task(task_name, args=args, **options)
    except (KombuOperationalError, RedisError, OSError) as exc:
        raise QueueUnavailable(f"the task queue (Redis) is unreachable: {exc}") from exc


def send_on_commit(task_name: str, *args, **options) -> None:
    """Publish once the current transaction commits (at once outside one), so a worker never looks for
    a row that is not committed yet. The caller's transaction has committed by then: a broker outage
    must not turn it into an error, so it is logged and the re-sending minute job picks the work up."""

    def publish() -> None:
        try:
            send(task_name, *args, **options)
        except QueueUnavailable as exc:
            log.warning("%s%r not queued, the minute job will send it again: %s", task_name, args, exc)

    transaction.on_commit(publish)
