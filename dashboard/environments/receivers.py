"""The environment page's snapshot follows the runbook: an attempt that ended may have changed any resource."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from dashboard.environments.snapshot import invalidate
from dashboard.runbook.events import attempt_ended

log = logging.getLogger(__name__)


@receiver(attempt_ended, dispatch_uid="environment_snapshot_invalidate")
def on_attempt_ended(sender, attempt, status, **kwargs) -> None:
    # Sent after the commit, so the next poll reads the step's outcome together with what it did in AWS.
    # Never raises: the signal's other receivers (alerts) come after this one.
    try:
        invalidate(attempt.migration.environment_id)
    except Exception:
        log.exception("attempt %s ended: the environment's snapshot could not be invalidated", attempt.pk)
