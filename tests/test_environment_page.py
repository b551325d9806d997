"""The environment page reads each resource live through boto3 against moto's real HTTP server."""

import boto3
import pytest

from dashboard.aws import boto3_session
from dashboard.models import Environment

pytestmark = pytest.mark.django_db


def aws(moto_url, service):
    return boto3.client(service, region_name="us-east-1", endpoint_url=moto_url)


@pytest.fixture
def live_environment(environment, moto_url):
    aws(moto_url, "dynamodb").create_table(
        TableName="vela-users",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    aws(moto_url, "rds").create_db_cluster(
        DBClusterIdentifier="vela-aurora",
        Engine="aurora-postgresql",
        MasterUsername="vela",
        MasterUserPassword="not-a-real-password",
        DeletionProtection=True,
    )
    environment.aws_endpoint_url = moto_url
    environment.cloudformation_stacks = ["DatabaseStack"]
    environment.save()
    return environment


def rows(response):
    return {(r.kind, r.name): r for r in response.context["resources"]}


def test_viewer_sees_each_resource_found_or_missing(client, viewer, live_environment):
    client.force_login(viewer)
    response = client.get(live_environment.get_absolute_url())
    assert response.status_code == 200
    found = rows(response)
    table = found[("DynamoDB table", "vela-users")]
    assert table.exists and table.state == "ACTIVE" and table.details["billing"] == "PAY_PER_REQUEST"
    aurora = found[("Aurora cluster", "vela-aurora")]
    assert aurora.exists and aurora.state == "available" and aurora.details["deletion protection"] == "on"
    function = found[("Lambda function", "vela-api")]
    assert function.exists is False and function.error_code == "ResourceNotFoundException"
    stack = found[("CloudFormation stack", "DatabaseStack")]
    assert stack.exists is False and "does not exist" in stack.error_message
    html = response.content.decode()
    assert "ResourceNotFoundException" in html and "vela-users" in html


def test_htmx_refresh_returns_only_the_resources_partial(client, viewer, live_environment):
    client.force_login(viewer)
    response = client.get(live_environment.get_absolute_url(), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="resources"')
    assert "<html" not in html


def test_unreachable_endpoint_shows_the_error_not_a_500(client, viewer, environment):
    environment.aws_endpoint_url = "http://127.0.0.1:9"
    environment.save()
    client.force_login(viewer)
    response = client.get(environment.get_absolute_url())
    assert response.status_code == 200
    assert all(r.exists is None and r.error_code == "EndpointConnectionError" for r in response.context["resources"])
    assert "EndpointConnectionError" in response.content.decode()


def test_a_role_that_cannot_be_assumed_shows_the_sts_error(client, viewer, environment, monkeypatch):
    # Against real STS an unknown role fails AssumeRole; moto accepts any role, so refuse at the endpoint.
    environment.role_arn = "arn:aws:iam::123456789012:role/Missing"
    environment.aws_endpoint_url = "http://127.0.0.1:9"
    environment.save()
    client.force_login(viewer)
    response = client.get(environment.get_absolute_url())
    assert response.status_code == 200
    assert response.context["error"].code == "EndpointConnectionError"


def test_boto3_session_assumes_the_role_through_sts(moto_url, environment):
    environment.aws_endpoint_url = moto_url
    environment.role_arn = "arn:aws:iam::123456789012:role/VelaOpsOperator"
    session = boto3_session(environment)
    identity = session.client("sts", endpoint_url=moto_url).get_caller_identity()
    assert ":assumed-role/VelaOpsOperator/velaops-staging" in identity["Arn"]


def test_role_less_users_and_unknown_environments(client, outsider, viewer, environment):
    client.force_login(outsider)
    assert client.get(environment.get_absolute_url()).status_code == 403
    assert client.get("/").status_code == 403
    client.force_login(viewer)
    assert client.get("/environments/nope/").status_code == 404
    assert Environment.objects.count() == 1


def test_after_a_completed_migration_the_page_shows_dsql_and_aurora_decommissioned(
    client, viewer, operator, live_environment, moto_url
):
    from dashboard.models import MigrationRun, Step

    cluster = aws(moto_url, "dsql").create_cluster(deletionProtectionEnabled=True)
    rds = aws(moto_url, "rds")
    rds.create_db_cluster_snapshot(
        DBClusterSnapshotIdentifier="velaops-staging-m1-final", DBClusterIdentifier="vela-aurora"
    )
    rds.modify_db_cluster(DBClusterIdentifier="vela-aurora", DeletionProtection=False, ApplyImmediately=True)
    rds.delete_db_cluster(DBClusterIdentifier="vela-aurora", SkipFinalSnapshot=True)
    live_environment.dsql_cluster_identifier = cluster["identifier"]
    live_environment.save()
    migration = MigrationRun.objects.create(
        environment=live_environment, runbook_version="1", started_by=operator, status=MigrationRun.Status.COMPLETED
    )
    Step.objects.create(
        migration=migration,
        position=10,
        key="decommission_aurora",
        title="Decommission Aurora",
        state=Step.State.SUCCEEDED,
        outputs={"cluster": "vela-aurora", "deleted": True, "final_snapshot": "velaops-staging-m1-final"},
    )
    client.force_login(viewer)
    response = client.get(live_environment.get_absolute_url())
    found = rows(response)
    dsql = found[("DSQL cluster", cluster["identifier"])]
    assert dsql.exists and dsql.state == "ACTIVE" and dsql.healthy and not dsql.error_code
    assert dsql.details["endpoint"] == f"{cluster['identifier']}.dsql.us-east-1.on.aws"
    aurora = found[("Aurora cluster", "vela-aurora")]
    assert aurora.retired and not aurora.error_code and aurora.state == "decommissioned"
    assert aurora.details["final snapshot"] == "velaops-staging-m1-final"
    assert aurora.details["snapshot status"] == "available"
    assert aurora.details["by"] == f"migration {migration.pk}"
    html = response.content.decode()
    assert "DBClusterNotFoundFault" not in html and "<strong>missing</strong>" not in html.split("Aurora cluster")[1]
    assert "no: decommissioned" in html and f"{cluster['identifier']}.dsql.us-east-1.on.aws" in html


def test_aurora_gone_without_a_decommission_is_still_missing(client, viewer, live_environment, moto_url):
    rds = aws(moto_url, "rds")
    rds.modify_db_cluster(DBClusterIdentifier="vela-aurora", DeletionProtection=False, ApplyImmediately=True)
    rds.delete_db_cluster(DBClusterIdentifier="vela-aurora", SkipFinalSnapshot=True)
    client.force_login(viewer)
    aurora = rows(client.get(live_environment.get_absolute_url()))[("Aurora cluster", "vela-aurora")]
    assert aurora.exists is False and not aurora.retired and aurora.error_code == "DBClusterNotFoundFault"
