"""What a PostgreSQL database's schema holds, read from its catalog: every object of the application's schemas
with the definition PostgreSQL itself prints for it (pg_get_indexdef, pg_get_constraintdef, ...).

Read from Aurora (to lint and translate it for DSQL) and from DSQL (to check parity after applying). Only the
catalog is read, never a row. System schemas are left out, as are objects an extension owns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "sys")
_NOT_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'sys') AND n.nspname !~ '^pg_'"
# Built into every PostgreSQL database, not something the application installed.
BUILTIN_EXTENSIONS = frozenset({"plpgsql"})


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): "bigint", "character varying(64)", "timestamp with time zone"
    not_null: bool
    default: str | None  # the default expression as PostgreSQL prints it
    identity: str = ""  # "always" / "by default" for an identity column
    identity_cache: int | None = None
    serial_sequence: str = ""  # the sequence a serial column owns (its default is nextval of it)


@dataclass(frozen=True)
class Constraint:
    name: str
    kind: str  # primary key, unique, check, foreign key, exclusion
    definition: str  # pg_get_constraintdef(): "PRIMARY KEY (id)", "CHECK ((grade >= 0))"
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    constraints: tuple[Constraint, ...]
    partitioned: bool = False
    inherits: tuple[str, ...] = ()

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def primary_key(self) -> tuple[str, ...]:
        return next((c.columns for c in self.constraints if c.kind == "primary key"), ())


@dataclass(frozen=True)
class Index:
    schema: str
    name: str
    table: str
    definition: str  # pg_get_indexdef()
    unique: bool
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Sequence:
    schema: str
    name: str
    start: int
    increment: int
    cache: int
    owned_by: str = ""  # "table.column" of a serial or identity column


@dataclass(frozen=True)
class Routine:
    schema: str
    name: str
    language: str
    definition: str  # pg_get_functiondef()
    returns_trigger: bool


@dataclass(frozen=True)
class Trigger:
    schema: str
    name: str
    table: str
    definition: str  # pg_get_triggerdef()


@dataclass(frozen=True)
class View:
    schema: str
    name: str
    definition: str  # pg_get_viewdef(): the SELECT
    materialized: bool


@dataclass
class Schema:
    tables: list[Table] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)  # not those backing a constraint
    sequences: list[Sequence] = field(default_factory=list)  # not those of identity columns
    routines: list[Routine] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)  # enums, composites, ranges the application defined
    enum_labels: dict[str, list[str]] = field(default_factory=dict)  # enum type → its labels, in order
    schemas: list[str] = field(default_factory=list)


def qualified(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def read(conn: psycopg.Connection) -> Schema:
    """The application's schema of the database `conn` is connected to."""
    schema = Schema()
    schema.schemas = [
        row[0]
        for row in conn.execute(f"SELECT n.nspname FROM pg_namespace n WHERE {_NOT_SYSTEM} ORDER BY 1")  # noqa: S608
    ]
    schema.tables = _tables(conn)
    schema.sequences = _sequences(conn)
    serial = {s.owned_by: s for s in schema.sequences if s.owned_by}
    # A serial column: its default is nextval() of a sequence it owns (an identity column's is internal).
    schema.tables = [
        Table(
            t.schema,
            t.name,
            tuple(
                Column(
                    c.name,
                    c.type,
                    c.not_null,
                    c.default,
                    c.identity,
                    c.identity_cache,
                    serial_sequence=serial[f"{t.qualified}.{c.name}"].name
                    if f"{t.qualified}.{c.name}" in serial and (c.default or "").startswith("nextval(")
                    else "",
                )
                for c in t.columns
            ),
            t.constraints,
            t.partitioned,
            t.inherits,
        )
        for t in schema.tables
    ]
    schema.indexes = _indexes(conn)
    schema.routines = _routines(conn)
    schema.triggers = [
        Trigger(*row)
        for row in conn.execute(
            f"""SELECT n.nspname, t.tgname, c.relname, pg_get_triggerdef(t.oid)
                FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE NOT t.tgisinternal AND {_NOT_SYSTEM} ORDER BY 1, 3, 2"""  # noqa: S608
        )
    ]
    schema.views = [
        View(schema_name, name, definition.strip().rstrip(";"), kind == "m")
        for schema_name, name, definition, kind in conn.execute(
            f"""SELECT n.nspname, c.relname, pg_get_viewdef(c.oid), c.relkind
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('v', 'm') AND {_NOT_SYSTEM} ORDER BY 1, 2"""  # noqa: S608
        )
    ]
    schema.extensions = [
        name
        for (name,) in conn.execute("SELECT extname FROM pg_extension ORDER BY 1")
        if name not in BUILTIN_EXTENSIONS
    ]
    schema.types = [
        qualified(schema_name, name)
        for schema_name, name in conn.execute(
            f"""SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE (t.typtype IN ('e', 'r')
                       OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
                   AND {_NOT_SYSTEM}
                   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
                ORDER BY 1, 2"""  # noqa: S608
        )
    ]
    schema.enum_labels = {
        qualified(schema_name, name): list(labels)
        for schema_name, name, labels in conn.execute(
            f"""SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)
                FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE {_NOT_SYSTEM} GROUP BY 1, 2"""  # noqa: S608
        )
    }
    return schema


def _tables(conn: psycopg.Connection) -> list[Table]:
    columns: dict[int, list[Column]] = {}
    for relid, name, type_, not_null, default, identity, cache in conn.execute(
        f"""SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity,
                   (SELECT s.seqcache FROM pg_sequence s
                      WHERE s.seqrelid = pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                                                                a.attname)::regclass)
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND {_NOT_SYSTEM}
            ORDER BY a.attrelid, a.attnum"""  # noqa: S608
    ):
        columns.setdefault(relid, []).append(
            Column(
                name,
                type_,
                not_null,
                default,
                {"a": "always", "d": "by default"}.get(identity, ""),
                cache if identity else None,
            )
        )
    constraints: dict[int, list[Constraint]] = {}
    kinds = {"p": "primary key", "u": "unique", "c": "check", "f": "foreign key", "x": "exclusion"}
    for relid, name, kind, definition, keys in conn.execute(
        """SELECT con.conrelid, con.conname, con.contype, pg_get_constraintdef(con.oid),
                  ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, i)
                        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.i)
           FROM pg_constraint con WHERE con.conrelid <> 0 AND con.contype IN ('p', 'u', 'c', 'f', 'x')
           ORDER BY con.conrelid, con.contype = 'p' DESC, con.conname"""
    ):
        constraints.setdefault(relid, []).append(Constraint(name, kinds[kind], definition, tuple(keys or ())))
    tables = []
    for relid, schema_name, name, kind, parents in conn.execute(
        f"""SELECT c.oid, n.nspname, c.relname, c.relkind,
                   ARRAY(SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                         WHERE i.inhrelid = c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND {_NOT_SYSTEM}
            ORDER BY 2, 3"""  # noqa: S608
    ):
        tables.append(
            Table(
                schema_name,
                name,
                tuple(columns.get(relid, [])),
                tuple(constraints.get(relid, [])),
                partitioned=kind == "p",
                inherits=tuple(parents or ()),
            )
        )
    return tables


def _sequences(conn: psycopg.Connection) -> list[Sequence]:
    found = []
    for schema_name, name, start, increment, cache, owner, column, identity in conn.execute(
        f"""SELECT n.nspname, c.relname, s.seqstart, s.seqincrement, s.seqcache,
                   (SELECT quote_ident(tn.nspname) || '.' || t.relname FROM pg_depend d
                      JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
                      WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 LIMIT 1),
                   (SELECT a.attname FROM pg_depend d JOIN pg_attribute a
                      ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                      WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') LIMIT 1),
                   EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'i')
            FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE {_NOT_SYSTEM} ORDER BY 1, 2"""  # noqa: S608
    ):
        if identity:
            continue  # an identity column's own sequence: read with its column
        table = (owner or "").removeprefix("public.")
        found.append(Sequence(schema_name, name, start, increment, cache, f"{table}.{column}" if owner else ""))
    return found


def _indexes(conn: psycopg.Connection) -> list[Index]:
    return [
        Index(schema_name, name, table, definition, unique, tuple(columns or ()))
        for schema_name, name, table, definition, unique, columns in conn.execute(
            f"""SELECT n.nspname, ic.relname, tc.relname, pg_get_indexdef(i.indexrelid), i.indisunique,
                       ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, o)
                             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.o)
                FROM pg_index i
                JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid
                JOIN pg_namespace n ON n.oid = tc.relnamespace
                WHERE {_NOT_SYSTEM} AND tc.relkind IN ('r', 'p', 'm')
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
                ORDER BY 1, 3, 2"""  # noqa: S608
        )
    ]


def _routines(conn: psycopg.Connection) -> list[Routine]:
    return [
        Routine(schema_name, name, language, definition, returns_trigger)
        for schema_name, name, language, definition, returns_trigger in conn.execute(
            f"""SELECT n.nspname, p.proname, l.lanname, pg_get_functiondef(p.oid), p.prorettype = 'trigger'::regtype
                FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
                WHERE {_NOT_SYSTEM} AND p.prokind IN ('f', 'p')
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
                ORDER BY 1, 2"""  # noqa: S608
        )
    ]
