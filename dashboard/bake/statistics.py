"""The statistics of a bake's verdict: small, pure and deterministic (a verdict can be recomputed).

- Quantiles interpolate linearly between order statistics (numpy's and R's default, "type 7").
- mann_whitney_greater is the one-sided Mann-Whitney U test with the normal approximation, tie correction
  and continuity correction: the same p-value as scipy.stats.mannwhitneyu(x, y, alternative="greater",
  method="asymptotic"); tests/bake/test_statistics.py holds values computed with scipy 1.17.1 (and the
  Wilson bounds with statsmodels' proportion_confint).
- bootstrap_interval is the percentile bootstrap with a fixed seed, so the same samples give the same bounds.
- wilson_bounds is the Wilson score interval for a binomial proportion (an error rate), which behaves at
  0 and at small n, where the normal ("Wald") interval does not.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from statistics import NormalDist

_NORMAL = NormalDist()
BOOTSTRAP_RESAMPLES = 600
BOOTSTRAP_SEED = 20261202


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return _sorted_quantile(ordered, q)


def _sorted_quantile(ordered: Sequence[float], q: float) -> float:
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided p-value for "x tends to be larger than y"; 1.0 when either is empty or all values tie."""
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        return 1.0
    labelled = sorted([(value, 0) for value in x] + [(value, 1) for value in y])
    rank_sum_x, ties, index, n = 0.0, 0.0, 0, n1 + n2
    while index < n:
        end = index
        while end + 1 < n and labelled[end + 1][0] == labelled[index][0]:
            end += 1
        tied = end - index + 1
        mid_rank = (index + end) / 2 + 1  # ranks start at 1; a tie shares the mean of its ranks
        rank_sum_x += mid_rank * sum(1 for k in range(index, end + 1) if labelled[k][1] == 0)
        ties += tied**3 - tied
        index = end + 1
    u = rank_sum_x - n1 * (n1 + 1) / 2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(variance)
    return 1 - _NORMAL.cdf(z)


def bootstrap_interval(
    statistic: Callable[..., float],
    samples: Sequence[Sequence[float]],
    *,
    alpha: float,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """(lower, upper): the alpha and 1 - alpha percentiles of `statistic` over resamples (with replacement)
    of each of `samples`; so each bound alone is a one-sided 1 - alpha bound."""
    rng = random.Random(seed)
    values = sorted(statistic(*(rng.choices(sample, k=len(sample)) for sample in samples)) for _ in range(resamples))
    return _sorted_quantile(values, alpha), _sorted_quantile(values, 1 - alpha)


def quantile_ratio(q: float) -> Callable[[Sequence[float], Sequence[float]], float]:
    def ratio(after: Sequence[float], before: Sequence[float]) -> float:
        denominator = quantile(before, q)
        return quantile(after, q) / denominator if denominator > 0 else math.inf

    return ratio


def quantile_difference(q: float) -> Callable[[Sequence[float], Sequence[float]], float]:
    def difference(after: Sequence[float], before: Sequence[float]) -> float:
        return quantile(after, q) - quantile(before, q)

    return difference


def wilson_bounds(successes: int, trials: int, *, alpha: float) -> tuple[float, float]:
    """One-sided 1 - alpha Wilson bounds (lower, upper) of a proportion; (0, 1) with no trials."""
    if trials <= 0:
        return 0.0, 1.0
    z = _NORMAL.inv_cdf(1 - alpha)
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    denominator = 1 + z * z / trials
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def thin(values: Sequence[float], limit: int) -> list[float]:
    """At most `limit` values, evenly spaced through `values` (deterministic): keeps a long baseline's
    distribution while bounding the bootstrap's cost."""
    if len(values) <= limit:
        return list(values)
    step = len(values) / limit
    return [values[int(i * step)] for i in range(limit)]
