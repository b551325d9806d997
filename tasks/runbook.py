from celery import shared_task

from dashboard.runbook.worker import attempt_execute, attempts_sweep

# AWS waits (a DSQL cluster becoming ACTIVE, Aurora deleting) can take many minutes.
STEP_SOFT_TIME_LIMIT = 3600


@shared_task(
    bind=True,
    name="tasks.runbook.run_attempt",
    soft_time_limit=STEP_SOFT_TIME_LIMIT,
    time_limit=STEP_SOFT_TIME_LIMIT + 120,
    acks_late=True,
)
def run_attempt(self, attempt_id: int) -> str | None:
    # Redelivery after a worker crash is harmless: only a queued attempt is claimed.
    return attempt_execute(attempt_id, worker=self.request.hostname or "")


@shared_task(name="tasks.runbook.sweep_stale_attempts", soft_time_limit=30, time_limit=60)
def sweep_stale_attempts() -> int:
    return attempts_sweep()
