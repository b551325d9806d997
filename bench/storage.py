"""storage_bytes_per_target_year from what the app's own writes leave (issue #18), not from a bulk load:
a fresh database (velaops_bench_storage) where TARGETS targets are probed every 30 s on a simulated clock
for SIMULATED_HOURS, every result through record_outcome, the minute job (rollup_all + refresh_summaries)
every simulated minute, and prune.

The retention is scaled down so that the simulated period holds several retention cycles: raw results
RAW_RETENTION instead of 48 h, minute rollups MINUTE_RETENTION instead of 8 days; prune, hourly for the
real retention, runs every simulated minute, so that what waits past its retention stays as small a
share of the table (1/60 and 1/120 of it, against 1/48 and 1/192). What each kind of row costs on disk
at that steady state (heap, TOAST, indexes: their main forks, less the empty tables'; with whatever free
space and dead rows the churn leaves) is then multiplied by how many rows a target keeps with the real
retention: 5,760 raw results, 11,520 minute, 8,760 hour and 365 day rollups a year. The table of the
buckets still filling (FillingRollup: an hour and a day row per target, whatever the history) counts whole,
shared out over the targets.

Autovacuum: the development server runs with autovacuum off, and a simulated minute takes a fraction of
autovacuum's naptime anyway, so autovacuum's own rule is applied on the simulated clock: once a
simulated naptime, each table whose dead rows exceed autovacuum_vacuum_threshold +
autovacuum_vacuum_scale_factor x its rows (the server's settings, PostgreSQL's defaults) is vacuumed
(plain VACUUM, as autovacuum does; never FULL).

Run as `python -m bench.storage OUT.json` with DATABASE_URL naming velaops_bench_storage (by
bench/health_history.py).
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import timedelta

from bench import autovacuum, http
from bench.results import Figure, write_figures

QUICK = os.environ.get("BENCH_QUICK") == "1"
TARGETS = 10 if QUICK else 20
SIMULATED_HOURS = 4 if QUICK else 6
RAW_RETENTION = timedelta(hours=1)
MINUTE_RETENTION = timedelta(hours=2)
DATABASE = "velaops_bench_storage"
# Rows a target keeps with the real retention (settings: 48 h raw, 8 d minutes, hours and days a year).
KEPT_A_YEAR = {"raw": 48 * 120, 60: 8 * 1440, 3600: 365 * 24, 86400: 365}


def main(out: str) -> None:
    http.drop_database(DATABASE)
    http.migrate(http.database_url(DATABASE))

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from dashboard.models import Environment, FillingRollup, ProbeKind, ProbeResult, Rollup, Target
    from dashboard.monitoring.outcome import ProbeOutcome
    from dashboard.monitoring.recording import record_outcome
    from dashboard.monitoring.rollup import prune, refresh_summaries, rollup_all
    from dashboard.monitoring.stats import HOUR, MINUTE, floor_time

    settings.PROBE_RAW_RETENTION = RAW_RETENTION
    settings.ROLLUP_RETENTION = {**settings.ROLLUP_RETENTION, 60: MINUTE_RETENTION}
    environment = Environment.objects.create(
        name="Bench storage", slug="bench-storage", region="us-east-1", account_id="123456789012"
    )
    targets = [
        Target.objects.create(environment=environment, kind=ProbeKind.DSQL, name=f"bench-storage-{n:02d}")
        for n in range(TARGETS)
    ]
    tables = {
        "raw": ProbeResult._meta.db_table,
        "rollup": Rollup._meta.db_table,
        "filling": FillingRollup._meta.db_table,
    }
    empty = {name: _size(connection, table) for name, table in tables.items()}
    medians = {target.pk: random.uniform(15, 90) for target in targets}

    from django.utils import timezone

    start = floor_time(timezone.now(), HOUR) - SIMULATED_HOURS * HOUR
    vacuums = {name: 0 for name in tables}
    started = time.monotonic()
    for minute in range(SIMULATED_HOURS * 60):
        moment = start + minute * MINUTE
        for half in (0, 30):
            for target in targets:
                latency = medians[target.pk] * random.lognormvariate(0, 0.35)
                outcome = ProbeOutcome(
                    ok=random.random() > 0.001,
                    latency_ms=latency,
                    phases={"token": latency * 0.02, "connect": latency * 0.85, "query": latency * 0.13},
                    details={"endpoint": "bench.dsql.us-east-1.on.aws"},
                )
                record_outcome(target.pk, moment + timedelta(seconds=half + random.uniform(0, 2)), outcome)
        now = moment + MINUTE
        rollup_all(now)
        refresh_summaries(now)
        prune(now)
        vacuumed = autovacuum.apply(list(tables.values()))  # autovacuum's rule, once a simulated naptime (a minute)
        for name, table in tables.items():
            vacuums[name] += table in vacuumed
    seconds = time.monotonic() - started

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), coalesce(sum(pg_column_size(r.*)), 0) FROM {tables['raw']} r")
        raw_rows, raw_tuples = cursor.fetchone()
        rollups, filling = (
            _tuples_by_resolution(connection, tables["rollup"]),
            _tuples_by_resolution(connection, tables["filling"]),
        )
    grown = {name: _size(connection, table) - empty[name] for name, table in tables.items()}
    heap = {name: _size(connection, table, indexes=False) for name, table in tables.items()}
    raw_per_row = grown["raw"] / raw_rows
    rollup_tuples = sum(tuples for _, tuples in rollups.values())
    overhead = grown["rollup"] / rollup_tuples  # on-disk bytes (indexes, free space, dead rows) per tuple byte
    per_year = {"raw": KEPT_A_YEAR["raw"] * raw_per_row}
    # A bucket still filling is the row it settles as: in a period shorter than a day, the day has only its
    # filling rows to tell its size.
    for resolution, (rows, tuples) in {**filling, **rollups}.items():
        per_year[resolution] = KEPT_A_YEAR[resolution] * tuples / rows * overhead
    per_year["filling"] = grown["filling"] / TARGETS  # the same two rows a target in any year
    total = sum(per_year.values())
    parts = ", ".join(
        f"{label} {per_year[key] / 1e6:.2f} MB"
        for key, label in (("raw", "raw results"), (60, "minutes"), (3600, "hours"), (86400, "days"))
        if key in per_year
    )
    parts += f", filling buckets {per_year['filling'] / 1e3:.1f} kB"
    write_figures(
        out,
        [
            Figure(
                "storage_bytes_per_target_year",
                round(total),
                "bytes",
                f"{parts}: the on-disk bytes per row the app's own writes left ({TARGETS} targets, "
                f"{SIMULATED_HOURS} h simulated in {seconds:.0f} s: every result through record_outcome, the "
                f"minute job and prune every minute, autovacuum's rule applied "
                f"({vacuums['raw']} + {vacuums['rollup']} + {vacuums['filling']} vacuums); raw retention "
                f"{RAW_RETENTION}, minutes "
                f"{MINUTE_RETENTION}) x the rows a target keeps in a year at the real retention; rollup rows "
                f"take {overhead:.2f} x their tuple bytes on disk (heap {heap['rollup'] / 1e3:.0f} kB, indexes "
                f"{(grown['rollup'] - heap['rollup']) / 1e3:.0f} kB for {rollup_tuples / 1e3:.0f} kB of live tuples), "
                f"raw results {raw_per_row:.0f} B each",
            )
        ],
    )
    connection.close()
    http.drop_database(DATABASE)


def _size(connection, table: str, indexes: bool = True) -> int:
    """The table's main fork, its TOAST table's and its indexes': the free space and visibility maps, a few
    pages a relation whatever its size, would count as much as thousands of rows at this scale."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_relation_size(c.oid) + coalesce(pg_relation_size(nullif(c.reltoastrelid, 0)), 0)"
            " + coalesce((SELECT sum(pg_relation_size(i.indexrelid)) FROM pg_index i WHERE i.indrelid = c.oid), 0)"
            " * %s FROM pg_class c WHERE c.oid = %s::regclass",
            [int(indexes), table],
        )
        return int(cursor.fetchone()[0])


def _tuples_by_resolution(connection, table: str) -> dict[int, tuple[int, int]]:
    """{resolution: (rows, bytes of their tuples)} of a rollup table."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT resolution, count(*), sum(pg_column_size(r.*)) FROM {table} r GROUP BY resolution")
        return {resolution: (rows, tuples) for resolution, rows, tuples in cursor.fetchall()}


if __name__ == "__main__":
    main(sys.argv[1])
