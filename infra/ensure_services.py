"""Before `make run` starts anything: are PostgreSQL and Redis there? If not, say so in one line and exit 1.

    python -m infra.ensure_services        # reads DATABASE_URL and REDIS_URL like the settings do

Without this, a missing server showed up as a psycopg traceback from infra/ensure_database.py, or as a
stack that started and then died process by process.
"""

from __future__ import annotations

import os
import socket
import sys

import dj_database_url
import psycopg
import redis

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/velaops"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TIMEOUT = 3
MISSING = "missing"
WAYS_OUT = "or run the whole stack in containers instead: `docker compose up` (README, Containers)"


def postgres_params(url: str) -> dict:
    config = dj_database_url.parse(url)
    return {
        "host": config.get("HOST") or "127.0.0.1",
        "port": int(config.get("PORT") or 5432),
        "user": config.get("USER") or "postgres",
        "password": config.get("PASSWORD") or None,
        "dbname": "postgres",  # the maintenance database: VelaOps's own may not exist yet
        "connect_timeout": TIMEOUT,
    }


def where(host: str, port: int) -> str:
    return f"socket {host}/.s.PGSQL.{port}" if host.startswith("/") else f"{host}:{port}"


def _answers(host: str, port: int) -> bool:
    try:
        if host.startswith("/"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(TIMEOUT)
                sock.connect(f"{host}/.s.PGSQL.{port}")
        else:
            socket.create_connection((host, port), timeout=TIMEOUT).close()
    except OSError:
        return False
    return True


def check_postgres(url: str) -> tuple[str, str] | None:
    """None if the server answers and lets us in; else (what is wrong, where it was looked for)."""
    params = postgres_params(url)
    place = where(params["host"], params["port"])
    if not _answers(params["host"], params["port"]):
        return MISSING, place
    try:
        psycopg.connect(**params).close()
    except psycopg.Error as exc:
        # psycopg's message spans lines ("connection failed: ... FATAL:  role x does not exist"): its last part.
        reason = " ".join(str(exc).split()).rpartition("FATAL: ")[2] or type(exc).__name__
        return f"refuses the login ({reason.strip()})", place
    return None


def check_redis(url: str) -> tuple[str, str] | None:
    client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    kwargs = client.connection_pool.connection_kwargs
    place = kwargs.get("path") or f"{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}"
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError) as exc:  # a wrong password, NOAUTH
        return f"refuses the login ({exc})", place
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return MISSING, place
    finally:
        client.close()
    return None


def problems_line(database_url: str, redis_url: str) -> str | None:
    """The one line to print, or None when both answer."""
    found = []
    if (postgres := check_postgres(database_url)) is not None:
        found.append(("PostgreSQL", "DATABASE_URL", *postgres))
    if (broker := check_redis(redis_url)) is not None:
        found.append(("Redis", "REDIS_URL", *broker))
    if not found:
        return None
    missing = [f"{name} ({variable}) at {place}" for name, variable, kind, place in found if kind == MISSING]
    refusing = [f"{name} ({variable}) at {place} {kind}" for name, variable, kind, place in found if kind != MISSING]
    parts = []
    if missing:
        them = "them" if len(missing) > 1 else "it"
        parts.append(f"nothing answers as {' nor as '.join(missing)}: start {them}")
    if refusing:
        parts.append("; ".join(refusing) + ": fix the URL")
    return f"make run: {'; '.join(parts)}, {WAYS_OUT}."


def main() -> int:
    line = problems_line(
        os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    )
    if line is None:
        return 0
    print(line, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
