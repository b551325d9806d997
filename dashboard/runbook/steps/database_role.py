"""The application's own database role in DSQL: least privilege instead of admin.

DSQL's model (Aurora DSQL user guide, "Using database roles and IAM authentication", checked 2026-12-02):
admin creates a role `WITH LOGIN`, grants it what it needs like any PostgreSQL role, and maps it to an IAM
principal with `AWS IAM GRANT role TO 'arn'`; that principal then logs in as the role with a `dsql:DbConnect`
token (the mappings are in `sys.iam_pg_role_mappings`). This step makes `vela_api` for the API Lambda: the
schema's tables to read and write, nothing else, mapped to the Lambda's execution role. The Lambda's
`DSQL_USER` then names it (set by the point step, or by the API stack's change). Each statement runs in its own
transaction (autocommit), as DSQL runs DDL.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from dashboard import dsql
from dashboard.readiness.permissions import caller_role_arn
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps import dsql_cluster

APP_ROLE = "vela_api"
PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
# VelaOps's probes: a role of their own, their table in a schema of their own, never the application's.
MONITOR_ROLE = "velaops_monitor"
MONITOR_SCHEMA = "velaops"
MONITOR_TABLE = "velaops.probe"  # dashboard.monitoring.probes.dsql.MONITOR_TABLE


class DatabaseRole(StepDefinition):
    def run(self, ctx: StepContext) -> dict[str, Any]:
        principal = ctx.aws("lambda").get_function_configuration(FunctionName=ctx.environment.lambda_function_name)[
            "Role"
        ]
        role = sql.Identifier(APP_ROLE)
        with dsql.TimedLogin(ctx.environment, dsql_cluster.endpoint(ctx), session=ctx.session).open() as conn:
            try:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone()
                created = not exists
                if created:
                    conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN").format(role))
                    ctx.log(f"role {APP_ROLE} created")
                else:
                    ctx.log(f"role {APP_ROLE} exists: its grants are made again")
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
                conn.execute(sql.SQL(f"GRANT {PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {{}}").format(role))
                # DSQL's statement (not PostgreSQL's): the literal is the principal's ARN, quoted as a string.
                conn.execute(sql.SQL("AWS IAM GRANT {} TO {}").format(role, sql.Literal(principal)))
                mapped = conn.execute(
                    "SELECT arn FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s", [APP_ROLE]
                ).fetchall()
                tables = [
                    name
                    for (name,) in conn.execute(
                        "SELECT table_name FROM information_schema.role_table_grants "
                        "WHERE grantee = %s AND privilege_type = 'SELECT' ORDER BY 1",
                        [APP_ROLE],
                    )
                ]
            except psycopg.Error as exc:
                raise StepFailed(f"Setting up {APP_ROLE} failed: {str(exc).strip()}") from None
        if principal not in [arn for (arn,) in mapped]:
            raise StepFailed(f"{APP_ROLE} is not mapped to {principal} after AWS IAM GRANT.")
        ctx.log(f"{APP_ROLE} may {PRIVILEGES} on {len(tables)} tables and logs in as {principal}")
        monitor = self._monitor(ctx)
        return {"role": APP_ROLE, "principal": principal, "created": created, "tables": tables, "monitor": monitor}

    def _monitor(self, ctx: StepContext) -> dict[str, Any]:
        """velaops_monitor for the probes, mapped to VelaOps's own principal; the environment's probes use it."""
        principal = caller_role_arn(ctx.aws("iam"), ctx.aws("sts"))
        role = sql.Identifier(MONITOR_ROLE)
        with dsql.TimedLogin(ctx.environment, dsql_cluster.endpoint(ctx), session=ctx.session).open() as conn:
            try:
                created = not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [MONITOR_ROLE]).fetchone()
                if created:
                    conn.execute(sql.SQL("CREATE ROLE {} WITH LOGIN").format(role))
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(MONITOR_SCHEMA)))
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {MONITOR_TABLE} (id text PRIMARY KEY, at timestamptz NOT NULL)"
                )
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(MONITOR_SCHEMA), role))
                conn.execute(sql.SQL(f"GRANT SELECT, INSERT, UPDATE ON {MONITOR_TABLE} TO {{}}").format(role))
                conn.execute(sql.SQL("AWS IAM GRANT {} TO {}").format(role, sql.Literal(principal)))
            except psycopg.Error as exc:
                raise StepFailed(f"Setting up {MONITOR_ROLE} failed: {str(exc).strip()}") from None
        environment = ctx.environment
        environment.dsql_probe_user = MONITOR_ROLE
        environment.save(update_fields=["dsql_probe_user", "updated_at"])
        ctx.log(f"the probes log in as {MONITOR_ROLE} ({principal}) and write only {MONITOR_TABLE}")
        return {"role": MONITOR_ROLE, "principal": principal, "created": created, "table": MONITOR_TABLE}

    def rollback(self, ctx: StepContext) -> dict[str, Any]:
        outputs = ctx.step.outputs
        role = sql.Identifier(APP_ROLE)
        monitor = outputs.get("monitor") or {}
        environment = ctx.environment
        if environment.dsql_probe_user == MONITOR_ROLE:
            environment.dsql_probe_user = ""
            environment.save(update_fields=["dsql_probe_user", "updated_at"])
        with dsql.TimedLogin(ctx.environment, dsql_cluster.endpoint(ctx), session=ctx.session).open() as conn:
            try:
                if monitor.get("principal"):
                    conn.execute(
                        sql.SQL("AWS IAM REVOKE {} FROM {}").format(
                            sql.Identifier(MONITOR_ROLE), sql.Literal(monitor["principal"])
                        )
                    )
                if monitor.get("created"):
                    conn.execute(f"DROP TABLE IF EXISTS {MONITOR_TABLE}")
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {}").format(sql.Identifier(MONITOR_SCHEMA)))
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(MONITOR_ROLE)))
                if outputs.get("principal"):
                    conn.execute(sql.SQL("AWS IAM REVOKE {} FROM {}").format(role, sql.Literal(outputs["principal"])))
                if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE]).fetchone():
                    return {"dropped": False}
                conn.execute(sql.SQL(f"REVOKE {PRIVILEGES} ON ALL TABLES IN SCHEMA public FROM {{}}").format(role))
                conn.execute(sql.SQL("REVOKE USAGE ON SCHEMA public FROM {}").format(role))
                if outputs.get("created"):
                    conn.execute(sql.SQL("DROP ROLE {}").format(role))
                    ctx.log(f"role {APP_ROLE} dropped")
            except psycopg.Error as exc:
                raise StepFailed(f"Taking back {APP_ROLE} failed: {str(exc).strip()}") from None
        return {"dropped": bool(outputs.get("created"))}


STEP = DatabaseRole(
    key="database_role",
    title="The application's database role",
    summary=f"Create {APP_ROLE} WITH LOGIN on the cluster, grant it the schema's tables (read and write, nothing "
    "else), map it to the API Lambda's execution role (AWS IAM GRANT); the Lambda logs in as it, not as admin. "
    f"The probes get {MONITOR_ROLE}, mapped to VelaOps, with their table {MONITOR_TABLE} in a schema of their own.",
    rollback_summary="Unmap the roles, revoke their grants, drop what this step created.",
)
