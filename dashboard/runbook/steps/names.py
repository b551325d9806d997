"""Deterministic names derived from the migration, so a retry finds what an earlier attempt made."""

from __future__ import annotations

import re

from dashboard.models import MigrationRun


def _label(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def pre_migration_snapshot(migration: MigrationRun) -> str:
    return f"velaops-{_label(migration.environment.slug)}-m{migration.pk}-pre-dsql"


def final_snapshot(migration: MigrationRun) -> str:
    return f"velaops-{_label(migration.environment.slug)}-m{migration.pk}-final"


def dsql_client_token(migration: MigrationRun, generation: int = 0) -> str:
    # The same token on every retry: DSQL returns the cluster it already made instead of a second one. A
    # rollback deleted that cluster: the next generation's token asks for a new one.
    return f"velaops-{migration.uuid}" + (f"-g{generation}" if generation else "")


def dsql_tags(migration: MigrationRun) -> dict[str, str]:
    return {
        "environment": migration.environment.slug,
        "migration": str(migration.uuid),
        "managed-by": "velaops",
    }
