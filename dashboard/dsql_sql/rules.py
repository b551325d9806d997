"""What Aurora DSQL refuses of PostgreSQL's SQL, as data: statement kind -> DSQL's answer.

One table, read by `classify` (which turns a SQL text into the kinds below), by the sandbox's DSQL
endpoint (which answers with them) and by the runbook's schema check. DSQL changes fast (foreign keys
became supported on 2026-08-26; sequences and identity columns arrived needing an explicit CACHE), so
every rule names the user-guide page it stands on and the day it was last checked against the guide and
the release notes.

`wording` says where the message text comes from. The guide lists what is unsupported but quotes few of
DSQL's messages: "observed" messages are the ones DSQL users and drivers report verbatim (the sources
are in `note`); "sandbox" messages are ours, in the shape DSQL's observed ones take (SQLSTATE 0A000
feature_not_supported, a lower-case sentence naming the statement), where no quoted text was found.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECKED = "2026-12-02"

GUIDE = "https://docs.aws.amazon.com/aurora-dsql/latest/userguide/"
UNSUPPORTED = GUIDE + "working-with-postgresql-compatibility-unsupported-features.html"
SUPPORTED = GUIDE + "working-with-postgresql-compatibility-supported-sql-features.html"
DDL = GUIDE + "working-with-ddl.html"
ASYNC_INDEX = GUIDE + "working-with-create-index-async.html"
SEQUENCE = GUIDE + "create-sequence-syntax-support.html"
RELEASE_NOTES = GUIDE + "release-notes.html"
POSTGRESQL = GUIDE + "working-with.html"

FEATURE_NOT_SUPPORTED = "0A000"
UNDEFINED_OBJECT = "42704"

# Reported verbatim by DSQL's users: the Rails adapter for DSQL (PG::FeatureNotSupported in a comment),
# the Flyway DSQL plugin's README, an EF Core provider's test log and a DSQL emulator's recorded
# conformance run (2026-09-17). The guide describes the rules but does not quote these.
OBSERVED_BY_USERS = (
    "message as DSQL users report it verbatim (Rails and Flyway DSQL adapters, a recorded DSQL "
    "conformance run); the guide states the rule without quoting the text"
)
NOT_QUOTED = "the guide lists this as unsupported without quoting DSQL's message: wording is the sandbox's"


@dataclass(frozen=True)
class Rule:
    id: str
    matches: str  # what the classifier reports as this kind, in words
    sqlstate: str
    message: str
    hint: str  # the fix, as a DSQL user would apply it
    source: str
    checked: str
    wording: str  # "observed" or "sandbox" (see the module's docstring)
    note: str
    refused: str  # a statement (or script) DSQL refuses under this rule
    accepted: str = ""  # its nearest counterpart that DSQL runs, if there is one

    @property
    def per_transaction(self) -> bool:
        return self.id in TRANSACTION_RULES


def _rule(id: str, matches: str, message: str, hint: str, source: str, refused: str, **extra: str) -> Rule:
    extra.setdefault("sqlstate", FEATURE_NOT_SUPPORTED)
    extra.setdefault("wording", "sandbox")
    extra.setdefault("note", NOT_QUOTED)
    return Rule(id, matches, message=message, hint=hint, source=source, checked=CHECKED, refused=refused, **extra)


RULES: tuple[Rule, ...] = (
    # -- commands ---------------------------------------------------------------------------------------
    _rule(
        "truncate",
        "TRUNCATE",
        "TRUNCATE is not supported",
        "DELETE FROM the table (in batches for large tables), or drop and recreate it",
        UNSUPPORTED,
        "TRUNCATE accounts",
        accepted="DELETE FROM accounts",
    ),
    _rule(
        "savepoint",
        "SAVEPOINT, RELEASE SAVEPOINT, ROLLBACK TO SAVEPOINT",
        "SAVEPOINT is not supported",
        "retry the whole transaction instead of rolling back to a savepoint",
        UNSUPPORTED,
        "SAVEPOINT before_update",
    ),
    _rule(
        "vacuum",
        "VACUUM (ANALYZE alone is supported)",
        "VACUUM is not supported",
        "nothing to do: DSQL maintains statistics and storage itself; ANALYZE table_name is supported",
        UNSUPPORTED,
        "VACUUM accounts",
        accepted="ANALYZE accounts",
    ),
    _rule(
        "alter_system",
        "ALTER SYSTEM",
        "ALTER SYSTEM is not supported",
        "DSQL has no server settings to change",
        UNSUPPORTED,
        "ALTER SYSTEM SET work_mem = '64MB'",
    ),
    # -- objects ----------------------------------------------------------------------------------------
    _rule(
        "trigger",
        "CREATE TRIGGER, CREATE EVENT TRIGGER",
        "triggers are not supported",
        "do the work in the application, in the same transaction as the write",
        UNSUPPORTED,
        "CREATE TRIGGER audit AFTER INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION audit_row()",
    ),
    _rule(
        "temporary_table",
        "CREATE TEMPORARY TABLE (and CREATE TEMP TABLE ... AS)",
        "temporary tables are not supported",
        "use an ordinary table the session cleans up, or a CTE",
        UNSUPPORTED,
        "CREATE TEMPORARY TABLE scratch (id int)",
        accepted="CREATE TABLE scratch (id int PRIMARY KEY)",
    ),
    _rule(
        "extension",
        "CREATE EXTENSION",
        "extensions are not supported",
        "DSQL supports no PostgreSQL extension (PL/pgSQL, PostGIS, pgvector, pg_cron, ...)",
        UNSUPPORTED,
        "CREATE EXTENSION IF NOT EXISTS pgcrypto",
    ),
    _rule(
        "function_language",
        "CREATE FUNCTION / PROCEDURE in a language other than SQL",
        "functions in languages other than SQL are not supported",
        "write the function in LANGUAGE sql, or move the logic into the application",
        UNSUPPORTED,
        "CREATE FUNCTION one() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
        accepted="CREATE FUNCTION one() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
    ),
    _rule(
        "do_block",
        "DO (an anonymous PL/pgSQL block)",
        "DO blocks are not supported",
        "PL/pgSQL is not available: send the statements one by one from the client",
        UNSUPPORTED,
        "DO $$ BEGIN PERFORM 1; END $$",
    ),
    _rule(
        "partition",
        "CREATE TABLE ... PARTITION BY, CREATE TABLE ... PARTITION OF",
        "partitioned tables are not supported",
        "DSQL distributes every table itself: declare the table without partitions",
        UNSUPPORTED,
        "CREATE TABLE events (id uuid, at timestamptz) PARTITION BY RANGE (at)",
    ),
    _rule(
        "inherits",
        "CREATE TABLE ... INHERITS",
        "table inheritance is not supported",
        "declare the columns on each table",
        UNSUPPORTED,
        "CREATE TABLE admins (level int) INHERITS (users)",
    ),
    _rule(
        "create_table_as",
        "CREATE TABLE ... AS SELECT, SELECT ... INTO",
        "CREATE TABLE AS is not supported",
        "CREATE TABLE first, then INSERT ... SELECT in a transaction of its own",
        UNSUPPORTED,
        "CREATE TABLE copy AS SELECT * FROM accounts",
    ),
    _rule(
        "materialized_view",
        "CREATE MATERIALIZED VIEW, REFRESH MATERIALIZED VIEW",
        "materialized views are not supported",
        "use a view, or a table the application refreshes",
        UNSUPPORTED,
        "CREATE MATERIALIZED VIEW totals AS SELECT 1 AS n",
        accepted="CREATE VIEW totals AS SELECT 1 AS n",
    ),
    _rule(
        "create_type",
        "CREATE TYPE (enum, composite, range, base) (CREATE DOMAIN is supported)",
        "CREATE TYPE is not supported",
        "use a text column with a CHECK (value IN (...)) constraint, or CREATE DOMAIN",
        UNSUPPORTED,
        "CREATE TYPE mood AS ENUM ('sad', 'happy')",
        accepted="CREATE DOMAIN mood AS text CHECK (VALUE IN ('sad', 'happy'))",
    ),
    _rule(
        "tablespace",
        "CREATE TABLESPACE",
        "tablespaces are not supported",
        "DSQL manages storage itself",
        UNSUPPORTED,
        "CREATE TABLESPACE fast LOCATION '/mnt/fast'",
    ),
    _rule(
        "create_database",
        "CREATE DATABASE",
        "CREATE DATABASE is not supported",
        "a DSQL cluster has the one database postgres: use schemas to separate applications",
        UNSUPPORTED,
        "CREATE DATABASE reporting",
        accepted="CREATE SCHEMA reporting",
    ),
    _rule(
        "exclusion_constraint",
        "EXCLUDE constraints",
        "exclusion constraints are not supported",
        "enforce the rule in the application",
        UNSUPPORTED,
        "CREATE TABLE bookings (room int, during tsrange, EXCLUDE USING gist (room WITH =, during WITH &&))",
    ),
    _rule(
        "serial",
        "serial, bigserial and smallserial column types",
        'type "serial" does not exist',
        "use bigint GENERATED BY DEFAULT AS IDENTITY (CACHE 65536), or a uuid with gen_random_uuid()",
        SEQUENCE,
        "CREATE TABLE items (id serial PRIMARY KEY)",
        accepted="CREATE TABLE items (id bigint GENERATED BY DEFAULT AS IDENTITY (CACHE 65536) PRIMARY KEY)",
        sqlstate=UNDEFINED_OBJECT,
        wording="observed",
        note="DSQL has no serial pseudo-types: it answers 42704 as for any unknown type (a recorded DSQL "
        "conformance run, 2026-09-16); the guide's sequence page gives the identity-column alternative",
    ),
    # -- indexes ----------------------------------------------------------------------------------------
    _rule(
        "index_not_async",
        "CREATE INDEX without ASYNC",
        "Please use CREATE INDEX ASYNC",
        "CREATE INDEX ASYNC builds the index in the background and returns a job_id: wait with "
        "SELECT sys.wait_for_job(job_id), or watch sys.jobs",
        ASYNC_INDEX,
        "CREATE INDEX accounts_email ON accounts (email)",
        accepted="CREATE INDEX ASYNC accounts_email ON accounts (email)",
        wording="observed",
        note="the guide: only CREATE [UNIQUE] INDEX ASYNC exists; message as the Flyway DSQL plugin's README quotes it",
    ),
    _rule(
        "index_sort_order",
        "CREATE INDEX ASYNC with ASC or DESC on a column",
        "ASC and DESC are not supported in CREATE INDEX ASYNC",
        "leave the direction out (NULLS FIRST / NULLS LAST are supported)",
        UNSUPPORTED,
        "CREATE INDEX ASYNC accounts_recent ON accounts (created_at DESC)",
    ),
    # -- sequences and identity columns -----------------------------------------------------------------
    _rule(
        "sequence_cache",
        "CREATE SEQUENCE and identity columns without CACHE, or with a CACHE other than 1 or >= 65536",
        "CREATE SEQUENCE is not supported without an explicit cache size",
        "say CACHE 65536 (or more) for throughput, CACHE 1 for strictly sequential values",
        SEQUENCE,
        "CREATE SEQUENCE invoice_numbers",
        accepted="CREATE SEQUENCE invoice_numbers CACHE 65536",
        wording="observed",
        note="the guide: CACHE must be given and be 1 or >= 65536; message for a missing CACHE as DSQL "
        "users report it (a DSQL migration tool's notes); a CACHE out of range gets the same answer here",
    ),
    # -- transactions -----------------------------------------------------------------------------------
    _rule(
        "isolation_level",
        "an isolation level other than REPEATABLE READ (BEGIN / START TRANSACTION / SET TRANSACTION / SET "
        "SESSION CHARACTERISTICS, and the transaction_isolation settings)",
        "only the REPEATABLE READ isolation level is supported",
        "leave the isolation level out: DSQL always runs at its Repeatable Read equivalent",
        POSTGRESQL,
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
        accepted="SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        note="the guide names one level, equivalent to PostgreSQL's Repeatable Read, without saying how others "
        "are answered; DSQL users report SET TRANSACTION ISOLATION LEVEL READ COMMITTED refused (a DSQL usage "
        "guide's experiment, 2026-09-29): wording is the sandbox's",
    ),
    _rule(
        "multiple_ddl",
        "a second DDL statement in one transaction",
        "multiple ddl statements not supported in a transaction",
        "COMMIT after each DDL statement (or run each in autocommit)",
        DDL,
        "BEGIN; CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); COMMIT",
        accepted="BEGIN; CREATE TABLE a (id int PRIMARY KEY); COMMIT",
        wording="observed",
        note=OBSERVED_BY_USERS,
    ),
    _rule(
        "ddl_and_dml",
        "DDL and DML (INSERT, UPDATE, DELETE, MERGE, COPY FROM) in one transaction, in either order",
        "ddl and dml are not supported in the same transaction",
        "COMMIT the DDL, then write the data in a transaction of its own",
        DDL,
        "BEGIN; CREATE TABLE d (id int PRIMARY KEY); INSERT INTO d VALUES (1); COMMIT",
        accepted="BEGIN; INSERT INTO c VALUES (1); COMMIT",
        wording="observed",
        note=OBSERVED_BY_USERS,
    ),
)

TRANSACTION_RULES = frozenset({"multiple_ddl", "ddl_and_dml"})

BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}

# Supported now, and so deliberately without a rule: kept here so that a reader (and the table's test)
# knows the absence is a decision, with its date.
SUPPORTED_SINCE: dict[str, tuple[str, str]] = {
    "foreign_key": ("2026-08-26", RELEASE_NOTES),
    "sequence": ("CACHE 1 or >= 65536", SEQUENCE),
    "create_domain": ("", SUPPORTED),
    "language_sql_function": ("", SUPPORTED),
}
