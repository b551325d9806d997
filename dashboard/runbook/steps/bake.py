"""The bake (issue #16): a baseline of the API before the Lambda is repointed, then after each risky change
a bake that probes the API at a raised rate and judges it against that baseline (dashboard.bake.verdict).
A failed bake has the change it judged rolled back at once by VelaOps (the worker's automatic rollback,
dashboard.runbook.service.attempt_automatic_rollback); an inconclusive one holds for an operator."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from dashboard.bake import samples, verdict
from dashboard.models import AuditEvent, Target
from dashboard.monitoring.probes import run_probe
from dashboard.monitoring.recording import record_outcome
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition

BASELINE_KEY = "baseline_api"
# The bake writes its running figures into its log this often (the migration page shows them live).
PROGRESS_EVERY = 5.0
# An operator's early verdict on a running bake (dashboard.runbook.service.bake_stop).
STOP_EVENT = "bake.stop"


class BaselineApi(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        criteria = samples.criteria_for(ctx.environment)
        target = samples.api_target(ctx.environment)
        if target is None:
            raise StepFailed("The environment has no API health target to take a baseline from.")
        end = timezone.now()
        start = end - timedelta(minutes=criteria["baseline_window_minutes"])
        history = samples.samples_between(target, start, end)
        timed = sum(1 for s in history if s.answered and s.timed)
        needed = int(criteria["baseline_min_samples"])
        figures = verdict.describe(history)
        if timed < needed:
            missing = needed - timed
            wait = math.ceil(missing * target.interval_seconds / 60)
            raise StepFailed(
                f"Too little history for a baseline: {timed} served probes of {target.display_name} in the last "
                f"{criteria['baseline_window_minutes']:g} minutes, {needed} needed. At its {target.interval_seconds} s "
                f"interval that is about {wait} more minute(s) of probing: run this step again then.",
                {"figures": figures, "needed": needed, "wait_minutes": wait},
            )
        ctx.log(
            f"baseline of {target.display_name}: {timed} served probes from {start:%Y-%m-%d %H:%M} UTC, "
            f"API p95 {figures['api_ms_p95']} ms, errors {figures['errors']}"
        )
        return {
            "target": {"id": target.pk, "name": target.display_name},
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "figures": figures,
            "criteria": criteria,
        }


STOP_CHOICES = (verdict.PASS, verdict.FAIL)


@dataclass(frozen=True)
class BakeChange(StepDefinition):
    judges: tuple[str, ...] = ()  # the step keys of the change judged, one per runbook

    def judged_key(self, ctx: StepContext) -> str:
        return next((key for key in self.judges if ctx.migration.steps.filter(key=key).exists()), "")

    def findings(self, outputs: dict) -> list[str]:
        # Only an inconclusive bake can be accepted by an approver; a failed one is rolled back.
        found = (outputs or {}).get("verdict") or {}
        return [found.get("reason", "")] if found.get("outcome") == verdict.INCONCLUSIVE else []

    def automatic_rollback(self, outputs: dict) -> tuple[str, str] | None:
        found = (outputs or {}).get("verdict") or {}
        if found.get("outcome") != verdict.FAIL or not outputs.get("judged"):
            return None
        return outputs["judged"], f"the bake “{self.title}” failed: {found.get('reason', '')}"

    def run(self, ctx: StepContext) -> dict:
        criteria = samples.criteria_for(ctx.environment)
        baseline = ctx.output_of(BASELINE_KEY)
        if not baseline.get("window"):
            raise StepFailed("This migration has no API baseline to judge the change against.")
        target = Target.objects.select_related("environment").filter(pk=baseline["target"]["id"]).first()
        if target is None:
            raise StepFailed("The baseline's API health target is gone.")
        window_of = baseline["window"]
        history = samples.samples_between(
            target, datetime.fromisoformat(window_of["start"]), datetime.fromisoformat(window_of["end"])
        )
        judged = self.judged_key(ctx)
        started = timezone.now()
        window, interval = criteria["bake_window_seconds"], criteria["bake_interval_seconds"]
        ctx.log(
            f"baking for {window:g} s: probing {target.display_name} every {interval:g} s against a baseline of "
            f"{len(history)} probes",
            data={"bake": {"phase": "started", "window_seconds": window}},
        )
        taken: list[verdict.Sample] = []
        deadline = time.monotonic() + window
        next_progress = time.monotonic() + PROGRESS_EVERY
        decided = None
        while time.monotonic() < deadline:
            began = time.monotonic()
            decided = self._stopped_by_operator(ctx)
            if decided:
                break
            at = timezone.now()
            outcome = run_probe(target)
            record_outcome(target.pk, at, outcome)
            taken.append(
                samples.sample(at, outcome.ok, outcome.latency_ms, outcome.phases, outcome.cold_start, outcome.details)
            )
            if time.monotonic() >= next_progress:
                self._progress(ctx, history, taken, criteria)
                next_progress = time.monotonic() + PROGRESS_EVERY
            ctx.sleep(max(0.0, interval - (time.monotonic() - began)))
        found = verdict.judge(history, taken, criteria)
        result = found.as_dict()
        if decided:
            result.update(
                judged_outcome=found.outcome,
                outcome=decided.details["verdict"],
                reason=f"stopped early by {decided.user}: {decided.details['reason']} "
                f"(the figures said {found.outcome}: {found.reason})",
                decided_by=str(decided.user),
            )
        outputs = {
            "verdict": result,
            "criteria": criteria,
            "judged": judged,
            "target": baseline["target"],
            "baseline_window": baseline["window"],
            "window": {"start": started.isoformat(), "end": timezone.now().isoformat()},
        }
        ctx.log(f"verdict: {result['outcome']}: {result['reason']}", data={"bake": {"phase": "verdict", **result}})
        if result["outcome"] == verdict.FAIL:
            raise StepFailed(f"The bake failed: {result['reason']}. VelaOps rolls back “{judged}” at once.", outputs)
        if result["outcome"] == verdict.INCONCLUSIVE:
            raise StepFailed(
                f"The bake is inconclusive: {result['reason']}. Held for an operator: bake again (retry), roll back "
                f"“{judged}”, or have an approver accept it.",
                outputs,
            )
        return outputs

    @staticmethod
    def _stopped_by_operator(ctx: StepContext) -> AuditEvent | None:
        return (
            AuditEvent.objects.filter(
                migration=ctx.migration, action=STOP_EVENT, outcome="ok", details__attempt_id=ctx.attempt.pk
            )
            .select_related("user")
            .first()
        )

    @staticmethod
    def _progress(ctx: StepContext, history, taken, criteria) -> None:
        running = verdict.judge(history, taken, criteria)
        bake_figures = running.figures["bake"]
        ctx.log(
            f"{len(taken)} probes: API p95 {bake_figures['api_ms_p95']} ms, DSQL check p95 "
            f"{bake_figures['dsql_ms_p95']} ms, {bake_figures['errors']} errors; so far {running.outcome}",
            data={"bake": {"phase": "running", "outcome": running.outcome, "reason": running.reason}},
        )


BASELINE = BaselineApi(
    key=BASELINE_KEY,
    title="Baseline of the API",
    summary="The API health target's latency, cold starts and errors over the baseline window before the Lambda "
    "is repointed: what the bakes judge the changes against.",
)
BAKE_REPOINT = BakeChange(
    key="bake_repoint",
    title="Bake: the Lambda on DSQL",
    summary="Probe the API at a raised rate for the bake window and judge it against the baseline: API latency "
    "p95 ratio, the DSQL check's p95, cold starts, errors. A failure rolls the repoint back at once.",
    judges=("point_lambda", "execute_point_lambda"),
)
BAKE_DROP_AURORA = BakeChange(
    key="bake_drop_aurora",
    title="Bake: the API without Aurora",
    summary="The same judgement after the API stack let go of Aurora; a failure rolls that change back at once.",
    judges=("execute_drop_aurora_api",),
)
