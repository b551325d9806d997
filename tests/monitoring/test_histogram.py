import math
import random

import pytest

from dashboard.monitoring.histogram import MAX_COUNT, MAX_INDEX, Histogram, bucket_index, bucket_value
from tests.monitoring.history import histogram_of


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 1.0])
def test_percentiles_are_within_five_percent_of_the_exact_value(q):
    rng = random.Random(7)
    values = [rng.lognormvariate(2.5, 0.8) for _ in range(5000)]
    estimate = histogram_of(values).percentile(q)
    assert estimate == pytest.approx(exact_percentile(values, q), rel=0.05)


def test_merging_encoded_parts_equals_the_histogram_of_the_whole():
    rng = random.Random(3)
    values = [rng.uniform(0.5, 900) for _ in range(3000)]
    merged = Histogram()
    for start in range(0, len(values), 100):
        merged.merge(histogram_of(values[start : start + 100]).encode())
    whole = histogram_of(values)
    assert merged.counts == whole.counts
    assert merged.total == 3000
    assert merged.percentiles(0.5, 0.99) == whole.percentiles(0.5, 0.99)


def test_encoding_is_sparse_and_round_trips():
    histogram = histogram_of([5.0, 5.01, 120.0])
    encoded = histogram.encode()
    # Two distinct buckets, three bytes each: the index, then the count.
    assert encoded == bytes([bucket_index(5.0), 0, 2, bucket_index(120.0), 0, 1])
    assert Histogram.decode(encoded).counts == histogram.counts
    assert Histogram.decode(memoryview(encoded)).counts == histogram.counts  # as a database driver may give it


def test_the_widest_bucket_and_the_most_results_a_rollup_holds_round_trip():
    histogram = Histogram()
    histogram.add(10**9, count=MAX_COUNT)  # far more than a day probed every 5 s (17,280), all in the last bucket
    histogram.add(0.001, count=256)
    assert Histogram.decode(histogram.encode()).counts == {MAX_INDEX: MAX_COUNT, 0: 256}


def test_a_count_beyond_what_a_rollup_holds_is_refused_not_corrupted():
    histogram = Histogram()
    histogram.add(10.0, count=MAX_COUNT + 1)
    with pytest.raises(OverflowError):
        histogram.encode()
    # Merged ranges count more than any rollup: they merge without encoding.
    merged = Histogram()
    merged.absorb(histogram)
    merged.absorb(histogram)
    assert merged.counts == {bucket_index(10.0): 2 * (MAX_COUNT + 1)}


def test_bucket_edges_and_empty_histogram():
    assert bucket_index(0) == 0 and bucket_index(-3) == 0
    assert bucket_index(10**9) == MAX_INDEX
    for ms in (0.05, 1, 17.3, 2500):
        assert bucket_value(bucket_index(ms)) == pytest.approx(ms, rel=0.05)
    assert Histogram().percentile(0.95) is None
