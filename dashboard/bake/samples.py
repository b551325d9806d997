"""Probe results as a bake's samples, and the API health target they come from."""

from __future__ import annotations

from datetime import datetime

from dashboard.bake.verdict import Sample
from dashboard.models import Environment, HealthMethod, ProbeKind, ProbeResult, Target
from dashboard.validators import BAKE_CRITERIA


def criteria_for(environment: Environment) -> dict:
    """The defaults with the environment's overrides (validated when saved)."""
    return {
        name: (environment.bake_criteria or {}).get(name, default) for name, (default, _, _) in BAKE_CRITERIA.items()
    }


def api_target(environment: Environment) -> Target | None:
    """The API health target the bake judges by: an invoked one first (it also reports cold starts)."""
    targets = environment.targets.filter(kind=ProbeKind.API_HEALTH, paused=False)
    return targets.filter(health_method=HealthMethod.INVOKE).first() or targets.order_by("pk").first()


def sample(at: datetime, ok: bool, latency_ms, phases: dict, cold_start, details: dict) -> Sample:
    http_status = (details or {}).get("http_status")
    phases = phases or {}
    return Sample(
        at=at,
        answered=http_status is not None,
        ok=ok,
        latency_ms=latency_ms,
        dsql_ms=phases.get("dsql"),
        init_ms=phases.get("init") if cold_start else None,
        served=http_status == 200,
    )


def samples_between(target: Target, start: datetime, end: datetime) -> list[Sample]:
    rows = (
        ProbeResult.objects.filter(target=target, at__gte=start, at__lt=end)
        .order_by("at")
        .values_list("at", "ok", "latency_ms", "phases", "cold_start", "details")
    )
    return [sample(*row) for row in rows]
