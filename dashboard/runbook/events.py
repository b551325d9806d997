"""The runbook's own events, for whoever listens (alerts do, in dashboard/alerts/events.py): the runbook sends
them and imports none of its listeners."""

from __future__ import annotations

import django.dispatch

# Sent by dashboard.runbook.worker after the commit that finished an attempt (failed, interrupted, succeeded,
# cancelled); sender Attempt, kwargs: attempt, status.
attempt_ended = django.dispatch.Signal()
