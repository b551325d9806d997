"""A range's chart with its settled part kept between views gives what reading the whole range gives,
as the rollup cursor moves, the range's start passes old buckets, gaps fall at the seam and phases come
and go."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.monitoring import charts, selectors
from dashboard.monitoring.range_chart import key, range_chart
from dashboard.monitoring.rollup import rollup_all
from dashboard.monitoring.stats import MINUTE, floor_time
from tests.monitoring.history import make_target, record

pytestmark = pytest.mark.django_db


def whole(target, spec, now):
    start = now - spec.span
    return charts.chart_data(
        selectors.chart_buckets(target, spec, start, now), spec, charts.gap_seconds(target.interval_seconds, spec)
    )


def roll_up(now):
    while rollup_all(now)["minutes"]:
        pass


def probe(target, start, minutes, phases):
    for minute in range(minutes):
        for second in (5, 35):
            latency = 10.0 + (minute * 7 + second) % 23
            at = start + minute * MINUTE + timedelta(seconds=second)
            ok = (minute + second) % 17 != 0
            record(target, at, latency if ok else None, ok, phases={name: latency / len(phases) for name in phases})


def test_each_view_equals_the_whole_range_read_afresh(bare_environment, django_assert_max_num_queries):
    from django.core.cache import cache

    target = make_target(bare_environment, "cluster-chart", interval_seconds=30)
    spec = charts.range_spec("24h")
    now = floor_time(timezone.now(), MINUTE)
    start = now - spec.span
    # History from before the range's start, to be cut off as the range moves on.
    probe(target, start - 5 * MINUTE, 40, ("token", "connect", "query"))
    probe(target, now - 90 * MINUTE, 30, ("token", "connect", "query"))
    roll_up(now)
    first = range_chart(target, spec, start, now)
    assert first == whole(target, spec, now)
    assert len(first["columns"]["x"]) > 60
    assert cache.get(key(target.pk, spec)) is not None

    # 20 minutes later: a gap (nothing probed for 20 minutes) at the seam, a new phase, the cursor moved,
    # and the range's start past 20 of the oldest minutes.
    later = now + 20 * MINUTE
    probe(target, later - 8 * MINUTE, 8, ("token", "connect", "query", "tls"))
    roll_up(later)
    with django_assert_max_num_queries(4):  # the cursor, the newly settled minutes, the filling rollups, raw results
        second = range_chart(target, spec, later - spec.span, later)
    assert second == whole(target, spec, later)
    assert second["columns"]["x"][0] >= (later - spec.span).timestamp() - 60
    assert None in second["columns"]["count"]  # the gap's null row
    assert "tls" in second["phases"] and second["phases"]["tls"][0] is None

    # Results not rolled up yet come with the tail, and a view before the cursor moves reads no settled rows.
    record(target, later + timedelta(seconds=3), 99.0, phases={"connect": 99.0})
    third = range_chart(target, spec, later + MINUTE - spec.span, later + MINUTE)
    assert third == whole(target, spec, later + MINUTE)
    assert third["columns"]["avg"][-1] == 99.0


def test_every_range_equals_the_whole_range_read_afresh(bare_environment):
    target = make_target(bare_environment, "cluster-ranges", interval_seconds=30)
    now = floor_time(timezone.now(), MINUTE)
    probe(target, now - 150 * MINUTE, 60, ("connect",))
    roll_up(now)
    for spec in charts.RANGES.values():
        assert range_chart(target, spec, now - spec.span, now) == whole(target, spec, now)
        later = now + 7 * MINUTE
        roll_up(later)
        assert range_chart(target, spec, later - spec.span, later) == whole(target, spec, later)


def test_chart_columns_put_a_null_row_at_each_gap_and_round_to_three_places():
    spec = charts.range_spec("24h")
    rows = [
        (0, 2, 2, 2, 20.0, {"connect": 12.0}, 9.5, 10.123, 11.0),
        (60, 3, 2, 2, 10.0, {"connect": 4.0, "query": 1.0}, None, None, None),
        (600, 1, 0, 0, 0.0, {}, None, None, None),  # after a gap: nine minutes without a bucket
        (660, 3, 3, 3, 1.0, {"query": 3.0}, 0.333, 0.333, 0.333),
        (1200, 4, 4, 4, 8.0, {}, 2.0, 2.0, 2.0),  # and another
    ]
    chart = charts.chart_columns(rows, spec, gap=150)
    columns, phases = chart["columns"], chart["phases"]
    assert columns["x"] == [0, 60, 330.0, 600, 660, 930.0, 1200]
    assert columns["count"] == [2, 3, None, 1, 3, None, 4]
    assert columns["failures"] == [0, 1, None, 1, 0, None, 0]
    assert columns["avg"] == [10.0, 5.0, None, None, 0.333, None, 2.0]
    assert columns["uptime"] == [100.0, 66.667, None, 0.0, 100.0, None, 100.0]
    assert columns["p95"] == [10.123, None, None, None, 0.333, None, 2.0]
    assert list(phases) == ["connect", "query"]
    assert phases["connect"] == [6.0, 2.0, None, None, None, None, None]
    assert phases["query"] == [None, 0.5, None, None, 1.0, None, None]
    assert all(len(values) == 7 for values in (*columns.values(), *phases.values()))
    assert charts.chart_columns([], spec, gap=150)["columns"]["x"] == []
