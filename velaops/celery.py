"""The Celery app: Redis broker, tasks from the top-level `tasks` package, schedule in code."""

from __future__ import annotations

import os
import pkgutil

from celery import Celery
from celery.signals import beat_init, task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "velaops.settings")

app = Celery("velaops")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _task_modules() -> list[str]:
    import tasks

    return [
        f"tasks.{module.name}" for module in pkgutil.iter_modules(tasks.__path__) if not module.name.startswith("_")
    ]


app.conf.imports = _task_modules()


@app.on_after_finalize.connect
def _install_schedule(sender: Celery, **kwargs) -> None:
    from tasks.schedule import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE


@beat_init.connect
def _prune_schedule(sender, **kwargs) -> None:
    # DatabaseScheduler upserts the entries declared in code by name; entries we
    # declared once and have since removed must go too, or beat keeps running them.
    from tasks.schedule import prune_stale_entries

    prune_stale_entries()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender=None, **kwargs) -> None:
    # What Django does around each request: close a connection that is past CONN_MAX_AGE or broke in the
    # last task, and have the next use check it (CONN_HEALTH_CHECKS), so a database restart costs one
    # failed task per connection at most. Not for eager calls: they run inside the caller's transaction.
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
