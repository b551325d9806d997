"""Recording one probe's outcome: the raw result, the target's live state, its thresholds and incidents.

Every probe ends here, so the usual case (the status stays what it was) is two statements in one transaction,
written as SQL: the target's state read under a lock of its row, then one statement that inserts the result and
moves the target's state on. The lock is on the target's row alone: through the ORM it came with the model's
default ordering, which joins the environment, and FOR UPDATE then locked the environment's row as well, so
every probe of an environment waited for the one before it to commit. A change of status (rare) also opens or
closes the incident and reads the whole target for the listeners of `target_status_changed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import django.dispatch
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

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


@dataclass
class _State:
    """The part of a target's row its thresholds move on."""

    status: str
    status_since: datetime | None
    consecutive_failures: int
    consecutive_successes: int
    down_after: int
    up_after: int


_TARGET = Target._meta.db_table
_RESULT = ProbeResult._meta.db_table

_LOCK_SQL = f"""
SELECT status, status_since, consecutive_failures, consecutive_successes, down_after, up_after
FROM {_TARGET} WHERE id = %s FOR NO KEY UPDATE
"""

_WRITE_SQL = f"""
WITH result AS (
    INSERT INTO {_RESULT} (target_id, at, ok, latency_ms, phases, cold_start, error, details)
    VALUES (%(target)s, %(at)s, %(ok)s, %(latency)s, %(phases)s, %(cold_start)s, %(error)s, %(details)s)
    RETURNING id
)
UPDATE {_TARGET} SET
    status = %(status)s,
    status_since = %(status_since)s,
    consecutive_failures = %(failures)s,
    consecutive_successes = %(successes)s,
    last_probed_at = %(at)s,
    last_ok = %(ok)s,
    last_latency_ms = %(latency)s,
    last_error = %(error)s,
    lease_until = NULL,
    changed_at = %(now)s
WHERE id = %(target)s
RETURNING (SELECT id FROM result)
"""


def record_outcome(target_id: int, started_at: datetime, outcome: ProbeOutcome) -> Recorded | None:
    """Store the result and move the target's state on; None if the target was deleted meanwhile."""
    error = outcome.error[:MAX_ERROR_CHARS]
    result = ProbeResult(
        target_id=target_id,
        at=started_at,
        ok=outcome.ok,
        latency_ms=outcome.latency_ms,
        # Milliseconds to the microsecond (3 decimals): more digits are noise every raw row would store.
        phases={name: round(ms, 3) for name, ms in outcome.phases.items() if ms is not None},
        cold_start=outcome.cold_start,
        error=error,
        details=outcome.details,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # A row lock serialises two results of one target (a late probe and the next one).
        cursor.execute(_LOCK_SQL, [target_id])
        row = cursor.fetchone()
        if row is None:
            return None
        state = _State(*row)
        previous = state.status
        change = _advance_state(state, target_id, result)
        cursor.execute(
            _WRITE_SQL,
            {
                "target": target_id,
                "at": started_at,
                "ok": outcome.ok,
                "latency": outcome.latency_ms,
                "phases": _json_param("phases", result.phases),
                "cold_start": outcome.cold_start,
                "error": error,
                "details": _json_param("details", result.details),
                "status": state.status,
                "status_since": state.status_since,
                "failures": state.consecutive_failures,
                "successes": state.consecutive_successes,
                "now": timezone.now(),
            },
        )
        result.pk = cursor.fetchone()[0]
        incident = change(result) if change else None
        recorded = Recorded(result, previous, state.status, incident)
        if recorded.status_changed and state.status in (TargetStatus.UP, TargetStatus.DOWN):
            # The listeners get the whole target as recorded (a rare read: statuses seldom change).
            target = Target.objects.select_related("environment").get(pk=target_id)
            result.target = target
            transaction.on_commit(
                lambda: target_status_changed.send(Target, target=target, previous=previous, incident=incident)
            )
    return recorded


def _json_param(field: str, value: object) -> object:
    # As the ORM would send the JSONField's value (its encoder, psycopg's Jsonb).
    return ProbeResult._meta.get_field(field).get_db_prep_save(value, connection)


def _advance_state(
    state: _State, target_id: int, result: ProbeResult
) -> Callable[[ProbeResult], Incident | None] | None:
    """Apply the thresholds to `state`: down after `down_after` failures in a row, up after `up_after` successes.
    Returns what the change does to the target's incidents once the result is stored (None: nothing)."""
    if result.ok:
        state.consecutive_successes += 1
        state.consecutive_failures = 0
        was_down = state.status == TargetStatus.DOWN
        if state.status == TargetStatus.UNKNOWN or (was_down and state.consecutive_successes >= state.up_after):
            state.status, state.status_since = TargetStatus.UP, result.at
            if was_down:
                return lambda result: _close_incident(target_id, result)
        return None
    state.consecutive_failures += 1
    state.consecutive_successes = 0
    if state.status == TargetStatus.DOWN:
        return lambda result: _count_failure(target_id, result)
    if state.consecutive_failures >= state.down_after:
        # The outage began at the first failure of the run that crossed the threshold: this result and the
        # failures before it, newest first.
        earlier = ProbeResult.objects.filter(target_id=target_id).order_by("-at").values_list("at", "error")
        failures = sorted(
            [*earlier[: state.consecutive_failures], (result.at, result.error)], key=lambda f: f[0], reverse=True
        )[: state.consecutive_failures]
        first_at, first_error = failures[-1]
        state.status, state.status_since = TargetStatus.DOWN, first_at
        return lambda result: Incident.objects.create(
            target_id=target_id,
            opened_at=first_at,
            cause=first_error or "failed without an error message",
            last_error=result.error,
            failure_count=len(failures),
        )
    return None


def _count_failure(target_id: int, result: ProbeResult) -> None:
    # One statement: every failed probe of a down target comes here (the target's row lock orders them).
    Incident.objects.filter(target_id=target_id, closed_at=None).update(
        failure_count=F("failure_count") + 1, last_error=result.error
    )


def _close_incident(target_id: int, result: ProbeResult) -> Incident | None:
    incident = Incident.objects.filter(target_id=target_id, closed_at=None).first()
    if incident:
        incident.closed_at = result.at
        incident.save(update_fields=["closed_at"])
    return incident
