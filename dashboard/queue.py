"""Handing work to the Celery workers by task name: the domain never imports `tasks/`, and a publish
that cannot reach the broker fails within about a second (CELERY_TASK_PUBLISH_RETRY_POLICY) with
QueueUnavailable, so the caller can record that the work was not queued instead of hanging.

`send` is for a caller that must know (a runbook attempt is recorded `not started`); `send_on_commit`
(`send_each_on_commit` for a batch) is for work whose row is the record and which a minute job
re-sends when its message never came (report requests and deliveries, alert deliveries): a broker
outage there is logged, not raised."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

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
    send_each_on_commit(task_name, [args], **options)


def send_each_on_commit(task_name: str, args_each: Iterable[tuple], **options) -> None:
    """One message per args tuple, each once the transaction commits. After a publish fails the rest
    are not tried: the broker is away, each try would cost the caller another second, and the minute
    job re-sends them all anyway."""
    args_each = list(args_each)
    broker_away: list[QueueUnavailable] = []  # shared by this batch's callbacks

    def publish(index: int) -> None:
        if broker_away:
            return
        try:
            send(task_name, *args_each[index], **options)
        except QueueUnavailable as exc:
            broker_away.append(exc)
            left = ", ".join(repr(args) for args in args_each[index:])
            log.warning("%s not queued for %s; the minute job sends it again: %s", task_name, left, exc)

    for index in range(len(args_each)):
        transaction.on_commit(functools.partial(publish, index))
