"""Aurora's schema onto the new DSQL cluster: read from Aurora's catalog, translated for DSQL (every rewrite and
omission a finding), applied one DDL statement per transaction, then DSQL's catalog checked against Aurora's.
Rolling back drops what this step created (an empty table only: rows are data)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import psycopg

from dashboard import aurora, dsql
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps import dsql_cluster
from dashboard.schema import apply, catalog
from dashboard.schema.translate import translate


class ApplySchema(StepDefinition):
    def run(self, ctx: StepContext) -> dict[str, Any]:
        with aurora.connect(ctx.environment, ctx.session) as conn:
            source = catalog.read(conn)
        translation = translate(source)
        for finding in translation.findings:
            ctx.log(
                f"{finding.severity}: {finding.object}: {finding.detail} -> {finding.action}"
                + (f" [{finding.rule}]" if finding.rule else ""),
                level="warning" if finding.severity in ("warning", "dropped", "blocker") else "info",
            )
        outputs: dict[str, Any] = {
            "findings": [asdict(f) for f in translation.findings],
            "script": translation.script(),
            "objects": len(translation.statements),
        }
        if translation.blockers:
            raise StepFailed(
                "The translated schema has statements DSQL would refuse: "
                + "; ".join(f"{f.object}: {f.action}" for f in translation.blockers),
                outputs,
            )
        ctx.check_cancel()
        login = dsql.TimedLogin(ctx.environment, dsql_cluster.endpoint(ctx), session=ctx.session)
        with login.open() as conn:
            try:
                outputs["applied"] = apply.apply(conn, translation, log=ctx.log, sleep=ctx.sleep)
            except (psycopg.Error, apply.SchemaFailed) as exc:
                raise StepFailed(f"Applying the schema to DSQL failed: {str(exc).strip()}", outputs) from None
            differences = apply.parity(source, catalog.read(conn), translation)
        outputs["parity"] = differences
        if differences:
            raise StepFailed("DSQL's schema is not Aurora's: " + "; ".join(differences), outputs)
        created = sum(1 for r in outputs["applied"] if r["result"] == "created")
        ctx.log(f"parity: every table, column, primary key, index and view is there ({created} objects created)")
        return outputs

    def rollback(self, ctx: StepContext) -> dict[str, Any]:
        applied = ctx.step.outputs.get("applied") or []
        login = dsql.TimedLogin(ctx.environment, dsql_cluster.endpoint(ctx), session=ctx.session)
        with login.open() as conn:
            try:
                dropped = apply.drop_created(conn, applied, log=ctx.log)
            except (psycopg.Error, apply.SchemaFailed) as exc:
                raise StepFailed(f"Dropping the schema failed: {str(exc).strip()}") from None
        return {"dropped": dropped}


STEP = ApplySchema(
    key="apply_schema",
    title="Schema onto DSQL",
    summary="Aurora's schema read from its catalog, translated for DSQL (indexes ASYNC, identities with a cache, "
    "what DSQL lacks rewritten or left out, each a finding), applied one statement per transaction, checked "
    "for parity; the script is downloadable.",
    rollback_summary="Drop, newest first, the objects this step created (tables only while empty).",
)
