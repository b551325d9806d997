"""Adopt a DSQL cluster made out of band (the direct-API runbook, or by hand) into the database stack, rather
than let the stack's change set create a second one beside it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from dashboard.runbook.context import StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.steps.stack_change import DATABASE, owning_stack
from dashboard.stacks import adoption, changesets, ownership
from dashboard.stacks.changesets import Source, StackOperationFailed

GONE = {"DELETING", "DELETED", "FAILED"}


def _template_of(ctx: StepContext, stack: str, source: Source) -> dict[str, Any]:
    """The template the add-DSQL change will deploy: from its S3 URL, or the CI's change set."""
    if source.change_set:
        body = ctx.aws("cloudformation").get_template(StackName=stack, ChangeSetName=source.change_set)["TemplateBody"]
    else:
        parts = urlsplit(source.template_url)
        host, path = parts.hostname or "", parts.path.lstrip("/")
        if host.startswith("s3.") or host == "s3.amazonaws.com":
            bucket, _, key = path.partition("/")
        else:  # virtual-hosted style: <bucket>.s3.<region>.amazonaws.com/<key>
            bucket, key = host.split(".s3", 1)[0], path
        body = ctx.aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return json.loads(body) if isinstance(body, str) else body


class AdoptDsql(StepDefinition):
    def run(self, ctx: StepContext) -> dict[str, Any]:
        environment = ctx.environment
        cfn, dsql = ctx.aws("cloudformation"), ctx.aws("dsql")
        stack = owning_stack(ctx, DATABASE)
        owned = ownership.owned_resources(cfn, [stack])
        outside = []
        for summary in dsql.list_clusters().get("clusters") or []:
            identifier = summary["identifier"]
            if (ownership.DSQL, identifier) in owned:
                continue
            cluster = dsql.get_cluster(identifier=identifier)
            tags = cluster.get("tags") or {}
            ours = tags.get("managed-by") == "velaops" and tags.get("environment") == environment.slug
            if cluster.get("status") not in GONE and (ours or identifier == environment.dsql_cluster_identifier):
                outside.append(cluster)
        if not outside:
            ctx.log(f"no DSQL cluster of this environment outside {stack}: nothing to adopt")
            return {"adopted": None, "stack": stack}
        if len(outside) > 1:
            names = ", ".join(c["identifier"] for c in outside)
            raise StepFailed(
                f"Several DSQL clusters of this environment are outside {stack} ({names}): set the "
                "environment's DSQL cluster to the one to keep, and delete the others."
            )
        cluster = outside[0]
        source = Source.parse(environment.stack_changes.get("add_dsql"))
        if not source:
            raise StepFailed("The environment has no add_dsql change: it says what the cluster is called in the stack.")
        try:
            found = adoption.resource_of_type(_template_of(ctx, stack, source), ownership.DSQL)
            if found is None:
                raise StepFailed("The add_dsql template declares no AWS::DSQL::Cluster to adopt the cluster as.")
            logical_id, definition = found
            # Imported as it is (an import changes nothing); the next change set then brings it to the template.
            definition = {
                **definition,
                "Properties": {
                    **(definition.get("Properties") or {}),
                    "DeletionProtectionEnabled": bool(cluster.get("deletionProtectionEnabled")),
                    "Tags": [
                        {"Key": key, "Value": value}
                        for key, value in sorted((cluster.get("tags") or {}).items())
                        if not key.startswith("aws:")
                    ],
                },
            }
            current = cfn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
            current = json.loads(current) if isinstance(current, str) else current
            adoption.import_resource(
                cfn,
                stack,
                changesets.change_set_name(ctx.migration.pk, self.key),
                template=adoption.import_template(current, logical_id, definition),
                logical_id=logical_id,
                resource_type=ownership.DSQL,
                identifier={"Identifier": cluster["identifier"]},
                log=ctx.log,
                sleep=ctx.sleep,
            )
        except StackOperationFailed as exc:
            raise StepFailed(str(exc), exc.data) from None
        environment.dsql_cluster_identifier = cluster["identifier"]
        environment.save(update_fields=["dsql_cluster_identifier", "updated_at"])
        ctx.log(
            f"{cluster['identifier']} is now {logical_id} in {stack}; the next change set brings it to the template"
        )
        return {"adopted": cluster["identifier"], "stack": stack, "logical_id": logical_id}


STEP = AdoptDsql(
    key="adopt_dsql",
    title="Adopt a DSQL cluster made outside the stacks",
    summary="A cluster of this environment that no stack owns (made by the direct-API runbook or by hand) is "
    "imported into the database stack with an IMPORT change set, instead of a second one being created.",
)
