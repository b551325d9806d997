"""Alerts: a target going down or recovering, and a runbook step attempt failing or being interrupted,
told by email and webhook per environment; quiet in maintenance windows; every message recorded per
channel and retried until it is sent or its attempts run out. See docs/reports.md."""
