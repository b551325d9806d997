"""Rollups narrowed, and the buckets still filling kept apart (issue #18: storage per target-year).

The rollup table is rebuilt rather than altered: every change of a column's type rewrites the table anyway,
and a new one gets its columns in an order that wastes no alignment padding, no surrogate id, the
(target, resolution, bucket) key as its primary key (16 bytes: a 4-byte target), 2-byte quantiles (the
histogram bucket index of each quantile instead of its value in milliseconds), histograms of one integer
per bucket, and the phase sums as compact text. Each hour and day rollup at its cursor (the bucket still
filling) goes into FillingRollup instead; the rest is copied as it was. On a large table, the copy runs with
the new table's indexes and constraints dropped, rebuilt once at the end (a foreign key checked row by row
would queue a trigger event for every row).
"""

import django.contrib.postgres.indexes
import django.db.models.deletion
from django.db import migrations, models

import dashboard.models.monitoring

OLD = "dashboard_rollupbeforenarrowing"
NEW = "dashboard_rollup"
FILLING = "dashboard_fillingrollup"
CURSOR = "dashboard_rollupcursor"
RESOLUTIONS = [(60, "minute"), (3600, "hour"), (86400, "day")]

MAX_MICROSECONDS = 2**31 - 1


def _index_of(column: str) -> str:
    # The inverse of histogram.bucket_value (0.01 ms x 1.1 ** (index - 0.5); MIN_MS for index 0).
    return f"CASE WHEN {column} <= 0.01 THEN 0 ELSE round(ln({column} / 0.01) / ln(1.1) + 0.5) END::smallint"


def _value_of(column: str) -> str:
    return f"CASE WHEN {column} <= 0 THEN 0.01 ELSE 0.01 * power(1.1::float8, {column} - 0.5) END::float8"


def _microseconds(column: str) -> str:
    return f"least({MAX_MICROSECONDS}, round(round({column}::numeric, 3) * 1000))::int"


# [index, count, ...] as monitoring.histogram stores it now: three bytes a bucket, the index and the count
# (big-endian). No rollup's bucket ever counted more than 65,535 (a day at the 5 s interval: 17,280); one
# that did would stop the migration, not be cut short.
_COUNT = (
    "CASE WHEN histogram[i + 1] > 65535 THEN ('a histogram count beyond 65535: ' || histogram[i + 1])::int "
    "ELSE histogram[i + 1] END"
)
_BYTES_FROM_PAIRS = f"""coalesce((SELECT string_agg(substring(int4send(histogram[i]) FROM 4 FOR 1)
    || substring(int4send({_COUNT}) FROM 3 FOR 2), ''::bytea ORDER BY i)
    FROM generate_series(1, cardinality(histogram), 2) i), ''::bytea)"""
_PAIRS_FROM_BYTES = """ARRAY(SELECT pair.value FROM generate_series(0, length(histogram) - 3, 3) i
    CROSS JOIN LATERAL (VALUES (1, get_byte(histogram, i)),
        (2, get_byte(histogram, i + 1) << 8 | get_byte(histogram, i + 2))) pair(k, value)
    ORDER BY i, pair.k)"""
_TEXT_FROM_JSONB = """coalesce((SELECT string_agg(p.key || ':' || trim_scale(round((p.value #>> '{}')::numeric, 3)),
    ',') FROM jsonb_each(phase_sums) p), '')"""
_JSONB_FROM_TEXT = """coalesce((SELECT jsonb_object_agg(substring(item FROM '^(.*):[^:]*$'),
    substring(item FROM ':([^:]*)$')::numeric) FROM unnest(string_to_array(nullif(phase_sums, ''), ',')) item), '{}')"""
# (new column, its value from the old row, the old column, its value from the new row)
_KEPT = "target_id resolution bucket count ok_count latency_count latency_sum cold_count cold_latency_sum".split()
_COLUMNS = [(name, name, name, name) for name in _KEPT] + [
    ("latency_min_us", _microseconds("latency_min"), "latency_min", "latency_min_us / 1000.0"),
    ("latency_max_us", _microseconds("latency_max"), "latency_max", "latency_max_us / 1000.0"),
    ("histogram", _BYTES_FROM_PAIRS, "histogram", _PAIRS_FROM_BYTES),
    ("phase_sums", _TEXT_FROM_JSONB, "phase_sums", _JSONB_FROM_TEXT),
    *((f"p{q}_index", _index_of(f"p{q}_ms"), f"p{q}_ms", _value_of(f"p{q}_index")) for q in (50, 95, 99)),
]
_NEW_COLUMNS = ", ".join(new for new, _, _, _ in _COLUMNS)
_FROM_OLD = f"""
    SELECT {", ".join(value for _, value, _, _ in _COLUMNS)}
    FROM {OLD} r LEFT JOIN (SELECT resolution AS cursor_resolution, done_until FROM {CURSOR} WHERE resolution <> 60) c
        ON c.cursor_resolution = r.resolution
"""
_OLD_COLUMNS = ", ".join(old for _, _, old, _ in _COLUMNS)
_TO_OLD = f"SELECT {', '.join(value for _, _, _, value in _COLUMNS)}"


def _drop_keys(cursor, table: str) -> list[str]:
    """Drop the table's constraints (but NOT NULL) and indexes; returns the statements that rebuild them."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype IN ('p', 'u', 'f') ORDER BY contype = 'f'",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
    indexes = [(name, definition) for name, definition in cursor.fetchall() if name not in dict(constraints)]
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    for name, _ in reversed(constraints):
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for name, definition in constraints] + [
        definition for _, definition in indexes
    ]


def copy_forward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {FILLING} ({_NEW_COLUMNS}) {_FROM_OLD} WHERE bucket = done_until")
        rebuild = _drop_keys(cursor, NEW)
        cursor.execute(f"INSERT INTO {NEW} ({_NEW_COLUMNS}) {_FROM_OLD} WHERE bucket IS DISTINCT FROM done_until")
        for statement in rebuild:
            cursor.execute(statement)
        cursor.execute(f"ANALYZE {NEW}")


def copy_backward(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for table in (NEW, FILLING):
            cursor.execute(f"INSERT INTO {OLD} ({_OLD_COLUMNS}) {_TO_OLD} FROM {table}")


def _fields() -> list:
    """RollupValues' fields, in its column order."""
    return [
        ("bucket", models.DateTimeField(help_text="Start of the bucket (UTC).")),
        ("latency_sum", models.FloatField(default=0)),
        ("cold_latency_sum", models.FloatField(default=0)),
        (
            "target",
            dashboard.models.monitoring.TargetKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="%(class)ss",
                to="dashboard.target",
            ),
        ),
        ("count", models.IntegerField()),
        ("ok_count", models.IntegerField()),
        ("latency_count", models.IntegerField(default=0)),
        ("cold_count", models.IntegerField(default=0)),
        ("latency_min", dashboard.models.monitoring.MicrosecondsField(db_column="latency_min_us", null=True)),
        ("latency_max", dashboard.models.monitoring.MicrosecondsField(db_column="latency_max_us", null=True)),
        ("resolution", models.IntegerField(choices=RESOLUTIONS)),
        ("p50_index", models.SmallIntegerField(null=True)),
        ("p95_index", models.SmallIntegerField(null=True)),
        ("p99_index", models.SmallIntegerField(null=True)),
        ("histogram", models.BinaryField(default=bytes)),
        ("phase_sums", dashboard.models.monitoring.PhaseSumsField(default=dict)),
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0015_api_tokens_and_idempotency"),
    ]

    operations = [
        # The old table's index names are free for the new one's; the old one is read in full, in order.
        migrations.RemoveConstraint(model_name="rollup", name="one_rollup_per_bucket"),
        migrations.RemoveIndex(model_name="rollup", name="rollup_bucket_brin"),
        migrations.RenameModel("Rollup", "RollupBeforeNarrowing"),
        migrations.AlterField(
            model_name="rollupbeforenarrowing",
            name="target",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="dashboard.target"
            ),
        ),
        migrations.RunSQL(
            f"ALTER INDEX {NEW}_pkey RENAME TO {OLD}_pkey",
            f"ALTER INDEX {OLD}_pkey RENAME TO {NEW}_pkey",
        ),
        migrations.CreateModel(
            name="Rollup",
            fields=[
                *_fields(),
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "target",
                        "resolution",
                        "bucket",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
            ],
            options={
                "indexes": [django.contrib.postgres.indexes.BrinIndex(fields=["bucket"], name="rollup_bucket_brin")],
            },
        ),
        migrations.CreateModel(
            name="FillingRollup",
            fields=[
                *_fields(),
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "target", "resolution", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
            ],
        ),
        # Each run of the minute job rewrites every row at once: half of each page left free holds the new
        # versions beside the old ones, so the updates stay HOT (no new index entries, pruned in place).
        migrations.RunSQL(f"ALTER TABLE {FILLING} SET (fillfactor = 50)", migrations.RunSQL.noop),
        migrations.RunPython(copy_forward, copy_backward),
        migrations.DeleteModel("RollupBeforeNarrowing"),
    ]
