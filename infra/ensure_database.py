"""Create the database named by DATABASE_URL if it does not exist yet (used by `make run`).

Connects to the server's maintenance database `postgres` with the same credentials.
"""

from __future__ import annotations

import os
import sys

import dj_database_url
import psycopg
from psycopg import sql


def ensure_database(url: str) -> bool:
    config = dj_database_url.parse(url)
    name = config["NAME"]
    params = {
        "host": config.get("HOST") or "127.0.0.1",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or "postgres",
        "password": config.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**params) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


if __name__ == "__main__":
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/velaops")
    try:
        created = ensure_database(url)
    except psycopg.Error as exc:  # infra.ensure_services ran first: this is rare (permissions), one line anyway
        sys.exit(f"make run: cannot create the database of DATABASE_URL: {' '.join(str(exc).split())}")
    print(f"database {dj_database_url.parse(url)['NAME']}: {'created' if created else 'exists'}", file=sys.stderr)
