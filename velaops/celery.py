"""The Celery app: Redis broker, tasks from the top-level `tasks` package, schedule in code."""

from __future__ import annotations

import os
import pkgutil

from celery import Celery
from celery.signals import beat_init

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
