"""Probing: one beat task leases the due targets and queues a probe for each."""

from __future__ import annotations

from celery import shared_task
from celery.signals import task_revoked
from django.conf import settings
from django.utils import timezone

from dashboard.models import Target
from dashboard.monitoring.dispatch import claim_due_targets, release_lease
from dashboard.monitoring.probes import run_probe as probe
from dashboard.monitoring.recording import record_outcome


@shared_task(name="tasks.probes.dispatch_probes", soft_time_limit=20, time_limit=30, ignore_result=True)
def dispatch_probes() -> int:
    claims = claim_due_targets(timezone.now(), settings.PROBE_MAX_IN_FLIGHT)
    for claim in claims:
        try:
            # A probe that waited a whole interval in the queue is stale: the next one is due.
            run_probe.apply_async((claim.target_id,), expires=claim.interval_seconds)
        except Exception:
            release_lease(claim.target_id)
            raise
    return len(claims)


# Results live in ProbeResult rows; storing a return value in the result backend too would cost every probe a write.
@shared_task(name="tasks.probes.run_probe", soft_time_limit=150, time_limit=180, ignore_result=True)
def run_probe(target_id: int) -> bool | None:
    # Unordered: the model's default ordering (or first()'s by pk) costs compiling an ORDER BY for one row.
    found = Target.objects.select_related("environment").filter(pk=target_id, paused=False).order_by()[:1]
    target = next(iter(found), None)
    if target is None:
        release_lease(target_id)
        return None
    started_at = timezone.now()
    outcome = probe(target)
    record_outcome(target_id, started_at, outcome)
    return outcome.ok


@task_revoked.connect(dispatch_uid="release_lease_of_a_dropped_probe")
def _release_lease_of_a_dropped_probe(sender=None, request=None, **kwargs) -> None:
    # A probe that waited past its expiry is dropped by the worker: free its target for the next
    # dispatch now, rather than when the lease (timeout + margin) runs out and holds a slot of the cap.
    if getattr(sender, "name", "") == run_probe.name and request is not None and request.args:
        release_lease(request.args[0])
