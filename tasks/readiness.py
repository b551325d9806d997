from celery import shared_task

from dashboard.readiness.checks import run_check as check_run


@shared_task(name="tasks.readiness.run_check", soft_time_limit=1800, time_limit=1900, acks_late=True)
def run_check(check_id: int) -> str:
    # Redelivery is harmless: only a queued check is claimed.
    return check_run(check_id)
