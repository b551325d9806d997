"""Recording one probe's outcome: the raw result, the target's live state, its thresholds and incidents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import django.dispatch
from django.db import transaction

from dashboard.models import Incident, ProbeResult, Target, TargetStatus
from dashboard.monitoring.outcome import ProbeOutcome

# Sent after the commit that changed a target's status (up <-> down); alerts listen here.
target_status_changed = django.dispatch.Signal()  # kwargs: target, previous, incident

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class Recorded:
    result: ProbeResult
    previous_status: str
    status: str
    incident: Incident | None  # opened or closed by this result

    @property
    def status_changed(self) -> bool:
        return self.previous_status != self.status


def record_outcome(target_id: int, started_at: datetime, outcome: ProbeOutcome) -> Recorded | None:
    """Store the result and move the target's state on; None if the target was deleted meanwhile."""
    with transaction.atomic():
        # A row lock serialises two results of one target (a late probe and the next one).
        target = Target.objects.select_for_update(no_key=True).filter(pk=target_id).first()
        if target is None:
            return None
        error = outcome.error[:MAX_ERROR_CHARS]
        result = ProbeResult.objects.create(
            target=target,
            at=started_at,
            ok=outcome.ok,
            latency_ms=outcome.latency_ms,
            phases={name: round(ms, 3) for name, ms in outcome.phases.items() if ms is not None},
            cold_start=outcome.cold_start,
            error=error,
            details=outcome.details,
        )
        previous = target.status
        incident = _advance_state(target, result)
        target.last_probed_at = started_at
        target.last_ok = outcome.ok
        target.last_latency_ms = outcome.latency_ms
        target.last_error = error
        target.lease_until = None
        target.save(
            update_fields=[
                "status",
                "status_since",
                "consecutive_failures",
                "consecutive_successes",
                "last_probed_at",
                "last_ok",
                "last_latency_ms",
                "last_error",
                "lease_until",
                "changed_at",
            ]
        )
        recorded = Recorded(result, previous, target.status, incident)
        if recorded.status_changed and target.status in (TargetStatus.UP, TargetStatus.DOWN):
            transaction.on_commit(
                lambda: target_status_changed.send(Target, target=target, previous=previous, incident=incident)
            )
    return recorded


def _advance_state(target: Target, result: ProbeResult) -> Incident | None:
    """Apply the thresholds: down after `down_after` failures in a row, up after `up_after` successes."""
    if result.ok:
        target.consecutive_successes += 1
        target.consecutive_failures = 0
        if target.status == TargetStatus.UNKNOWN or (
            target.status == TargetStatus.DOWN and target.consecutive_successes >= target.up_after
        ):
            return _set_up(target, result)
        return None
    target.consecutive_failures += 1
    target.consecutive_successes = 0
    if target.status == TargetStatus.DOWN:
        incident = target.incidents.filter(closed_at=None).first()
        if incident:
            incident.failure_count += 1
            incident.last_error = result.error
            incident.save(update_fields=["failure_count", "last_error"])
        return None
    if target.consecutive_failures >= target.down_after:
        return _set_down(target, result)
    return None


def _set_up(target: Target, result: ProbeResult) -> Incident | None:
    was_down = target.status == TargetStatus.DOWN
    target.status, target.status_since = TargetStatus.UP, result.at
    if not was_down:
        return None
    incident = target.incidents.filter(closed_at=None).first()
    if incident:
        incident.closed_at = result.at
        incident.save(update_fields=["closed_at"])
    return incident


def _set_down(target: Target, result: ProbeResult) -> Incident:
    # The outage began at the first failure of the run that crossed the threshold.
    failures = list(target.results.order_by("-at").values_list("at", "error")[: target.consecutive_failures])
    first_at, first_error = failures[-1] if failures else (result.at, result.error)
    target.status, target.status_since = TargetStatus.DOWN, first_at
    return Incident.objects.create(
        target=target,
        opened_at=first_at,
        cause=first_error or "failed without an error message",
        last_error=result.error,
        failure_count=len(failures) or 1,
    )
