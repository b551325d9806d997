"""What the migration page shows of a bake step: its criteria, the baseline, the bake's probes as points against
the baseline's band, and the verdict (running, from the bake's latest progress line, or final)."""

from __future__ import annotations

from django.utils import timezone

from dashboard.bake import samples
from dashboard.models import Attempt, ProbeResult, Step
from dashboard.runbook import step_definition
from dashboard.runbook.steps import bake
from dashboard.validators import BAKE_CRITERIA

# Points drawn at most: ten minutes at two probes a second, with room.
MAX_POINTS = 2000


def bake_view(step: Step, latest: Attempt | None, baseline: dict, environment) -> dict | None:
    """None for a step that is not a bake, or a bake that has not run."""
    if not isinstance(step_definition(step.key), bake.BakeChange) or latest is None:
        return None
    if latest.action != Attempt.Action.RUN:
        return None
    outputs = latest.outputs or {}
    criteria = outputs.get("criteria") or samples.criteria_for(environment)
    running = latest.is_active
    verdict = outputs.get("verdict")
    if verdict is None:
        verdict = _running_verdict(latest)
    figures = (baseline or {}).get("figures") or {}
    return {
        "attempt": latest,
        "running": running,
        "verdict": verdict,
        "criteria": [(name, criteria.get(name, default)) for name, (default, _, _) in BAKE_CRITERIA.items()],
        "baseline": figures,
        "chart": _chart(latest, baseline, criteria),
        "chart_id": f"bake-data-{latest.pk}",
        "stop_choices": bake.STOP_CHOICES,
    }


def _running_verdict(attempt: Attempt) -> dict | None:
    line = attempt.logs.filter(data__bake__phase="running").order_by("-id").values_list("data", flat=True).first()
    if not line:
        return None
    progress = line["bake"]
    return {"outcome": progress["outcome"], "reason": progress["reason"], "running": True}


def _chart(attempt: Attempt, baseline: dict, criteria: dict) -> dict | None:
    target_id = ((baseline or {}).get("target") or {}).get("id")
    if not target_id or attempt.started_at is None:
        return None
    end = attempt.finished_at or timezone.now()
    rows = list(
        ProbeResult.objects.filter(target_id=target_id, at__gte=attempt.started_at, at__lte=end)
        .order_by("at")
        .values_list("at", "ok", "latency_ms", "phases", "cold_start", "details")[:MAX_POINTS]
    )
    taken = [samples.sample(*row) for row in rows]
    figures = baseline.get("figures") or {}
    return {
        "start": attempt.started_at.timestamp(),
        "end": end.timestamp(),
        "t": [s.at.timestamp() for s in taken],
        "api": [round(s.api_ms, 2) if s.timed and s.api_ms is not None else None for s in taken],
        "dsql": [round(s.dsql_ms, 2) if s.dsql_ms is not None else None for s in taken],
        "failed": [1 if s.answered and not s.ok else 0 for s in taken],
        "baseline_p50": figures.get("api_ms_p50"),
        "baseline_p95": figures.get("api_ms_p95"),
        "allowed_p95": round(figures["api_ms_p95"] * criteria["p95_latency_ratio_max"], 2)
        if figures.get("api_ms_p95") is not None
        else None,
        "dsql_ceiling": criteria["dsql_check_p95_ms_max"],
    }
