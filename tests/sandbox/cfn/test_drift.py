"""Stack drift detection in the sandbox's moto (infra.sandbox.cfn.drift), over real HTTP with boto3."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from moto.cloudformation import parsing, responses

from infra.sandbox.cfn import drift

SYNTH = Path(__file__).resolve().parents[3] / "infra" / "sandbox" / "cdk" / "synth"
HAS_RESOURCES = importlib.util.find_spec("infra.sandbox.cfn.resources") is not None
NEEDS_RESOURCES = pytest.mark.skipif(
    not HAS_RESOURCES,
    reason="infra/sandbox/cfn/resources.py (AWS::DSQL::Cluster, AWS::RDS::DBCluster models) does not exist yet",
)

SMALL_TEMPLATE = {
    "Resources": {
        "Table": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": "drift-items",
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            },
        },
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.9.0.0/16"}},
        "SubnetA": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.9.0.0/24"}},
        "SubnetB": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.9.1.0/24"}},
        "Group": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": "api", "VpcId": {"Ref": "Vpc"}},
        },
        "Function": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": "drift-api",
                "Code": {"ZipFile": "def handler(event, context):\n    return 'ok'\n"},
                "Handler": "index.handler",
                "Runtime": "python3.12",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Timeout": 15,
                "MemorySize": 512,
                "Environment": {
                    "Variables": {
                        "USERS_TABLE": {"Ref": "Table"},
                        "REGION": {"Fn::Join": ["", [{"Ref": "AWS::Region"}]]},
                        "MODE": "r0",
                    }
                },
                "VpcConfig": {
                    "SubnetIds": [{"Ref": "SubnetA"}, {"Ref": "SubnetB"}],
                    "SecurityGroupIds": [{"Fn::GetAtt": ["Group", "GroupId"]}],
                },
            },
        },
    }
}


@pytest.fixture(scope="module", autouse=True)
def _drift_installed():
    drift.install()
    if HAS_RESOURCES:
        from infra.sandbox.cfn import resources

        resources.install()
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


@pytest.fixture
def aws(moto_url):
    requests.post(f"{moto_url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10).raise_for_status()

    def client(service):
        return boto3.client(
            service,
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client


def detect(cfn, stack_name):
    detection_id = cfn.detect_stack_drift(StackName=stack_name)["StackDriftDetectionId"]
    return cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection_id)


def drifts_by_id(cfn, stack_name, **filters):
    drifts = cfn.describe_stack_resource_drifts(StackName=stack_name, **filters)["StackResourceDrifts"]
    return {d["LogicalResourceId"]: d for d in drifts}


@pytest.fixture
def small_stack(aws):
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="drift-small", TemplateBody=json.dumps(SMALL_TEMPLATE))
    return cfn


def test_a_fresh_stack_is_in_sync(small_stack):
    cfn = small_stack
    assert cfn.describe_stacks(StackName="drift-small")["Stacks"][0]["DriftInformation"] == {
        "StackDriftStatus": "NOT_CHECKED"
    }

    status = detect(cfn, "drift-small")

    assert status["DetectionStatus"] == "DETECTION_COMPLETE"
    assert status["StackDriftStatus"] == "IN_SYNC", [
        (d["LogicalResourceId"], d["StackResourceDriftStatus"], d.get("DriftStatusReason"))
        for d in drifts_by_id(cfn, "drift-small").values()
    ]
    assert status["DriftedStackResourceCount"] == 0
    drifts = drifts_by_id(cfn, "drift-small")
    # VPC and subnets do not support drift detection here: not checked, so not listed (as AWS does).
    assert set(drifts) == {"Table", "Group", "Function"}
    assert {d["StackResourceDriftStatus"] for d in drifts.values()} == {"IN_SYNC"}
    function = drifts["Function"]
    assert function["PhysicalResourceId"] == "drift-api"
    expected = json.loads(function["ExpectedProperties"])
    assert expected["Environment"]["Variables"] == {"USERS_TABLE": "drift-items", "REGION": "us-east-1", "MODE": "r0"}
    assert "Code" not in expected  # not a compared property (and writeOnly in the registry schema)
    assert json.loads(function["ActualProperties"])["MemorySize"] == 512
    assert "PropertyDifferences" not in function

    stack = cfn.describe_stacks(StackName="drift-small")["Stacks"][0]
    assert stack["DriftInformation"]["StackDriftStatus"] == "IN_SYNC"
    assert "LastCheckTimestamp" in stack["DriftInformation"]
    assert cfn.list_stacks()["StackSummaries"][0]["DriftInformation"]["StackDriftStatus"] == "IN_SYNC"
    summaries = {
        r["LogicalResourceId"]: r for r in cfn.list_stack_resources(StackName="drift-small")["StackResourceSummaries"]
    }
    assert summaries["Function"]["DriftInformation"]["StackResourceDriftStatus"] == "IN_SYNC"
    assert summaries["Vpc"]["DriftInformation"] == {"StackResourceDriftStatus": "NOT_CHECKED"}
    resources = {
        r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName="drift-small")["StackResources"]
    }
    assert resources["Table"]["DriftInformation"]["StackResourceDriftStatus"] == "IN_SYNC"


def test_lambda_variables_changed_out_of_band_are_drift_with_each_path(small_stack, aws):
    cfn, lam = small_stack, aws("lambda")
    variables = lam.get_function_configuration(FunctionName="drift-api")["Environment"]["Variables"]
    variables.update(DSQL_ENDPOINT="abc.dsql.us-east-1.on.aws", MODE="r1")
    del variables["REGION"]
    lam.update_function_configuration(FunctionName="drift-api", Environment={"Variables": variables}, Timeout=30)

    status = detect(cfn, "drift-small")

    assert (status["StackDriftStatus"], status["DriftedStackResourceCount"]) == ("DRIFTED", 1)
    function = drifts_by_id(cfn, "drift-small")["Function"]
    assert function["StackResourceDriftStatus"] == "MODIFIED"
    differences = sorted(function["PropertyDifferences"], key=lambda d: d["PropertyPath"])
    assert differences == [
        {
            "PropertyPath": "/Environment/Variables/DSQL_ENDPOINT",
            "ExpectedValue": "null",
            "ActualValue": "abc.dsql.us-east-1.on.aws",
            "DifferenceType": "ADD",
        },
        {
            "PropertyPath": "/Environment/Variables/MODE",
            "ExpectedValue": "r0",
            "ActualValue": "r1",
            "DifferenceType": "NOT_EQUAL",
        },
        {
            "PropertyPath": "/Environment/Variables/REGION",
            "ExpectedValue": "us-east-1",
            "ActualValue": "null",
            "DifferenceType": "REMOVE",
        },
        {"PropertyPath": "/Timeout", "ExpectedValue": "15", "ActualValue": "30", "DifferenceType": "NOT_EQUAL"},
    ]
    assert (
        json.loads(function["ActualProperties"])["Environment"]["Variables"]["DSQL_ENDPOINT"]
        == "abc.dsql.us-east-1.on.aws"
    )
    modified = drifts_by_id(cfn, "drift-small", StackResourceDriftStatusFilters=["MODIFIED", "DELETED"])
    assert set(modified) == {"Function"}


def test_subnets_compare_as_a_set(small_stack, aws):
    cfn, lam = small_stack, aws("lambda")
    vpc = lam.get_function_configuration(FunctionName="drift-api")["VpcConfig"]
    reordered = list(reversed(vpc["SubnetIds"]))
    lam.update_function_configuration(
        FunctionName="drift-api", VpcConfig={"SubnetIds": reordered, "SecurityGroupIds": vpc["SecurityGroupIds"]}
    )
    assert detect(cfn, "drift-small")["StackDriftStatus"] == "IN_SYNC"

    lam.update_function_configuration(
        FunctionName="drift-api",
        VpcConfig={"SubnetIds": reordered[:1] + ["subnet-0other"], "SecurityGroupIds": vpc["SecurityGroupIds"]},
    )
    function = cfn.detect_stack_resource_drift(StackName="drift-small", LogicalResourceId="Function")[
        "StackResourceDrift"
    ]
    assert function["StackResourceDriftStatus"] == "MODIFIED"
    assert sorted(
        (d["DifferenceType"], d["PropertyPath"].rsplit("/", 1)[0]) for d in function["PropertyDifferences"]
    ) == [
        ("ADD", "/VpcConfig/SubnetIds"),
        ("REMOVE", "/VpcConfig/SubnetIds"),
    ]
    added = next(d for d in function["PropertyDifferences"] if d["DifferenceType"] == "ADD")
    assert (added["PropertyPath"], added["ActualValue"]) == ("/VpcConfig/SubnetIds/1", "subnet-0other")
    # One resource's check moves the resource's drift information, not the stack's status.
    assert (
        cfn.describe_stacks(StackName="drift-small")["Stacks"][0]["DriftInformation"]["StackDriftStatus"] == "IN_SYNC"
    )
    detail = cfn.describe_stack_resource(StackName="drift-small", LogicalResourceId="Function")["StackResourceDetail"]
    assert detail["DriftInformation"]["StackResourceDriftStatus"] == "MODIFIED"


def test_a_table_deleted_out_of_band_is_deleted(small_stack, aws):
    cfn = small_stack
    aws("dynamodb").delete_table(TableName="drift-items")

    status = detect(cfn, "drift-small")

    assert (status["StackDriftStatus"], status["DriftedStackResourceCount"]) == ("DRIFTED", 1)
    table = drifts_by_id(cfn, "drift-small")["Table"]
    assert table["StackResourceDriftStatus"] == "DELETED"
    assert "ExpectedProperties" not in table and "PropertyDifferences" not in table


def test_billing_mode_and_security_group_existence(small_stack, aws):
    cfn = small_stack
    aws("dynamodb").update_table(
        TableName="drift-items",
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    group_id = cfn.describe_stack_resource(StackName="drift-small", LogicalResourceId="Group")["StackResourceDetail"][
        "PhysicalResourceId"
    ]
    ec2 = aws("ec2")
    # The Lambda function holds the group: detach it first, as AWS would require.
    aws("lambda").update_function_configuration(
        FunctionName="drift-api", VpcConfig={"SubnetIds": [], "SecurityGroupIds": []}
    )
    ec2.delete_security_group(GroupId=group_id)

    detect(cfn, "drift-small")

    drifts = drifts_by_id(cfn, "drift-small")
    assert drifts["Group"]["StackResourceDriftStatus"] == "DELETED"
    assert drifts["Table"]["PropertyDifferences"] == [
        {
            "PropertyPath": "/BillingMode",
            "ExpectedValue": "PAY_PER_REQUEST",
            "ActualValue": "PROVISIONED",
            "DifferenceType": "NOT_EQUAL",
        }
    ]


def test_detection_is_refused_on_a_stack_not_at_rest(aws):
    cfn = aws("cloudformation")
    cfn.create_change_set(
        StackName="drift-review", ChangeSetName="first", ChangeSetType="CREATE", TemplateBody=json.dumps(SMALL_TEMPLATE)
    )
    assert cfn.describe_stacks(StackName="drift-review")["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"

    with pytest.raises(ClientError) as refused:
        cfn.detect_stack_drift(StackName="drift-review")
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert "REVIEW_IN_PROGRESS" in refused.value.response["Error"]["Message"]


def test_unknown_ids_and_unsupported_types_are_validation_errors(small_stack):
    cfn = small_stack
    for call in (
        lambda: cfn.describe_stack_drift_detection_status(StackDriftDetectionId="00000000-0000-0000-0000-000000000000"),
        lambda: cfn.detect_stack_resource_drift(StackName="drift-small", LogicalResourceId="Nope"),
        lambda: cfn.detect_stack_resource_drift(StackName="drift-small", LogicalResourceId="Vpc"),
        lambda: cfn.detect_stack_drift(StackName="no-such-stack"),
    ):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "ValidationError"


def put_bootstrap_version(aws):
    aws("ssm").put_parameter(Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String")


def synthesized(revision, stack):
    return (SYNTH / revision / f"{stack}.template.json").read_text()


@NEEDS_RESOURCES
def test_r0_stacks_are_in_sync_and_show_lambda_drift(aws):
    cfn, lam = aws("cloudformation"), aws("lambda")
    put_bootstrap_version(aws)
    cfn.create_stack(StackName="DatabaseStack", TemplateBody=synthesized("r0", "DatabaseStack"))
    cfn.create_stack(StackName="ApiStack", TemplateBody=synthesized("r0", "ApiStack"), Capabilities=["CAPABILITY_IAM"])

    for name in ("DatabaseStack", "ApiStack"):
        status = detect(cfn, name)
        assert (status["DetectionStatus"], status["StackDriftStatus"]) == ("DETECTION_COMPLETE", "IN_SYNC"), (
            drifts_by_id(cfn, name)
        )
    assert drifts_by_id(cfn, "DatabaseStack")["Aurora2CBAB212"]["StackResourceDriftStatus"] == "IN_SYNC"

    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName="vela-api", Environment={"Variables": {**variables, "DSQL_ENDPOINT": "x.dsql.us-east-1.on.aws"}}
    )
    status = detect(cfn, "ApiStack")
    assert status["StackDriftStatus"] == "DRIFTED"
    assert drifts_by_id(cfn, "ApiStack")["ApiFunctionCE271BD4"]["PropertyDifferences"] == [
        {
            "PropertyPath": "/Environment/Variables/DSQL_ENDPOINT",
            "ExpectedValue": "null",
            "ActualValue": "x.dsql.us-east-1.on.aws",
            "DifferenceType": "ADD",
        }
    ]

    aws("rds").modify_db_cluster(DBClusterIdentifier="vela-aurora", DeletionProtection=False)
    aurora = cfn.detect_stack_resource_drift(StackName="DatabaseStack", LogicalResourceId="Aurora2CBAB212")[
        "StackResourceDrift"
    ]
    assert aurora["PropertyDifferences"] == [
        {
            "PropertyPath": "/DeletionProtection",
            "ExpectedValue": "true",
            "ActualValue": "false",
            "DifferenceType": "NOT_EQUAL",
        }
    ]


@NEEDS_RESOURCES
def test_aurora_standing_on_another_local_port_is_not_drift(aws, monkeypatch):
    """The sandbox's Aurora is the local PostgreSQL: on another port than the template's 5432 the cluster reports
    that port (VelaOps must connect to it), yet drift detection sees what the cluster would report on AWS, the
    template's. A port changed out of band afterwards is still drift, against the template's value."""
    from infra.sandbox.cfn import resources

    monkeypatch.setenv(resources.AURORA_PORT_VARIABLE, "6543")
    cfn, rds = aws("cloudformation"), aws("rds")
    put_bootstrap_version(aws)
    cfn.create_stack(StackName="DatabaseStack", TemplateBody=synthesized("r0", "DatabaseStack"))
    assert rds.describe_db_clusters(DBClusterIdentifier="vela-aurora")["DBClusters"][0]["Port"] == 6543
    status = detect(cfn, "DatabaseStack")
    assert status["StackDriftStatus"] == "IN_SYNC", drifts_by_id(cfn, "DatabaseStack")

    rds.modify_db_cluster(DBClusterIdentifier="vela-aurora", Port=6000)
    aurora = cfn.detect_stack_resource_drift(StackName="DatabaseStack", LogicalResourceId="Aurora2CBAB212")[
        "StackResourceDrift"
    ]
    assert aurora["PropertyDifferences"] == [
        {"PropertyPath": "/Port", "ExpectedValue": "5432", "ActualValue": "6000", "DifferenceType": "NOT_EQUAL"}
    ]


@NEEDS_RESOURCES
def test_dsql_deletion_protection_toggled_out_of_band_is_modified(aws):
    cfn = aws("cloudformation")
    put_bootstrap_version(aws)
    cfn.create_stack(StackName="DatabaseStack", TemplateBody=synthesized("r2", "DatabaseStack"))
    assert detect(cfn, "DatabaseStack")["StackDriftStatus"] == "IN_SYNC", drifts_by_id(cfn, "DatabaseStack")
    identifier = cfn.describe_stack_resource(StackName="DatabaseStack", LogicalResourceId="DsqlCluster")[
        "StackResourceDetail"
    ]["PhysicalResourceId"]

    aws("dsql").update_cluster(identifier=identifier, deletionProtectionEnabled=False)

    status = detect(cfn, "DatabaseStack")
    assert (status["StackDriftStatus"], status["DriftedStackResourceCount"]) == ("DRIFTED", 1)
    cluster = drifts_by_id(cfn, "DatabaseStack")["DsqlCluster"]
    assert cluster["StackResourceDriftStatus"] == "MODIFIED"
    assert cluster["PropertyDifferences"] == [
        {
            "PropertyPath": "/DeletionProtectionEnabled",
            "ExpectedValue": "true",
            "ActualValue": "false",
            "DifferenceType": "NOT_EQUAL",
        }
    ]

    # Tags compare as a set of Key/Value pairs: a tag added out of band is one ADD.
    arn = aws("dsql").get_cluster(identifier=identifier)["arn"]
    aws("dsql").tag_resource(resourceArn=arn, tags={"owner": "ops"})
    cluster = cfn.detect_stack_resource_drift(StackName="DatabaseStack", LogicalResourceId="DsqlCluster")[
        "StackResourceDrift"
    ]
    tag_differences = [d for d in cluster["PropertyDifferences"] if d["PropertyPath"].startswith("/Tags")]
    assert [(d["DifferenceType"], json.loads(d["ActualValue"])) for d in tag_differences] == [
        ("ADD", {"Key": "owner", "Value": "ops"})
    ]


def test_install_is_idempotent():
    installed = responses.CloudFormationResponse.list_stack_resources
    drift.install()
    assert responses.CloudFormationResponse.list_stack_resources is installed


def test_read_only_and_write_only_paths_are_never_compared():
    paths = drift._ignored_paths("AWS::RDS::DBCluster")
    kept = drift._without({"MasterUserPassword": "x", "Endpoint": {"Port": 5432}, "Port": 5432}, paths)
    assert kept == {"Port": 5432}  # Endpoint (and Endpoint/Port) readOnly, MasterUserPassword writeOnly
    assert drift._without({"Ingress": [{"Name": "a", "Id": 1}]}, [("Ingress", "*", "Name")]) == {"Ingress": [{"Id": 1}]}
