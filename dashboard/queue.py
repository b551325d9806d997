"""Handing work to the Celery workers by task name: the domain never imports `tasks/`, and a publish
that cannot reach the broker fails within about a second (CELERY_TASK_PUBLISH_RETRY_POLICY) with
QueueUnavailable, so the caller can record that the work was not queued instead of hanging."""

from __future__ import annotations

from celery import current_app
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError


class QueueUnavailable(Exception):
    """The broker could not be reached; nothing was queued."""


def send(task_name: str, *args, **options) -> None:
    try:
        current_app.send_task(task_name, args=args, **options)
    except (KombuOperationalError, RedisError, OSError) as exc:
        raise QueueUnavailable(f"the task queue (Redis) is unreachable: {exc}") from exc
