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
from itertools import count

from dashboard.dsql_sql.classify import Statement, Transaction, Violation, statements

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
"""


class Session:
    """The rules' state of one client session; `from_client` / `from_server` turn each message into what
    goes on (the same bytes, most of the time)."""

    def __init__(self) -> None:
        self.transaction = Transaction()
        self.prepared: dict[bytes, Statement] = {}
        self.in_flight = 0  # Query and Sync messages sent upstream whose ReadyForQuery has not come back
        self.refusals: dict[int, Violation] = {}
        self._ids = count(1)

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
        found = statements(sql)
        pieces, changed = [], False
        for statement in found:
            refusal = statement.violations[0] if statement.violations else self.transaction.admit(statement)
            if refusal is not None:
                pieces.append(self._refusing(refusal))
                changed = True
                break
            if statement.async_index:
                pieces.append(async_index_build(statement.text))
                changed = True
            else:
                pieces.append(statement.text)
        self.transaction.end_implicit()
        if not changed:
            return frame(b"Q", body)
        return frame(b"Q", ";\n".join(pieces).encode() + b"\0")

    def _parse(self, body: bytes) -> bytes:
        name, rest = body.split(b"\0", 1)
        query, params = rest.split(b"\0", 1)
        found = statements(query.decode("utf-8", "replace"))
        if len(found) != 1:
            return frame(b"P", body)  # PostgreSQL refuses several commands in one prepared statement itself
        (statement,) = found
        self.prepared[name] = statement
        if statement.violations:
            return parse_message(name, self._refusing(statement.violations[0]))
        if statement.async_index:
            return parse_message(name, async_index_build(statement.text), params)
        return frame(b"P", body)

    def _bind(self, body: bytes) -> bytes:
        _portal, rest = body.split(b"\0", 1)
        statement = self.prepared.get(rest.split(b"\0", 1)[0])
        if statement is None or statement.violations:
            return frame(b"B", body)  # unknown here, or its Parse failed: the server answers it
        if (refusal := self.transaction.admit(statement)) is not None:
            # Fails in the Bind's place; the server then skips the client's Describe/Execute until Sync.
            return parse_message(REFUSED_STATEMENT_NAME, self._refusing(refusal))
        return frame(b"B", body)

    def _refusing(self, violation: Violation) -> str:
        refusal_id = next(self._ids)
        self.refusals[refusal_id] = violation
        return f"SELECT '{MARKER}{refusal_id}'::int4"

    # -- server -> client -------------------------------------------------------------------------------
    def from_server(self, kind: bytes, body: bytes) -> bytes:
        if kind == b"Z":
            self.in_flight = max(self.in_flight - 1, 0)
            if not self.in_flight:
                self.transaction.server_status(body[:1])
        elif kind == b"E" and MARKER.encode() in body:
            found = _MARKER_RE.search(body.decode("utf-8", "replace"))
            violation = self.refusals.pop(int(found.group(1)), None) if found else None
            if violation is not None:
                return dsql_error(violation)
        return frame(kind, body)


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


async def relay(
    session: Session,
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    server_reader: asyncio.StreamReader,
    server_writer: asyncio.StreamWriter,
) -> None:
    """Both directions, message by message, until either side goes away."""

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, turn) -> None:
        try:
            while True:
                header = await source.readexactly(5)
                (length,) = struct.unpack("!i", header[1:])
                body = await source.readexactly(length - 4)
                sink.write(turn(header[:1], body))
                await sink.drain()
        finally:
            sink.close()

    await asyncio.gather(
        pipe(client_reader, server_writer, session.from_client),
        pipe(server_reader, client_writer, session.from_server),
        return_exceptions=True,
    )
