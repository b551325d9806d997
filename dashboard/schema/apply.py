"""Running a translated schema on DSQL, checking it arrived whole, and taking back what was created.

DSQL's rules for DDL (dashboard/dsql_sql/rules.py): one DDL statement per transaction (the connection is in
autocommit, so each statement is its own), CREATE INDEX ASYNC answers with a job to wait on
(`sys.wait_for_job`), and a statement that raced another schema change fails at commit with 40001 / OC001,
to be retried. Applying again is harmless: an object that exists is left as it is (parity then says whether
it matches).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from dashboard.schema.catalog import Schema, qualified
from dashboard.schema.translate import DDL, Translation, quote

RETRIES = 5
SERIALIZATION_FAILURE = "40001"


class SchemaFailed(Exception):
    pass


def exists(conn: psycopg.Connection, ddl: DDL) -> bool:
    if ddl.kind == "schema":
        return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", [ddl.name]).fetchone()[0]
    if ddl.kind == "function":
        schema, _, name = ddl.name.rpartition(".")
        return conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.proname = %s)",
            [schema or "public", name],
        ).fetchone()[0]
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", [_regclass(ddl.name)]).fetchone()[0]


def apply(
    conn: psycopg.Connection,
    translation: Translation,
    *,
    log: Callable[[str], None],
    sleep: Callable[[float], None],
) -> list[dict[str, Any]]:
    """Run each statement of the translation; what became of each: created, existed (left alone), replaced."""
    results = []
    for ddl in translation.statements:
        existed = exists(conn, ddl)
        if existed and ddl.kind not in ("view", "function"):
            log(f"{ddl.kind} {ddl.name} exists: left as it is")
            results.append({"kind": ddl.kind, "name": ddl.name, "result": "existed"})
            continue
        answer = _execute(conn, ddl, log=log, sleep=sleep)
        job = answer[0] if ddl.kind == "index" and answer else None
        if job is not None:
            log(f"index {ddl.name}: build job {job}, waiting")
            done = conn.execute("SELECT sys.wait_for_job(%s)", [job]).fetchone()[0]
            if not done:
                raise SchemaFailed(f"The build of index {ddl.name} (job {job}) failed: see sys.jobs.")
        result = "replaced" if existed else "created"
        log(f"{ddl.kind} {ddl.name} {result}")
        results.append({"kind": ddl.kind, "name": ddl.name, "result": result, **({"job_id": job} if job else {})})
    return results


def _execute(conn: psycopg.Connection, ddl: DDL, *, log: Callable[[str], None], sleep: Callable[[float], None]):
    delay = 0.2
    for attempt in range(1, RETRIES + 1):
        try:
            cursor = conn.execute(ddl.sql)
            return cursor.fetchone() if cursor.description else None
        except psycopg.Error as exc:
            # OC001: the catalog changed under the statement (another schema change committed first): retry.
            if getattr(exc, "sqlstate", None) != SERIALIZATION_FAILURE or attempt == RETRIES:
                raise
            log(f"{ddl.kind} {ddl.name}: {str(exc).strip()} — retrying in {delay:.1f} s")
            sleep(delay)
            delay *= 2
    return None


def drop_created(
    conn: psycopg.Connection, results: list[dict[str, Any]], *, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Take back, newest first, what `apply` created (what existed before is left). A table holding rows is not
    dropped: that is data, not schema."""
    dropped = []
    for result in reversed(results):
        if result.get("result") != "created":
            continue
        kind, name = result["kind"], result["name"]
        target = _regclass(name)
        if kind == "table":
            if conn.execute("SELECT to_regclass(%s) IS NULL", [_regclass(name)]).fetchone()[0]:
                log(f"table {name} is gone already")
                continue
            if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {target})").fetchone()[0]:  # noqa: S608 (quoted)
                raise SchemaFailed(f"Table {name} holds rows: it is not dropped (drop it by hand if it should go).")
        statement = {
            "table": f"DROP TABLE IF EXISTS {target}",
            "index": f"DROP INDEX IF EXISTS {target}",
            "view": f"DROP VIEW IF EXISTS {target}",
            "sequence": f"DROP SEQUENCE IF EXISTS {target}",
            "function": f"DROP FUNCTION IF EXISTS {target}",
            "schema": f"DROP SCHEMA IF EXISTS {target}",
        }[kind]
        conn.execute(statement)
        log(f"{kind} {name} dropped")
        dropped.append({"kind": kind, "name": name})
    return dropped


def parity(source: Schema, target: Schema, translation: Translation) -> list[str]:
    """What DSQL's catalog lacks or holds differently, object by object, of what the translation was to create."""
    differences = []
    tables = {t.qualified: t for t in target.tables}
    changed_types = {
        (f.object.removeprefix("column ")): "text"
        for f in translation.findings
        if f.rule == "create_type" and f.object.startswith("column ")
    }
    for table in source.tables:
        found = tables.get(table.qualified)
        if found is None:
            differences.append(f"table {table.qualified} is missing")
            continue
        columns = {c.name: c for c in found.columns}
        for column in table.columns:
            there = columns.get(column.name)
            expected = changed_types.get(f"{table.qualified}.{column.name}", column.type)
            if there is None:
                differences.append(f"column {table.qualified}.{column.name} is missing")
            elif there.type != expected:
                differences.append(f"column {table.qualified}.{column.name} is {there.type}, not {expected}")
            elif there.not_null != column.not_null:
                differences.append(f"column {table.qualified}.{column.name}: NOT NULL differs")
        if found.primary_key != table.primary_key:
            differences.append(
                f"table {table.qualified}: primary key ({', '.join(found.primary_key)}) "
                f"is not ({', '.join(table.primary_key)})"
            )
    indexes = {(i.schema, i.name): i for i in target.indexes}
    wanted = {s.name for s in translation.statements if s.kind == "index"}
    for index in source.indexes:
        if qualified(index.schema, index.name) not in wanted:
            continue  # left out by the translation, with a finding
        there = indexes.get((index.schema, index.name))
        if there is None:
            differences.append(f"index {index.name} is missing")
        elif there.columns != index.columns:
            differences.append(
                f"index {index.name} is on ({', '.join(there.columns)}), not ({', '.join(index.columns)})"
            )
    views = {(v.schema, v.name) for v in target.views}
    for view in source.views:
        if (view.schema, view.name) not in views:
            differences.append(f"view {view.name} is missing")
    return differences


def _regclass(name: str) -> str:
    return ".".join(quote(part) for part in name.split("."))
