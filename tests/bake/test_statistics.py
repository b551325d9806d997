"""The bake's statistics on samples with known answers: reference values from scipy 1.17.1 and statsmodels
(computed once outside the project, which does not depend on them), and the verdict's false-alarm rate and
power on synthetic latencies."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from dashboard.bake import statistics
from dashboard.bake.verdict import FAIL, INCONCLUSIVE, PASS, Sample, judge
from dashboard.validators import BAKE_CRITERIA

X = [12.1, 15.3, 11.0, 19.8, 14.4, 13.3, 16.0, 12.1, 18.2, 17.5]
Y = [10.2, 11.9, 12.1, 9.8, 13.0, 10.5, 11.1, 12.1, 10.0]
CRITERIA = {name: default for name, (default, _low, _high) in BAKE_CRITERIA.items()}
AT = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        # scipy.stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic").pvalue
        (X, Y, 0.0017992950263955106),
        (Y, X, 0.9986204260245831),
        ([1, 2, 2, 3, 3, 3, 4], [2, 3, 3, 4, 4, 5], 0.9407675530642273),  # ties
        ([2, 3, 3, 4, 4, 5], [1, 2, 2, 3, 3, 3, 4], 0.07889270525898251),
    ],
)
def test_mann_whitney_matches_scipy(x, y, expected):
    assert statistics.mann_whitney_greater(x, y) == pytest.approx(expected, rel=1e-9)


def test_mann_whitney_without_evidence():
    assert statistics.mann_whitney_greater([], [1.0]) == 1.0
    assert statistics.mann_whitney_greater([2.0, 2.0], [2.0, 2.0]) == 1.0


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    # numpy.quantile's default (linear)
    [([3, 1, 4, 1, 5, 9, 2, 6], 0.95, 7.95), ([3, 1, 4, 1, 5, 9, 2, 6], 0.5, 3.5), ([7], 0.99, 7.0)],
)
def test_quantile_matches_numpy(values, q, expected):
    assert statistics.quantile(values, q) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("successes", "trials", "alpha", "expected"),
    # statsmodels proportion_confint(k, n, alpha=2 * alpha, method="wilson"): a two-sided interval at 2 alpha
    # is a pair of one-sided bounds at alpha.
    [
        (3, 100, 0.05, (0.01205181424927991, 0.07271034328690397)),
        (0, 30, 0.05, (0.0, 0.08272430812509934)),
        (10, 20, 0.01, (0.26925827170400624, 0.7307417282959938)),
    ],
)
def test_wilson_bounds_match_statsmodels(successes, trials, alpha, expected):
    assert statistics.wilson_bounds(successes, trials, alpha=alpha) == pytest.approx(expected, abs=1e-9)


def test_bootstrap_is_deterministic_and_brackets_the_estimate():
    ratio = statistics.quantile_ratio(0.95)
    first = statistics.bootstrap_interval(ratio, (X, Y), alpha=0.05)
    assert first == statistics.bootstrap_interval(ratio, (X, Y), alpha=0.05)
    assert first[0] <= ratio(X, Y) <= first[1]


def test_thin_keeps_the_spread():
    values = list(range(10_000))
    thinned = statistics.thin(values, 1000)
    assert len(thinned) == 1000 and thinned[0] == 0 and thinned[-1] >= 9990


# --- the verdict on synthetic samples -------------------------------------------------------------


def _latencies(rng: random.Random, n: int, scale: float = 1.0, dsql: float | None = None) -> list[Sample]:
    """Lognormal latencies around 40 ms, like an API behind API Gateway; `scale` multiplies the API's part."""
    samples = []
    for _ in range(n):
        api = rng.lognormvariate(3.6, 0.35) * scale
        dsql_ms = None if dsql is None else rng.lognormvariate(3.0, 0.3) + dsql
        samples.append(Sample(AT, True, True, api + (dsql_ms or 0), dsql_ms))
    return samples


def test_no_change_rarely_fails():
    """The false-alarm rate: with nothing changed and the ratio allowed at 1.0 (the strictest), the verdict
    fails in about `significance` of the trials; at the default × 1.25 it essentially never does."""
    rng = random.Random(7)
    strict = {**CRITERIA, "p95_latency_ratio_max": 1.0, "significance": 0.05}
    trials = 200
    strict_fails = default_fails = 0
    for _ in range(trials):
        baseline, bake = _latencies(rng, 300), _latencies(rng, 60, dsql=0)
        strict_fails += judge(baseline, bake, strict).outcome == FAIL
        default_fails += judge(baseline, bake, CRITERIA).outcome == FAIL
    assert strict_fails / trials <= 0.1  # ≈ 0.05 with sampling noise over 200 trials
    assert default_fails == 0


def test_a_real_shift_is_detected():
    """The power: the API's latency doubled (allowed × 1.25) is caught in nearly every trial of 60 samples."""
    rng = random.Random(11)
    trials = 100
    caught = sum(
        judge(_latencies(rng, 300), _latencies(rng, 60, 2.0, 0), CRITERIA).outcome == FAIL for _ in range(trials)
    )
    assert caught / trials >= 0.95


def test_the_route_gaining_its_dsql_check_is_not_a_latency_regression():
    rng = random.Random(3)
    verdict = judge(_latencies(rng, 300), _latencies(rng, 60, dsql=5.0), CRITERIA)
    assert verdict.outcome == PASS, verdict.reason
    assert {c.name: c.outcome for c in verdict.checks}["cold_start"] == "not judged"


def test_a_slow_dsql_check_fails():
    rng = random.Random(5)
    verdict = judge(_latencies(rng, 300), _latencies(rng, 60, dsql=1500.0), CRITERIA)
    assert verdict.outcome == FAIL
    assert "DSQL check" in verdict.reason


def test_errors_fail_only_on_evidence():
    rng = random.Random(9)
    baseline = _latencies(rng, 300)
    one_error = _latencies(rng, 59, dsql=0) + [Sample(AT, True, False, 30.0)]
    assert judge(baseline, one_error, CRITERIA).outcome == PASS  # 1 in 60: not evidence of > 1 %
    many = _latencies(rng, 50, dsql=0) + [Sample(AT, True, False, 30.0)] * 10
    verdict = judge(baseline, many, CRITERIA)
    assert verdict.outcome == FAIL and "answered probes failed" in verdict.reason


def test_unanswered_probes_and_too_few_samples_are_inconclusive():
    rng = random.Random(13)
    baseline = _latencies(rng, 300)
    unreachable = _latencies(rng, 40, dsql=0) + [Sample(AT, False, False, None)] * 20
    verdict = judge(baseline, unreachable, CRITERIA)
    assert verdict.outcome == INCONCLUSIVE and "no answer" in verdict.reason
    assert judge(baseline, _latencies(rng, 10, dsql=0), CRITERIA).outcome == INCONCLUSIVE


def test_cold_starts_are_compared_when_both_sides_have_them():
    rng = random.Random(17)

    def cold(n: int, init: float) -> list[Sample]:
        return [Sample(AT, True, True, 40.0, 5.0, init + rng.uniform(-20, 20)) for _ in range(n)]

    baseline = _latencies(rng, 300) + cold(20, 400)
    slower = _latencies(rng, 60, dsql=0) + cold(10, 900)
    verdict = judge(baseline, slower, CRITERIA)
    assert verdict.outcome == FAIL and "Init Duration" in verdict.reason
    same = _latencies(rng, 60, dsql=0) + cold(10, 410)
    assert judge(baseline, same, CRITERIA).outcome == PASS
