"""Choosing which probes run now: safe with several beats and workers, and bounded.

One statement claims due targets with FOR UPDATE SKIP LOCKED and gives each a lease, so two
dispatchers never claim the same target and a target whose probe is still running (or queued)
is not claimed again until its lease ends: a slow target cannot pile up probes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from dashboard.models import Target

# A lease outlives the probe's own timeout by this much (queueing, recording).
LEASE_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class Claim:
    target_id: int
    interval_seconds: int
    timeout_seconds: int


_CLAIM_SQL = f"""
WITH due AS (
    SELECT id FROM {Target._meta.db_table}
    WHERE NOT paused
      AND (next_due_at IS NULL OR next_due_at <= %(now)s)
      AND (lease_until IS NULL OR lease_until <= %(now)s)
    ORDER BY next_due_at NULLS FIRST
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {Target._meta.db_table} AS target SET
    lease_until = %(now)s + make_interval(secs => target.timeout_seconds + {LEASE_MARGIN_SECONDS}),
    -- Keep the cadence when on time; after a gap, start again from now rather than catch up.
    next_due_at = CASE
        WHEN target.next_due_at IS NOT NULL
         AND target.next_due_at + make_interval(secs => target.interval_seconds) > %(now)s
        THEN target.next_due_at + make_interval(secs => target.interval_seconds)
        ELSE %(now)s + make_interval(secs => target.interval_seconds)
    END
FROM due WHERE target.id = due.id
RETURNING target.id, target.interval_seconds, target.timeout_seconds
"""

_IN_FLIGHT_SQL = f"SELECT count(*) FROM {Target._meta.db_table} WHERE lease_until > %(now)s"


def claim_due_targets(now: datetime, max_in_flight: int) -> list[Claim]:
    """Lease the targets that are due, at most as many as the concurrency cap leaves room for."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_IN_FLIGHT_SQL, {"now": now})
        room = max_in_flight - cursor.fetchone()[0]
        if room <= 0:
            return []
        cursor.execute(_CLAIM_SQL, {"now": now, "limit": room})
        return [Claim(*row) for row in cursor.fetchall()]


def release_lease(target_id: int) -> None:
    """For a probe that was claimed but will not run (its task could not be queued)."""
    Target.objects.filter(pk=target_id).update(lease_until=None)
