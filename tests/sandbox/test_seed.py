"""The seeded Vela account, asserted through boto3 against the sandbox's moto."""

import json

import pytest

from dashboard.models import Environment
from infra.sandbox.seed import AURORA_CLUSTER, LAMBDA_FUNCTION, TABLES, seed_account
from tests.conftest import reseed_sandbox
from tests.sandbox.helpers import aws


@pytest.fixture(scope="module", autouse=True)
def seeded(sandbox):
    """The account as the seed leaves it: earlier modules' migrations changed the stacks and deleted Aurora."""
    reseed_sandbox(sandbox)


def test_stacks_are_create_complete(sandbox):
    cfn = aws(sandbox, "cloudformation")
    for name in ("DatabaseStack", "ApiStack"):
        assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def test_aurora_cluster_has_deletion_protection_and_an_instance(sandbox):
    cluster = aws(sandbox, "rds").describe_db_clusters(DBClusterIdentifier=AURORA_CLUSTER)["DBClusters"][0]
    assert cluster["Engine"] == "aurora-postgresql" and cluster["DeletionProtection"] is True
    assert len(cluster["DBClusterMembers"]) == 1


def test_secret_holds_the_aurora_credentials(sandbox):
    secret = aws(sandbox, "secretsmanager").get_secret_value(SecretId=sandbox.account.secret_arn)
    value = json.loads(secret["SecretString"])
    # CDK's generated secret, completed by its SecretTargetAttachment (no dbname: the environment names it)
    assert {"username", "password", "engine", "host", "port", "dbClusterIdentifier"} <= set(value)
    assert value["host"] == sandbox.account.aurora_endpoint and value["username"] == sandbox.config.aurora_user
    assert value["port"] == sandbox.config.pg_port  # the local PostgreSQL stands in for the cluster


def test_every_vela_resource_is_owned_by_a_stack_and_tagged_so(sandbox):
    cfn = aws(sandbox, "cloudformation")
    owned = {
        (item["ResourceType"], item["PhysicalResourceId"])
        for stack in ("DatabaseStack", "ApiStack")
        for item in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    }
    assert ("AWS::RDS::DBCluster", AURORA_CLUSTER) in owned
    assert ("AWS::Lambda::Function", LAMBDA_FUNCTION) in owned
    assert {("AWS::DynamoDB::Table", name) for name in TABLES} <= owned
    assert ("AWS::SecretsManager::Secret", sandbox.account.secret_arn) in owned
    tags = aws(sandbox, "lambda").list_tags(Resource=sandbox.account.function_arn)["Tags"]
    assert tags["aws:cloudformation:stack-name"] == "ApiStack" and tags["app"] == "vela"
    # What `cdk bootstrap` leaves: the toolkit stack and the version the templates' parameter reads.
    assert cfn.describe_stacks(StackName="CDKToolkit")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    (parameter,) = cfn.describe_stacks(StackName="ApiStack")["Stacks"][0]["Parameters"]
    assert parameter["ParameterKey"] == "BootstrapVersion"
    assert parameter.get("ResolvedValue", parameter["ParameterValue"]) == "30"


def test_tables_exist_with_items(sandbox):
    ddb = aws(sandbox, "dynamodb")
    for name, (_, items) in TABLES.items():
        assert ddb.scan(TableName=name, Select="COUNT")["Count"] == len(items) > 0


def test_lambda_has_vpc_config_and_variables(sandbox):
    config = aws(sandbox, "lambda").get_function_configuration(FunctionName=LAMBDA_FUNCTION)
    assert config["Runtime"] == "nodejs20.x"
    assert sorted(config["VpcConfig"]["SubnetIds"]) == sorted(sandbox.account.subnet_ids)
    assert config["VpcConfig"]["SecurityGroupIds"] == [sandbox.account.security_group_id]
    variables = config["Environment"]["Variables"]
    assert variables["AURORA_CLUSTER_ARN"] == sandbox.account.aurora_cluster_arn
    assert variables["AURORA_SECRET_ARN"] == sandbox.account.secret_arn
    assert {"USERS_TABLE", "SESSIONS_TABLE", "CONTENT_TABLE"} <= set(variables)


def test_seeding_again_changes_nothing(sandbox):
    again = seed_account(sandbox.config)
    assert again == sandbox.account
    vpcs = aws(sandbox, "ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["vela-vpc"]}])["Vpcs"]
    assert len(vpcs) == 1


@pytest.mark.django_db
def test_environment_row_points_at_the_sandbox_and_is_updated_in_place(sandbox_environment, sandbox):
    assert sandbox_environment.aws_endpoint_url == sandbox.config.moto_url
    assert sandbox_environment.dsql_port == sandbox.config.dsql_port
    sandbox_environment.api_health_url = "http://127.0.0.1:9/elsewhere"
    sandbox_environment.save()
    again = sandbox.seed_environment()
    assert again.pk == sandbox_environment.pk and again.api_health_url == sandbox.config.health_url
    assert Environment.objects.filter(slug="sandbox").count() == 1


@pytest.mark.django_db
def test_environment_page_finds_every_seeded_resource(client, viewer, sandbox_environment):
    client.force_login(viewer)
    response = client.get(sandbox_environment.get_absolute_url())
    resources = response.context["resources"]
    kinds = {r.kind for r in resources}
    assert {"CloudFormation stack", "Lambda function", "Aurora cluster", "DynamoDB table"} <= kinds
    missing = [(r.kind, r.name, r.error_code) for r in resources if not r.exists]
    assert missing == []
    assert len([r for r in resources if r.kind == "DynamoDB table"]) == len(TABLES)
