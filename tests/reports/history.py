"""Probe history put in the database the way probes and the rollup job do it (record_outcome, rollup_all)."""

from __future__ import annotations

from datetime import datetime, timedelta

from dashboard.models import Environment, Target
from dashboard.monitoring.outcome import ProbeOutcome
from dashboard.monitoring.recording import record_outcome
from dashboard.monitoring.rollup import rollup_all


def make_environment(slug: str = "reports") -> Environment:
    """An environment naming no resources (no stacks either: the direct-API runbook, chosen without asking AWS),
    so it has no managed targets besides the test's own."""
    return Environment.objects.create(
        name=slug.title(), slug=slug, region="us-east-1", account_id="123456789012", cloudformation_stacks=[]
    )


def probe(target: Target, at: datetime, latency: float | None, ok: bool = True, **outcome) -> None:
    outcome.setdefault("error", "" if ok else "connection refused (SQLSTATE 08001)")
    record_outcome(target.pk, at, ProbeOutcome(ok=ok, latency_ms=latency, **outcome))


def roll_up_everything(now: datetime) -> None:
    """Run the rollup job until it has nothing left to fold (it works in bounded batches)."""
    for _ in range(2000):
        done = rollup_all(now)
        if not any(done.values()):
            return
    raise AssertionError("rollups did not settle")


def every(start: datetime, step: timedelta, count: int) -> list[datetime]:
    return [start + index * step for index in range(count)]
