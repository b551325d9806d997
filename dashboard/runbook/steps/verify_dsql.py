from __future__ import annotations

import time
import uuid

from dashboard import dsql
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps import dsql_cluster

PROBE_TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS velaops_probe (id text PRIMARY KEY, written_at timestamptz NOT NULL, note text)"
)


class VerifyDsql(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        endpoint = dsql_cluster.endpoint(ctx)
        ctx.check_cancel()
        # One timed login (the DSQL probe's too); its connection then serves the write/read round trip.
        login = dsql.TimedLogin(ctx.environment, endpoint, session=ctx.session)
        with login.open() as connection:
            timings = login.timings
            ctx.log(
                f"IAM-token login and SELECT 1: token {timings.token_ms:.1f} ms, connect {timings.connect_ms:.1f} ms, "
                f"query {timings.query_ms:.1f} ms"
            )
            ctx.check_cancel()
            marker = str(uuid.uuid4())
            # DSQL runs DDL and DML in separate transactions; autocommit keeps each statement its own.
            connection.execute(PROBE_TABLE_DDL)
            started = time.perf_counter()
            connection.execute(
                "INSERT INTO velaops_probe (id, written_at, note) VALUES (%s, now(), %s)",
                [marker, f"migration {ctx.migration.uuid}"],
            )
            row = connection.execute("SELECT note FROM velaops_probe WHERE id = %s", [marker]).fetchone()
            round_trip_ms = (time.perf_counter() - started) * 1000
            connection.execute("DELETE FROM velaops_probe WHERE id = %s", [marker])
        if not row:
            raise StepFailed("The probe row written to DSQL could not be read back.")
        ctx.log(f"write/read round trip on velaops_probe: {round_trip_ms:.1f} ms")
        return {
            "endpoint": endpoint,
            "token_ms": round(timings.token_ms, 2),
            "connect_ms": round(timings.connect_ms, 2),
            "query_ms": round(timings.query_ms, 2),
            "round_trip_ms": round(round_trip_ms, 2),
        }


STEP = VerifyDsql(
    key="verify_dsql",
    title="Verify DSQL",
    summary="IAM-token login to the new cluster, SELECT 1 and a write/read round trip on a probe table, timed.",
)
