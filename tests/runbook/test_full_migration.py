"""The whole runbook on the sandbox through a real Celery worker, then its rollbacks."""

import boto3
import pytest
from botocore.exceptions import ClientError
from celery.contrib.testing.worker import start_worker

from dashboard.dsql import TimedLogin
from dashboard.health_route import fetch_health
from dashboard.models import Attempt
from dashboard.monitoring.probes import run_probe
from dashboard.runbook import DIRECT, service
from tests.runbook.conftest import step
from tests.runbook.test_worker import wait_finished
from tests.sandbox.helpers import clear_vela_schema_from_dsql
from velaops.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def worker():
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10) as running:
        yield running


def aws(environment, service_name):
    return boto3.client(service_name, region_name=environment.region, endpoint_url=environment.aws_endpoint_url)


def act(migration, key, operator, action="run", **kwargs):
    attempt = service.attempt_request(
        step=step(migration, key), action=action, user=operator, source_address="127.0.0.1", **kwargs
    )
    return wait_finished(attempt.pk, timeout=90)


def tables_snapshot(environment):
    ddb = aws(environment, "dynamodb")
    return {
        name: (ddb.describe_table(TableName=name)["Table"]["TableStatus"], ddb.scan(TableName=name)["Items"])
        for name in environment.dynamodb_tables
    }


def test_the_whole_migration_then_its_rollbacks(worker, fresh_direct_sandbox_environment, operator):
    environment = fresh_direct_sandbox_environment
    dynamodb_before = tables_snapshot(environment)
    aurora, secret_id = environment.aurora_cluster_identifier, environment.aurora_secret_id
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")

    for definition in DIRECT.steps:
        confirmation = aurora if definition.destructive else ""
        attempt = act(migration, definition.key, operator, confirmation=confirmation)
        assert attempt.status == "succeeded", (
            definition.key,
            attempt.error,
            list(attempt.logs.values_list("message", flat=True)),
        )

    migration.refresh_from_db()
    assert migration.status == "completed"
    environment.refresh_from_db()

    # DSQL: exactly one cluster, ACTIVE, protected and tagged with this migration.
    dsql = aws(environment, "dsql")
    clusters = dsql.list_clusters()["clusters"]
    assert len(clusters) == 1
    cluster = dsql.get_cluster(identifier=clusters[0]["identifier"])
    assert cluster["status"] == "ACTIVE" and cluster["deletionProtectionEnabled"] is True
    assert cluster["tags"] == {"environment": "sandbox", "migration": str(migration.uuid), "managed-by": "velaops"}
    assert environment.dsql_cluster_identifier == cluster["identifier"]
    # ... and is monitored from then on: a probe of the new cluster logs in.
    dsql_target = environment.targets.get(kind="dsql", name=cluster["identifier"], paused=False)
    dsql_target.write_check = True
    dsql_target.save(update_fields=["write_check"])
    outcome = run_probe(dsql_target)
    assert outcome.ok, outcome.error
    # ... as its own role (not admin), writing only its own table in its own schema.
    assert environment.dsql_probe_user == "velaops_monitor"
    with TimedLogin(environment, environment.dsql_endpoint).open() as admin:
        assert admin.execute("SELECT count(*) FROM velaops.probe").fetchone()[0] == 1

    # The Lambda points at it, keeps its other variables, and the health route reports it connected.
    variables = aws(environment, "lambda").get_function_configuration(FunctionName=environment.lambda_function_name)[
        "Environment"
    ]["Variables"]
    assert variables["DSQL_CLUSTER_ARN"] == cluster["arn"]
    assert variables["DSQL_ENDPOINT"] == f"{cluster['identifier']}.dsql.us-east-1.on.aws"
    assert "AURORA_SECRET_ARN" in variables
    health = fetch_health(environment.api_health_url)
    assert health.ok and health.cluster_arn == cluster["arn"]

    # DynamoDB unchanged; Aurora gone with its final snapshot (and the pre-migration one).
    assert tables_snapshot(environment) == dynamodb_before
    rds = aws(environment, "rds")
    with pytest.raises(ClientError, match="DBClusterNotFound"):
        rds.describe_db_clusters(DBClusterIdentifier=aurora)
    snapshots = {s["DBClusterSnapshotIdentifier"] for s in rds.describe_db_cluster_snapshots()["DBClusterSnapshots"]}
    assert {f"velaops-sandbox-m{migration.pk}-final", f"velaops-sandbox-m{migration.pk}-pre-dsql"} <= snapshots
    # Its credentials are scheduled for deletion (recoverable for 30 days); its probe target is retired with
    # its history, and the environment no longer names Aurora.
    assert aws(environment, "secretsmanager").describe_secret(SecretId=secret_id)["DeletedDate"]
    assert (environment.aurora_cluster_identifier, environment.aurora_secret_id) == ("", "")
    assert environment.targets.get(kind="aurora", name=aurora).paused

    # Every attempt left request ids and an operator in the record.
    assert all(a.requested_by == operator for a in Attempt.objects.filter(migration=migration))
    assert step(migration, "provision_dsql").attempts.get().outputs["aws_request_ids"]


def test_rollbacks_undo_what_they_claim(worker, fresh_direct_sandbox_environment, operator, sandbox):
    environment = fresh_direct_sandbox_environment
    clear_vela_schema_from_dsql(sandbox)  # the new cluster starts empty, as on AWS
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    for key in (
        "preflight_stacks",
        "preflight_aurora_empty",
        "baseline_dynamodb",
        "snapshot_aurora",
        "provision_dsql",
        "verify_dsql",
        "apply_schema",
        "database_role",
        "readiness",
        "baseline_api",
        "point_lambda",
    ):
        assert act(migration, key, operator).status == "succeeded", key
    lam = aws(environment, "lambda")
    identifier = step(migration, "provision_dsql").outputs["identifier"]

    # Rolling back the cluster first is refused: the Lambda still points at it, the schema is still on it.
    with pytest.raises(service.ActionRefused, match="Roll back the later steps first: Schema onto DSQL, The app"):
        act(migration, "provision_dsql", operator, action="rollback", confirmation=identifier)

    assert act(migration, "point_lambda", operator, action="rollback").status == "succeeded"
    variables = lam.get_function_configuration(FunctionName=environment.lambda_function_name)["Environment"][
        "Variables"
    ]
    assert not {"DSQL_CLUSTER_ARN", "DSQL_ENDPOINT", "DSQL_REGION"} & set(variables)
    assert "AURORA_CLUSTER_ARN" in variables

    # The application's role goes (unmapped, its grants revoked, dropped), then the schema it was granted.
    role = act(migration, "database_role", operator, action="rollback")
    assert role.status == "succeeded", role.error
    assert role.outputs["dropped"] is True

    # The schema step takes back what it created on the cluster (the tables are empty).
    created = [r["name"] for r in step(migration, "apply_schema").outputs["applied"] if r["result"] == "created"]
    assert {"accounts", "study_sessions", "cards_deck_id"} <= set(created)
    schema = act(migration, "apply_schema", operator, action="rollback")
    assert schema.status == "succeeded", schema.error
    assert [d["name"] for d in schema.outputs["dropped"]] == list(reversed(created))

    rollback = act(migration, "provision_dsql", operator, action="rollback", confirmation=identifier)
    assert rollback.status == "succeeded", rollback.error
    dsql = aws(environment, "dsql")
    remaining = [
        c
        for c in dsql.list_clusters()["clusters"]
        if dsql.get_cluster(identifier=c["identifier"])["status"] not in ("DELETING", "DELETED")
    ]
    assert remaining == []
    environment.refresh_from_db()
    assert environment.dsql_cluster_identifier == ""
    assert all(target.paused for target in environment.targets.filter(kind="dsql"))  # history kept, not probed
    assert step(migration, "provision_dsql").state == "rolled_back"

    # Provisioning again makes a new cluster: the next generation's client token, not the deleted one's.
    again = act(migration, "provision_dsql", operator)
    assert again.status == "succeeded", again.error
    fresh = step(migration, "provision_dsql").outputs
    assert fresh["identifier"] != identifier
    assert dsql.get_cluster(identifier=fresh["identifier"])["status"] == "ACTIVE"
    # The endpoint is the one the DSQL API names, in AWS's form.
    assert fresh["endpoint"] == f"{fresh['identifier']}.dsql.us-east-1.on.aws"
