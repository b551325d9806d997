"""Background jobs over probe history: rollups with summaries, and pruning."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from dashboard.monitoring.rollup import prune, refresh_summaries, rollup_all


@shared_task(name="tasks.history.rollup_history", soft_time_limit=50, time_limit=60)
def rollup_history() -> dict[str, int]:
    now = timezone.now()
    done = rollup_all(now)
    done["summaries"] = refresh_summaries(now)
    return done


@shared_task(name="tasks.history.prune_history", soft_time_limit=240, time_limit=300)
def prune_history() -> dict[str, int]:
    return prune(timezone.now())
