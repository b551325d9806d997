from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from dashboard.models import FillingRollup, ProbeResult, Resolution, Rollup, RollupCursor, Target
from dashboard.monitoring import charts, selectors
from dashboard.monitoring.histogram import Histogram, index_value
from dashboard.monitoring.rollup import prune, refresh_summaries, rollup_all, rollup_coarser, rollup_minutes
from dashboard.monitoring.stats import range_stats
from tests.monitoring.history import make_target, record

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def target(bare_environment):
    return make_target(bare_environment)


def seed_two_hours(target):
    """Every 30 s for two hours: latency 10 ms, every tenth probe failing, every fifth 100 ms."""
    for index in range(240):
        latency = 100.0 if index % 5 == 0 else 10.0
        record(target, START + index * timedelta(seconds=30), latency, ok=index % 10 != 0, phases={"connect": latency})


def test_minute_hour_and_day_rollups_hold_exact_counts_and_the_histogram(target):
    seed_two_hours(target)
    rollup_all(START + timedelta(hours=3))
    minute = Rollup.objects.get(target=target, resolution=Resolution.MINUTE, bucket=START)
    assert (minute.count, minute.ok_count, minute.latency_min, minute.latency_max) == (2, 1, 10.0, 100.0)
    hours = Rollup.objects.filter(target=target, resolution=Resolution.HOUR).order_by("bucket")
    assert [(h.bucket, h.count, h.ok_count) for h in hours] == [
        (START, 120, 108),
        (START + timedelta(hours=1), 120, 108),
    ]
    # The day is still filling: its row is in FillingRollup, not (yet) among the settled rollups.
    assert not Rollup.objects.filter(resolution=Resolution.DAY).exists()
    day = FillingRollup.objects.get(target=target, resolution=Resolution.DAY)
    assert (day.bucket, day.count, day.ok_count, day.latency_sum) == (
        START.replace(hour=0),
        240,
        216,
        48 * 100.0 + 192 * 10.0,
    )
    assert Histogram.decode(day.histogram).percentile(0.5) == pytest.approx(10.0, rel=0.05)
    assert Histogram.decode(day.histogram).percentile(0.95) == pytest.approx(100.0, rel=0.05)
    assert day.phase_sums == {"connect": 48 * 100.0 + 192 * 10.0}
    # Each bucket stores its own quantiles, as its histogram gives them (the histogram buckets they fall in).
    quantiles = tuple(map(index_value, (day.p50_index, day.p95_index, day.p99_index)))
    assert quantiles == tuple(Histogram.decode(day.histogram).percentiles(0.5, 0.95, 0.99))
    assert (index_value(minute.p50_index), index_value(minute.p99_index)) == (
        pytest.approx(10.0, rel=0.05),
        pytest.approx(100.0, rel=0.05),
    )


def test_any_range_reads_the_same_totals_as_the_raw_results(target):
    seed_two_hours(target)
    rollup_all(START + timedelta(hours=3))
    start, end = START + timedelta(minutes=17), START + timedelta(minutes=101)
    raw = ProbeResult.objects.filter(target=target, at__gte=start, at__lt=end)
    stats = range_stats([target.pk], start, end)[target.pk]
    assert stats.count == raw.count() == 168
    assert stats.ok_count == raw.filter(ok=True).count()
    assert stats.latency_sum == sum(raw.values_list("latency_ms", flat=True))


def test_rollups_are_idempotent_and_advance_cursors_only_past_settled_buckets(target):
    seed_two_hours(target)
    now = START + timedelta(minutes=90)
    rollup_all(now)
    minute_cursor = RollupCursor.objects.get(resolution=Resolution.MINUTE).done_until
    assert minute_cursor == START + timedelta(minutes=87)  # 150 s of grace for late results
    assert RollupCursor.objects.get(resolution=Resolution.HOUR).done_until == START + timedelta(hours=1)
    partial_hour = FillingRollup.objects.get(target=target, resolution=Resolution.HOUR)
    assert (partial_hour.bucket, partial_hour.count) == (START + timedelta(hours=1), 54)  # minutes 60..86 so far
    before = [list(model.objects.order_by("pk").values()) for model in (Rollup, FillingRollup)]
    rollup_all(now)
    assert [list(model.objects.order_by("pk").values()) for model in (Rollup, FillingRollup)] == before
    rollup_all(START + timedelta(hours=3))
    # The cursor passed the hour: it moved among the settled rollups, whole.
    settled = Rollup.objects.get(target=target, resolution=Resolution.HOUR, bucket=START + timedelta(hours=1))
    assert settled.count == 120
    assert not FillingRollup.objects.filter(resolution=Resolution.HOUR).exists()


def test_a_late_result_within_the_grace_still_lands_in_its_minute(target):
    record(target, START, 10.0)
    rollup_all(START + timedelta(seconds=100))
    record(target, START + timedelta(seconds=45), 20.0)  # recorded late, filed under when it started
    rollup_all(START + timedelta(minutes=5))
    assert Rollup.objects.get(target=target, resolution=Resolution.MINUTE, bucket=START).count == 2


def test_summaries_give_the_overview_its_uptime_p95_and_sparkline(target):
    seed_two_hours(target)
    now = START + timedelta(hours=2, minutes=5)
    rollup_all(now)
    refresh_summaries(now)
    target.refresh_from_db()
    assert target.uptime_24h == pytest.approx(0.9)
    assert target.uptime_30d == pytest.approx(0.9)
    assert target.p95_24h_ms == pytest.approx(100.0, rel=0.05)
    assert len(target.sparkline) == 24
    assert target.sparkline[-3:] == [pytest.approx(28.0), pytest.approx(28.0), None]
    assert target.sparkline[0] is None


def test_prune_keeps_each_resolution_for_its_retention(target, settings):
    settings.PROBE_RAW_RETENTION = timedelta(hours=48)
    seed_two_hours(target)
    rollup_all(START + timedelta(hours=3))
    deleted = prune(START + timedelta(hours=49))
    assert deleted["raw"] == 120 and ProbeResult.objects.count() == 120
    deleted = prune(START + timedelta(days=9))
    assert deleted["raw"] == 120 and deleted["minute"] == 120
    assert Rollup.objects.filter(resolution=Resolution.HOUR).count() == 2
    assert prune(START + timedelta(days=500))["hour"] == 2
    # The day still filling is current whatever the clock says: prune never touches it.
    assert FillingRollup.objects.filter(resolution=Resolution.DAY).count() == 1


def test_a_new_target_has_summary_figures_before_its_first_rollup(target):
    now = START + timedelta(minutes=2)
    record(target, START, 10.0)
    record(target, START + timedelta(seconds=30), 20.0, ok=False)
    refresh_summaries(now)
    target.refresh_from_db()
    assert target.uptime_24h == 0.5 and target.uptime_30d == 0.5
    assert target.p95_24h_ms == pytest.approx(20.0, rel=0.05)
    assert target.sparkline[-1] == 15.0


def test_summaries_count_each_result_once_across_rollups_and_the_raw_tail(target):
    seed_two_hours(target)
    now = START + timedelta(minutes=90)
    rollup_all(now)  # minutes settled up to 87; 87..90 come from raw
    refresh_summaries(now)
    target.refresh_from_db()
    raw = ProbeResult.objects.filter(target=target, at__lt=now)
    assert target.uptime_24h == pytest.approx(raw.filter(ok=True).count() / raw.count())
    last_hour = raw.filter(at__gte=START + timedelta(hours=1)).values_list("latency_ms", flat=True)
    assert target.sparkline[-1] == pytest.approx(sum(last_hour) / len(last_hour), abs=0.01)


def test_a_range_reaching_past_the_rollups_adds_the_raw_results_since(target):
    seed_two_hours(target)
    rollup_all(START + timedelta(minutes=60))  # minutes settled up to 57:30 -> 57
    end = START + timedelta(hours=2)
    raw = ProbeResult.objects.filter(target=target, at__gte=START, at__lt=end)
    stats = range_stats([target.pk], START, end)[target.pk]
    assert (stats.count, stats.ok_count) == (raw.count(), raw.filter(ok=True).count()) == (240, 216)
    assert stats.latency_sum == sum(raw.values_list("latency_ms", flat=True))
    assert stats.phase_sums == {"connect": stats.latency_sum}


def test_settled_days_are_read_once_then_from_the_cache(target, django_assert_num_queries):
    today = datetime(2026, 11, 20, tzinfo=UTC)
    Rollup.objects.bulk_create(
        Rollup(target=target, resolution=Resolution.DAY, bucket=today - n * timedelta(days=1), count=100, ok_count=99)
        for n in range(1, 11)
    )
    RollupCursor.objects.create(resolution=Resolution.MINUTE, done_until=today + timedelta(hours=5))
    start, end = today - timedelta(days=10), today + timedelta(hours=5)
    first = range_stats([target.pk], start, end)[target.pk]
    with django_assert_num_queries(3):  # cursor, the newest day with the edges, raw since the cursor
        again = range_stats([target.pk], start, end)[target.pk]
    assert (first.count, first.ok_count) == (again.count, again.ok_count) == (1000, 990)


# --- what the summary job marks changed (the overview's live poll re-sends only those rows) ---------------


def seed_steady(target, start, minutes=125, latency=10.0):
    """Every 30 s for `minutes` (into the hour still filling): all ok at `latency`, so that a few more of
    the same change nothing shown."""
    for index in range(minutes * 2):
        record(target, start + index * timedelta(seconds=30), latency)


def changed_at(*targets):
    return [Target.objects.get(pk=target.pk).changed_at for target in targets]


def test_a_summary_refresh_that_changes_nothing_shown_marks_no_target_changed(bare_environment):
    first, second = make_target(bare_environment, "cluster-a"), make_target(bare_environment, "cluster-b")
    for target in (first, second):
        seed_steady(target, START)
    now = START + timedelta(hours=2, minutes=5)
    rollup_all(now)
    refresh_summaries(now)
    # Probes a little slower or faster than before: the stored figures move, what the rows show does not.
    for target in (first, second):
        for index in range(4):
            record(target, now + index * timedelta(seconds=30), 10.0 + 0.02 * index)
    before = changed_at(first, second)
    stored = Target.objects.get(pk=first.pk)
    later = now + timedelta(minutes=5)
    rollup_all(later)
    assert refresh_summaries(later) == 2
    after = Target.objects.get(pk=first.pk)
    assert after.summary_updated_at == later and after.sparkline[-1] != stored.sparkline[-1]  # the job did write
    assert changed_at(first, second) == before


def test_a_change_in_a_shown_figure_marks_exactly_that_target_changed(bare_environment):
    failing, steady = make_target(bare_environment, "cluster-a"), make_target(bare_environment, "cluster-b")
    for target in (failing, steady):
        seed_steady(target, START)
    now = START + timedelta(hours=2, minutes=5)
    rollup_all(now)
    refresh_summaries(now)
    record(failing, now, None, ok=False)
    record(steady, now, 10.0)
    before = changed_at(failing, steady)
    later = now + timedelta(minutes=5)
    rollup_all(later)
    refresh_summaries(later)
    failing.refresh_from_db()
    assert failing.uptime_24h == pytest.approx(250 / 251)  # the failure shows: 99.602 %
    assert changed_at(failing, steady)[0] > before[0]
    assert changed_at(failing, steady)[1] == before[1]


def test_the_turn_of_the_hour_moves_every_sparkline_and_marks_every_target(bare_environment):
    targets = [make_target(bare_environment, f"cluster-{n}") for n in range(3)]
    for target in targets:
        seed_steady(target, START)
    now = START + timedelta(hours=2, minutes=5)
    rollup_all(now)
    refresh_summaries(now)
    before = changed_at(*targets)
    later = now + timedelta(hours=1)  # the sparkline's hours moved on by one
    rollup_all(later)
    refresh_summaries(later)
    assert all(a > b for a, b in zip(changed_at(*targets), before, strict=True))


# --- the buckets still filling: FillingRollup, moved into Rollup once their cursor passes them -------------


def _places(model) -> dict[tuple, str]:
    """Each row's physical place (ctid): an UPDATE, even HOT, writes a new version elsewhere."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT target_id, resolution, bucket, ctid::text FROM {model._meta.db_table}")
        return {tuple(row[:3]): row[3] for row in cursor.fetchall()}


def test_a_settled_rollup_is_written_once_while_the_filling_ones_are_rewritten(target):
    seed_two_hours(target)
    rollup_all(START + timedelta(minutes=40))
    settled = _places(Rollup)
    filling = _places(FillingRollup)
    for minute in range(41, 181):  # the minute job, every minute, past the end of both hours
        rollup_all(START + timedelta(minutes=minute))
    after = _places(Rollup)
    assert {key: after[key] for key in settled} == settled  # none rewritten
    assert len(after) == 240 // 2 + 2  # every minute and both hours, each once
    hour = (target.pk, Resolution.HOUR, START)
    assert hour in after and hour in filling and hour not in settled
    assert _places(FillingRollup).keys() == {(target.pk, Resolution.DAY, START.replace(hour=0))}


def test_a_filling_bucket_without_results_since_moves_as_it_was(bare_environment):
    busy, quiet = make_target(bare_environment, "cluster-a"), make_target(bare_environment, "cluster-b")
    seed_two_hours(busy)
    for index in range(60):  # the first half hour only
        record(quiet, START + index * timedelta(seconds=30), 20.0)
    rollup_all(START + timedelta(minutes=50))
    assert FillingRollup.objects.filter(resolution=Resolution.HOUR).count() == 2
    rollup_all(START + timedelta(hours=2, minutes=5))  # folds no minute of the quiet target
    hours = Rollup.objects.filter(resolution=Resolution.HOUR).order_by("target_id", "bucket")
    assert [(h.target_id, h.bucket, h.count) for h in hours] == [
        (busy.pk, START, 120),
        (busy.pk, START + timedelta(hours=1), 120),
        (quiet.pk, START, 60),
    ]
    assert not FillingRollup.objects.filter(resolution=Resolution.HOUR).exists()
    assert FillingRollup.objects.get(target=quiet, resolution=Resolution.DAY).count == 60


def test_a_day_recomputed_from_its_hours_counts_the_hour_still_filling(target):
    seed_two_hours(target)
    now = START + timedelta(minutes=90)
    rollup_minutes(now)  # minutes up to 87, without the hours and days growing with them
    assert rollup_coarser(Resolution.HOUR) == 2  # recomputed from the minutes
    assert rollup_coarser(Resolution.DAY) == 1  # recomputed from the hours
    assert FillingRollup.objects.get(target=target, resolution=Resolution.HOUR).count == 54
    day = FillingRollup.objects.get(target=target, resolution=Resolution.DAY)
    assert day.count == ProbeResult.objects.filter(at__lt=START + timedelta(minutes=87)).count() == 174


def test_a_chart_reads_the_hour_still_filling_with_the_raw_results_since(target):
    seed_steady(target, START, minutes=90)
    now = START + timedelta(minutes=90)
    rollup_all(now)
    buckets = selectors.chart_buckets(target, charts.RANGES["7d"], START, now)
    assert {at: bucket.count for at, bucket in buckets.items()} == {
        int(START.timestamp()): 120,
        int((START + timedelta(hours=1)).timestamp()): 60,  # 54 rolled up, 6 raw since 11:27
    }
