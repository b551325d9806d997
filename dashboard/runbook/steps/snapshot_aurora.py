from __future__ import annotations

from botocore.exceptions import ClientError

from dashboard.runbook.context import StepContext
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps.names import pre_migration_snapshot

SNAPSHOT_TIMEOUT = 3600


class SnapshotAurora(StepDefinition):
    def run(self, ctx: StepContext) -> dict:
        rds = ctx.aws("rds")
        cluster = ctx.environment.aurora_cluster_identifier
        name = pre_migration_snapshot(ctx.migration)
        if self._snapshot(ctx, name) is None:
            rds.create_db_cluster_snapshot(
                DBClusterIdentifier=cluster,
                DBClusterSnapshotIdentifier=name,
                Tags=[
                    {"Key": "managed-by", "Value": "velaops"},
                    {"Key": "migration", "Value": str(ctx.migration.uuid)},
                ],
            )
            ctx.log(f"snapshot {name} requested")
        else:
            ctx.log(f"snapshot {name} exists already (an earlier attempt made it)")

        def available() -> tuple[bool, str]:
            status = (self._snapshot(ctx, name) or {}).get("Status", "missing")
            return status == "available", status

        ctx.wait_for(f"snapshot {name}", available, timeout=SNAPSHOT_TIMEOUT, interval=5)
        snapshot = self._snapshot(ctx, name)
        return {"snapshot": name, "arn": snapshot.get("DBClusterSnapshotArn", ""), "cluster": cluster}

    @staticmethod
    def _snapshot(ctx: StepContext, name: str) -> dict | None:
        try:
            found = ctx.aws("rds").describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "DBClusterSnapshotNotFoundFault":
                return None
            raise
        return (found.get("DBClusterSnapshots") or [None])[0]


STEP = SnapshotAurora(
    key="snapshot_aurora",
    title="Snapshot Aurora",
    summary="Take a manual cluster snapshot of Aurora and wait until it is available.",
)
