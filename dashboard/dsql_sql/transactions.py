"""How Aurora DSQL ends a transaction it will not keep: optimistic-concurrency conflicts, the transaction
limits and the one isolation level, as data with their sources.

Read by the sandbox's DSQL endpoint (which answers with these) and by the runbook's checks (a batch that
writes more than `LIMITS.rows` rows in one transaction fails on DSQL). The answers are `Rule`s, so they
are sent exactly like the statement rules of `rules.py`.

Sources, checked 2026-12-02:
- Concurrency control (CONCURRENCY): DSQL takes no locks; conflicts are judged at COMMIT, "the transaction
  with the earliest commit time succeeds", the other gets SQLSTATE 40001 with the OCC code in the message,
  quoted as `ERROR: change conflicts with another transaction (OC000) (SQLSTATE 40001)` (data) and
  `ERROR: schema has been updated by another transaction (OC001) (SQLSTATE 40001)` (schema: DDL, GRANT and
  REVOKE change the catalog a transaction runs against). Older messages seen by users read
  "change conflicts with another transaction, please retry: (OC000)"; the guide's current text is used.
- Quotas (QUOTAS), "Database limits": in one write transaction at most 10 MiB of modified data, 3,000
  modified rows and 5 minutes, none configurable, each answered with SQLSTATE 54000 and the messages
  below (the English page as AWS's own aurora-dsql-starter-kit mirrors it; the zh_cn page gives the same
  10 MiB / 54000 row). 3,000 rows is also what users measured in 2026-09 (3,001 rows refused).
- Isolation (rules.POSTGRESQL): "ACID transactions and an isolation level equivalent to PostgreSQL's Repeatable
  Read"; DSQL takes its snapshot at BEGIN. The guide does not say how other levels are answered; DSQL users
  report `SET TRANSACTION ISOLATION LEVEL READ COMMITTED` refused (a DSQL usage guide's experiment E001,
  2026-09-29), so the sandbox refuses every level but REPEATABLE READ, in its own wording (the rule
  "isolation_level" of `rules.py`, a statement rule).
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.dsql_sql.rules import CHECKED, GUIDE, Rule

CONCURRENCY = GUIDE + "working-with-concurrency-control.html"
QUOTAS = GUIDE + "CHAP_quotas.html"

SERIALIZATION_FAILURE = "40001"
PROGRAM_LIMIT_EXCEEDED = "54000"


@dataclass(frozen=True)
class TransactionLimits:
    """DSQL's per-transaction limits (QUOTAS). Not configurable on DSQL: only tests make them smaller."""

    rows: int = 3000  # rows inserted, updated or deleted in one transaction
    bytes: int = 10 * 1024 * 1024  # data modified in one transaction
    seconds: float = 300  # from the transaction's start to its COMMIT


LIMITS = TransactionLimits()


def _answer(id: str, sqlstate: str, message: str, hint: str, source: str, note: str, wording: str) -> Rule:
    return Rule(
        id,
        matches=id.replace("_", " "),
        sqlstate=sqlstate,
        message=message,
        hint=hint,
        source=source,
        checked=CHECKED,
        wording=wording,
        note=note,
        refused="",
    )


DATA_CONFLICT = _answer(
    "occ_data_conflict",
    SERIALIZATION_FAILURE,
    "change conflicts with another transaction (OC000)",
    "another transaction committed a write to the same rows first: retry the whole transaction",
    CONCURRENCY,
    "quoted by the guide (OC000); answered at COMMIT to the transaction that commits later",
    "observed",
)
SCHEMA_CONFLICT = _answer(
    "occ_schema_conflict",
    SERIALIZATION_FAILURE,
    "schema has been updated by another transaction (OC001)",
    "the catalog changed under this transaction (DDL, GRANT, REVOKE): retry the whole transaction",
    CONCURRENCY,
    "quoted by the guide (OC001)",
    "observed",
)
ROW_LIMIT = _answer(
    "transaction_rows",
    PROGRAM_LIMIT_EXCEEDED,
    "transaction row limit exceeded",
    f"write at most {LIMITS.rows:,} rows per transaction: split the work into batches, each committed",
    QUOTAS,
    "quoted by the quotas page; users see it at the statement that passes the limit",
    "observed",
)
SIZE_LIMIT = _answer(
    "transaction_size",
    PROGRAM_LIMIT_EXCEEDED,
    "transaction size limit 10mb exceeded",
    "write less data per transaction (10 MiB at most): split the work into batches, each committed",
    QUOTAS,
    "quoted by the quotas page, with DETAIL 'Current transaction size {sizemb} 10mb'",
    "observed",
)
AGE_LIMIT = _answer(
    "transaction_age",
    PROGRAM_LIMIT_EXCEEDED,
    "transaction age limit of 300s exceeded",
    "finish each transaction within 5 minutes: split long work into shorter transactions",
    QUOTAS,
    "quoted by the quotas page",
    "observed",
)
ANSWERS: tuple[Rule, ...] = (DATA_CONFLICT, SCHEMA_CONFLICT, ROW_LIMIT, SIZE_LIMIT, AGE_LIMIT)
