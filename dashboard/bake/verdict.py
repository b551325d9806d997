"""A bake's verdict: its samples judged against the baseline under the environment's criteria.

What is compared, and why (docs/runbook.md, "Bake and automatic rollback", says more):
- The health route gains a DSQL login with the repoint, by design: its end-to-end latency before and after
  are not the same work. So the API's own latency is the route's latency minus its DSQL check (the `dsql`
  phase the route reports): that is the cost the change may not add to every API call (p95 ratio).
- The DSQL check itself must stay "well within current API timeouts": an absolute p95 ceiling.
- Cold starts: the increase of the p95 Init Duration, where the target is invoked and reports it.
- Errors: failures the API answered (an HTTP status came back) count against the change; probes that got
  no answer at all (connection refused, timeout) say nothing about it, so they make the bake inconclusive.
Each check fails only on evidence at the criteria's significance (bounds and tests in statistics.py), so
noise alone rarely rolls a good change back; too little evidence is inconclusive, never a pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from dashboard.bake import statistics

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
# More than this share of the bake's probes without any answer from the API: VelaOps cannot see the API.
MAX_UNANSWERED_SHARE = 0.2
# Cold-start Init Durations needed on each side before their p95s are compared.
MIN_COLD_STARTS = 5
# The baseline's samples given to the bootstrap: its distribution without its full cost.
BASELINE_SAMPLE_LIMIT = 2000


@dataclass(frozen=True)
class Sample:
    at: datetime
    answered: bool  # the API answered (any HTTP status)
    ok: bool  # the probe passed (the route healthy, DSQL connected where expected)
    latency_ms: float | None
    dsql_ms: float | None = None
    init_ms: float | None = None  # a cold start's Init Duration
    # The route served its answer (HTTP 200) even if not healthy: before the repoint a "degraded: no DSQL
    # yet" answer is the API's normal work, and its latency is the API's.
    served: bool = False

    @property
    def timed(self) -> bool:
        """Its latency counts as the API's: the route served the request."""
        return (self.ok or self.served) and self.latency_ms is not None

    @property
    def api_ms(self) -> float | None:
        """The route's latency without its DSQL check: the API's own cost."""
        if self.latency_ms is None:
            return None
        return max(0.0, self.latency_ms - (self.dsql_ms or 0.0))


@dataclass
class Check:
    name: str
    outcome: str  # pass, fail, inconclusive, or "not judged" (no data of that kind on either side)
    summary: str
    figures: dict = field(default_factory=dict)


@dataclass
class Verdict:
    outcome: str
    reason: str
    checks: list[Check]
    figures: dict

    def as_dict(self) -> dict:
        return asdict(self)


def describe(samples: list[Sample]) -> dict:
    """The figures of a set of samples, as recorded with a baseline or a bake."""
    answered = [s for s in samples if s.answered]
    api = [s.api_ms for s in answered if s.timed]
    dsql = [s.dsql_ms for s in answered if s.ok and s.dsql_ms is not None]
    inits = [s.init_ms for s in samples if s.init_ms is not None]
    errors = sum(1 for s in answered if not s.ok)
    # Served but not healthy: before the repoint, the route's "degraded: no DSQL yet" (its normal answer then).
    degraded = sum(1 for s in answered if s.served and not s.ok)
    figures: dict = {
        "samples": len(samples),
        "answered": len(answered),
        "errors": errors,
        "degraded": degraded,
        "error_rate": round(errors / len(answered), 5) if answered else None,
        "cold_starts": len(inits),
        "cold_start_share": round(len(inits) / len(samples), 5) if samples else None,
    }
    for name, values in (("api_ms", api), ("dsql_ms", dsql), ("init_ms", inits)):
        for q in (50, 95, 99):
            figures[f"{name}_p{q}"] = round(statistics.quantile(values, q / 100), 3) if values else None
    return figures


def judge(baseline: list[Sample], bake: list[Sample], criteria: dict) -> Verdict:
    alpha = criteria["significance"]
    answered = [s for s in bake if s.answered]
    checks = [
        _enough_samples(bake, answered, criteria),
        _api_latency(baseline, answered, criteria["p95_latency_ratio_max"], alpha),
        _dsql_check(answered, criteria["dsql_check_p95_ms_max"], alpha),
        _cold_start(baseline, bake, criteria["cold_init_p95_increase_ms_max"], alpha),
        _errors(answered, criteria["error_rate_max"], alpha),
    ]
    figures = {"baseline": describe(baseline), "bake": describe(bake)}
    failed = [c for c in checks if c.outcome == FAIL]
    held = [c for c in checks if c.outcome == INCONCLUSIVE]
    if failed:
        return Verdict(FAIL, "; ".join(c.summary for c in failed), checks, figures)
    if held:
        return Verdict(INCONCLUSIVE, "; ".join(c.summary for c in held), checks, figures)
    return Verdict(PASS, "every criterion is met", checks, figures)


def _enough_samples(bake: list[Sample], answered: list[Sample], criteria: dict) -> Check:
    needed = int(criteria["bake_min_samples"])
    unanswered = len(bake) - len(answered)
    figures = {"samples": len(bake), "answered": len(answered), "needed": needed}
    if bake and unanswered / len(bake) > MAX_UNANSWERED_SHARE:
        return Check(
            "samples",
            INCONCLUSIVE,
            f"{unanswered} of {len(bake)} probes got no answer from the API (a network or timeout failure, "
            "not the API's own): VelaOps cannot judge the change while it cannot reach the API",
            figures,
        )
    if len(answered) < needed:
        return Check("samples", INCONCLUSIVE, f"only {len(answered)} answered probes (need {needed})", figures)
    return Check("samples", PASS, f"{len(answered)} answered probes (need {needed})", figures)


def _api_latency(baseline: list[Sample], answered: list[Sample], ratio_max: float, alpha: float) -> Check:
    before = statistics.thin([s.api_ms for s in baseline if s.timed], BASELINE_SAMPLE_LIMIT)
    after = [s.api_ms for s in answered if s.timed]
    if len(before) < 2 or len(after) < 2:
        return Check("api_latency", INCONCLUSIVE, "too few successful probes to compare the API's latency")
    ratio = statistics.quantile_ratio(0.95)(after, before)
    # Two tests, each at alpha/2 (Bonferroni): the whole distribution shifted past the allowed multiple
    # (Mann-Whitney against the baseline scaled by it), or its tail (a bootstrap bound on the p95 ratio).
    p_value = statistics.mann_whitney_greater(after, [value * ratio_max for value in before])
    lower, upper = statistics.bootstrap_interval(statistics.quantile_ratio(0.95), (after, before), alpha=alpha / 2)
    figures = {
        "p95_before_ms": round(statistics.quantile(before, 0.95), 3),
        "p95_after_ms": round(statistics.quantile(after, 0.95), 3),
        "p95_ratio": round(ratio, 4),
        "p95_ratio_bounds": [round(lower, 4), round(upper, 4)],
        "mann_whitney_p": round(p_value, 6),
        "ratio_max": ratio_max,
    }
    if p_value < alpha / 2 or lower > ratio_max:
        why = "its p95 ratio's lower bound" if lower > ratio_max else "Mann-Whitney"
        return Check(
            "api_latency",
            FAIL,
            f"the API's latency rose: p95 {figures['p95_before_ms']:.1f} → {figures['p95_after_ms']:.1f} ms "
            f"(× {ratio:.2f}, allowed × {ratio_max:g}; {why} says so at {alpha:g})",
            figures,
        )
    return Check("api_latency", PASS, f"the API's p95 latency × {ratio:.2f} (allowed × {ratio_max:g})", figures)


def _dsql_check(answered: list[Sample], ceiling_ms: float, alpha: float) -> Check:
    values = [s.dsql_ms for s in answered if s.ok and s.dsql_ms is not None]
    if not values:
        return Check("dsql_check", "not judged", "the route reported no DSQL check time")
    p95 = statistics.quantile(values, 0.95)
    lower, upper = statistics.bootstrap_interval(lambda v: statistics.quantile(v, 0.95), (values,), alpha=alpha)
    figures = {"p95_ms": round(p95, 3), "p95_bounds_ms": [round(lower, 3), round(upper, 3)], "ceiling_ms": ceiling_ms}
    if lower > ceiling_ms:
        return Check(
            "dsql_check",
            FAIL,
            f"the route's DSQL check p95 {p95:.1f} ms is over its {ceiling_ms:g} ms ceiling",
            figures,
        )
    return Check("dsql_check", PASS, f"the route's DSQL check p95 {p95:.1f} ms (ceiling {ceiling_ms:g} ms)", figures)


def _cold_start(baseline: list[Sample], bake: list[Sample], increase_max: float, alpha: float) -> Check:
    before = [s.init_ms for s in baseline if s.init_ms is not None]
    after = [s.init_ms for s in bake if s.init_ms is not None]
    if len(before) < MIN_COLD_STARTS or len(after) < MIN_COLD_STARTS:
        return Check(
            "cold_start",
            "not judged",
            f"{len(before)} cold starts in the baseline and {len(after)} in the bake (need {MIN_COLD_STARTS} each; "
            "only a target probed by invoke reports them)",
        )
    increase = statistics.quantile_difference(0.95)(after, before)
    lower, upper = statistics.bootstrap_interval(statistics.quantile_difference(0.95), (after, before), alpha=alpha)
    figures = {"p95_increase_ms": round(increase, 3), "bounds_ms": [round(lower, 3), round(upper, 3)]}
    if lower > increase_max:
        return Check(
            "cold_start",
            FAIL,
            f"cold starts' p95 Init Duration rose {increase:.0f} ms (allowed {increase_max:g})",
            figures,
        )
    return Check("cold_start", PASS, f"cold starts' p95 Init Duration {increase:+.0f} ms", figures)


def _errors(answered: list[Sample], rate_max: float, alpha: float) -> Check:
    errors = sum(1 for s in answered if not s.ok)
    lower, upper = statistics.wilson_bounds(errors, len(answered), alpha=alpha)
    figures = {"errors": errors, "answered": len(answered), "rate_bounds": [round(lower, 5), round(upper, 5)]}
    if answered and lower > rate_max:
        return Check(
            "errors",
            FAIL,
            f"{errors} of {len(answered)} answered probes failed (at least {lower:.1%} at {alpha:g}; "
            f"allowed {rate_max:.1%})",
            figures,
        )
    return Check("errors", PASS, f"{errors} of {len(answered)} answered probes failed", figures)
