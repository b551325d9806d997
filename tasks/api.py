from celery import shared_task

from dashboard.api.idempotency import idempotency_prune


@shared_task(name="tasks.api.prune_idempotency_keys", soft_time_limit=60, time_limit=90)
def prune_idempotency_keys() -> int:
    return idempotency_prune()
