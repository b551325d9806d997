"""Where the sandbox's parts listen and what its resources are called: one dataclass, from env or args."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import dj_database_url

REGION = "us-east-1"  # moto serves DSQL only in us-east-1 and us-east-2
ACCOUNT_ID = "123456789012"  # moto's default account
LOOPBACK = "127.0.0.1"
# Signing keys for processes that have no AWS credentials at all: moto ignores signatures, and the sandbox's
# DSQL endpoint accepts tokens signed with these as well as with the sandbox process's own credentials.
FALLBACK_ACCESS_KEY_ID = "sandbox"
FALLBACK_SECRET_ACCESS_KEY = "sandbox"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class SandboxConfig:
    # Ports: one knob (SANDBOX_PORT) moves them all; each can still be set on its own.
    moto_port: int = 5000
    dsql_port: int = 5001
    health_port: int = 5002
    control_port: int = 5003
    host: str = LOOPBACK

    # The local PostgreSQL that stands in for Aurora and every DSQL cluster (trust auth on loopback).
    pg_host: str = LOOPBACK
    pg_port: int = 5432
    pg_admin_user: str = "postgres"
    pg_admin_password: str = field(default="", repr=False)
    aurora_database: str = "vela_aurora_sandbox"
    aurora_user: str = "vela"
    dsql_database: str = "vela_dsql_sandbox"
    dsql_upstream_user: str = "vela_dsql_admin"

    # DSQL clusters stay CREATING this long, as on AWS (moto's state manager, progression "time").
    dsql_creating_seconds: int = 5
    # A health request under the "timeout" fault sleeps this long before answering.
    health_timeout_seconds: float = 30.0
    environment_slug: str = "sandbox"
    region: str = REGION
    account_id: str = ACCOUNT_ID

    @property
    def moto_url(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.health_port}/health/dsql"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.control_port}"

    def pg_params(self, dbname: str = "postgres", user: str | None = None) -> dict:
        return {
            "host": self.pg_host,
            "port": self.pg_port,
            "user": user or self.pg_admin_user,
            "password": self.pg_admin_password or None,
            "dbname": dbname,
            "autocommit": True,
            "connect_timeout": 5,
        }

    def with_ports(self, base: int) -> SandboxConfig:
        return replace(self, moto_port=base, dsql_port=base + 1, health_port=base + 2, control_port=base + 3)

    @classmethod
    def from_env(cls, database: dict | None = None, **overrides) -> SandboxConfig:
        """Ports from SANDBOX_*_PORT; the local PostgreSQL is the server (not the database) VelaOps uses:
        `database` in Django's DATABASES form, else parsed from DATABASE_URL."""
        base = _env_int("SANDBOX_PORT", 5000)
        url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/velaops"
        db = database or dj_database_url.parse(url)
        config = cls(
            pg_host=db.get("HOST") or LOOPBACK,
            pg_port=int(db.get("PORT") or 5432),
            pg_admin_user=db.get("USER") or "postgres",
            pg_admin_password=db.get("PASSWORD") or "",
            dsql_creating_seconds=_env_int("SANDBOX_DSQL_CREATING_SECONDS", 5),
        ).with_ports(base)
        suffix = os.environ.get("SANDBOX_DATABASE_SUFFIX", "")
        config = replace(
            config, aurora_database=config.aurora_database + suffix, dsql_database=config.dsql_database + suffix
        )
        ports = {
            "dsql_port": _env_int("SANDBOX_DSQL_PORT", config.dsql_port),
            "health_port": _env_int("SANDBOX_HEALTH_PORT", config.health_port),
            "control_port": _env_int("SANDBOX_CONTROL_PORT", config.control_port),
        }
        return replace(config, **{**ports, **overrides})
