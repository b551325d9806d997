from __future__ import annotations

from botocore.exceptions import ClientError

from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps.guard import refuse_if_stack_owned
from dashboard.runbook.steps.names import final_snapshot
from dashboard.runbook.steps.snapshot_aurora import SnapshotAurora
from dashboard.stacks import ownership

DELETE_TIMEOUT = 3600


class DecommissionAurora(StepDefinition):
    def confirmation_name(self, step, environment) -> str:
        return environment.aurora_cluster_identifier

    def run(self, ctx: StepContext) -> dict:
        rds = ctx.aws("rds")
        identifier = ctx.environment.aurora_cluster_identifier
        snapshot = final_snapshot(ctx.migration)
        cluster = self._cluster(ctx, identifier)
        if cluster is None:
            ctx.log(f"{identifier} is gone already")
        else:
            refuse_if_stack_owned(ctx, ownership.AURORA, identifier, f"delete {identifier}")
            if cluster.get("DeletionProtection"):
                rds.modify_db_cluster(DBClusterIdentifier=identifier, DeletionProtection=False, ApplyImmediately=True)
                ctx.log(f"deletion protection of {identifier} turned off")
            # Aurora refuses to delete a cluster that still has instances.
            for member in cluster.get("DBClusterMembers") or []:
                instance = member["DBInstanceIdentifier"]
                rds.delete_db_instance(DBInstanceIdentifier=instance)
                ctx.log(f"instance {instance} deletion requested")
                ctx.wait_for(
                    f"instance {instance}",
                    lambda i=instance: self._instance_gone(ctx, i),
                    timeout=DELETE_TIMEOUT,
                    interval=5,
                )
            if cluster.get("Status") != "deleting":
                rds.delete_db_cluster(
                    DBClusterIdentifier=identifier, SkipFinalSnapshot=False, FinalDBSnapshotIdentifier=snapshot
                )
                ctx.log(f"{identifier} deletion requested with final snapshot {snapshot}")

            def gone() -> tuple[bool, str]:
                found = self._cluster(ctx, identifier)
                return found is None, "deleted" if found is None else found.get("Status", "?")

            ctx.wait_for(f"cluster {identifier}", gone, timeout=DELETE_TIMEOUT, interval=5)
        final = SnapshotAurora._snapshot(ctx, snapshot)
        if final is None:
            raise StepFailed(f"{identifier} is gone but its final snapshot {snapshot} is not there.")
        ctx.log(f"final snapshot {snapshot}: {final.get('Status')}")
        return {
            "cluster": identifier,
            "deleted": True,
            "final_snapshot": snapshot,
            "final_snapshot_arn": final.get("DBClusterSnapshotArn", ""),
        }

    @staticmethod
    def _cluster(ctx: StepContext, identifier: str) -> dict | None:
        try:
            return ctx.aws("rds").describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "DBClusterNotFoundFault":
                return None
            raise

    @staticmethod
    def _instance_gone(ctx: StepContext, instance: str) -> tuple[bool, str]:
        try:
            found = ctx.aws("rds").describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "DBInstanceNotFound":
                return True, "deleted"
            raise
        return False, found.get("DBInstanceStatus", "?")


STEP = DecommissionAurora(
    key="decommission_aurora",
    title="Decommission Aurora",
    summary="Turn deletion protection off, delete the Aurora cluster with a final snapshot, wait until it is gone.",
    destructive=True,
)
