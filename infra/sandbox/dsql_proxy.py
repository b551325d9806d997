"""The DSQL wire endpoint: a loopback proxy that logs clients in like DSQL, then relays to the local PostgreSQL.

To the client it speaks PostgreSQL's startup protocol as DSQL does: no TLS here (the sandbox answers
SSLRequest with 'N', so the environment uses sslmode=disable), a cleartext password that must be a valid
IAM auth token for an ACTIVE cluster in the sandbox account (`dsql_token.check_token`, which the sandbox's
moto runs on its own state: `dsql_login`, one loopback request a login). After that it
opens a trust-auth session on the local PostgreSQL as the stand-in role and database, and relays the
session's messages through `dsql_session`, which refuses what DSQL refuses before it reaches PostgreSQL.
The DSQL fault switches (refuse, latency) act here, before any byte is answered.
"""

from __future__ import annotations

import asyncio
import logging
import re
import struct
import threading
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from dashboard.dsql_sql.transactions import LIMITS, TransactionLimits
from infra.sandbox import dsql_lifecycle, pg
from infra.sandbox.config import SandboxConfig
from infra.sandbox.dsql_login import Login, MotoLogins
from infra.sandbox.dsql_session import SYS_SCHEMA, UPSTREAM_OPTIONS, Session, read_message, relay
from infra.sandbox.dsql_token import ADMIN_USER, Refusal
from infra.sandbox.faults import FaultSwitches

log = logging.getLogger(__name__)

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608
AUTH_CLEARTEXT = b"R" + struct.pack("!ii", 8, 3)
MAX_STARTUP = 10_000  # the server's own limit for a startup packet


def ensure_database(config: SandboxConfig) -> None:
    """The one database that stands in for every DSQL cluster, owned by the role sessions run as, with
    DSQL's `sys` schema (`sys.jobs`, `sys.wait_for_job`) and the sandbox's `sys.index_build` in it."""
    pg.ensure_role(config, config.dsql_upstream_user)
    pg.ensure_database(config, config.dsql_database, config.dsql_upstream_user)
    with psycopg.connect(**config.pg_params(config.dsql_database)) as conn:
        # DSQL's admin creates database roles (CREATE ROLE ... WITH LOGIN); the stand-in's owner role may too.
        conn.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(config.dsql_upstream_user)))
        conn.execute(sql.SQL(SYS_SCHEMA).format(owner=sql.Identifier(config.dsql_upstream_user)))


def drop_database(config: SandboxConfig) -> None:
    """The stand-in database, and the database roles mapped to IAM in it (PostgreSQL's roles are the server's,
    not a database's: left behind they would outlive the sandbox)."""
    roles: list[str] = []
    try:
        with psycopg.connect(**config.pg_params(config.dsql_database)) as conn:
            roles = [r for (r,) in conn.execute("SELECT DISTINCT pg_role_name FROM sys.iam_pg_role_mappings")]
    except psycopg.Error:
        pass  # no database (or no mappings table): nothing of ours to find
    pg.drop_database(config, config.dsql_database)
    with psycopg.connect(**config.pg_params()) as conn:
        for role in roles:
            try:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            except psycopg.Error:
                pass  # still owning something elsewhere: another sandbox's; left alone


def error_response(sqlstate: str, message: str, detail: str = "") -> bytes:
    fields = [b"SFATAL", b"VFATAL", b"C" + sqlstate.encode(), b"M" + message.encode()]
    if detail:
        fields.append(b"D" + detail.encode())
    body = b"\0".join(fields) + b"\0\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


class DsqlProxy:
    # DSQL ends a connection at its maximum duration (60 minutes, the cluster quotas' page); the session
    # is closed without a message, as a connection dropped by the server.
    session_seconds: float = 3600
    limits: TransactionLimits = LIMITS  # DSQL's per-transaction limits; tests make them small

    def __init__(
        self,
        config: SandboxConfig,
        faults: FaultSwitches,
        *,
        logins: MotoLogins,
    ) -> None:
        self.config, self.faults, self._logins = config, faults, logins
        self.upstream_sessions = UpstreamSessions()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- lifecycle: an event loop of its own in a daemon thread ----------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-dsql-proxy", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise RuntimeError(f"DSQL proxy could not listen on port {self.config.dsql_port}: {self._error}")

    def stop(self) -> None:
        if self._loop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, self.config.host, self.config.dsql_port)
            )
        except OSError as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            self.upstream_sessions.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    # -- one client -------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        faults = self.faults.current
        if faults.dsql_refuse:
            writer.transport.abort()  # RST: the client sees the connection refused/reset before any byte
            return
        if faults.dsql_latency_ms:
            await asyncio.sleep(faults.dsql_latency_ms / 1000)
        upstream: asyncio.StreamWriter | None = None
        try:
            startup = await self._read_startup(reader, writer)
            if startup is None:
                return
            if startup[0] == CANCEL_REQUEST:
                # Cancel keys belong to the upstream session: pass the request through untouched.
                up_reader, upstream = await asyncio.open_connection(self.config.pg_host, self.config.pg_port)
                upstream.write(startup[1])
                await upstream.drain()
                return
            params = startup[1]
            user = params.get("user", "")
            writer.write(AUTH_CLEARTEXT)
            await writer.drain()
            kind, body = await read_message(reader)
            if kind != b"p":
                writer.write(error_response("08P01", "expected a password message"))
                return
            token = body.rstrip(b"\0").decode("utf-8", "replace")
            # One question to moto; an admin login is recorded by it at once, a database role's after its mapping.
            login = await asyncio.to_thread(self._check, token, user)
            refusal = login.refusal
            if refusal is None and user != ADMIN_USER:
                refusal = await asyncio.to_thread(self._database_role, login.principal, user)
            if refusal:
                # The reason goes to the client (it is the person rehearsing) and the log; never the token.
                log.info("DSQL login refused for user %r: %s", user, refusal.reason)
                writer.write(
                    error_response(refusal.sqlstate, "unable to accept connection, access denied", refusal.reason)
                )
                return
            if user == ADMIN_USER:
                if login.wake_seconds:  # an IDLE cluster answers slower
                    await asyncio.sleep(login.wake_seconds)
            else:
                await dsql_lifecycle.wake_on_login(self.config.moto_url, token)
            upstream_params = self._upstream_params(params, user)
            # Only the admin's sessions are handed on: a database role can be dropped and made again under its name.
            key = tuple(sorted(upstream_params.items())) if user == ADMIN_USER else None
            server = await self._handed_on(key) if key else None
            if server is None:
                server = await self._open_upstream(upstream_params, writer)
                if server is None:
                    return
            upstream = server.writer
            session = Session(self.limits)
            # The server's answer to the startup, as the new client's (a handed-on session's as it first was).
            writer.write(b"R" + struct.pack("!ii", 8, 0))
            for kind, body in server.greeting:
                writer.write(session.from_server(kind, body))
            await writer.drain()
            try:
                kept = await asyncio.wait_for(
                    relay(session, reader, writer, server.reader, upstream, keep_server=key is not None),
                    self.session_seconds,
                )
            except TimeoutError:
                log.info("DSQL session for user %r reached its %s s limit: closed", user, self.session_seconds)
                kept = False
            if kept and await _reset(server):
                self.upstream_sessions.give(key, server)
                upstream = None  # handed on, not closed
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass  # the client or the server went away: nothing to answer
        finally:
            for stream in (writer, upstream):
                if stream is not None and not stream.is_closing():
                    stream.close()

    async def _handed_on(self, key: tuple) -> UpstreamSession | None:
        """An idle session for these startup parameters that still answers (its server may have ended it)."""
        while (server := self.upstream_sessions.take(key)) is not None:
            if await _answers(server):
                return server
            server.writer.close()
        return None

    async def _open_upstream(self, params: dict[str, str], writer: asyncio.StreamWriter) -> UpstreamSession | None:
        """A new trust-auth session on the local PostgreSQL, read up to its first ReadyForQuery; None (the client
        told why) when it does not get that far."""
        up_reader, upstream = await asyncio.open_connection(self.config.pg_host, self.config.pg_port)
        upstream.write(_startup_message(params))
        await upstream.drain()
        kind, body = await read_message(up_reader)
        if kind != b"R" or body[:4] != struct.pack("!i", 0):
            upstream.close()
            if kind == b"R":
                writer.write(
                    error_response(
                        "28000",
                        "sandbox: the local PostgreSQL asks for a password",
                        f"give role {self.config.dsql_upstream_user} trust auth on {self.config.pg_host}",
                    )
                )
            else:
                writer.write(kind + struct.pack("!i", len(body) + 4) + body)  # its error (too many clients, say)
            return None
        greeting = []
        while kind != b"Z":
            kind, body = await read_message(up_reader)
            greeting.append((kind, body))
            if kind == b"E":
                upstream.close()
                for kind, body in greeting:
                    writer.write(kind + struct.pack("!i", len(body) + 4) + body)
                return None
        return UpstreamSession(up_reader, upstream, greeting, time.monotonic())

    def _check(self, token: str, user: str) -> Login:
        try:
            return self._logins.check(token, user, record=user == ADMIN_USER)
        except Exception as exc:  # moto unreachable, say: refuse, and say why
            return Login(Refusal("08006", f"sandbox could not check the token: {type(exc).__name__}"))

    def _database_role(self, principal: str, user: str) -> Refusal | None:
        """A login as a database role other than admin needs the role (WITH LOGIN) and an `AWS IAM GRANT` of it
        to the token's IAM principal (DSQL's guide: "Using database roles and IAM authentication")."""
        principal = _mapped_arn(principal)
        with psycopg.connect(**self.config.pg_params(self.config.dsql_database)) as conn:
            can_login = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [user]).fetchone()
            if not can_login or not can_login[0]:
                return Refusal("28000", f'role "{user}" does not exist or may not log in')
            mapped = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s AND arn = %s)",
                [user, principal],
            ).fetchone()[0]
        if not mapped:
            return Refusal(
                "28000",
                f'IAM authentication failed for user "{user}": {principal or "the signing principal"} is not '
                f"mapped to the role (AWS IAM GRANT {user} TO '<arn>')",
            )
        return None

    def _upstream_params(self, params: dict[str, str], user: str = ADMIN_USER) -> dict[str, str]:
        # Every DSQL database name lands in the one stand-in; admin is its owner role, another database role
        # logs in as itself (so its grants are what DSQL would enforce). Other options pass through, after
        # the ones that make the session behave as DSQL's (Repeatable Read, no lock waits).
        options = f"{UPSTREAM_OPTIONS} {params['options']}" if params.get("options") else UPSTREAM_OPTIONS
        return {
            **params,
            "options": options,
            "user": self.config.dsql_upstream_user if user == ADMIN_USER else user,
            "database": self.config.dsql_database,
        }

    async def _read_startup(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[int, dict[str, str]] | tuple[int, bytes] | None:
        while True:
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            if not 8 <= length <= MAX_STARTUP:
                return None
            payload = await reader.readexactly(length - 4)
            (code,) = struct.unpack("!i", payload[:4])
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                writer.write(b"N")  # no TLS, no GSS in the sandbox
                await writer.drain()
                continue
            if code == CANCEL_REQUEST:
                return code, struct.pack("!i", length) + payload
            if code != PROTOCOL_3:
                writer.write(error_response("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}"))
                return None
            items = payload[4:].split(b"\0")
            params = {items[i].decode(): items[i + 1].decode() for i in range(0, len(items) - 1, 2) if items[i]}
            return code, params


@dataclass
class UpstreamSession:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    greeting: list[tuple[bytes, bytes]]  # the server's messages after AuthenticationOk, to its first ReadyForQuery
    opened: float  # time.monotonic()


class UpstreamSessions:
    """Idle upstream sessions of admin logins whose clients have gone, handed to the next login with the same
    startup parameters: a PostgreSQL session costs the server a process and its start (3-4 ms of CPU, more than
    all the rest of a DSQL login here), and the probes log in every few seconds.

    A session is handed on only as a new one would be: reset with DISCARD ALL (settings back to their startup
    values, prepared statements, cursors, temporary objects and locks gone) after a client that ended cleanly
    with nothing in flight and no transaction open. A login is still checked in full before it gets one. One
    difference from a new session remains: settings given to the role or the database (ALTER ROLE/DATABASE
    ... SET) after the session began reach it only when it is replaced, at most `max_age` seconds later.
    Used from the endpoint's event loop only.
    """

    def __init__(self, *, max_idle: int = 16, max_age: float = 10.0) -> None:
        self.max_idle, self.max_age = max_idle, max_age
        self._idle: dict[tuple, list[UpstreamSession]] = {}
        self._sweep: asyncio.TimerHandle | None = None  # closes what nobody took in time

    def take(self, key: tuple) -> UpstreamSession | None:
        sessions = self._idle.get(key) or []
        while sessions:
            session = sessions.pop()
            if self._usable(session):
                return session
            session.writer.close()
        return None

    def give(self, key: tuple, session: UpstreamSession) -> None:
        self._expire()
        if self._usable(session) and sum(map(len, self._idle.values())) < self.max_idle:
            self._idle.setdefault(key, []).append(session)
            if self._sweep is None:
                self._sweep = asyncio.get_running_loop().call_later(self.max_age, self._swept)
        else:
            session.writer.close()

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for sessions in self._idle.values():
            for session in sessions:
                session.writer.close()
        self._idle.clear()

    def _usable(self, session: UpstreamSession) -> bool:
        fresh = time.monotonic() - session.opened < self.max_age
        return fresh and not session.reader.at_eof() and not session.writer.is_closing()

    def _swept(self) -> None:
        self._sweep = None
        self._expire()
        if self._idle:
            self._sweep = asyncio.get_running_loop().call_later(self.max_age, self._swept)

    def _expire(self) -> None:
        for key, sessions in list(self._idle.items()):
            kept = [session for session in sessions if self._usable(session)]
            for session in sessions:
                if session not in kept:
                    session.writer.close()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]


async def _answers(session: UpstreamSession, timeout: float = 2.0) -> bool:
    """A Sync on an idle upstream session: it answers ReadyForQuery 'I' and nothing else (a server that ended
    the session has sent its FATAL error and closed)."""
    session.writer.write(b"S" + struct.pack("!i", 4))
    try:
        await session.writer.drain()
        kind, body = await asyncio.wait_for(read_message(session.reader), timeout)
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
        return False
    return kind == b"Z" and body[:1] == b"I"


async def _reset(session: UpstreamSession, timeout: float = 2.0) -> bool:
    """DISCARD ALL on an idle upstream session: whether it is now as a new session would be."""
    session.writer.write(b"Q" + struct.pack("!i", len(b"DISCARD ALL\0") + 4) + b"DISCARD ALL\0")
    try:
        await session.writer.drain()
        while True:
            kind, body = await asyncio.wait_for(read_message(session.reader), timeout)
            if kind == b"E":
                return False
            if kind == b"Z":
                return body[:1] == b"I"
            # CommandComplete, and ParameterStatus for settings the reset put back
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
        return False


def _mapped_arn(principal: str) -> str:
    """The principal as DSQL maps it to a role: a role session counts as its role's ARN, a user as itself."""
    session = re.match(r"^arn:(?P<p>[^:]+):sts::(?P<a>\d+):assumed-role/(?P<r>[^/]+)/", principal)
    return f"arn:{session['p']}:iam::{session['a']}:role/{session['r']}" if session else principal


def _startup_message(params: dict[str, str]) -> bytes:
    body = struct.pack("!i", PROTOCOL_3)
    body += b"".join(key.encode() + b"\0" + value.encode() + b"\0" for key, value in params.items()) + b"\0"
    return struct.pack("!i", len(body) + 4) + body
