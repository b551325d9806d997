"""What the alert tests set up: an environment of their own and probe results recorded the way the
probe worker records them (so a target goes down and alerts listen), and a wait for a worker's effect."""

from __future__ import annotations

from datetime import datetime

from dashboard.models import Environment, Target
from dashboard.monitoring.outcome import ProbeOutcome
from dashboard.monitoring.recording import record_outcome


def make_environment(slug: str) -> Environment:
    """An environment naming no resources (no stacks either: the direct-API runbook, chosen without asking AWS),
    so it has no managed targets besides the test's own."""
    return Environment.objects.create(
        name=slug.title(), slug=slug, region="us-east-1", account_id="123456789012", cloudformation_stacks=[]
    )


def probe(target: Target, at: datetime, latency: float | None, ok: bool = True, **outcome) -> None:
    outcome.setdefault("error", "" if ok else "connection refused (SQLSTATE 08001)")
    record_outcome(target.pk, at, ProbeOutcome(ok=ok, latency_ms=latency, **outcome))
