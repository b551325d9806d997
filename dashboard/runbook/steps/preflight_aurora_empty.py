from __future__ import annotations

from psycopg import sql

from dashboard import aurora
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition

USER_TABLES = """
    SELECT table_schema, table_name FROM information_schema.tables
    WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
      AND left(table_schema, 3) <> 'pg_'
    ORDER BY 1, 2
"""


class PreflightAuroraEmpty(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        identifier = ctx.environment.aurora_cluster_identifier
        cluster = ctx.aws("rds").describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
        ctx.log(
            f"Aurora {identifier}: {cluster['Status']}, engine {cluster['Engine']} {cluster.get('EngineVersion', '')}"
        )
        if cluster["Engine"] != "aurora-postgresql":
            raise StepFailed(f"{identifier} runs {cluster['Engine']}, not aurora-postgresql.")
        if cluster["Status"] != "available":
            raise StepFailed(f"{identifier} is {cluster['Status']}; it must be available to be inspected.")
        ctx.check_cancel()
        counts: dict[str, int] = {}
        with aurora.connect(ctx.environment, ctx.session) as connection:
            ctx.log("logged in to Aurora with the credentials from Secrets Manager")
            for schema, table in connection.execute(USER_TABLES).fetchall():
                ctx.check_cancel()
                query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                counts[f"{schema}.{table}"] = connection.execute(query).fetchone()[0]
        with_rows = {name: rows for name, rows in counts.items() if rows}
        ctx.log(f"{len(counts)} user tables, {len(with_rows)} with rows")
        if with_rows:
            listing = ", ".join(f"{name} ({rows} rows)" for name, rows in with_rows.items())
            raise StepFailed(f"Aurora holds data, so the plan's premise is false: {listing}.", {"tables": counts})
        return {"cluster": identifier, "status": cluster["Status"], "engine": cluster["Engine"], "tables": counts}


STEP = PreflightAuroraEmpty(
    key="preflight_aurora_empty",
    title="Preflight: Aurora holds no data",
    summary="Log in to Aurora with its Secrets Manager credentials and count the rows of every user table.",
)
