"""Vela's migration as CloudFormation runs it: r0 → r1 → r2 of the CDK app, through change sets, in the sandbox's moto.

What AWS would hold at the end: one ACTIVE DSQL cluster owned by DatabaseStack, its interface endpoint,
the Lambda's DSQL variables from the stack, Aurora out of the stack but retained (r1's policy) — and on
the way, the export trap of this very migration refused in CloudFormation's words.
"""

from __future__ import annotations

import json

import pytest

from infra.sandbox import stacks
from tests.fixtures.aws import moto_server, moto_url, vela_r0  # noqa: F401  (fixtures)


@pytest.fixture
def account(vela_r0):  # noqa: F811
    return vela_r0


def run_change_set(config, client, stack: str, revision: str) -> dict:
    """Create, describe and execute a change set of `stack` to `revision`; the description."""
    cfn = client("cloudformation")
    name = f"{stack}-{revision}"
    stacks.create_change_set(config, client, stack, revision, name)
    described = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
    assert described["Status"] == "CREATE_COMPLETE", described.get("StatusReason")
    cfn.execute_change_set(StackName=stack, ChangeSetName=name)
    return described


def changes(described: dict) -> dict[str, dict]:
    return {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"] for c in described["Changes"]}


def stack_status(client, stack: str) -> tuple[str, str | None]:
    found = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return found["StackStatus"], found.get("StackStatusReason")


def test_r0_to_r1_to_r2_ends_with_what_aws_would_hold(account):
    config, client = account
    cfn, dsql, rds, lam, ec2 = (client(s) for s in ("cloudformation", "dsql", "rds", "lambda", "ec2"))

    # r1 of DatabaseStack: DSQL and its endpoint are added, Aurora only changes its policies.
    described = run_change_set(config, client, "DatabaseStack", "r1")
    by_id = changes(described)
    assert by_id["DsqlCluster"]["Action"] == "Add"
    assert by_id["DsqlVpcEndpoint43181CA5"]["Action"] == "Add"
    aurora = by_id["Aurora2CBAB212"]
    assert (aurora["Action"], aurora["Replacement"]) == ("Modify", "False")
    assert aurora["Scope"] == ["DeletionPolicy", "UpdateReplacePolicy"]
    assert stack_status(client, "DatabaseStack") == ("UPDATE_COMPLETE", None)

    database = stacks.outputs(cfn, "DatabaseStack")
    identifier = database["DsqlClusterIdentifier"]
    cluster = dsql.get_cluster(identifier=identifier)
    assert cluster["deletionProtectionEnabled"] is True
    assert database["DsqlEndpoint"] == f"{identifier}.dsql.{config.region}.on.aws"
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    assert [e["ServiceName"] for e in endpoints] == [
        dsql.get_vpc_endpoint_service_name(identifier=identifier)["serviceName"]
    ]

    # r1 of ApiStack: the Lambda's variables and its grant come from DatabaseStack's exports.
    described = run_change_set(config, client, "ApiStack", "r1")
    function_change = changes(described)["ApiFunctionCE271BD4"]
    assert (function_change["Action"], function_change["Replacement"]) == ("Modify", "False")
    assert [d["Target"]["Name"] for d in function_change["Details"]] == ["Environment"]
    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    assert variables["DSQL_CLUSTER_ARN"] == database["DsqlClusterArn"] == cluster["arn"]
    assert variables["DSQL_ENDPOINT"] == database["DsqlEndpoint"]
    assert variables["DSQL_REGION"] == config.region
    # CDK names the role's default policy after its logical id.
    policy = client("iam").get_role_policy(RoleName="vela-api-role", PolicyName="ApiRoleDefaultPolicyCFEBAD31")[
        "PolicyDocument"
    ]
    grants = [s for s in policy["Statement"] if "dsql:DbConnect" in s["Action"]]
    assert grants == [
        {"Action": ["dsql:DbConnect", "dsql:DbConnectAdmin"], "Effect": "Allow", "Resource": cluster["arn"]}
    ]

    # r2 of DatabaseStack first — CDK's own deploy order — is refused: ApiStack still imports Aurora's exports.
    run_change_set(config, client, "DatabaseStack", "r2")
    state, reason = stack_status(client, "DatabaseStack")
    assert state == "UPDATE_ROLLBACK_COMPLETE"
    assert reason.startswith("Export DatabaseStack:ExportsOutputRef") and reason.endswith("is in use by ApiStack")
    assert rds.describe_db_clusters(DBClusterIdentifier="vela-aurora")["DBClusters"]

    # The order the sandbox forces: ApiStack lets go of Aurora, then DatabaseStack removes it.
    run_change_set(config, client, "ApiStack", "r2")
    assert stack_status(client, "ApiStack") == ("UPDATE_COMPLETE", None)
    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    assert "AURORA_CLUSTER_ARN" not in variables and variables["DSQL_ENDPOINT"] == database["DsqlEndpoint"]
    described = run_change_set(config, client, "DatabaseStack", "r2")
    assert changes(described)["Aurora2CBAB212"] | {"Details": None} == {
        "Action": "Remove",
        "LogicalResourceId": "Aurora2CBAB212",
        "PhysicalResourceId": "vela-aurora",
        "ResourceType": "AWS::RDS::DBCluster",
        "PolicyAction": "Retain",
        "Scope": [],
        "Details": None,
    }
    assert stack_status(client, "DatabaseStack") == ("UPDATE_COMPLETE", None)

    # What AWS holds now.
    assert [c["identifier"] for c in dsql.list_clusters()["clusters"]] == [identifier]
    owned = stacks.physical_ids(cfn, "DatabaseStack")
    assert owned["DsqlCluster"] == identifier
    assert "Aurora2CBAB212" not in owned
    retained = rds.describe_db_clusters(DBClusterIdentifier="vela-aurora")["DBClusters"][0]
    assert retained["DeletionProtection"] is True  # out of the stack, kept for VelaOps's recorded decommission
    events = cfn.describe_stack_events(StackName="DatabaseStack")["StackEvents"]
    assert ("Aurora2CBAB212", "DELETE_SKIPPED") in [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events]
    assert set(stacks.outputs(cfn, "DatabaseStack")) >= {"DsqlClusterArn", "DsqlEndpoint", "DsqlClusterIdentifier"}
    assert "AuroraClusterArn" not in stacks.outputs(cfn, "DatabaseStack")


def test_a_variable_changed_behind_the_stack_is_drift_with_its_path(account):
    config, client = account
    cfn, lam = client("cloudformation"), client("lambda")
    # ApiStack's r1 imports what DatabaseStack's r1 exports: a change set made too early fails as on AWS.
    stacks.create_change_set(config, client, "ApiStack", "r1", "too-early")
    early = cfn.describe_change_set(StackName="ApiStack", ChangeSetName="too-early")
    assert (early["Status"], early["ExecutionStatus"]) == ("FAILED", "UNAVAILABLE")
    assert early["StatusReason"].startswith("No export named DatabaseStack:ExportsOutputFnGetAttDsqlCluster")
    run_change_set(config, client, "DatabaseStack", "r1")

    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    # What the direct-API runbook does: the stack does not know.
    lam.update_function_configuration(
        FunctionName="vela-api", Environment={"Variables": {**variables, "DSQL_ENDPOINT": "abc.dsql.us-east-1.on.aws"}}
    )
    detection = cfn.detect_stack_drift(StackName="ApiStack")["StackDriftDetectionId"]
    status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
    assert (status["DetectionStatus"], status["StackDriftStatus"]) == ("DETECTION_COMPLETE", "DRIFTED")
    drifts = cfn.describe_stack_resource_drifts(StackName="ApiStack", StackResourceDriftStatusFilters=["MODIFIED"])
    (drift,) = drifts["StackResourceDrifts"]
    assert drift["LogicalResourceId"] == "ApiFunctionCE271BD4"
    assert [
        (d["PropertyPath"], d.get("ExpectedValue"), d["ActualValue"], d["DifferenceType"])
        for d in drift["PropertyDifferences"]
    ] == [("/Environment/Variables/DSQL_ENDPOINT", "null", "abc.dsql.us-east-1.on.aws", "ADD")]

    # The next deploy of the stack writes its own variable map: the out-of-band value is gone.
    run_change_set(config, client, "ApiStack", "r1")
    written = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    assert written["DSQL_ENDPOINT"] == stacks.outputs(cfn, "DatabaseStack")["DsqlEndpoint"]


def test_a_cluster_made_outside_the_stack_is_adopted_by_an_import_change_set(account):
    config, client = account
    cfn, dsql = client("cloudformation"), client("dsql")
    # The cluster the direct-API runbook created, tagged as VelaOps tags it.
    outside = dsql.create_cluster(deletionProtectionEnabled=True, tags={"Name": "vela-dsql", "app": "vela"})
    template = json.loads(stacks.template_body("r0", "DatabaseStack"))
    template["Resources"]["DsqlCluster"] = {
        "Type": "AWS::DSQL::Cluster",
        "Properties": {
            "DeletionProtectionEnabled": True,
            "Tags": [{"Key": "Name", "Value": "vela-dsql"}, {"Key": "app", "Value": "vela"}],
        },
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
    }
    cfn.create_change_set(
        StackName="DatabaseStack",
        ChangeSetName="adopt-dsql",
        ChangeSetType="IMPORT",
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": "BootstrapVersion", "UsePreviousValue": True}],
        ResourcesToImport=[
            {
                "ResourceType": "AWS::DSQL::Cluster",
                "LogicalResourceId": "DsqlCluster",
                "ResourceIdentifier": {"Identifier": outside["identifier"]},
            }
        ],
    )
    (change,) = cfn.describe_change_set(StackName="DatabaseStack", ChangeSetName="adopt-dsql")["Changes"]
    assert (change["ResourceChange"]["Action"], change["ResourceChange"]["PhysicalResourceId"]) == (
        "Import",
        outside["identifier"],
    )
    cfn.execute_change_set(StackName="DatabaseStack", ChangeSetName="adopt-dsql")
    assert stack_status(client, "DatabaseStack")[0] == "IMPORT_COMPLETE"
    assert stacks.physical_ids(cfn, "DatabaseStack")["DsqlCluster"] == outside["identifier"]
    # Adopted, not copied: still the one cluster, and drift-free against the template that adopted it.
    assert [c["identifier"] for c in dsql.list_clusters()["clusters"]] == [outside["identifier"]]
    detection = cfn.detect_stack_drift(StackName="DatabaseStack", LogicalResourceIds=["DsqlCluster"])
    status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection["StackDriftDetectionId"])
    assert status["StackDriftStatus"] == "IN_SYNC"
