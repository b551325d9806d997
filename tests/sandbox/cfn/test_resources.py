"""The sandbox's CloudFormation models for DSQL, Aurora and Secrets Manager, through moto's real HTTP API."""

from __future__ import annotations

import copy
import json
import re
import string
from pathlib import Path

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto.cloudformation import parsing
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import ServiceException
from moto.dsql.models import dsql_backends
from moto.rds.models import rds_backends

from infra.sandbox.cfn import resources

SYNTH = Path(__file__).resolve().parents[3] / "infra" / "sandbox" / "cdk" / "synth"
REGION = "us-east-1"
SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
CDK_EXCLUDED = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"


def install_resources() -> None:
    """Only this module's part of `infra.sandbox.cfn.install()`: the models, then moto's forgotten type map."""
    resources.install()
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


@pytest.fixture
def aws(moto_url, monkeypatch):
    install_resources()
    monkeypatch.delenv(resources.AURORA_PORT_VARIABLE, raising=False)
    requests.post(f"{moto_url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10).raise_for_status()

    clients: dict[str, object] = {}

    def client(service: str):
        if service not in clients:
            clients[service] = SESSION.client(service, region_name=REGION, endpoint_url=moto_url)
        return clients[service]

    # what `cdk bootstrap` leaves behind; the templates' BootstrapVersion parameter reads it
    client("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")
    return client


def template(revision: str, stack: str) -> dict:
    return json.loads((SYNTH / revision / f"{stack}.template.json").read_text())


def create_stack(aws, name: str, body: dict) -> dict:
    cfn = aws("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(body), Capabilities=["CAPABILITY_NAMED_IAM"])
    return cfn.describe_stacks(StackName=name)["Stacks"][0]


def outputs(stack: dict) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def physical_id(aws, stack: str, logical_id: str) -> str:
    detail = aws("cloudformation").describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
    return detail["StackResourceDetail"]["PhysicalResourceId"]


def secret_document(aws, secret_id: str) -> dict:
    return json.loads(aws("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])


def test_r0_stacks_create_aurora_its_secret_and_the_lambda(aws):
    database = create_stack(aws, "DatabaseStack", template("r0", "DatabaseStack"))
    api = create_stack(aws, "ApiStack", template("r0", "ApiStack"))

    assert (database["StackStatus"], api["StackStatus"]) == ("CREATE_COMPLETE", "CREATE_COMPLETE")
    rds = aws("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier="vela-aurora")["DBClusters"][0]
    assert cluster["DeletionProtection"] is True
    assert cluster["Port"] == 5432
    assert (cluster["Engine"], cluster["EngineVersion"]) == ("aurora-postgresql", "15.4")
    assert (cluster["DatabaseName"], cluster["MasterUsername"]) == ("vela", "vela")
    assert cluster["StorageEncrypted"] is True
    aurora_sg = physical_id(aws, "DatabaseStack", "AuroraSecurityGroup3440C66D")
    assert [group["VpcSecurityGroupId"] for group in cluster["VpcSecurityGroups"]] == [aurora_sg]
    assert rds.describe_db_subnet_groups(DBSubnetGroupName=cluster["DBSubnetGroup"])["DBSubnetGroups"]
    assert {"Key": "app", "Value": "vela"} in cluster["TagList"]
    # moto's DBInstance model, made cluster-aware: the writer is the cluster's member
    assert cluster["DBClusterMembers"] == [
        {
            "DBInstanceIdentifier": "vela-aurora-writer",
            "IsClusterWriter": True,
            "DBClusterParameterGroupStatus": "in-sync",
            "PromotionTier": 0,
        }
    ]
    writer = rds.describe_db_instances(DBInstanceIdentifier="vela-aurora-writer")["DBInstances"][0]
    assert writer["DBClusterIdentifier"] == "vela-aurora"

    values = outputs(database)
    secret_arn = values["AuroraSecretArn"]
    assert values["AuroraClusterArn"] == cluster["DBClusterArn"]
    assert values["AuroraClusterIdentifier"] == "vela-aurora"
    assert secret_arn == aws("secretsmanager").describe_secret(SecretId="vela/aurora/credentials")["ARN"]
    document = secret_document(aws, secret_arn)
    password = document.pop("password")
    assert len(password) == 30 and not set(password) & set(CDK_EXCLUDED)
    assert document == {
        "username": "vela",
        "engine": "postgres",
        "host": cluster["Endpoint"],
        "port": 5432,
        "dbClusterIdentifier": "vela-aurora",
    }
    # {{resolve:secretsmanager:…:SecretString:password::}} resolved: the cluster's master password is the secret's
    assert rds_backends[DEFAULT_ACCOUNT_ID][REGION].clusters["vela-aurora"]._master_user_password == password

    ingress = aws("ec2").describe_security_groups(GroupIds=[aurora_sg])["SecurityGroups"][0]["IpPermissions"]
    assert [(rule["FromPort"], rule["ToPort"]) for rule in ingress] == [(5432, 5432)]  # GetAtt Endpoint.Port

    function = aws("lambda").get_function_configuration(FunctionName="vela-api")
    assert function["Environment"]["Variables"]["AURORA_SECRET_ARN"] == secret_arn
    assert function["Environment"]["Variables"]["AURORA_CLUSTER_ARN"] == cluster["DBClusterArn"]
    assert len(function["VpcConfig"]["SubnetIds"]) == 2


def test_the_aurora_port_follows_the_sandbox_setting(aws, monkeypatch):
    monkeypatch.setenv(resources.AURORA_PORT_VARIABLE, "5544")

    create_stack(aws, "DatabaseStack", template("r0", "DatabaseStack"))

    cluster = aws("rds").describe_db_clusters(DBClusterIdentifier="vela-aurora")["DBClusters"][0]
    assert cluster["Port"] == 5544
    assert secret_document(aws, "vela/aurora/credentials")["port"] == 5544
    aurora_sg = physical_id(aws, "DatabaseStack", "AuroraSecurityGroup3440C66D")
    ingress = aws("ec2").describe_security_groups(GroupIds=[aurora_sg])["SecurityGroups"][0]["IpPermissions"]
    assert [(rule["FromPort"], rule["ToPort"]) for rule in ingress] == [(5544, 5544)]


def test_r1_creates_the_dsql_cluster_and_its_interface_endpoint(aws):
    database = create_stack(aws, "DatabaseStack", template("r1", "DatabaseStack"))
    api = create_stack(aws, "ApiStack", template("r1", "ApiStack"))

    assert (database["StackStatus"], api["StackStatus"]) == ("CREATE_COMPLETE", "CREATE_COMPLETE")
    values = outputs(database)
    identifier = values["DsqlClusterIdentifier"]
    assert re.fullmatch(r"[a-z0-9]{26}", identifier)
    assert physical_id(aws, "DatabaseStack", "DsqlCluster") == identifier  # Ref: the identifier
    dsql = aws("dsql")
    cluster = dsql.get_cluster(identifier=identifier)
    assert cluster["deletionProtectionEnabled"] is True
    own = {key: value for key, value in cluster["tags"].items() if not key.startswith("aws:")}
    assert own == {"app": "vela", "Name": "vela-dsql"}
    # CloudFormation's own tags, as on every resource a stack creates (engine.py)
    assert cluster["tags"]["aws:cloudformation:logical-id"] == "DsqlCluster"
    assert cluster["status"] in ("CREATING", "ACTIVE")  # moto's state manager decides when
    assert values["DsqlClusterArn"] == cluster["arn"]
    assert values["DsqlEndpoint"] == f"{identifier}.dsql.{REGION}.on.aws"

    service_name = dsql.get_vpc_endpoint_service_name(identifier=identifier)["serviceName"]
    assert re.fullmatch(rf"com\.amazonaws\.{REGION}\.dsql-[a-z0-9]{{4}}", service_name)
    endpoints = aws("ec2").describe_vpc_endpoints()["VpcEndpoints"]
    assert [(endpoint["ServiceName"], endpoint["VpcEndpointType"]) for endpoint in endpoints] == [
        (service_name, "Interface")
    ]

    variables = aws("lambda").get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    assert (variables["DSQL_ENDPOINT"], variables["DSQL_CLUSTER_ARN"]) == (values["DsqlEndpoint"], cluster["arn"])


def small_template(resources_: dict, stack_outputs: dict | None = None) -> dict:
    body = {"Resources": resources_}
    if stack_outputs:
        body["Outputs"] = stack_outputs
    return body


DSQL = {"Type": "AWS::DSQL::Cluster", "Properties": {"DeletionProtectionEnabled": False}}
SECRET = {"Type": "AWS::SecretsManager::Secret", "Properties": {"GenerateSecretString": {}}}


@pytest.mark.parametrize("type_name", ["AWS::DSQL::Cluster", "AWS::RDS::DBCluster", "AWS::SecretsManager::Secret"])
def test_an_unknown_attribute_in_an_output_is_a_validation_error(aws, type_name):
    body = small_template(
        {"Thing": {"Type": type_name, "Properties": {}}},
        {"Bad": {"Value": {"Fn::GetAtt": ["Thing", "NoSuchAttribute"]}}},
    )

    with pytest.raises(ClientError) as raised:
        create_stack(aws, "Bad", body)

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Code"] == "ValidationError"


@pytest.mark.parametrize("resource", [DSQL, SECRET], ids=["dsql", "secret"])
def test_an_unknown_attribute_in_a_property_is_a_validation_error(aws, resource):
    body = small_template(
        {
            "Thing": resource,
            "Parameter": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Type": "String", "Value": {"Fn::GetAtt": ["Thing", "NoSuchAttribute"]}},
            },
        }
    )

    with pytest.raises(ClientError) as raised:
        create_stack(aws, "Bad", body)

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "does not support attribute type NoSuchAttribute" in raised.value.response["Error"]["Message"]


def test_update_stack_turns_deletion_protection_off_in_place(aws):
    body = template("r1", "DatabaseStack")
    values = outputs(create_stack(aws, "DatabaseStack", body))
    identifier = values["DsqlClusterIdentifier"]
    rds = aws("rds")
    resource_id = rds.describe_db_clusters(DBClusterIdentifier="vela-aurora")["DBClusters"][0]["DbClusterResourceId"]
    updated = copy.deepcopy(body)
    dsql_properties = updated["Resources"]["DsqlCluster"]["Properties"]
    dsql_properties["DeletionProtectionEnabled"] = False
    dsql_properties["Tags"] = [{"Key": "app", "Value": "vela"}, {"Key": "stage", "Value": "retiring"}]
    updated["Resources"]["Aurora2CBAB212"]["Properties"]["DeletionProtection"] = False

    cfn = aws("cloudformation")
    cfn.update_stack(StackName="DatabaseStack", TemplateBody=json.dumps(updated))

    assert cfn.describe_stacks(StackName="DatabaseStack")["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert physical_id(aws, "DatabaseStack", "DsqlCluster") == identifier
    cluster = aws("dsql").get_cluster(identifier=identifier)
    assert cluster["deletionProtectionEnabled"] is False
    assert cluster["tags"] == {"app": "vela", "stage": "retiring"}
    aurora = rds.describe_db_clusters(DBClusterIdentifier="vela-aurora")["DBClusters"][0]
    assert (aurora["DeletionProtection"], aurora["DbClusterResourceId"]) == (False, resource_id)


def test_deleting_a_protected_cluster_is_refused_as_aws_refuses_it(aws):
    values = outputs(create_stack(aws, "DatabaseStack", template("r1", "DatabaseStack")))
    identifier = values["DsqlClusterIdentifier"]

    with pytest.raises(ServiceException) as rds_refusal:
        resources.RdsDBCluster.delete_from_cloudformation_json("vela-aurora", {}, DEFAULT_ACCOUNT_ID, REGION)
    with pytest.raises(ServiceException) as dsql_refusal:
        resources.DsqlCluster.delete_from_cloudformation_json(identifier, {}, DEFAULT_ACCOUNT_ID, REGION)

    assert (rds_refusal.value.code, rds_refusal.value.message) == (
        "InvalidParameterCombination",
        "Cannot delete protected Cluster, please disable deletion protection and try again.",
    )
    assert dsql_refusal.value.code == "ConflictException"
    assert aws("dsql").get_cluster(identifier=identifier)["deletionProtectionEnabled"] is True
    assert aws("rds").describe_db_clusters(DBClusterIdentifier="vela-aurora")["DBClusters"]


def test_delete_really_deletes_once_unprotected(aws):
    values = outputs(create_stack(aws, "DatabaseStack", template("r1", "DatabaseStack")))
    identifier, secret_arn = values["DsqlClusterIdentifier"], values["AuroraSecretArn"]
    dsql_backends[DEFAULT_ACCOUNT_ID][REGION].clusters[identifier].deletion_protection_enabled = False
    aws("rds").delete_db_instance(DBInstanceIdentifier="vela-aurora-writer")
    aws("rds").modify_db_cluster(DBClusterIdentifier="vela-aurora", DeletionProtection=False)

    resources.SecretTargetAttachment.delete_from_cloudformation_json(secret_arn, {}, DEFAULT_ACCOUNT_ID, REGION)
    assert set(secret_document(aws, secret_arn)) == {"username", "password"}  # connection details taken out
    resources.RdsDBCluster.delete_from_cloudformation_json("vela-aurora", {}, DEFAULT_ACCOUNT_ID, REGION)
    resources.DsqlCluster.delete_from_cloudformation_json(identifier, {}, DEFAULT_ACCOUNT_ID, REGION)
    resources.SecretsManagerSecret.delete_from_cloudformation_json(secret_arn, {}, DEFAULT_ACCOUNT_ID, REGION)

    assert aws("rds").describe_db_clusters()["DBClusters"] == []
    with pytest.raises(ClientError, match="ResourceNotFoundException"):  # DELETING, then gone on moto's next look
        aws("dsql").get_cluster(identifier=identifier)
    assert aws("secretsmanager").list_secrets()["SecretList"] == []  # no recovery window, as CloudFormation does


def test_delete_stack_surfaces_the_refusal_as_an_aws_error(aws):
    body = small_template(
        {
            "Db": {
                "Type": "AWS::RDS::DBCluster",
                "Properties": {
                    "Engine": "aurora-postgresql",
                    "MasterUsername": "vela",
                    "MasterUserPassword": "long-enough-password",
                    "DeletionProtection": True,
                },
            }
        }
    )
    create_stack(aws, "Protected", body)
    cfn = aws("cloudformation")

    try:
        cfn.delete_stack(StackName="Protected")
    except ClientError as error:  # moto's plain DeleteStack raises the resource's error as it is
        assert error.response["Error"]["Code"] == "InvalidParameterCombination"
    else:  # a DeleteStack that records the failure instead, as AWS does
        status = cfn.describe_stacks(StackName="Protected")["Stacks"][0]["StackStatus"]
        assert status == "DELETE_FAILED"
    assert aws("rds").describe_db_clusters()["DBClusters"][0]["DeletionProtection"] is True


def test_generated_passwords_follow_generate_secret_string():
    cdk = resources.generate_password({"PasswordLength": 30, "ExcludeCharacters": CDK_EXCLUDED})
    plain = resources.generate_password({"PasswordLength": 12, "ExcludePunctuation": True, "ExcludeUppercase": True})
    default = resources.generate_password({})

    assert len(cdk) == 30 and not set(cdk) & set(CDK_EXCLUDED)
    assert len(plain) == 12 and set(plain) <= set(string.ascii_lowercase + string.digits)
    assert set(plain) & set(string.ascii_lowercase) and set(plain) & set(string.digits)  # each included type
    assert len(default) == 32
    document = json.loads(
        resources.generate_secret_string(
            {"SecretStringTemplate": '{"username": "vela"}', "GenerateStringKey": "password", "PasswordLength": 8}
        )
    )
    assert document["username"] == "vela" and len(document["password"]) == 8
    with pytest.raises(ServiceException):
        resources.generate_secret_string({"SecretStringTemplate": '{"username": "vela"}'})
