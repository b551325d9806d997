"""The Vela AWS account, seeded into moto: what the migration plan says exists before the move.

Every step looks before it creates, so seeding an account that is already seeded changes nothing
(and never overwrites what a rehearsal changed, such as the Lambda's environment variables).
"""

from __future__ import annotations

import io
import json
import secrets
import zipfile
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.sandbox.config import SandboxConfig

VPC_NAME = "vela-vpc"
SUBNETS = [("vela-private-a", "10.20.1.0/24", "a"), ("vela-private-b", "10.20.2.0/24", "b")]
API_SECURITY_GROUP = "vela-api-sg"
DB_SUBNET_GROUP = "vela-aurora-subnets"
SECRET_NAME = "vela/aurora/credentials"
AURORA_CLUSTER = "vela-aurora"
AURORA_INSTANCE = "vela-aurora-writer"
AURORA_ENGINE_VERSION = "15.4"
LAMBDA_ROLE = "vela-api-role"
LAMBDA_FUNCTION = "vela-api"
STACKS = ["DatabaseStack", "ApiStack"]

# Key attribute, then a few items: enough for a "DynamoDB unchanged" comparison to mean something.
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
TABLE_VARIABLES = {"vela-users": "USERS_TABLE", "vela-sessions": "SESSIONS_TABLE", "vela-content": "CONTENT_TABLE"}

LAMBDA_SOURCE = """exports.handler = async () => ({ statusCode: 200, body: JSON.stringify({ status: "ok" }) });\n"""
LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
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
    # moto checks no signature: fixed keys keep seeding independent of whatever credentials are around.
    session = boto3.Session(aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name=config.region)
    return session.client(service, endpoint_url=config.moto_url, config=Config(retries={"max_attempts": 2}))


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def seed_account(config: SandboxConfig) -> SeededAccount:
    vpc_id, subnet_ids, sg_id = _network(config)
    cluster = _aurora(config, subnet_ids, sg_id)
    secret_arn = _secret(config, cluster)
    _tables(config)
    role_arn = _role(config)
    function_arn = _function(config, role_arn, subnet_ids, sg_id, cluster["DBClusterArn"], secret_arn)
    _stacks(config, cluster["DBClusterArn"], secret_arn, function_arn)
    return SeededAccount(
        vpc_id=vpc_id,
        subnet_ids=subnet_ids,
        security_group_id=sg_id,
        secret_arn=secret_arn,
        aurora_cluster_arn=cluster["DBClusterArn"],
        aurora_endpoint=cluster["Endpoint"],
        role_arn=role_arn,
        function_arn=function_arn,
        tables=list(TABLES),
    )


def _network(config: SandboxConfig) -> tuple[str, list[str], str]:
    ec2 = _client(config, "ec2")
    by_name = [{"Name": "tag:Name", "Values": [VPC_NAME]}]
    vpcs = ec2.describe_vpcs(Filters=by_name)["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
    else:
        vpc_id = ec2.create_vpc(
            CidrBlock="10.20.0.0/16",
            TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": VPC_NAME}]}],
        )["Vpc"]["VpcId"]
    subnet_ids = []
    for name, cidr, zone in SUBNETS:
        found = ec2.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "tag:Name", "Values": [name]}]
        )["Subnets"]
        if found:
            subnet_ids.append(found[0]["SubnetId"])
            continue
        subnet_ids.append(
            ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=cidr,
                AvailabilityZone=config.region + zone,
                TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": name}]}],
            )["Subnet"]["SubnetId"]
        )
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [API_SECURITY_GROUP]}]
    )["SecurityGroups"]
    if groups:
        sg_id = groups[0]["GroupId"]
    else:
        sg_id = ec2.create_security_group(GroupName=API_SECURITY_GROUP, Description="Vela API Lambda", VpcId=vpc_id)[
            "GroupId"
        ]
    return vpc_id, subnet_ids, sg_id


def _aurora(config: SandboxConfig, subnet_ids: list[str], sg_id: str) -> dict[str, Any]:
    rds = _client(config, "rds")
    try:
        return rds.describe_db_clusters(DBClusterIdentifier=AURORA_CLUSTER)["DBClusters"][0]
    except ClientError as exc:
        if _error_code(exc) != "DBClusterNotFoundFault":
            raise
    try:
        rds.create_db_subnet_group(
            DBSubnetGroupName=DB_SUBNET_GROUP, DBSubnetGroupDescription="Vela Aurora", SubnetIds=subnet_ids
        )
    except ClientError as exc:
        if _error_code(exc) != "DBSubnetGroupAlreadyExists":
            raise
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=AURORA_CLUSTER,
        Engine="aurora-postgresql",
        EngineVersion=AURORA_ENGINE_VERSION,
        DatabaseName=config.aurora_database,
        MasterUsername=config.aurora_user,
        # The local PostgreSQL trusts loopback, so this password only has to be well-formed; never printed.
        MasterUserPassword=secrets.token_urlsafe(24),
        # The port the local PostgreSQL listens on: VelaOps takes it from the RDS API like on AWS.
        Port=config.pg_port,
        DBSubnetGroupName=DB_SUBNET_GROUP,
        VpcSecurityGroupIds=[sg_id],
        DeletionProtection=True,
        StorageEncrypted=True,
        Tags=[{"Key": "app", "Value": "vela"}],
    )["DBCluster"]
    rds.create_db_instance(
        DBInstanceIdentifier=AURORA_INSTANCE,
        DBClusterIdentifier=AURORA_CLUSTER,
        DBInstanceClass="db.t4g.medium",
        Engine="aurora-postgresql",
    )
    return cluster


def _secret(config: SandboxConfig, cluster: dict[str, Any]) -> str:
    sm = _client(config, "secretsmanager")
    try:
        return sm.describe_secret(SecretId=SECRET_NAME)["ARN"]
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
    value = {
        "username": config.aurora_user,
        "password": secrets.token_urlsafe(24),
        "engine": "postgres",
        "host": cluster["Endpoint"],
        "port": cluster.get("Port") or config.pg_port,
        "dbname": config.aurora_database,
        "dbClusterIdentifier": AURORA_CLUSTER,
    }
    return sm.create_secret(
        Name=SECRET_NAME, Description="Vela Aurora master credentials", SecretString=json.dumps(value)
    )["ARN"]


def _tables(config: SandboxConfig) -> None:
    ddb = _client(config, "dynamodb")
    existing = set(ddb.list_tables()["TableNames"])
    for name, (key, items) in TABLES.items():
        if name in existing:
            continue
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        resource = boto3.resource(
            "dynamodb",
            region_name=config.region,
            endpoint_url=config.moto_url,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )
        with resource.Table(name).batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)


def _role(config: SandboxConfig) -> str:
    iam = _client(config, "iam")
    try:
        return iam.get_role(RoleName=LAMBDA_ROLE)["Role"]["Arn"]
    except ClientError as exc:
        if _error_code(exc) != "NoSuchEntity":
            raise
    arn = iam.create_role(RoleName=LAMBDA_ROLE, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY))["Role"]["Arn"]
    table_arns = [f"arn:aws:dynamodb:{config.region}:{config.account_id}:table/{name}" for name in TABLES]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dynamodb:*Item", "dynamodb:Query", "dynamodb:Scan"],
                "Resource": table_arns,
            },
            {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["dsql:DbConnectAdmin"], "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"],
                "Resource": "*",
            },
        ],
    }
    iam.put_role_policy(RoleName=LAMBDA_ROLE, PolicyName="vela-api", PolicyDocument=json.dumps(policy))
    return arn


def _lambda_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.js", LAMBDA_SOURCE)
    return buffer.getvalue()


def _function(
    config: SandboxConfig, role_arn: str, subnet_ids: list[str], sg_id: str, cluster_arn: str, secret_arn: str
) -> str:
    lam = _client(config, "lambda")
    try:
        return lam.get_function_configuration(FunctionName=LAMBDA_FUNCTION)["FunctionArn"]
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
    variables = {var: table for table, var in TABLE_VARIABLES.items()}
    variables |= {
        "AURORA_CLUSTER_ARN": cluster_arn,
        "AURORA_SECRET_ARN": secret_arn,
        "NODE_OPTIONS": "--enable-source-maps",
    }
    return lam.create_function(
        FunctionName=LAMBDA_FUNCTION,
        Runtime="nodejs20.x",
        Handler="index.handler",
        Role=role_arn,
        Code={"ZipFile": _lambda_zip()},
        Timeout=15,
        MemorySize=512,
        VpcConfig={"SubnetIds": subnet_ids, "SecurityGroupIds": [sg_id]},
        Environment={"Variables": variables},
        Tags={"app": "vela"},
    )["FunctionArn"]


def _stacks(config: SandboxConfig, cluster_arn: str, secret_arn: str, function_arn: str) -> None:
    # CDK's stacks, reduced to what VelaOps reads from them: their status and outputs. The resources
    # themselves are created above through their own APIs, which is what moto can describe faithfully.
    outputs = {
        "DatabaseStack": {
            "AuroraClusterArn": cluster_arn,
            "AuroraSecretArn": secret_arn,
            **{var: table for table, var in TABLE_VARIABLES.items()},
        },
        "ApiStack": {"ApiFunctionArn": function_arn},
    }
    cfn = _client(config, "cloudformation")
    for name in STACKS:
        try:
            cfn.describe_stacks(StackName=name)
            continue
        except ClientError as exc:
            if _error_code(exc) != "ValidationError":
                raise
        template = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"Vela {name} (sandbox)",
            "Resources": {"Marker": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in outputs[name].items()},
        }
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(template), Tags=[{"Key": "app", "Value": "vela"}])


def seed_environment(config: SandboxConfig, account: SeededAccount) -> Any:
    """The VelaOps environment row pointing at the seeded account; created or updated in place."""
    from dashboard.models import Environment  # Django is set up by the caller (manage.py or pytest)

    defaults = {
        "name": "Sandbox",
        "description": "The offline sandbox: moto, the local PostgreSQL and a stand-in API health route.",
        "region": config.region,
        "account_id": config.account_id,
        "role_arn": "",
        "aws_endpoint_url": config.moto_url,
        "cloudformation_stacks": list(STACKS),
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
    }
    environment, _ = Environment.objects.update_or_create(slug=config.environment_slug, defaults=defaults)
    if environment.dsql_cluster_identifier and not _dsql_cluster_exists(config, environment.dsql_cluster_identifier):
        # A fresh moto forgot the cluster an earlier rehearsal created: do not point at a ghost.
        environment.dsql_cluster_identifier = ""
        environment.save(update_fields=["dsql_cluster_identifier", "updated_at"])
    # A daily report schedule, alerts to a local mailbox (var/mail under make run), an example report.
    from infra.sandbox.reports import sandbox_reporting

    sandbox_reporting(environment)
    return environment


def _dsql_cluster_exists(config: SandboxConfig, identifier: str) -> bool:
    try:
        _client(config, "dsql").get_cluster(identifier=identifier)
        return True
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return False
        raise
