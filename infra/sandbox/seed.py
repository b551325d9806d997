"""The Vela AWS account, seeded into moto: what the migration plan says exists before the move.

Every Vela resource is made by CloudFormation from r0 of Vela's CDK app (infra/sandbox/stacks.py), so
it is stack-owned and tagged as on AWS. Seeding looks before it creates: an account already seeded is
left as it is (a rehearsal's changes, such as the Lambda's variables or a stack update, are kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.sandbox import iam_principals, stacks
from infra.sandbox.config import SandboxConfig

AURORA_CLUSTER = "vela-aurora"
LAMBDA_FUNCTION = "vela-api"
# The interface endpoint service of DSQL in a Region (what GetVpcEndpointServiceName answers for any cluster
# there; moto 5.2's fixed suffix, held by tests/sandbox/test_health_route.py), and the direct-API seed's names.
DSQL_ENDPOINT_SERVICE = "com.amazonaws.{region}.dsql-7cwu"
DSQL_ENDPOINT_GROUP = "vela-dsql-endpoint-sg"
STACKS = list(stacks.STACKS)

# The tables Vela's CDK app names (infra/sandbox/cdk): key attribute, then a few items, enough for a
# "DynamoDB unchanged" comparison to mean something.
TABLES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "vela-users": (
        "userId",
        [
            {"userId": "u-0001", "email": "ada@example.com", "plan": "free"},
            {"userId": "u-0002", "email": "lin@example.com", "plan": "pro"},
            {"userId": "u-0003", "email": "sam@example.com", "plan": "free"},
        ],
    ),
    "vela-sessions": (
        "sessionId",
        [
            {"sessionId": "s-8f2a", "userId": "u-0001", "expiresAt": 1893456000},
            {"sessionId": "s-91c7", "userId": "u-0002", "expiresAt": 1893456000},
        ],
    ),
    "vela-content": (
        "contentId",
        [
            {"contentId": "c-es-001", "language": "es", "title": "Saludos", "audioKey": "tts/es/001.mp3"},
            {"contentId": "c-es-002", "language": "es", "title": "En el mercado", "audioKey": "tts/es/002.mp3"},
            {"contentId": "c-fr-001", "language": "fr", "title": "Bonjour", "audioKey": "tts/fr/001.mp3"},
            {"contentId": "c-de-001", "language": "de", "title": "Guten Tag", "audioKey": "tts/de/001.mp3"},
        ],
    ),
}


@dataclass(frozen=True)
class SeededAccount:
    vpc_id: str
    subnet_ids: list[str]
    security_group_id: str
    secret_arn: str
    aurora_cluster_arn: str
    aurora_endpoint: str
    role_arn: str
    function_arn: str
    tables: list[str]


def _client(config: SandboxConfig, service: str) -> Any:
    # The sandbox's admin key (allowed everything, infra/sandbox/cfn/iam_auth.py): seeding is not VelaOps's work,
    # and fixed keys keep it independent of whatever credentials are around.
    session = boto3.Session(
        aws_access_key_id=iam_principals.ADMIN_ACCESS_KEY_ID,
        aws_secret_access_key=iam_principals.ADMIN_SECRET_ACCESS_KEY,
        region_name=config.region,
    )
    return session.client(service, endpoint_url=config.moto_url, config=Config(retries={"max_attempts": 2}))


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def seed_account(config: SandboxConfig) -> SeededAccount:
    """Vela as CloudFormation holds it: r0 of both stacks deployed (only if missing), then the tables' items."""

    def client(service: str) -> Any:
        return _client(config, service)

    iam_principals.seed_velaops(config, client)  # VelaOps's own principal, with exactly its documented policy
    stacks.deploy(config, client, "r0")
    _items(config)
    cfn = client("cloudformation")
    database, api = stacks.outputs(cfn, "DatabaseStack"), stacks.outputs(cfn, "ApiStack")
    function = client("lambda").get_function_configuration(FunctionName=api.get("ApiFunctionName", LAMBDA_FUNCTION))
    vpc = function.get("VpcConfig") or {}
    aurora_arn = database.get("AuroraClusterArn", "")
    aurora_endpoint = ""
    if aurora_arn:
        try:
            aurora = client("rds").describe_db_clusters(DBClusterIdentifier=AURORA_CLUSTER)["DBClusters"][0]
            aurora_endpoint = aurora["Endpoint"]
        except ClientError as exc:
            if _error_code(exc) != "DBClusterNotFoundFault":
                raise
    return SeededAccount(
        vpc_id=vpc.get("VpcId", ""),
        subnet_ids=list(vpc.get("SubnetIds") or []),
        security_group_id=(vpc.get("SecurityGroupIds") or [""])[0],
        secret_arn=database.get("AuroraSecretArn", ""),
        aurora_cluster_arn=aurora_arn,
        aurora_endpoint=aurora_endpoint,
        role_arn=function["Role"],
        function_arn=function["FunctionArn"],
        tables=list(TABLES),
    )


def _items(config: SandboxConfig) -> None:
    """The tables' example items, written into a table that has none (a rehearsal's changes are kept)."""
    ddb = _client(config, "dynamodb")
    resource = boto3.resource(
        "dynamodb",
        region_name=config.region,
        endpoint_url=config.moto_url,
        aws_access_key_id=iam_principals.ADMIN_ACCESS_KEY_ID,
        aws_secret_access_key=iam_principals.ADMIN_SECRET_ACCESS_KEY,
    )
    for name, (_key, items) in TABLES.items():
        if ddb.scan(TableName=name, Limit=1, Select="COUNT")["Count"]:
            continue
        with resource.Table(name).batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)


def seed_environment(config: SandboxConfig, account: SeededAccount) -> Any:
    """The VelaOps environment row pointing at the seeded account; created or updated in place."""
    from dashboard.models import Environment  # Django is set up by the caller (manage.py or pytest)

    defaults = environment_settings(config, account)
    environment, _ = Environment.objects.update_or_create(slug=config.environment_slug, defaults=defaults)
    if not stacks.stack_exists(_client(config, "cloudformation"), "DatabaseStack"):
        # No stack owns Vela (stacks.release): the direct-API runbook, which makes no network path, rehearses
        # here, so the VPC gets the DSQL endpoint r1 would have added, as an account ready for it would have.
        ensure_dsql_endpoint(config)
    if environment.dsql_cluster_identifier and not _dsql_cluster_exists(config, environment.dsql_cluster_identifier):
        # A fresh moto forgot the cluster an earlier rehearsal created: do not point at a ghost.
        environment.dsql_cluster_identifier = ""
        environment.save(update_fields=["dsql_cluster_identifier", "updated_at"])
    if not stacks.stack_exists(_client(config, "cloudformation"), "ApiStack") and account.role_arn:
        # No stack grants the Lambda's role its DSQL login (r1 would): an account ready for the direct-API
        # runbook has it, or the Lambda's DSQL login is refused once it points at the cluster, as on AWS.
        iam_principals.grant_lambda_dsql(config, lambda service: _client(config, service), account.role_arn)
    # A daily report schedule, alerts to a local mailbox (var/mail under make run), an example report.
    from infra.sandbox.reports import sandbox_reporting

    sandbox_reporting(environment)
    return environment


def environment_settings(config: SandboxConfig, account: SeededAccount) -> dict[str, Any]:
    """What the sandbox environment is configured with (the row seed_environment writes)."""
    return {
        "name": "Sandbox",
        "description": "The offline sandbox: moto, the local PostgreSQL and a stand-in API health route.",
        "region": config.region,
        "account_id": config.account_id,
        "role_arn": "",
        "aws_endpoint_url": config.moto_url,
        "cloudformation_stacks": list(STACKS),
        # The change-set runbook's ready choices: r1 and r2 of Vela's CDK app, published to the asset bucket.
        "stack_changes": stacks.stack_changes(config, lambda service: _client(config, service)),
        "lambda_function_name": LAMBDA_FUNCTION,
        "api_health_url": config.health_url,
        "aurora_cluster_identifier": AURORA_CLUSTER,
        "aurora_secret_id": account.secret_arn,
        "aurora_database": config.aurora_database,
        "aurora_sslmode": "disable",
        "aurora_host_override": config.pg_host,
        "dynamodb_tables": list(account.tables),
        "dsql_port": config.dsql_port,
        "dsql_database": config.dsql_database,
        "dsql_user": "admin",
        "dsql_sslmode": "disable",
        "dsql_host_override": config.host,
        "bake_criteria": SANDBOX_BAKE_CRITERIA,
    }


# A rehearsal's bake: a minute at two probes a second, after ten probes of history (five minutes of make run).
# The DSQL check's ceiling suits the sandbox's own login (tens of ms): dsql_latency_ms=300 fails the bake.
SANDBOX_BAKE_CRITERIA = {
    "baseline_min_samples": 10,
    "bake_window_seconds": 60,
    "bake_interval_seconds": 0.5,
    "bake_min_samples": 20,
    "dsql_check_p95_ms_max": 250,
}


def _dsql_cluster_exists(config: SandboxConfig, identifier: str) -> bool:
    try:
        _client(config, "dsql").get_cluster(identifier=identifier)
        return True
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return False
        raise


def ensure_dsql_endpoint(config: SandboxConfig) -> str:
    """An interface VPC endpoint for DSQL in the API Lambda's VPC (private DNS, both of its subnets) with a
    security group open on 5432 to the Lambda's group, as r1's DatabaseStack declares; created if missing."""
    ec2 = _client(config, "ec2")
    vpc_config = _client(config, "lambda").get_function_configuration(FunctionName=LAMBDA_FUNCTION)["VpcConfig"]
    subnet_ids, (api_group,) = vpc_config["SubnetIds"], vpc_config["SecurityGroupIds"]
    vpc_id = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"][0]["VpcId"]
    service = DSQL_ENDPOINT_SERVICE.format(region=config.region)
    existing = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "service-name", "Values": [service]}]
    )["VpcEndpoints"]
    if existing:
        return existing[0]["VpcEndpointId"]
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [DSQL_ENDPOINT_GROUP]}]
    )["SecurityGroups"]
    if groups:
        group = groups[0]["GroupId"]
    else:
        group = ec2.create_security_group(
            GroupName=DSQL_ENDPOINT_GROUP, Description="Vela DSQL interface endpoint", VpcId=vpc_id
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 5432,
                    "ToPort": 5432,
                    "UserIdGroupPairs": [{"GroupId": api_group, "Description": "Vela API to DSQL"}],
                }
            ],
        )
    return ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=vpc_id,
        ServiceName=service,
        SubnetIds=subnet_ids,
        SecurityGroupIds=[group],
        PrivateDnsEnabled=True,
        TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": [{"Key": "app", "Value": "vela"}]}],
    )["VpcEndpoint"]["VpcEndpointId"]
