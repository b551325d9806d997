from __future__ import annotations

from botocore.exceptions import ClientError

from dashboard.models import ProbeKind
from dashboard.monitoring.targets import targets_sync
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps.guard import refuse_if_stack_owned
from dashboard.runbook.steps.names import final_snapshot
from dashboard.runbook.steps.snapshot_aurora import SnapshotAurora
from dashboard.stacks import ownership

DELETE_TIMEOUT = 3600
SECRET = "AWS::SecretsManager::Secret"
# Secrets Manager's default: the credentials stay recoverable (RestoreSecret) for 30 days after the cluster.
SECRET_RECOVERY_DAYS = 30


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
        secret = self._delete_secret(ctx)
        retired = self._retire(ctx)
        return {
            "cluster": identifier,
            "deleted": True,
            "final_snapshot": snapshot,
            "final_snapshot_arn": final.get("DBClusterSnapshotArn", ""),
            "secret": secret,
            "retired_targets": retired,
        }

    @staticmethod
    def _delete_secret(ctx: StepContext) -> dict:
        """The cluster's credentials go with it (what r1's Retain kept, or what the direct-API account has),
        recoverable for SECRET_RECOVERY_DAYS; a secret a stack still owns is that stack's to remove."""
        secret_id = ctx.environment.aurora_secret_id
        if not secret_id:
            return {}
        secrets = ctx.aws("secretsmanager")
        try:
            described = secrets.describe_secret(SecretId=secret_id)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            ctx.log(f"secret {secret_id} is gone already")
            return {"id": secret_id, "deleted": True}
        arn = described["ARN"]
        if described.get("DeletedDate"):
            ctx.log(f"secret {described['Name']} is scheduled for deletion already ({described['DeletedDate']})")
            return {"arn": arn, "deletion_date": str(described["DeletedDate"])}
        refuse_if_stack_owned(ctx, SECRET, arn, f"delete secret {described['Name']}")
        answer = secrets.delete_secret(SecretId=arn, RecoveryWindowInDays=SECRET_RECOVERY_DAYS)
        ctx.log(
            f"secret {described['Name']} scheduled for deletion on {answer['DeletionDate']} "
            f"(RestoreSecret brings it back until then)"
        )
        return {"arn": arn, "deletion_date": str(answer["DeletionDate"])}

    @staticmethod
    def _retire(ctx: StepContext) -> list[str]:
        """The environment no longer has Aurora: its probe target is paused (its history kept), not probed
        into a stream of failures."""
        environment = ctx.environment
        probed = environment.targets.filter(kind=ProbeKind.AURORA, managed=True, paused=False)
        before = set(probed.values_list("pk", flat=True))
        environment.aurora_cluster_identifier = ""
        environment.aurora_secret_id = ""
        environment.save(update_fields=["aurora_cluster_identifier", "aurora_secret_id", "updated_at"])
        targets_sync(environment)  # saving syncs the targets too (dashboard.signals); explicit, and idempotent
        paused = list(environment.targets.filter(pk__in=before, paused=True).values_list("name", flat=True))
        for name in paused:
            ctx.log(f"probe target {name} retired (paused; its history stays)")
        return paused

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
    summary="Turn deletion protection off, delete the Aurora cluster with a final snapshot, wait until it is gone; "
    "schedule its credentials secret for deletion and retire its probe target (history kept).",
    destructive=True,
)
