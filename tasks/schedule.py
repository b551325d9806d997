"""The periodic jobs, declared in code and synced by name into django-celery-beat."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

# Every name starts with this prefix so entries we no longer declare can be told
# apart from ones an operator added by hand in the admin.
MANAGED_PREFIX = "velaops: "

WORKER_HEARTBEAT_INTERVAL = timedelta(seconds=15)

ATTEMPT_SWEEP_INTERVAL = timedelta(seconds=15)

HISTORY_ROLLUP_INTERVAL = timedelta(minutes=1)

HISTORY_PRUNE_INTERVAL = timedelta(hours=1)

REPORT_JOBS_INTERVAL = timedelta(minutes=1)

ALERT_JOBS_INTERVAL = timedelta(minutes=1)

PROBE_DISPATCH_INTERVAL = timedelta(seconds=settings.PROBE_DISPATCH_SECONDS)


BEAT_SCHEDULE = {
    f"{MANAGED_PREFIX}dispatch probes": {
        "task": "tasks.probes.dispatch_probes",
        "schedule": PROBE_DISPATCH_INTERVAL,
        "options": {"expire_seconds": int(PROBE_DISPATCH_INTERVAL.total_seconds())},
    },
    f"{MANAGED_PREFIX}roll up probe history": {
        "task": "tasks.history.rollup_history",
        "schedule": HISTORY_ROLLUP_INTERVAL,
        "options": {"expire_seconds": int(HISTORY_ROLLUP_INTERVAL.total_seconds())},
    },
    # The API's Idempotency-Key records past their 24 h (dashboard/api/idempotency.py).
    f"{MANAGED_PREFIX}prune idempotency keys": {
        "task": "tasks.api.prune_idempotency_keys",
        "schedule": HISTORY_PRUNE_INTERVAL,
        "options": {"expire_seconds": int(HISTORY_PRUNE_INTERVAL.total_seconds())},
    },
    f"{MANAGED_PREFIX}prune probe history": {
        "task": "tasks.history.prune_history",
        "schedule": HISTORY_PRUNE_INTERVAL,
        "options": {"expire_seconds": int(HISTORY_PRUNE_INTERVAL.total_seconds())},
    },
    # Due report schedules (a missed run is made once), lost requests, undelivered emails.
    f"{MANAGED_PREFIX}report jobs": {
        "task": "tasks.reports.report_jobs",
        "schedule": REPORT_JOBS_INTERVAL,
        "options": {"expire_seconds": int(REPORT_JOBS_INTERVAL.total_seconds())},
    },
    # Resends for targets still down, and alert deliveries due a retry.
    f"{MANAGED_PREFIX}alert jobs": {
        "task": "tasks.alerts.alert_jobs",
        "schedule": ALERT_JOBS_INTERVAL,
        "options": {"expire_seconds": int(ALERT_JOBS_INTERVAL.total_seconds())},
    },
    # With attempts going stale after 30 s without a heartbeat, a dead worker's attempt is
    # marked interrupted within 45 s.
    f"{MANAGED_PREFIX}sweep stale attempts": {
        "task": "tasks.runbook.sweep_stale_attempts",
        "schedule": ATTEMPT_SWEEP_INTERVAL,
        "options": {"expire_seconds": int(ATTEMPT_SWEEP_INTERVAL.total_seconds())},
    },
    f"{MANAGED_PREFIX}worker heartbeat": {
        "task": "tasks.heartbeat.record_worker_heartbeat",
        "schedule": WORKER_HEARTBEAT_INTERVAL,
        # A heartbeat older than its interval says nothing new: drop it rather than queue it.
        # (django-celery-beat maps expire_seconds to the "expires" option of each run.)
        "options": {"expire_seconds": int(WORKER_HEARTBEAT_INTERVAL.total_seconds())},
    },
}


def prune_stale_entries() -> int:
    """Delete managed entries that are no longer declared above; returns how many."""
    from django_celery_beat.models import PeriodicTask

    stale = PeriodicTask.objects.filter(name__startswith=MANAGED_PREFIX).exclude(name__in=BEAT_SCHEDULE)
    deleted, _ = stale.delete()
    return deleted
