"""A target page's chart columns, with its settled part kept between views.

Buckets before the rollup cursor's are settled: written once by the rollup job, never rewritten. So the
columns of a range's settled buckets are kept (Redis, through Django's cache) under the target and range,
with the span they cover; the next view of the range cuts off what has left the range's start, reads only
the buckets settled since (a minute or two, against 1,440 for a 24 h chart) and the still-changing tail
(the bucket filling and the raw results not rolled up yet), and joins them. A view with the cache empty
or unreachable reads the whole range, as before.
"""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache

from dashboard.models import Target
from dashboard.monitoring import charts, selectors
from dashboard.monitoring.stats import READ_CURSOR, floor_time, rolled_up_until

KEY_PREFIX = "range-chart:"
# Someone back at a target within the hour reads a minute or so of rollups instead of the range.
CACHE_SECONDS = 3600


def key(target_id: int, spec: charts.RangeSpec) -> str:
    return f"{KEY_PREFIX}{target_id}:{spec.key}"


def range_chart(
    target: Target, spec: charts.RangeSpec, start: datetime, now: datetime, folded_until: datetime | None = READ_CURSOR
) -> dict:
    """chart_data of the range's buckets from `start` to now, as charts.chart_data(selectors.chart_buckets(...)).
    `folded_until`: rolled_up_until(), if the caller read it already (stats.READ_CURSOR)."""
    gap = charts.gap_seconds(target.interval_seconds, spec)
    first = floor_time(start, spec.step)
    if folded_until is READ_CURSOR:
        folded_until = rolled_up_until()
    boundary = selectors.settled_boundary(spec, first, folded_until)
    settled = _settled(target, spec, first, boundary, gap)
    tail = charts.chart_data(selectors.unsettled_buckets(target, spec, boundary, folded_until, now), spec, gap)
    return charts.join_charts(settled, tail, gap)


def _settled(target: Target, spec: charts.RangeSpec, first: datetime, boundary: datetime, gap: float) -> dict:
    name = key(target.pk, spec)
    span = (first.timestamp(), boundary.timestamp())
    kept = cache.get(name)
    if kept is not None and kept["gap"] == gap and kept["first"] <= span[0] <= kept["until"] <= span[1]:
        chart = charts.trim_chart(kept["chart"], span[0])
        since = datetime.fromtimestamp(kept["until"], first.tzinfo)
    else:
        chart, since = charts.chart_data({}, spec, gap), first
    if since < boundary:
        newly = selectors.settled_chart(target, spec, since, boundary, gap)
        chart = charts.join_charts(chart, newly, gap)
    if kept is None or (kept["first"], kept["until"]) != span:
        cache.set(name, {"first": span[0], "until": span[1], "gap": gap, "chart": chart}, CACHE_SECONDS)
    return chart
