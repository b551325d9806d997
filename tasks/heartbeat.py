from celery import shared_task

from dashboard.system.heartbeat import record_worker_heartbeat as _record


@shared_task(name="tasks.heartbeat.record_worker_heartbeat", soft_time_limit=10, time_limit=20)
def record_worker_heartbeat() -> None:
    _record()
