from __future__ import annotations

from botocore.exceptions import ClientError

from dashboard.dsql import cluster_endpoint
from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps.guard import refuse_if_stack_owned
from dashboard.runbook.steps.names import dsql_client_token, dsql_tags
from dashboard.stacks import ownership

ACTIVE_TIMEOUT = 1800
GONE = {"DELETING", "DELETED", "FAILED", "PENDING_DELETE"}
# Usable: an idle cluster is woken by the next login (the verify step's), not by waiting.
READY = {"ACTIVE", "IDLE", "INACTIVE"}


class ProvisionDsql(StepDefinition):
    def confirmation_name(self, step, environment) -> str:
        return step.outputs.get("identifier") or environment.dsql_cluster_identifier

    def run(self, ctx: StepContext) -> dict:
        dsql = ctx.aws("dsql")
        cluster = self._cluster_of_this_migration(ctx)
        if cluster:
            ctx.log(f"cluster {cluster['identifier']} of this migration exists already ({cluster['status']})")
        else:
            # Where the stacks own the database, DSQL comes through them (or their next deploy adds a second).
            refuse_if_stack_owned(
                ctx,
                ownership.AURORA,
                ctx.environment.aurora_cluster_identifier,
                "create a DSQL cluster beside the stacks",
            )
            # A generation per rollback: after one, the same token would hand back the deleted cluster.
            generation = ctx.step.attempts.filter(action="rollback", status="succeeded").count()
            cluster = dsql.create_cluster(
                deletionProtectionEnabled=True,
                tags=dsql_tags(ctx.migration),
                clientToken=dsql_client_token(ctx.migration, generation),
            )
            ctx.log(f"cluster {cluster['identifier']} requested")
        identifier = cluster["identifier"]

        def active() -> tuple[bool, str]:
            status = dsql.get_cluster(identifier=identifier)["status"]
            if status in GONE:
                raise StepFailed(f"cluster {identifier} went {status} while being created: roll this step back")
            if status == "PENDING_SETUP":
                raise StepFailed(
                    f"cluster {identifier} is PENDING_SETUP, a multi-Region cluster waiting for its peer: "
                    "this runbook provisions single-Region clusters only"
                )
            return status in READY, status

        ctx.wait_for(f"cluster {identifier}", active, timeout=ACTIVE_TIMEOUT, interval=3)
        described = dsql.get_cluster(identifier=identifier)
        if described["status"] != "ACTIVE":
            ctx.log(f"cluster {identifier} is {described['status']}: the next login wakes it")
        service_name = dsql.get_vpc_endpoint_service_name(identifier=identifier)["serviceName"]
        environment = ctx.environment
        environment.dsql_cluster_identifier = identifier
        environment.save(update_fields=["dsql_cluster_identifier", "updated_at"])
        return {
            "identifier": identifier,
            "arn": described["arn"],
            # The API names the endpoint; built by hand only where it does not (older answers).
            "endpoint": described.get("endpoint") or cluster_endpoint(identifier, environment.region),
            "vpc_endpoint_service_name": service_name,
            "deletion_protection": described.get("deletionProtectionEnabled"),
            "tags": described.get("tags") or dsql_tags(ctx.migration),
        }

    def rollback(self, ctx: StepContext) -> dict:
        dsql = ctx.aws("dsql")
        identifier = ctx.step.outputs.get("identifier") or (self._cluster_of_this_migration(ctx) or {}).get(
            "identifier"
        )
        if not identifier:
            ctx.log("no cluster of this migration exists; nothing to delete")
            return {"deleted": None}
        status = self._status(ctx, identifier)
        if status not in GONE and status != "missing":
            # DSQL refuses DeleteCluster (ConflictException) while an update is applying: wait it out.
            self._wait_settled(ctx, identifier)
            if dsql.get_cluster(identifier=identifier).get("deletionProtectionEnabled"):
                dsql.update_cluster(identifier=identifier, deletionProtectionEnabled=False)
                ctx.log(f"deletion protection of {identifier} turned off")
                self._wait_settled(ctx, identifier)
            dsql.delete_cluster(identifier=identifier)
            ctx.log(f"cluster {identifier} deletion requested")

        def gone() -> tuple[bool, str]:
            state = self._status(ctx, identifier)
            return state in {"DELETED", "missing"}, state

        ctx.wait_for(f"cluster {identifier}", gone, timeout=ACTIVE_TIMEOUT, interval=3)
        environment = ctx.environment
        if environment.dsql_cluster_identifier == identifier:
            environment.dsql_cluster_identifier = ""
            environment.save(update_fields=["dsql_cluster_identifier", "updated_at"])
        return {"deleted": identifier}

    def _wait_settled(self, ctx: StepContext, identifier: str) -> None:
        def settled() -> tuple[bool, str]:
            state = self._status(ctx, identifier)
            return state != "UPDATING", state

        ctx.wait_for(f"cluster {identifier} to finish updating", settled, timeout=ACTIVE_TIMEOUT, interval=2)

    @staticmethod
    def _status(ctx: StepContext, identifier: str) -> str:
        try:
            return ctx.aws("dsql").get_cluster(identifier=identifier)["status"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return "missing"
            raise

    @staticmethod
    def _cluster_of_this_migration(ctx: StepContext) -> dict | None:
        """Converge: a cluster tagged with this migration that is not going away."""
        dsql = ctx.aws("dsql")
        token = None
        wanted = str(ctx.migration.uuid)
        while True:
            page = dsql.list_clusters(**({"nextToken": token} if token else {}))
            for summary in page.get("clusters", []):
                cluster = dsql.get_cluster(identifier=summary["identifier"])
                if (cluster.get("tags") or {}).get("migration") == wanted and cluster["status"] not in GONE:
                    return cluster
            token = page.get("nextToken")
            if not token:
                return None


STEP = ProvisionDsql(
    key="provision_dsql",
    title="Provision DSQL",
    summary="Create the DSQL cluster (deletion protection, tags, idempotent client token) and wait until ACTIVE.",
    rollback_destructive=True,
    rollback_summary="Delete the DSQL cluster this migration created.",
)
