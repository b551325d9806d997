"""Aurora's schema as DSQL takes it: the DDL script, and a finding for every object that had to change or go.

`translate(schema)` reads what `catalog.read` found and writes one statement per object, in an order DSQL can
run one transaction at a time (schemas, sequences, tables with referenced tables first, indexes, views, SQL
functions). Every rewrite and every object left out is a `Finding` naming the object, the rule of
`dashboard.dsql_sql.rules` it meets (the table the sandbox's DSQL endpoint enforces) and what was done.
Each statement of the script is then held against that same table (`classify.violations`): a statement DSQL
would refuse is a bug here, reported as a blocker, never handed on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pglast import parse_sql
from pglast.enums import SortByDir
from pglast.stream import RawStream

from dashboard.dsql_sql import classify
from dashboard.dsql_sql.rules import BY_ID
from dashboard.schema.catalog import Column, Constraint, Index, Schema, Table, qualified

REWRITTEN, DROPPED, WARNING, BLOCKER = "rewritten", "dropped", "warning", "blocker"
LARGE_CACHE = classify.MIN_LARGE_CACHE
SERIAL_TYPES = ("integer", "bigint", "smallint")  # serial, bigserial, smallserial: an identity of the same


@dataclass(frozen=True)
class Finding:
    object: str  # "table reviews", "index cards_deck_id", ...
    rule: str  # the rule id in dashboard.dsql_sql.rules ("" for a check of this module's own)
    severity: str  # rewritten, dropped, warning, blocker
    detail: str  # what the object has that DSQL does not take
    action: str  # what the translation did about it

    @property
    def rule_message(self) -> str:
        rule = BY_ID.get(self.rule)
        return rule.message if rule else ""

    @property
    def source(self) -> str:
        rule = BY_ID.get(self.rule)
        return rule.source if rule else ""


@dataclass(frozen=True)
class DDL:
    kind: str  # schema, sequence, table, index, view, function
    name: str  # qualified as catalog.qualified prints it ("cards", "app.cards")
    sql: str


@dataclass
class Translation:
    statements: list[DDL] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == BLOCKER]

    def script(self) -> str:
        """The DDL as a file to review: one statement per transaction, as DSQL requires."""
        header = (
            "-- DSQL schema translated by VelaOps from the Aurora catalog.\n"
            "-- DSQL runs one DDL statement per transaction: run each statement on its own (autocommit).\n"
        )
        notes = "".join(f"-- {f.severity}: {f.object}: {f.detail} -> {f.action}\n" for f in self.findings)
        return header + notes + "\n" + "".join(f"{statement.sql};\n\n" for statement in self.statements)


def quote(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _name(schema: str, name: str) -> str:
    return quote(name) if schema == "public" else f"{quote(schema)}.{quote(name)}"


def translate(schema: Schema) -> Translation:
    out = Translation()
    enums = schema.enum_labels
    for name in schema.schemas:
        if name != "public":
            out.statements.append(DDL("schema", name, f"CREATE SCHEMA IF NOT EXISTS {quote(name)}"))
    for extension in schema.extensions:
        out.findings.append(
            Finding(
                f"extension {extension}",
                "extension",
                DROPPED,
                "DSQL has no extensions",
                "left out: whatever uses it must be rewritten (gen_random_uuid() is built in)",
            )
        )
    for sequence in schema.sequences:
        if sequence.owned_by and _is_serial(schema, sequence.owned_by):
            continue  # becomes the identity of its column
        cache = _cache(sequence.cache, f"sequence {qualified(sequence.schema, sequence.name)}", out)
        out.statements.append(
            DDL(
                "sequence",
                qualified(sequence.schema, sequence.name),
                f"CREATE SEQUENCE IF NOT EXISTS {_name(sequence.schema, sequence.name)} "
                f"START {sequence.start} INCREMENT {sequence.increment} CACHE {cache}",
            )
        )
    for table in _referenced_first(schema.tables):
        out.statements.append(DDL("table", table.qualified, _table(table, enums, out)))
    for index in schema.indexes:
        statement = _index(index, out)
        if statement:
            out.statements.append(DDL("index", qualified(index.schema, index.name), statement))
    for view in schema.views:
        what = f"view {qualified(view.schema, view.name)}"
        if view.materialized:
            out.findings.append(
                Finding(what, "materialized_view", REWRITTEN, "a materialized view", "created as a plain view")
            )
        out.statements.append(
            DDL(
                "view",
                qualified(view.schema, view.name),
                f"CREATE OR REPLACE VIEW {_name(view.schema, view.name)} AS {view.definition}",
            )
        )
    for routine in schema.routines:
        what = f"function {qualified(routine.schema, routine.name)}"
        if routine.language != "sql" or routine.returns_trigger:
            out.findings.append(
                Finding(
                    what,
                    "function_language",
                    DROPPED,
                    f"LANGUAGE {routine.language}" + (", a trigger function" if routine.returns_trigger else ""),
                    "left out: move its logic into the application",
                )
            )
            continue
        out.statements.append(
            DDL("function", qualified(routine.schema, routine.name), routine.definition.strip().rstrip(";"))
        )
    for trigger in schema.triggers:
        out.findings.append(
            Finding(
                f"trigger {trigger.name} on {qualified(trigger.schema, trigger.table)}",
                "trigger",
                DROPPED,
                trigger.definition,
                "left out: do its work in the application, in the writing transaction",
            )
        )
    for type_name in schema.types:
        if type_name not in enums:
            out.findings.append(
                Finding(f"type {type_name}", "create_type", DROPPED, "a composite or range type", "left out")
            )
    _check(out)
    return out


# --- tables ---------------------------------------------------------------------------------------------


def _table(table: Table, enums: dict[str, list[str]], out: Translation) -> str:
    what = f"table {table.qualified}"
    if table.partitioned:
        out.findings.append(Finding(what, "partition", REWRITTEN, "a partitioned table", "created as one table"))
    if table.inherits:
        out.findings.append(
            Finding(what, "inherits", REWRITTEN, f"inherits {', '.join(table.inherits)}", "created on its own")
        )
    lines = [_column(table, column, enums, out) for column in table.columns]
    for constraint in table.constraints:
        line = _constraint(table, constraint, out)
        if line:
            lines.append(line)
    for column in table.columns:
        labels = enums.get(_bare(column.type))
        if labels:
            allowed = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
            name = quote(f"{table.name}_{column.name}_check")
            lines.append(f"CONSTRAINT {name} CHECK ({quote(column.name)} IN ({allowed}))")
    body = ",\n    ".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {_name(table.schema, table.name)} (\n    {body}\n)"


def _column(table: Table, column: Column, enums: dict[str, list[str]], out: Translation) -> str:
    what = f"column {table.qualified}.{column.name}"
    type_, default = column.type, column.default
    if _bare(type_) in enums:
        out.findings.append(
            Finding(what, "create_type", REWRITTEN, f"enum type {type_}", "text with a CHECK of its labels")
        )
        if default:
            default = default.replace(f"::{type_}", "::text")
        type_ = "text"
    parts = [quote(column.name), type_]
    if column.serial_sequence:
        cache = _cache(1, what, out, serial=True)
        kind = type_ if type_ in SERIAL_TYPES else "bigint"
        parts = [quote(column.name), kind, f"GENERATED BY DEFAULT AS IDENTITY (CACHE {cache})"]
        out.findings.append(
            Finding(
                what,
                "serial",
                REWRITTEN,
                f"serial ({type_} DEFAULT nextval('{column.serial_sequence}'))",
                f"{kind} GENERATED BY DEFAULT AS IDENTITY (CACHE {cache})",
            )
        )
    elif column.identity:
        cache = _cache(column.identity_cache or 1, what, out)
        parts.append(f"GENERATED {column.identity.upper()} AS IDENTITY (CACHE {cache})")
    elif default is not None:
        parts.append(f"DEFAULT {default}")
    if column.not_null:
        parts.append("NOT NULL")
    return " ".join(parts)


def _constraint(table: Table, constraint: Constraint, out: Translation) -> str:
    if constraint.kind == "exclusion":
        out.findings.append(
            Finding(
                f"constraint {constraint.name} on {table.qualified}",
                "exclusion_constraint",
                DROPPED,
                constraint.definition,
                "left out: enforce it in the application",
            )
        )
        return ""
    return f"CONSTRAINT {quote(constraint.name)} {constraint.definition}"


def _cache(cache: int, what: str, out: Translation, *, serial: bool = False) -> int:
    """The cache a DSQL sequence or identity gets: the source's where DSQL allows it (1 or >= 65536), else
    65536; DSQL requires it said."""
    if cache == 1 or cache >= LARGE_CACHE:
        if not serial:
            out.findings.append(
                Finding(
                    what,
                    "sequence_cache",
                    REWRITTEN,
                    f"no CACHE given (PostgreSQL's is {cache})",
                    f"CACHE {cache} said explicitly",
                )
            )
        if cache == 1:
            out.findings.append(
                Finding(
                    what,
                    "sequence_cache",
                    WARNING,
                    "CACHE 1: strictly sequential values, each one a round trip",
                    "kept; consider CACHE 65536 where gaps and reordering are acceptable",
                )
            )
        return cache
    out.findings.append(
        Finding(what, "sequence_cache", REWRITTEN, f"CACHE {cache}", f"CACHE {LARGE_CACHE} (1 or >= 65536 only)")
    )
    return LARGE_CACHE


def _is_serial(schema: Schema, owned_by: str) -> bool:
    table_name, _, column_name = owned_by.rpartition(".")
    for table in schema.tables:
        if table.qualified == table_name:
            return any(c.name == column_name and c.serial_sequence for c in table.columns)
    return False


def _referenced_first(tables: list[Table]) -> list[Table]:
    """Tables ordered so a foreign key's target is created before it (cycles keep their catalog order)."""
    by_name = {t.qualified: t for t in tables}
    ordered: list[Table] = []
    placing: set[str] = set()

    def place(table: Table) -> None:
        if table in ordered or table.qualified in placing:
            return
        placing.add(table.qualified)
        for constraint in table.constraints:
            match = (
                re.search(r"REFERENCES ([^\s(]+)", constraint.definition) if constraint.kind == "foreign key" else None
            )
            target = by_name.get(match.group(1).strip('"').removeprefix("public.")) if match else None
            if target is not None and target is not table:
                place(target)
        ordered.append(table)

    for table in tables:
        place(table)
    return ordered


# --- indexes --------------------------------------------------------------------------------------------


def _index(index: Index, out: Translation) -> str:
    what = f"index {qualified(index.schema, index.name)}"
    statement = parse_sql(index.definition)[0].stmt
    if statement.accessMethod and statement.accessMethod != "btree":
        out.findings.append(
            Finding(what, "", DROPPED, f"USING {statement.accessMethod}", "left out: DSQL builds B-tree indexes only")
        )
        return ""
    if statement.whereClause is not None:
        out.findings.append(
            Finding(what, "", WARNING, "a partial index (WHERE ...)", "kept as written; check DSQL accepts it")
        )
    ordered = [param for param in statement.indexParams if param.ordering != SortByDir.SORTBY_DEFAULT]
    for param in ordered:
        param.ordering = SortByDir.SORTBY_DEFAULT
    if ordered:
        out.findings.append(
            Finding(
                what,
                "index_sort_order",
                REWRITTEN,
                "ASC/DESC on " + ", ".join(p.name or "?" for p in ordered),
                "the direction left out (a B-tree is read both ways)",
            )
        )
    statement.if_not_exists = True
    text = RawStream()(statement).replace(" USING btree ", " ", 1)
    out.findings.append(
        Finding(what, "index_not_async", REWRITTEN, "CREATE INDEX", "CREATE INDEX ASYNC (a job in sys.jobs, waited on)")
    )
    return re.sub(r"^CREATE (UNIQUE )?INDEX ", lambda m: f"CREATE {m.group(1) or ''}INDEX ASYNC ", text, count=1)


# --- types and the final check --------------------------------------------------------------------------


def _bare(type_name: str) -> str:
    return type_name.removeprefix("public.").strip('"')


def _check(out: Translation) -> None:
    for statement in out.statements:
        for violation in classify.violations(statement.sql):
            out.findings.append(
                Finding(
                    f"{statement.kind} {statement.name}",
                    violation.rule.id,
                    BLOCKER,
                    statement.sql.split("\n", 1)[0],
                    f"DSQL would refuse it: {violation.message}",
                )
            )
