"""Helpers that put probe history in the database the way probes and jobs do."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from dashboard.models import Environment, ProbeKind, Target
from dashboard.monitoring.histogram import Histogram
from dashboard.monitoring.outcome import ProbeOutcome
from dashboard.monitoring.recording import record_outcome


def make_target(environment: Environment, name: str = "cluster-a", **fields) -> Target:
    fields.setdefault("kind", ProbeKind.DSQL)
    return Target.objects.create(environment=environment, name=name, **fields)


def record(target: Target, at: datetime, latency: float | None = 10.0, ok: bool = True, **outcome):
    outcome.setdefault("error", "" if ok else "connection refused")
    return record_outcome(target.pk, at, ProbeOutcome(ok=ok, latency_ms=latency, **outcome))


def record_series(target: Target, start: datetime, every: timedelta, outcomes: list[tuple[bool, float | None]]):
    for index, (ok, latency) in enumerate(outcomes):
        record(target, start + index * every, latency, ok)


def histogram_of(values: Iterable[float]) -> Histogram:
    """A histogram of the values, as probes add them one by one (only tests build one from a list)."""
    histogram = Histogram()
    for value in values:
        histogram.add(value)
    return histogram
