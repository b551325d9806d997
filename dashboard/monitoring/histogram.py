"""A mergeable latency histogram with log-spaced buckets (each 10 % wider than the last).

Any percentile read from it is within 5 % of the true value, whatever the range merged: a
year of hour rollups merges as cheaply as one minute's. Stored sparse, because a minute holds only
a few distinct buckets: bytes, three per bucket holding any, in index order: the index (at most 200)
and the count, big-endian in two (a rollup's bucket holds at most a day of results: 17,280 at the
shortest probe interval, 5 s). A minute's two buckets take 7 bytes, where an integer[] of [index,
count] pairs took 37 (21 of them the array's header); an hour's about 56 instead of 170.
"""

from __future__ import annotations

import math

GROWTH = 1.1
MIN_MS = 0.01  # everything at or below lands in bucket 0
MAX_INDEX = 200  # 0.01 ms * 1.1**199 is about 17 minutes: beyond any probe timeout
_LOG_GROWTH = math.log(GROWTH)
RECORD = 3  # bytes a bucket takes in the stored form
MAX_COUNT = 0xFFFF


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
    def decode(cls, encoded: bytes) -> Histogram:
        histogram = cls()
        histogram.merge(encoded)
        return histogram

    def add(self, ms: float, count: int = 1) -> None:
        index = bucket_index(ms)
        self.counts[index] = self.counts.get(index, 0) + count

    def merge(self, encoded: bytes | memoryview | None) -> None:
        """Add an encoded histogram (a rollup's) into this one."""
        if not encoded:
            return
        counts = self.counts
        for position in range(0, len(encoded), RECORD):
            index = encoded[position]
            counts[index] = counts.get(index, 0) + (encoded[position + 1] << 8 | encoded[position + 2])

    def absorb(self, other: Histogram) -> None:
        """Add another histogram into this one (no encoding between: a merged range may count more than a
        rollup's bucket can store)."""
        counts = self.counts
        for index, count in other.counts.items():
            counts[index] = counts.get(index, 0) + count

    def encode(self) -> bytes:
        """The stored form: three bytes per bucket holding any, in index order."""
        counts = self.counts
        if any(count > MAX_COUNT for count in counts.values()):
            raise OverflowError(f"a histogram bucket counts more than {MAX_COUNT} results: not a rollup's")
        return bytes(byte for index in sorted(counts) for byte in (index, counts[index] >> 8, counts[index] & 0xFF))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) by nearest rank; None when empty."""
        return self.percentiles(q)[0]

    def percentiles(self, *qs: float) -> list[float | None]:
        """Several quantiles (ascending) in one walk over the sorted buckets."""
        return [index_value(index) for index in self.percentile_indexes(*qs)]

    def percentile_indexes(self, *qs: float) -> list[int | None]:
        """The buckets (indexes) several quantiles (ascending) fall in: what a rollup stores of its own."""
        counts = self.counts
        return walk_quantile_indexes([(index, counts[index]) for index in sorted(counts)], qs)


_BUCKET_VALUES = [bucket_value(index) for index in range(MAX_INDEX + 1)]


def index_value(index: int | None) -> float | None:
    """bucket_value of a quantile's stored bucket index; None stays None (a bucket without latencies)."""
    return None if index is None else _BUCKET_VALUES[index]


def walk_quantile_indexes(pairs: list[tuple[int, int]], qs: tuple[float, ...]) -> list[int | None]:
    """Nearest-rank quantiles of sorted (bucket index, count) pairs, as the bucket index each falls in;
    `qs` ascending."""
    total = sum(count for _, count in pairs)
    if not total:
        return [None] * len(qs)
    ranks = [max(1, math.ceil(q * total)) for q in qs]
    found: list[int | None] = [None] * len(qs)
    seen = pending = 0
    for index, count in pairs:
        seen += count
        while pending < len(ranks) and seen >= ranks[pending]:
            found[pending] = index
            pending += 1
        if pending == len(ranks):
            break
    return found
