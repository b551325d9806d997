"""The events alerts listen to: a target's status change (sent by monitoring.recording) and the end of a
runbook step attempt (dashboard.runbook.events, sent by runbook.worker). Connected in DashboardConfig.ready()
via signals.py.

Receivers run after the commit that recorded the event; a failure to raise an alert is logged and never
breaks the probe or the step that sent it.
"""

from __future__ import annotations

import logging

from django.dispatch import receiver

from dashboard.monitoring.recording import target_status_changed
from dashboard.runbook.events import attempt_ended

log = logging.getLogger(__name__)


@receiver(target_status_changed, dispatch_uid="alerts_target_status_changed")
def on_target_status_changed(sender, target, previous, incident=None, **kwargs) -> None:
    from dashboard.alerts.rules import alert_target_status

    try:
        alert_target_status(target=target, previous=previous, incident=incident)
    except Exception:
        log.exception("could not raise the alert for target %s going %s", target.pk, target.status)


@receiver(attempt_ended, dispatch_uid="alerts_attempt_ended")
def on_attempt_ended(sender, attempt, status, **kwargs) -> None:
    from dashboard.alerts.rules import alert_attempt_ended

    try:
        alert_attempt_ended(attempt=attempt, status=status)
    except Exception:
        log.exception("could not raise the alert for attempt %s (%s)", attempt.pk, status)
