"""What the migration pages read: the steps with what each offers the user (dashboard.runbook.actions), the
audit trail, a fingerprint for the poll's 204, and an attempt's log lines."""

from __future__ import annotations

import hashlib
import json

from django.contrib.auth.models import AbstractBaseUser

from dashboard.models import Attempt, AttemptLog, MigrationRun
from dashboard.runbook import actions

LOG_BATCH = 500  # lines per live-tail answer; a fast step catches up over a few polls
AUDIT_SHOWN = 100  # latest audit events on the migration page


def migration_page(migration: MigrationRun, user: AbstractBaseUser) -> dict:
    offers = actions.migration_actions(migration, user)
    audit_events = list(migration.audit_events.select_related("user")[:AUDIT_SHOWN])
    fingerprint = json.dumps(
        [
            migration.status,
            [
                (
                    row.step.state,
                    [(a.pk, a.status) for a in row.attempts],
                    [(p.pk, p.approved_by_id) for p in row.approvals],
                )
                for row in offers.steps
            ],
            audit_events[0].pk if audit_events else None,  # refusals change nothing else
        ]
    )
    return {
        "environment": migration.environment,
        "migration": migration,
        "rows": offers.steps,
        "active": offers.active,
        "abandon": offers.abandon,
        "version": hashlib.blake2s(fingerprint.encode(), digest_size=8).hexdigest(),
        "audit_events": audit_events,
    }


def attempt_lines(attempt: Attempt, after: int = 0, limit: int | None = None) -> list[AttemptLog]:
    lines = attempt.logs.filter(id__gt=after) if after else attempt.logs.all()
    return list(lines[:limit] if limit else lines)
