from datetime import UTC, datetime, timedelta

from dashboard.models import Resolution
from dashboard.monitoring.stats import cover, downtime_seconds, floor_time


def at(day, hour=0, minute=0, second=0):
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def test_cover_uses_whole_days_then_hours_then_minutes_at_the_edges():
    spans = cover(at(1, 22, 30, 45), at(4, 1, 15))
    assert spans == [
        (Resolution.DAY, at(2), at(4)),
        (Resolution.HOUR, at(1, 23), at(2)),
        (Resolution.MINUTE, at(1, 22, 30), at(1, 23)),
        (Resolution.HOUR, at(4), at(4, 1)),
        (Resolution.MINUTE, at(4, 1), at(4, 1, 15)),
    ]


def test_cover_tiles_the_range_exactly_once():
    start, end = at(3, 5, 7), at(20, 17, 43)
    spans = cover(start, end)
    assert sum((hi - lo for _, lo, hi in spans), timedelta()) == end - start
    ordered = sorted((lo, hi) for _, lo, hi in spans)
    assert all(left[1] == right[0] for left, right in zip(ordered, ordered[1:], strict=False))


def test_short_and_empty_ranges():
    assert cover(at(1, 10, 5), at(1, 10, 9)) == [(Resolution.MINUTE, at(1, 10, 5), at(1, 10, 9))]
    assert cover(at(1, 10, 5, 10), at(1, 10, 5, 50)) == []
    assert cover(at(2), at(1)) == []


def test_floor_time():
    assert floor_time(at(5, 13, 47, 12), timedelta(hours=1)) == at(5, 13)
    assert floor_time(at(5, 13, 47, 12), timedelta(days=1)) == at(5)


class Span:
    def __init__(self, opened_at, closed_at=None):
        self.opened_at, self.closed_at = opened_at, closed_at


def test_downtime_clips_to_the_range_and_merges_overlaps():
    incidents = [Span(at(1, 23), at(2, 1)), Span(at(2, 0, 30), at(2, 2)), Span(at(2, 10))]
    # Range is day 2: 00:00-02:00 from the first two (merged), 10:00-12:00 from the open one at "now".
    assert downtime_seconds(incidents, at(2), at(3), now=at(2, 12)) == 4 * 3600
