"""Migration 0016 (rollups narrowed, the buckets still filling in FillingRollup) on a populated database:
every rollup keeps its figures, the hour and day at their cursors move into FillingRollup, and migrating
back restores the old table."""

import importlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from dashboard.models import FillingRollup, Resolution, Rollup
from dashboard.monitoring.histogram import MAX_INDEX, Histogram, bucket_value, index_value
from tests.monitoring.history import histogram_of

BEFORE = [("dashboard", "0015_api_tokens_and_idempotency")]
AFTER = [("dashboard", "0016_narrow_rollups_and_filling_rollups")]
NOW = datetime(2026, 11, 20, 10, 37, tzinfo=UTC)
HOUR, DAY = NOW.replace(minute=0), NOW.replace(hour=0, minute=0)
LATENCIES = [5.0, 5.0, 12.34567891, 250.0]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor


def _old_rows(target_id: int) -> list[tuple]:
    """Old-schema rows: a minute, a settled hour, the hour and the day at their cursors, a settled day."""
    histogram = histogram_of(LATENCIES)
    pairs = [value for index in sorted(histogram.counts) for value in (index, histogram.counts[index])]
    p50, p95, p99 = histogram.percentiles(0.5, 0.95, 0.99)
    # A phase sum as float arithmetic leaves it, and an empty one.
    phases = ['{"connect": 1172.9440000000002, "query": 3.5}', "{}"]
    buckets = [
        (60, NOW - timedelta(minutes=5)),
        (3600, HOUR - timedelta(hours=1)),
        (3600, HOUR),
        (86400, DAY),
        (86400, DAY - timedelta(days=1)),
    ]
    return [
        (target_id, resolution, bucket, 4, 3, 4, 5.0, 12.34567891 * (n + 1), 272.35, pairs, phases[n % 2], 1, 5.0)
        + (p50, p95, p99)
        for n, (resolution, bucket) in enumerate(buckets)
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_rollup_and_moves_the_filling_ones_and_reverses():
    executor = _migrate(BEFORE)
    try:
        apps = executor.loader.project_state(BEFORE).apps
        environment = apps.get_model("dashboard", "Environment").objects.create(
            name="Old", slug="old", region="us-east-1", account_id="123456789012"
        )
        target = apps.get_model("dashboard", "Target").objects.create(environment=environment, kind="dsql", name="c")
        rows = _old_rows(target.pk)
        columns = (
            "target_id, resolution, bucket, count, ok_count, latency_count, latency_min, latency_max, latency_sum, "
            "histogram, phase_sums, cold_count, cold_latency_sum, p50_ms, p95_ms, p99_ms"
        )
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO dashboard_rollup ({columns}) VALUES ({', '.join(['%s'] * 16)})", rows)
            cursor.execute(
                "INSERT INTO dashboard_rollupcursor (resolution, done_until) VALUES (60, %s), (3600, %s), (86400, %s)",
                [NOW - timedelta(minutes=3), HOUR, DAY],
            )

        _migrate(AFTER)
        settled = {(r.resolution, r.bucket): r for r in Rollup.objects.filter(target_id=target.pk)}
        filling = {(r.resolution, r.bucket): r for r in FillingRollup.objects.filter(target_id=target.pk)}
        assert set(filling) == {(Resolution.HOUR, HOUR), (Resolution.DAY, DAY)}
        assert set(settled) == {(row[1], row[2]) for row in rows} - set(filling)
        for row in rows:
            rollup = {**settled, **filling}[(row[1], row[2])]
            assert (rollup.count, rollup.ok_count, rollup.latency_count, rollup.latency_sum) == row[3:6] + (row[8],)
            assert (rollup.latency_min, rollup.latency_max) == (row[6], round(row[7], 3))
            assert (rollup.cold_count, rollup.cold_latency_sum) == row[11:13]
            assert Histogram.decode(rollup.histogram).counts == histogram_of(LATENCIES).counts
            quantiles = tuple(map(index_value, (rollup.p50_index, rollup.p95_index, rollup.p99_index)))
            assert quantiles == row[13:16]
            assert rollup.phase_sums == ({"connect": 1172.944, "query": 3.5} if row[10] != "{}" else {})

        _migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM dashboard_rollup ORDER BY resolution, bucket")
            back = cursor.fetchall()
        assert len(back) == len(rows)
        for was, now in zip(sorted(rows, key=lambda row: (row[1], row[2])), back, strict=True):
            assert now[:7] + now[8:10] + now[11:13] == was[:7] + was[8:10] + was[11:13]
            assert now[7] == round(was[7], 3)  # kept to the microsecond
            assert json.loads(now[10]) == ({"connect": 1172.944, "query": 3.5} if was[10] != "{}" else {})
            assert list(now[13:16]) == pytest.approx(was[13:16], rel=1e-12)
    finally:
        _migrate(AFTER)


@pytest.mark.django_db
def test_the_migration_finds_every_stored_quantile_its_histogram_bucket_and_back():
    migration = importlib.import_module("dashboard.migrations.0016_narrow_rollups_and_filling_rollups")
    values = [bucket_value(index) for index in range(MAX_INDEX + 1)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {migration._index_of('v')}, {migration._value_of(migration._index_of('v'))} "
            "FROM unnest(%s::float8[]) WITH ORDINALITY u(v, n) ORDER BY n",
            [values],
        )
        found = cursor.fetchall()
    assert [index for index, _ in found] == list(range(MAX_INDEX + 1))
    assert [value for _, value in found] == pytest.approx(values, rel=1e-12)
