"""The change-set runbook on the sandbox (Vela as its CDK stacks hold it) through a real Celery worker."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from dashboard.health_route import fetch_health
from dashboard.models import AuditEvent
from dashboard.runbook import THROUGH_STACKS, service
from dashboard.runbook.export import migration_as_markdown
from dashboard.runbook.steps.stack_change import ExecuteChange
from dashboard.stacks import drift
from infra.sandbox.cfn.iam_auth import ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY
from tests.runbook.conftest import step
from tests.runbook.test_full_migration import act, aws, tables_snapshot, worker  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def run(migration, key, operator, environment, action="run"):
    definition = next(d for d in THROUGH_STACKS.steps if d.key == key)
    confirmation = ""
    if definition.is_destructive(action):
        confirmation = definition.confirmation_name(step(migration, key), environment)
    return act(migration, key, operator, action=action, confirmation=confirmation)


def test_the_whole_migration_through_change_sets(worker, fresh_sandbox_environment, operator):  # noqa: F811
    environment = fresh_sandbox_environment
    dynamodb_before = tables_snapshot(environment)
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    assert migration.runbook_version == THROUGH_STACKS.version
    started = AuditEvent.objects.get(action="migration.start", migration=migration)
    assert "ApiFunctionCE271BD4" in started.details["why"]

    for definition in THROUGH_STACKS.steps:
        attempt = run(migration, definition.key, operator, environment)
        assert attempt.status == "succeeded", (
            definition.key,
            attempt.error,
            list(attempt.logs.values_list("message", flat=True)),
        )
        if isinstance(definition, ExecuteChange):
            # Gated like every destructive action: the stack's name must be typed.
            assert definition.confirmation_name(step(migration, definition.key), environment) in (
                "DatabaseStack",
                "ApiStack",
            )

    migration.refresh_from_db()
    assert migration.status == "completed"
    environment.refresh_from_db()
    cfn = aws(environment, "cloudformation")

    # One DSQL cluster, owned by DatabaseStack, which the environment and the Lambda point at.
    dsql = aws(environment, "dsql")
    (listed,) = dsql.list_clusters()["clusters"]
    owned = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName="DatabaseStack")["StackResourceSummaries"]
    }
    assert owned["DsqlCluster"] == listed["identifier"] == environment.dsql_cluster_identifier
    assert "Aurora2CBAB212" not in owned
    cluster = dsql.get_cluster(identifier=listed["identifier"])
    variables = aws(environment, "lambda").get_function_configuration(FunctionName="vela-api")["Environment"][
        "Variables"
    ]
    assert variables["DSQL_CLUSTER_ARN"] == cluster["arn"]
    assert not {"AURORA_CLUSTER_ARN", "AURORA_SECRET_ARN"} & set(variables)
    assert fetch_health(environment.api_health_url).cluster_arn == cluster["arn"]

    # DynamoDB unchanged; Aurora (retained by r1, released by r2) decommissioned with its final snapshot.
    assert tables_snapshot(environment) == dynamodb_before
    rds = aws(environment, "rds")
    with pytest.raises(ClientError, match="DBClusterNotFound"):
        rds.describe_db_clusters(DBClusterIdentifier="vela-aurora")
    snapshots = {s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]}
    assert f"velaops-sandbox-m{migration.pk}-final" in snapshots
    # What pointed at Aurora went with it: its credentials (recoverable for 30 days) and its probe target
    # (paused, its history kept).
    decommissioned = step(migration, "decommission_aurora").outputs
    secret = aws(environment, "secretsmanager").describe_secret(SecretId=decommissioned["secret"]["arn"])
    assert secret["Name"] == "vela/aurora/credentials" and secret["DeletedDate"]
    assert environment.aurora_cluster_identifier == "" and environment.aurora_secret_id == ""
    assert decommissioned["retired_targets"] == ["vela-aurora"]
    assert environment.targets.get(kind="aurora", name="vela-aurora").paused

    # Both stacks in sync at the end; the summary lists every change set with its diff.
    for stack in ("DatabaseStack", "ApiStack"):
        assert drift.detect(cfn, stack, sleep=lambda s: None)["status"] == "IN_SYNC"
    summary = migration.summary
    assert [c["step"] for c in summary["change_sets"]] == [
        "review_add_dsql",
        "review_point_lambda",
        "review_drop_aurora_api",
        "review_remove_aurora",
    ]
    add = step(migration, "review_add_dsql").outputs
    assert {row["logical_id"]: row["action"] for row in add["diff"]}["DsqlCluster"] == "Add"
    # The execute step's log holds the stack's events as they happened.
    messages = list(step(migration, "execute_add_dsql").attempts.get().logs.values_list("message", flat=True))
    assert "DsqlCluster (AWS::DSQL::Cluster): CREATE_COMPLETE" in messages
    assert "DatabaseStack (AWS::CloudFormation::Stack): UPDATE_COMPLETE" in messages
    json.dumps(summary)
    # The run's report lists every change set with its diff; the previous templates are not dumped in it.
    report = migration_as_markdown(migration)
    assert "## Change sets" in report and "previous_template" not in report
    assert f"### {add['change_set']} on DatabaseStack — executed" in report
    assert "| Add | `DsqlCluster` | AWS::DSQL::Cluster | — |" in report
    assert "| Remove | `Aurora2CBAB212` | AWS::RDS::DBCluster | `vela-aurora` |" in report


def test_drift_fails_preflight_and_a_blocked_change_stops_the_review(
    worker,  # noqa: F811
    fresh_sandbox_environment,
    operator,
    approver,
):
    environment = fresh_sandbox_environment
    lam = aws(environment, "lambda")
    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName="vela-api", Environment={"Variables": {**variables, "HAND_SET": "1"}}
    )
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    run(migration, "preflight_stacks", operator, environment)
    attempt = run(migration, "preflight_drift", operator, environment)
    assert attempt.status == "failed"
    assert "ApiStack/ApiFunctionCE271BD4 (AWS::Lambda::Function) MODIFIED" in attempt.error["message"]
    assert "/Environment/Variables/HAND_SET ADD" in attempt.error["message"]
    # An approver (not the operator who ran it) accepts the drift: an override recorded with the drift it accepted.
    service.attempt_override(
        step=step(migration, "preflight_drift"),
        user=approver,
        source_address="127.0.0.1",
        reason="HAND_SET is a known debug flag",
    )
    accepted = step(migration, "preflight_drift").outputs["overridden"]
    assert accepted["by"] == str(approver)
    assert "ApiStack/ApiFunctionCE271BD4 (AWS::Lambda::Function) MODIFIED" in accepted["findings"]

    # A change that would replace the DSQL-less database stack's tables is blocked at review.
    for key in ("preflight_aurora_empty", "baseline_dynamodb", "snapshot_aurora", "adopt_dsql"):
        assert run(migration, key, operator, environment).status == "succeeded"
    template = json.loads(
        aws(environment, "s3")
        .get_object(
            Bucket=environment.stack_changes["add_dsql"]["template_url"].split("/")[3],
            Key=environment.stack_changes["add_dsql"]["template_url"].split("/", 4)[4],
        )["Body"]
        .read()
    )
    template["Resources"]["UsersTable9725E9C8"]["Properties"]["TableName"] = "vela-users-v2"
    s3 = admin(environment, "s3")
    bucket = environment.stack_changes["add_dsql"]["template_url"].split("/")[3]
    s3.put_object(Bucket=bucket, Key="replaces-a-table.json", Body=json.dumps(template).encode())
    environment.stack_changes = {
        **environment.stack_changes,
        "add_dsql": {"template_url": f"https://s3.us-east-1.amazonaws.com/{bucket}/replaces-a-table.json"},
    }
    environment.save(update_fields=["stack_changes"])
    attempt = run(migration, "review_add_dsql", operator, environment)
    assert attempt.status == "failed"
    assert (
        "UsersTable9725E9C8 (AWS::DynamoDB::Table, vela-users) would be modified: no change may touch a DynamoDB table"
        in attempt.error["message"]
    )
    assert aws(environment, "dynamodb").describe_table(TableName="vela-users")["Table"]["TableStatus"] == "ACTIVE"


def admin(environment, service: str):
    """The account's administrator: for what happens outside VelaOps (a CI publishing a template, a hand in the
    console); VelaOps's own principal may not do it."""
    return boto3.client(
        service,
        endpoint_url=environment.aws_endpoint_url,
        region_name=environment.region,
        aws_access_key_id=ADMIN_ACCESS_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET_ACCESS_KEY,
    )


def publish(environment, name: str, template: dict) -> dict:
    """A template put where the sandbox's CI would publish it; the stack_changes entry that names it."""
    bucket = environment.stack_changes["add_dsql"]["template_url"].split("/")[3]
    admin(environment, "s3").put_object(Bucket=bucket, Key=name, Body=json.dumps(template).encode())
    return {"template_url": f"https://s3.us-east-1.amazonaws.com/{bucket}/{name}"}


def test_a_failed_change_set_names_the_resource_and_the_rollback_restores_the_template(
    worker,  # noqa: F811
    fresh_sandbox_environment,
    operator,
):
    from infra.sandbox.stacks import template_body

    environment = fresh_sandbox_environment
    r1 = environment.stack_changes["add_dsql"]
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    for key in (
        "preflight_stacks",
        "preflight_drift",
        "preflight_aurora_empty",
        "baseline_dynamodb",
        "snapshot_aurora",
        "adopt_dsql",
    ):
        assert run(migration, key, operator, environment).status == "succeeded", key

    # r1 with a resource CloudFormation cannot create (an SSM parameter without its required Value).
    bad = json.loads(template_body("r1", "DatabaseStack"))
    bad["Resources"]["BadParameter"] = {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Name": "/x"}}
    environment.stack_changes = {**environment.stack_changes, "add_dsql": publish(environment, "bad.json", bad)}
    environment.save(update_fields=["stack_changes"])
    assert run(migration, "review_add_dsql", operator, environment).status == "succeeded"
    attempt = run(migration, "execute_add_dsql", operator, environment)
    assert attempt.status == "failed"
    assert attempt.error["message"].startswith(
        "DatabaseStack ended UPDATE_ROLLBACK_COMPLETE: BadParameter (AWS::SSM::Parameter)"
    )
    cfn = aws(environment, "cloudformation")
    assert "DsqlCluster" not in {
        r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName="DatabaseStack")["StackResourceSummaries"]
    }

    # Review again with the right template (rolling the review back deletes its change set), deploy it...
    assert run(migration, "review_add_dsql", operator, environment, action="rollback").status == "succeeded"
    environment.stack_changes = {**environment.stack_changes, "add_dsql": r1}
    environment.save(update_fields=["stack_changes"])
    assert run(migration, "review_add_dsql", operator, environment).status == "succeeded"
    assert run(migration, "execute_add_dsql", operator, environment).status == "succeeded"
    identifier = step(migration, "execute_add_dsql").outputs["identifier"]

    # ... then roll it back: the template from before the review, deployed through a change set of its own.
    attempt = run(migration, "execute_add_dsql", operator, environment, action="rollback")
    assert attempt.status == "succeeded", attempt.error
    restored = cfn.get_template(StackName="DatabaseStack")["TemplateBody"]
    restored = json.loads(restored) if isinstance(restored, str) else restored
    assert restored == json.loads(template_body("r0", "DatabaseStack"))
    # The cluster leaves the stack and stays, as its DeletionPolicy (Retain) says; the log says so.
    assert aws(environment, "dsql").get_cluster(identifier=identifier)["status"] == "ACTIVE"
    messages = list(attempt.logs.values_list("message", flat=True))
    assert "DsqlCluster (AWS::DSQL::Cluster): DELETE_SKIPPED" in messages


def test_the_direct_runbook_refuses_to_change_what_a_stack_owns(worker, fresh_sandbox_environment, operator):  # noqa: F811
    from dashboard.runbook import DIRECT
    from tests.runbook.conftest import mark

    environment = fresh_sandbox_environment
    # A direct-API migration (started while the environment named no stack), then the stacks are named.
    environment.cloudformation_stacks = []
    environment.save(update_fields=["cloudformation_stacks"])
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    assert migration.runbook_version == DIRECT.version
    environment.cloudformation_stacks = ["DatabaseStack", "ApiStack"]
    environment.save(update_fields=["cloudformation_stacks"])
    keys = [d.key for d in DIRECT.steps]
    mark(migration, *keys[: keys.index("provision_dsql")])
    attempt = act(migration, "provision_dsql", operator, confirmation="")
    assert attempt.status == "failed"
    assert attempt.error["message"].startswith(
        "Refused to create a DSQL cluster beside the stacks: vela-aurora is Aurora2CBAB212 (AWS::RDS::DBCluster) "
        "in stack DatabaseStack."
    )
    assert aws(environment, "dsql").list_clusters()["clusters"] == []
    mark(migration, "provision_dsql", "verify_dsql", "apply_schema", "database_role", "readiness", "baseline_api")
    cluster = {"identifier": "x", "arn": "arn:aws:dsql:us-east-1:123456789012:cluster/x", "endpoint": "x"}
    migration.steps.filter(key="provision_dsql").update(outputs=cluster)  # as if made beside the stacks
    attempt = act(migration, "point_lambda", operator)
    assert attempt.status == "failed"
    assert "vela-api is ApiFunctionCE271BD4 (AWS::Lambda::Function) in stack ApiStack" in attempt.error["message"]


def test_an_environment_migrated_the_old_way_is_adopted_not_doubled(
    worker,  # noqa: F811
    fresh_sandbox_environment,
    operator,
    approver,
):
    environment = fresh_sandbox_environment
    dsql, lam = aws(environment, "dsql"), aws(environment, "lambda")
    # What the direct-API runbook did here before: a cluster beside the stacks, the Lambda repointed by hand.
    made = dsql.create_cluster(
        deletionProtectionEnabled=True, tags={"environment": "sandbox", "migration": "old", "managed-by": "velaops"}
    )
    identifier = made["identifier"]
    while dsql.get_cluster(identifier=identifier)["status"] != "ACTIVE":
        pass
    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName="vela-api",
        Environment={
            "Variables": {
                **variables,
                "DSQL_CLUSTER_ARN": made["arn"],
                "DSQL_ENDPOINT": f"{identifier}.dsql.us-east-1.on.aws",
                "DSQL_REGION": "us-east-1",
            }
        },
    )
    environment.dsql_cluster_identifier = identifier
    environment.save(update_fields=["dsql_cluster_identifier"])

    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    assert run(migration, "preflight_stacks", operator, environment).status == "succeeded"
    drifted = run(migration, "preflight_drift", operator, environment)
    assert drifted.status == "failed" and "/Environment/Variables/DSQL_ENDPOINT ADD" in drifted.error["message"]
    service.attempt_override(
        step=step(migration, "preflight_drift"),
        user=approver,
        source_address="127.0.0.1",
        reason="the variables set by the earlier direct-API migration; the ApiStack change reconciles them",
    )
    keys = [d.key for d in THROUGH_STACKS.steps]
    for key in keys[keys.index("preflight_aurora_empty") :]:
        attempt = run(migration, key, operator, environment)
        assert attempt.status == "succeeded", (key, attempt.error, list(attempt.logs.values_list("message", flat=True)))

    adopted = step(migration, "adopt_dsql").outputs
    assert {key: adopted[key] for key in ("adopted", "stack", "logical_id")} == {
        "adopted": identifier,
        "stack": "DatabaseStack",
        "logical_id": "DsqlCluster",
    }
    # Still the one cluster, now the stack's; the Lambda's variables now come from ApiStack; both in sync.
    assert [c["identifier"] for c in dsql.list_clusters()["clusters"]] == [identifier]
    cfn = aws(environment, "cloudformation")
    owned = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName="DatabaseStack")["StackResourceSummaries"]
    }
    assert owned["DsqlCluster"] == identifier
    assert step(migration, "postcheck_drift").outputs["in_sync"] is True


def test_a_stack_stuck_in_update_rollback_failed_is_continued_by_the_rollback(
    worker,  # noqa: F811
    fresh_sandbox_environment,
    operator,
):
    """CloudFormation's own example of UPDATE_ROLLBACK_FAILED: a resource deleted outside it. The Lambda goes
    behind ApiStack's back; the update fails on it, so does the rollback. Once the function is back, rolling the
    execute step back continues the stack's rollback (ContinueUpdateRollback) and leaves it usable again."""
    environment = fresh_sandbox_environment
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    keys = [d.key for d in THROUGH_STACKS.steps]
    for key in keys[: keys.index("baseline_api") + 1]:
        assert run(migration, key, operator, environment).status == "succeeded", key
    lam = admin(environment, "lambda")  # out of band
    configuration = lam.get_function(FunctionName="vela-api")
    lam.delete_function(FunctionName="vela-api")

    failed = run(migration, "execute_point_lambda", operator, environment)
    assert failed.status == "failed"
    message = failed.error["message"]
    assert message.startswith("ApiStack ended UPDATE_ROLLBACK_FAILED: ApiFunctionCE271BD4 (AWS::Lambda::Function)")
    assert "roll this step back, which continues the rollback (ContinueUpdateRollback)" in message
    cfn = aws(environment, "cloudformation")
    assert cfn.describe_stacks(StackName="ApiStack")["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_FAILED"

    # The fix (here: the function put back as it was), then the step's rollback.
    config = configuration["Configuration"]
    lam.create_function(
        FunctionName="vela-api",
        Role=config["Role"],
        Runtime=config["Runtime"],
        Handler=config["Handler"],
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip archive
        Environment=config.get("Environment") or {},
        VpcConfig={k: config["VpcConfig"][k] for k in ("SubnetIds", "SecurityGroupIds")},
    )
    rollback = run(migration, "execute_point_lambda", operator, environment, action="rollback")
    assert rollback.status == "succeeded", rollback.error
    logs = list(rollback.logs.values_list("message", flat=True))
    assert "ApiStack is UPDATE_ROLLBACK_FAILED: continuing its rollback (ContinueUpdateRollback)" in logs
    assert "ApiStack (AWS::CloudFormation::Stack): UPDATE_ROLLBACK_COMPLETE" in logs
    assert cfn.describe_stacks(StackName="ApiStack")["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    assert "DSQL_ENDPOINT" not in variables
