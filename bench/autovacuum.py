"""Autovacuum's rule, applied by the bench itself.

The development server runs with autovacuum off (it is shared; its settings are not the bench's to change),
while production's PostgreSQL runs it with the defaults. Left alone, the app's hot tables would keep every
dead row version the bench's writes leave: the target table, rewritten by every probe result and every
summary refresh, held 88,000 dead rows for its 3,020 live ones after one history section, and a live
poll's reads of it took 27 ms instead of 9. So the bench vacuums as autovacuum would: a table whose dead
rows exceed autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor x its rows (the server's settings)
gets a plain VACUUM (never FULL), checked once every autovacuum_naptime by a thread of its own, and at
once where a phase before simulated minutes of work in seconds (`apply`).
"""

from __future__ import annotations

import threading

from django.db import connection

TABLE_PREFIX = "dashboard_"


def rule(cursor) -> tuple[int, float]:
    cursor.execute(
        "SELECT current_setting('autovacuum_vacuum_threshold')::int, "
        "current_setting('autovacuum_vacuum_scale_factor')::float"
    )
    return cursor.fetchone()


def due(cursor, threshold: int, scale: float, tables: list[str] | None = None) -> list[str]:
    """The app's tables (or `tables`) autovacuum would vacuum now, this session's counts flushed first."""
    cursor.execute("SELECT pg_stat_force_next_flush()")
    cursor.execute(
        "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE s.n_dead_tup > %s + %s * greatest(c.reltuples, 0) AND starts_with(s.relname, %s)",
        [threshold, scale, TABLE_PREFIX],
    )
    return [name for (name,) in cursor.fetchall() if tables is None or name in tables]


def apply(tables: list[str] | None = None) -> list[str]:
    """Vacuum what autovacuum would vacuum now, on this thread's connection; returns the tables vacuumed."""
    with connection.cursor() as cursor:
        threshold, scale = rule(cursor)
        vacuumed = due(cursor, threshold, scale, tables)
        for table in vacuumed:
            cursor.execute(f'VACUUM "{table}"')
    return vacuumed


class Daemon:
    """apply() every autovacuum_naptime on a thread (and connection) of its own, until stopped."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.runs: list[list[str]] = []
        self.thread = threading.Thread(target=self._run, name="bench-autovacuum", daemon=True)

    def __enter__(self) -> Daemon:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()

    def _run(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT extract(epoch FROM current_setting('autovacuum_naptime')::interval)")
                naptime = float(cursor.fetchone()[0])
            while not self.stopped.wait(naptime):
                self.runs.append(apply())
        finally:
            connection.close()
