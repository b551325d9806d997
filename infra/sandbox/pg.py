"""Small, idempotent helpers on the local PostgreSQL (roles and databases the sandbox owns)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from infra.sandbox.config import SandboxConfig


def ensure_role(config: SandboxConfig, role: str) -> None:
    """A LOGIN role without a password: the local server's trust auth on loopback lets it in."""
    with psycopg.connect(**config.pg_params()) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))


def ensure_database(config: SandboxConfig, name: str, owner: str) -> bool:
    """Create `name` owned by `owner` unless it exists; True if it was created."""
    with psycopg.connect(**config.pg_params()) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
        return True


def drop_database(config: SandboxConfig, name: str) -> None:
    with psycopg.connect(**config.pg_params()) as conn:
        # FORCE ends the sessions still attached (a DSQL client kept open by a test, a psql shell).
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
