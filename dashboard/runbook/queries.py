"""What the migration pages read: the steps with what each offers the user (dashboard.runbook.actions), the
audit trail, a fingerprint for the poll's 204, and an attempt's log lines."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC

from django.contrib.auth.models import AbstractBaseUser

from dashboard.models import Attempt, AttemptLog, MigrationRun
from dashboard.runbook import actions

LOG_BATCH = 500  # lines per live-tail answer; a fast step catches up over a few polls
LOG_TAIL = 200  # lines the attempt page opens with (the end, where the outcome is); earlier ones on request
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
            # A running step's progress (a bake's running verdict and points) shows as it is logged.
            offers.active.logs.order_by("-id").values_list("id", flat=True).first() if offers.active else None,
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
    return _with_clock(list(lines[:limit] if limit else lines))


def attempt_tail(attempt: Attempt, before: int | None = None, limit: int = LOG_TAIL) -> tuple[list[AttemptLog], int]:
    """The last `limit` lines (of those before line `before`, if given), oldest first, and how many lines come
    before them. A 5,000-line log rendered whole took 394 ms; its tail is what a reader comes for."""
    lines = attempt.logs.filter(id__lt=before) if before else attempt.logs.all()
    newest = list(lines.order_by("-id")[: limit + 1])  # one more: are there earlier lines at all?
    shown = newest[:limit][::-1]
    earlier = attempt.logs.filter(id__lt=shown[0].pk).count() if len(newest) > limit else 0
    return _with_clock(shown), earlier


def attempt_log_text(attempt: Attempt) -> Iterator[str]:
    """The whole log as text, one line per row, read in chunks: however long it is, it is all there."""
    rows = attempt.logs.order_by("id").values_list("at", "level", "message", "data")
    for at, level, message, data in rows.iterator(chunk_size=2000):
        request_id = (data or {}).get("request_id") if isinstance(data, dict) else None
        yield f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f} {level:<7} {message}" + (
            f" [{request_id}]\n" if request_id else "\n"
        )


def _with_clock(lines: list[AttemptLog]) -> list[AttemptLog]:
    # The time as the page prints it, made here: the template's date filter cost a tenth of a long log's page.
    for line in lines:
        line.clock = line.at.astimezone(UTC).strftime("%H:%M:%S.%f")[:12]
    return lines
