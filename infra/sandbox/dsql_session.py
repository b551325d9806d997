"""One DSQL session after login: the client's statements checked against DSQL's rules on their way in.

The proxy reads the PostgreSQL protocol both ways instead of relaying bytes. A simple Query ('Q') and
an extended-protocol Parse ('P') are classified by `dashboard.dsql_sql` (the product's rule table, so the
sandbox and the runbook cannot disagree); a Bind ('B') applies the per-transaction rules to the statement
it runs. What DSQL refuses is never sent: in its place the local PostgreSQL gets a stand-in statement
that fails at once, `SELECT 'velaops-sandbox-refusal:N'::int4`, and the error PostgreSQL answers with is
rewritten on its way back into DSQL's (severity ERROR, DSQL's SQLSTATE and message, the fix as a hint).
Letting PostgreSQL fail in the refused statement's place keeps everything else exactly PostgreSQL's:
the answer comes in order behind whatever the client had pipelined, a transaction block is aborted
(ReadyForQuery 'E', so ROLLBACK is needed, as after any error), an implicit transaction is rolled back,
and in the extended protocol the server discards messages until Sync.

A simple query is refused from the statement that breaks a rule: the statements before it run (and are
rolled back with it, as one implicit transaction or inside the client's block), as they would on DSQL.

Transaction state: the session follows BEGIN / COMMIT / ROLLBACK and the implicit transactions itself,
and takes the server's ReadyForQuery status as the truth whenever nothing else is in flight.

`CREATE INDEX ASYNC` (DSQL's syntax, not PostgreSQL's) becomes
`SELECT job_id FROM sys.index_build('<the plain CREATE INDEX>')`: the stand-in database's `sys.index_build`
(see SYS_SCHEMA) builds the index at once and records a completed INDEX_BUILD job in `sys.jobs`, and the
client gets a `job_id` back as from DSQL; `sys.wait_for_job(job_id)` answers true at once.
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count

from dashboard.dsql_sql.classify import BEGIN, DDL, DML, END, Statement, Transaction, Violation, statements
from dashboard.dsql_sql.transactions import (
    AGE_LIMIT,
    DATA_CONFLICT,
    LIMITS,
    ROW_LIMIT,
    SCHEMA_CONFLICT,
    SIZE_LIMIT,
    TransactionLimits,
)

MARKER = "velaops-sandbox-refusal:"
_MARKER_RE = re.compile(re.escape(MARKER) + r"(\d+)")
REFUSED_STATEMENT_NAME = b"velaops_sandbox_refused"

# Created in the stand-in database by dsql_proxy.ensure_database (as the admin, owned by the session role).
SYS_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS sys AUTHORIZATION {owner};
CREATE TABLE IF NOT EXISTS sys.jobs (
    job_id text PRIMARY KEY,
    status text NOT NULL,
    details text,
    job_type text NOT NULL,
    class_id oid,
    object_id oid,
    object_name text,
    start_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE sys.jobs OWNER TO {owner};
CREATE OR REPLACE FUNCTION sys.index_build(ddl text) RETURNS TABLE (job_id text)
LANGUAGE plpgsql AS $body$
DECLARE
    new_id text := replace(gen_random_uuid()::text, '-', '');
    before oid[] := ARRAY(SELECT oid FROM pg_class WHERE relkind = 'i');
    built regclass;
BEGIN
    EXECUTE ddl;
    SELECT c.oid::regclass INTO built FROM pg_class c WHERE c.relkind = 'i' AND c.oid <> ALL (before);
    INSERT INTO sys.jobs (job_id, status, job_type, class_id, object_id, object_name)
    VALUES (new_id, 'completed', 'INDEX_BUILD', 'pg_class'::regclass, built, built::text);
    RETURN QUERY SELECT new_id;
END
$body$;
ALTER FUNCTION sys.index_build(text) OWNER TO {owner};
CREATE OR REPLACE FUNCTION sys.wait_for_job(job text) RETURNS boolean
LANGUAGE sql AS $body$ SELECT coalesce((SELECT status = 'completed' FROM sys.jobs WHERE job_id = job), false) $body$;
ALTER FUNCTION sys.wait_for_job(text) OWNER TO {owner};
CREATE TABLE IF NOT EXISTS sys.iam_pg_role_mappings (
    pg_role_name text NOT NULL,
    arn text NOT NULL,
    grantor_pg_role_name text NOT NULL,
    PRIMARY KEY (pg_role_name, arn)
);
ALTER TABLE sys.iam_pg_role_mappings OWNER TO {owner};
GRANT SELECT ON sys.iam_pg_role_mappings TO PUBLIC;
CREATE OR REPLACE FUNCTION sys.aws_iam_grant(role text, principal text) RETURNS void
LANGUAGE plpgsql AS $body$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
        RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = '42704';
    END IF;
    INSERT INTO sys.iam_pg_role_mappings VALUES (role, principal, current_user) ON CONFLICT DO NOTHING;
END
$body$;
ALTER FUNCTION sys.aws_iam_grant(text, text) OWNER TO {owner};
REVOKE ALL ON FUNCTION sys.aws_iam_grant(text, text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION sys.aws_iam_revoke(role text, principal text) RETURNS void
LANGUAGE sql AS $body$ DELETE FROM sys.iam_pg_role_mappings WHERE pg_role_name = role AND arn = principal $body$;
ALTER FUNCTION sys.aws_iam_revoke(text, text) OWNER TO {owner};
REVOKE ALL ON FUNCTION sys.aws_iam_revoke(text, text) FROM PUBLIC;
"""

# DSQL's own statements mapping a database role to IAM principals (Aurora DSQL user guide, "Using database
# roles and IAM authentication", checked 2026-12-02): `AWS IAM GRANT role TO 'arn'`, `AWS IAM REVOKE role
# FROM 'arn'`, run by admin. Not PostgreSQL syntax: the endpoint runs them as calls of the stand-in's
# sys.aws_iam_grant / sys.aws_iam_revoke (admin's only), and logins of the role then need the mapping.
_IAM_STATEMENT = re.compile(
    r"^\s*AWS\s+IAM\s+(?P<verb>GRANT|REVOKE)\s+(?P<role>\"[^\"]+\"|[A-Za-z_][A-Za-z0-9_$]*)\s+"
    r"(?:TO|FROM)\s+'(?P<arn>[^']+)'\s*;?\s*$",
    re.IGNORECASE,
)


def iam_statement(sql: str) -> str | None:
    """The stand-in's call for a DSQL `AWS IAM GRANT/REVOKE` statement; None for any other text."""
    match = _IAM_STATEMENT.match(sql)
    if not match:
        return None
    role = match["role"][1:-1] if match["role"].startswith('"') else match["role"].lower()
    function = "aws_iam_grant" if match["verb"].upper() == "GRANT" else "aws_iam_revoke"
    quoted = [value.replace("'", "''") for value in (role, match["arn"])]
    return f"SELECT sys.{function}('{quoted[0]}', '{quoted[1]}')"


# The stand-in's own sessions run as DSQL's do: at Repeatable Read, and without waiting on a row lock.
# A write that meets another transaction's uncommitted write fails upstream after LOCK_TIMEOUT_MS
# instead of waiting, and the endpoint turns that into DSQL's conflict (see Session).
LOCK_TIMEOUT_MS = 20
UPSTREAM_OPTIONS = f"-c default_transaction_isolation=repeatable\\ read -c lock_timeout={LOCK_TIMEOUT_MS}"

# What PostgreSQL answers where DSQL would have let the statement run and judged it at COMMIT:
# a row or relation lock another transaction holds (lock_timeout), or a row another transaction changed
# and committed after this one's snapshot (Repeatable Read's serialization failure).
CONFLICT_SQLSTATES = frozenset({b"55P03", b"40001", b"40P01"})

# DSQL takes a transaction's snapshot at BEGIN; PostgreSQL at the first query. This empty read right
# after the client's BEGIN takes it there (its answers are the endpoint's, not the client's).
SNAPSHOT_QUERY = "SELECT FROM pg_catalog.pg_class LIMIT 0"
ABORT_QUERY = "SELECT 'velaops-sandbox-abort'::int4"  # fails at once: aborts the upstream transaction

_COUNTED_TAGS = (b"INSERT", b"UPDATE", b"DELETE", b"MERGE", b"COPY")
INTERNAL = None  # in Session.expected: a statement of the endpoint's own, whose answers are not forwarded


@dataclass
class _Internal:
    """A query the endpoint sent upstream on its own. Its answers are not the client's: `then` turns its
    final status into what the client gets in the place of its ReadyForQuery."""

    then: Callable[[bytes], bytes]
    forward_errors: bool = True


class Session:
    """The rules' state of one client session; `from_client` / `from_server` turn each message into what
    goes on (the same bytes, most of the time), and queue in `to_server` what the endpoint sends upstream
    on its own.

    Optimistic concurrency. DSQL never blocks a writer: of two transactions that write the same row, the
    first to COMMIT wins and the other gets 40001 (OC000) at its COMMIT. The stand-in PostgreSQL takes row
    locks, so here the transaction that meets a lock (or a row committed after its snapshot) is the one
    that loses: its statement fails upstream at once (lock_timeout), the client is answered as if it had
    run (no rows), the upstream transaction is replaced by a fresh one, and the transaction is doomed: its
    COMMIT becomes a ROLLBACK answered with DSQL's 40001. A relation lock (DDL against an open writer, or
    a write against an open DDL) dooms with OC001. In an implicit transaction the conflict is its COMMIT,
    so the error comes at once.

    Limits. Rows are counted from the server's CommandComplete tags, bytes from the write statements sent,
    the age from BEGIN. So that the row limit can refuse an autocommit write before it is committed, an
    implicit transaction that writes runs upstream inside a BEGIN of the endpoint's, committed (or rolled
    back) by the endpoint once its answers are in.
    """

    def __init__(self, limits: TransactionLimits = LIMITS, clock: Callable[[], float] = time.monotonic) -> None:
        self.transaction = Transaction()
        self.prepared: dict[bytes, Statement] = {}
        self.in_flight = 0  # Query and Sync messages sent upstream whose ReadyForQuery has not come back
        self.refusals: dict[int, Violation] = {}
        self._ids = count(1)
        self.limits, self._clock = limits, clock
        self.to_server: list[bytes] = []
        self.expected: deque[Statement | None] = deque()  # statements whose CommandComplete is still to come
        self.internal: deque[_Internal] = deque()
        self._new_transaction()

    def _new_transaction(self) -> None:
        self.rows = 0
        self.bytes = 0
        self.started: float | None = None
        self.doomed: Violation | None = None  # a conflict: COMMIT will fail with it
        self.commit_error: Violation | None = None  # COMMIT sent as ROLLBACK: its answer becomes this
        self.wrapped = False  # an implicit transaction the endpoint opened upstream with BEGIN
        self.abort = False  # a limit passed in a block: abort the upstream transaction at ReadyForQuery
        self.recover = False  # a conflict in a block: replace the upstream transaction at ReadyForQuery

    # -- client -> server -------------------------------------------------------------------------------
    def from_client(self, kind: bytes, body: bytes) -> bytes:
        if kind == b"Q":
            self.in_flight += 1
            return self._query(body)
        if kind == b"P":
            return self._parse(body)
        if kind == b"B":
            return self._bind(body)
        if kind == b"S":
            self.in_flight += 1
            self.transaction.end_implicit()
        elif kind == b"C" and body[:1] == b"S":
            self.prepared.pop(body[1:].split(b"\0", 1)[0], None)
        return frame(kind, body)

    def _query(self, body: bytes) -> bytes:
        sql = body[:-1].decode("utf-8", "replace")
        if (call := iam_statement(sql)) is not None:
            body = call.encode() + b"\0"
            sql = call
        found = statements(sql)
        pieces: list[tuple[str, Statement | None]] = []
        changed, block = False, self.transaction.in_block
        for statement in found:
            size = len(statement.text.encode())
            refusal = statement.violations[0] if statement.violations else self._admit(statement, size)
            if refusal is not None:
                pieces.append((self._refusing(refusal), statement))
                changed = True
                break
            if statement.commits and (failure := self._commit_failure()):
                self.commit_error, changed = failure, True
                pieces.append(("ROLLBACK", statement))
            elif statement.async_index:
                pieces.append((async_index_build(statement.text), statement))
                changed = True
            else:
                pieces.append((statement.text, statement))
            if statement.cls == BEGIN:
                pieces.append((SNAPSHOT_QUERY, INTERNAL))
                self.started, changed = self._clock(), True
        self.transaction.end_implicit()
        if self._wraps(block, found) and self.in_flight == 1 and not self.internal:
            pieces.insert(0, ("BEGIN", INTERNAL))
            self.wrapped, changed = True, True
        self.expected.extend(statement for _text, statement in pieces)
        if not changed:
            return frame(b"Q", body)
        return frame(b"Q", ";\n".join(text for text, _statement in pieces).encode() + b"\0")

    def _parse(self, body: bytes) -> bytes:
        name, rest = body.split(b"\0", 1)
        query, params = rest.split(b"\0", 1)
        if (call := iam_statement(query.decode("utf-8", "replace"))) is not None:
            query = call.encode()
            body = name + b"\0" + query + b"\0" + params
        found = statements(query.decode("utf-8", "replace"))
        if len(found) != 1:
            return frame(b"P", body)  # PostgreSQL refuses several commands in one prepared statement itself
        (statement,) = found
        self.prepared[name] = statement
        if statement.violations:
            return parse_message(name, self._refusing(statement.violations[0]))
        wrap = self._wrap_before(statement)
        if statement.commits and (failure := self._commit_failure()):
            self.commit_error = failure
            return wrap + parse_message(name, "ROLLBACK", params)
        if statement.async_index:
            return wrap + parse_message(name, async_index_build(statement.text), params)
        return wrap + frame(b"P", body)

    def _bind(self, body: bytes) -> bytes:
        _portal, rest = body.split(b"\0", 1)
        statement = self.prepared.get(rest.split(b"\0", 1)[0])
        if statement is None or statement.violations:
            return frame(b"B", body)  # unknown here, or its Parse failed: the server answers it
        if (refusal := self._admit(statement, len(body))) is not None:
            # Fails in the Bind's place; the server then skips the client's Describe/Execute until Sync.
            return parse_message(REFUSED_STATEMENT_NAME, self._refusing(refusal))
        self.expected.append(statement)
        if statement.cls == BEGIN:
            self.started = self._clock()
        return self._wrap_before(statement) + frame(b"B", body)

    def _admit(self, statement: Statement, size: int) -> Violation | None:
        """The per-transaction rules and limits `statement` breaks here, if any; otherwise counted in."""
        if self.transaction.in_block and statement.cls not in (BEGIN, END) and self._too_old():
            return Violation(AGE_LIMIT)
        if statement.cls == DML:
            self.bytes += size
            if self.bytes > self.limits.bytes:
                return Violation(SIZE_LIMIT, f"Current transaction size {self.bytes / 2**20:.0f}mb 10mb")
        return self.transaction.admit(statement)

    def _too_old(self) -> bool:
        return self.started is not None and self._clock() - self.started > self.limits.seconds

    def _commit_failure(self) -> Violation | None:
        if self.doomed is not None:
            return self.doomed
        return Violation(AGE_LIMIT) if self._too_old() else None

    def _wraps(self, block: bool, found: tuple[Statement, ...]) -> bool:
        return not block and any(s.cls == DML for s in found) and not any(s.cls in (BEGIN, END) for s in found)

    def _wrap_before(self, statement: Statement) -> bytes:
        """A BEGIN of the endpoint's before the first write of an implicit extended-protocol transaction."""
        if statement.cls != DML or self.transaction.in_block or self.wrapped or self.in_flight or self.internal:
            return b""
        self.wrapped = True
        return self._internal_query("BEGIN", then=lambda _status: b"")

    def _internal_query(self, sql: str, then: Callable[[bytes], bytes], forward_errors: bool = True) -> bytes:
        self.internal.append(_Internal(then, forward_errors))
        return frame(b"Q", sql.encode() + b"\0")

    def _refusing(self, violation: Violation) -> str:
        refusal_id = next(self._ids)
        self.refusals[refusal_id] = violation
        return f"SELECT '{MARKER}{refusal_id}'::int4"

    # -- server -> client -------------------------------------------------------------------------------
    def from_server(self, kind: bytes, body: bytes) -> bytes:
        if self.internal:
            return self._internal_answer(kind, body)
        if kind == b"Z":
            return self._ready(body[:1])
        if kind == b"E" and MARKER.encode() in body:
            self._completed()
            found = _MARKER_RE.search(body.decode("utf-8", "replace"))
            violation = self.refusals.pop(int(found.group(1)), None) if found else None
            if violation is not None:
                return dsql_error(violation)
            return frame(kind, body)
        if kind in (b"T", b"D") and self.expected and self.expected[0] is INTERNAL:
            return b""
        if kind == b"C":
            return self._command_complete(self._completed(), body)
        if kind == b"E":
            return self._error(self._completed(), body)
        if kind == b"I":
            self._completed()
        return frame(kind, body)

    def _completed(self) -> Statement | None | bool:
        """The statement an answer ends (INTERNAL for the endpoint's own, False if unknown)."""
        return self.expected.popleft() if self.expected else False

    def _command_complete(self, statement: Statement | None | bool, body: bytes) -> bytes:
        if statement is INTERNAL:
            return b""
        if self.commit_error is not None and body == b"ROLLBACK\0":
            failure, self.commit_error = self.commit_error, None
            return dsql_error(failure)
        tag = body[:-1].split(b" ")
        if statement and statement.cls == DML and tag[0] in _COUNTED_TAGS and tag[-1].isdigit():
            self.rows += int(tag[-1])
            if self.rows > self.limits.rows and not self.abort:
                self.abort = True
                return dsql_error(Violation(ROW_LIMIT))
        return frame(b"C", body)

    def _error(self, statement: Statement | None | bool, body: bytes) -> bytes:
        fields = _error_fields(body)
        if fields.get(b"C") not in CONFLICT_SQLSTATES or statement is INTERNAL:
            return frame(b"E", body)
        row_level = fields[b"C"] != b"55P03" or b"tuple" in fields.get(b"W", b"")
        conflict = Violation(DATA_CONFLICT if row_level else SCHEMA_CONFLICT)
        if self.transaction.in_block and not self.wrapped:
            # DSQL would have run it: answered as a statement that touched nothing, judged at COMMIT.
            self.doomed = self.doomed or conflict
            self.recover = True
            return frame(b"C", _empty_tag(statement) + b"\0")
        return dsql_error(conflict)  # an implicit transaction: this is its COMMIT

    def _ready(self, status: bytes) -> bytes:
        self.in_flight = max(self.in_flight - 1, 0)
        self.expected.clear()
        if self.in_flight:
            return frame(b"Z", status)  # the client pipelines: settle when the last answer is in
        if self.wrapped:
            self.wrapped = False
            finish = "ROLLBACK" if status == b"E" or self.abort else "COMMIT"
            self.to_server.append(self._internal_query(finish, then=self._settled))
            return b""
        if self.recover and status == b"E":
            self.recover = False
            self.to_server.append(self._internal_query(f"ROLLBACK; BEGIN; {SNAPSHOT_QUERY}", then=self._settled))
            return b""
        if self.abort and status == b"T":
            self.to_server.append(self._internal_query(ABORT_QUERY, then=self._settled, forward_errors=False))
            return b""
        return self._settled(status)

    def _settled(self, status: bytes) -> bytes:
        self.transaction.server_status(status)
        if status == b"I":
            self._new_transaction()
        return frame(b"Z", status)

    def _internal_answer(self, kind: bytes, body: bytes) -> bytes:
        head = self.internal[0]
        if kind == b"Z":
            self.internal.popleft()
            return head.then(body[:1])
        if kind == b"E" and head.forward_errors:
            return frame(kind, body)  # a COMMIT of the endpoint's that failed (a deferred constraint, say)
        return b""


def _error_fields(body: bytes) -> dict[bytes, bytes]:
    return {field[:1]: field[1:] for field in body.split(b"\0") if field}


_EMPTY_TAGS = {"INSERT": b"INSERT 0 0", "UPDATE": b"UPDATE 0", "DELETE": b"DELETE 0", "MERGE": b"MERGE 0"}


def _empty_tag(statement: Statement | None | bool) -> bytes:
    """The CommandComplete tag of `statement` had it touched no row."""
    text = statement.text.lstrip().upper() if statement else ""
    for verb, tag in _EMPTY_TAGS.items():
        if text.startswith(verb):
            return tag
    if statement and statement.cls == DDL:
        words = [word for word in text.split()[:3] if word != "UNIQUE"]
        return " ".join(words[:2]).encode()
    return b"SELECT 0"


def async_index_build(plain_create_index: str) -> str:
    quoted = plain_create_index.replace("'", "''")
    return f"SELECT job_id FROM sys.index_build('{quoted}')"


def frame(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def parse_message(name: bytes, query: str, params: bytes = b"\0\0") -> bytes:
    return frame(b"P", name + b"\0" + query.encode() + b"\0" + params)


def dsql_error(violation: Violation) -> bytes:
    rule = violation.rule
    fields = [b"SERROR", b"VERROR", b"C" + rule.sqlstate.encode(), b"M" + rule.message.encode()]
    if violation.detail:
        fields.append(b"D" + violation.detail.encode())
    fields.append(b"H" + rule.hint.encode())
    return frame(b"E", b"\0".join(fields) + b"\0\0")


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One protocol message after startup: its type byte and its body."""
    header = await reader.readexactly(5)
    (length,) = struct.unpack("!i", header[1:])
    return header[:1], await reader.readexactly(length - 4)


async def relay(
    session: Session,
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    server_reader: asyncio.StreamReader,
    server_writer: asyncio.StreamWriter,
    *,
    keep_server: bool = False,
) -> bool:
    """Both directions, message by message, until either side goes away; then both are closed.

    With `keep_server`, the client's Terminate is not passed on, and the server's side stays open when the
    session ends there idle (every message answered, its last ReadyForQuery 'I', none of the endpoint's own
    queries pending): the answer is whether it did, for the endpoint to hand the server's session on.
    """
    idle = True  # nothing the client sent is unanswered, and the server is outside any transaction

    async def send_own_queries() -> None:
        if session.to_server:  # the endpoint's own queries, decided on an answer from the server
            server_writer.write(b"".join(session.to_server))
            session.to_server.clear()
            await server_writer.drain()

    async def upward() -> bool:
        nonlocal idle
        while True:
            kind, body = await read_message(client_reader)
            if keep_server and kind == b"X":
                return True  # the client's Terminate: the end of its session, not the server's
            idle = False
            server_writer.write(session.from_client(kind, body))
            await send_own_queries()
            await server_writer.drain()

    async def downward() -> None:
        nonlocal idle
        while True:
            kind, body = await read_message(server_reader)
            client_writer.write(session.from_server(kind, body))
            if kind == b"Z":
                idle = body[:1] == b"I" and not (session.in_flight or session.internal or session.to_server)
            await send_own_queries()
            await client_writer.drain()

    pipes = [asyncio.ensure_future(upward()), asyncio.ensure_future(downward())]
    kept = False
    try:
        done, _ = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        ended = pipes[0] in done and not pipes[0].cancelled() and pipes[0].exception() is None
        kept = ended and idle and not server_reader.at_eof() and not server_writer.is_closing()
        return kept
    finally:
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        client_writer.close()
        if not kept:
            server_writer.close()
