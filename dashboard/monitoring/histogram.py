"""A mergeable latency histogram with log-spaced buckets (each 10 % wider than the last).

Any percentile read from it is within 5 % of the true value, whatever the range merged: a
year of hour rollups merges as cheaply as one minute's. Stored sparse as a flat integer
array [index, count, index, count, ...] because a minute holds only a few distinct buckets.
"""

from __future__ import annotations

import math

GROWTH = 1.1
MIN_MS = 0.01  # everything at or below lands in bucket 0
MAX_INDEX = 200  # 0.01 ms * 1.1**199 is about 17 minutes: beyond any probe timeout
_LOG_GROWTH = math.log(GROWTH)


def bucket_index(ms: float) -> int:
    if ms <= MIN_MS:
        return 0
    return min(MAX_INDEX, 1 + int(math.log(ms / MIN_MS) / _LOG_GROWTH))


def bucket_value(index: int) -> float:
    """The bucket's geometric midpoint: at most 5 % from any value in it."""
    if index <= 0:
        return MIN_MS
    return MIN_MS * GROWTH ** (index - 0.5)


class Histogram:
    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    @classmethod
    def decode(cls, encoded: list[int]) -> Histogram:
        histogram = cls()
        histogram.merge(encoded)
        return histogram

    def add(self, ms: float, count: int = 1) -> None:
        index = bucket_index(ms)
        self.counts[index] = self.counts.get(index, 0) + count

    def merge(self, encoded: list[int] | None) -> None:
        if not encoded:
            return
        counts = self.counts
        for position in range(0, len(encoded), 2):
            index = encoded[position]
            counts[index] = counts.get(index, 0) + encoded[position + 1]

    def encode(self) -> list[int]:
        encoded: list[int] = []
        for index in sorted(self.counts):
            encoded += (index, self.counts[index])
        return encoded

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) by nearest rank; None when empty."""
        return self.percentiles(q)[0]

    def percentiles(self, *qs: float) -> list[float | None]:
        """Several quantiles (ascending) in one walk over the sorted buckets."""
        counts = self.counts
        return walk_quantiles([(index, counts[index]) for index in sorted(counts)], qs)


_BUCKET_VALUES = [bucket_value(index) for index in range(MAX_INDEX + 1)]


def walk_quantiles(pairs: list[tuple[int, int]], qs: tuple[float, ...]) -> list[float | None]:
    """Nearest-rank quantiles of sorted (bucket index, count) pairs; `qs` ascending."""
    total = sum(count for _, count in pairs)
    if not total:
        return [None] * len(qs)
    ranks = [max(1, math.ceil(q * total)) for q in qs]
    found: list[float | None] = [None] * len(qs)
    seen = pending = 0
    for index, count in pairs:
        seen += count
        while pending < len(ranks) and seen >= ranks[pending]:
            found[pending] = _BUCKET_VALUES[index]
            pending += 1
        if pending == len(ranks):
            break
    return found
