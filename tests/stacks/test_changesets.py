"""dashboard.stacks against the sandbox's moto over HTTP, on Vela's own stacks (r0 deployed, r1/r2 templates)."""

from __future__ import annotations

import json

import pytest

from dashboard.stacks import changesets, drift, ownership
from dashboard.stacks.changesets import Source, StackOperationFailed
from infra.sandbox import stacks
from tests.fixtures.aws import moto_server, moto_url, vela_r0  # noqa: F401  (fixtures)


@pytest.fixture
def vela(vela_r0):  # noqa: F811
    return vela_r0


def no_sleep(_seconds: float) -> None:
    pass


def source(config, client, revision: str, stack: str) -> Source:
    return Source(template_url=stacks.upload(config, client, revision, stack))


def test_ownership_names_the_stack_and_logical_id_and_picks_the_mode(vela):
    _, client = vela
    owned = ownership.owned_resources(client("cloudformation"), ["DatabaseStack", "ApiStack"])
    assert str(owned[("AWS::Lambda::Function", "vela-api")]) == (
        "vela-api is ApiFunctionCE271BD4 (AWS::Lambda::Function) in stack ApiStack"
    )
    environment = type(
        "E",
        (),
        {"lambda_function_name": "vela-api", "aurora_cluster_identifier": "vela-aurora", "dsql_cluster_identifier": ""},
    )()
    mode = ownership.runbook_mode(environment, owned)
    assert mode.through_stacks and [o.logical_id for o in mode.owned] == ["ApiFunctionCE271BD4", "Aurora2CBAB212"]
    unowned = type(
        "E", (), {"lambda_function_name": "other", "aurora_cluster_identifier": "", "dsql_cluster_identifier": ""}
    )()
    assert ownership.runbook_mode(unowned, owned).name == ownership.DIRECT_MODE


def test_prepare_describe_and_execute_streams_every_event(vela):
    config, client = vela
    cfn = client("cloudformation")
    logged: list[str] = []
    name = changesets.change_set_name(7, "review_add_dsql")
    assert name == "velaops-m7-review-add-dsql"
    described = changesets.prepare(
        cfn, "DatabaseStack", name, source(config, client, "r1", "DatabaseStack"), log=logged.append, sleep=no_sleep
    )
    rows = changesets.diff(described)
    assert {row["logical_id"]: row["action"] for row in rows}["DsqlCluster"] == "Add"
    assert changesets.blockers(rows) == []  # Aurora only changes its policies; nothing touches a table

    # A retry finds the same change set instead of making a second one.
    again = changesets.prepare(
        cfn, "DatabaseStack", name, source(config, client, "r1", "DatabaseStack"), log=logged.append, sleep=no_sleep
    )
    assert again["ChangeSetId"] == described["ChangeSetId"]
    assert f"change set {name} of an earlier attempt found (CREATE_COMPLETE)" in logged

    since = changesets.latest_event_id(cfn, "DatabaseStack")
    logged.clear()
    final = changesets.execute(cfn, "DatabaseStack", name, log=logged.append, sleep=no_sleep, since_event=since)
    assert final["StackStatus"] == "UPDATE_COMPLETE"
    assert logged[0] == f"executing change set {name} on DatabaseStack"
    assert "DsqlCluster (AWS::DSQL::Cluster): CREATE_COMPLETE" in logged
    assert logged[-1] == "DatabaseStack (AWS::CloudFormation::Stack): UPDATE_COMPLETE"
    # Executing again (a retry after a crash) follows the stack instead of executing twice.
    logged.clear()
    changesets.execute(cfn, "DatabaseStack", name, log=logged.append, sleep=no_sleep, since_event=since)
    assert logged[0] == f"change set {name} is EXECUTE_COMPLETE: following DatabaseStack"
    assert "DsqlClusterIdentifier" in changesets.outputs(cfn, "DatabaseStack")


def test_an_empty_change_set_is_success_and_a_failed_one_says_why(vela):
    config, client = vela
    cfn = client("cloudformation")
    empty = changesets.prepare(
        cfn, "ApiStack", "velaops-m1-same", source(config, client, "r0", "ApiStack"), log=print, sleep=no_sleep
    )
    assert changesets.is_empty(empty) and changesets.diff(empty) == []
    # r1's ApiStack imports exports DatabaseStack r0 does not have: CloudFormation cannot make it.
    with pytest.raises(StackOperationFailed, match="No export named DatabaseStack:ExportsOutputFnGetAttDsql"):
        changesets.prepare(
            cfn, "ApiStack", "velaops-m1-early", source(config, client, "r1", "ApiStack"), log=print, sleep=no_sleep
        )


def test_blockers_name_stateful_replacements_deletions_and_any_table_change():
    def row(action, type_, replacement="", policy="", logical="X", physical="x"):
        return {
            "action": action,
            "type": type_,
            "replacement": replacement,
            "policy_action": policy,
            "logical_id": logical,
            "physical_id": physical,
        }

    assert changesets.blockers(
        [
            row("Modify", "AWS::DSQL::Cluster", replacement="True", logical="DsqlCluster", physical="abc"),
            row("Modify", "AWS::DynamoDB::Table", replacement="False", logical="UsersTable", physical="vela-users"),
            row("Remove", "AWS::RDS::DBCluster", policy="Delete", logical="Aurora", physical="vela-aurora"),
            row("Remove", "AWS::RDS::DBCluster", policy="Snapshot", logical="Aurora2", physical="a2"),
            row("Remove", "AWS::RDS::DBCluster", policy="Retain", logical="Aurora3", physical="a3"),
            row("Modify", "AWS::Lambda::Function", replacement="True"),
            row("Add", "AWS::DynamoDB::Table"),
        ]
    ) == [
        "DsqlCluster (AWS::DSQL::Cluster, abc) would be replaced (True): its data would not follow",
        "UsersTable (AWS::DynamoDB::Table, vela-users) would be modified: no change may touch a DynamoDB table",
        "Aurora (AWS::RDS::DBCluster, vela-aurora) would be deleted (DeletionPolicy Delete)",
        "Aurora2 (AWS::RDS::DBCluster, a2) would be deleted before this migration's snapshot of Aurora exists",
    ]


def test_a_failed_execution_names_the_resource_and_reason(vela):
    config, client = vela
    cfn = client("cloudformation")
    # r2 of DatabaseStack while ApiStack still imports Aurora's exports: CloudFormation rolls it back.
    changesets.prepare(
        cfn, "DatabaseStack", "velaops-m2-r2", source(config, client, "r2", "DatabaseStack"), log=print, sleep=no_sleep
    )
    since = changesets.latest_event_id(cfn, "DatabaseStack")
    with pytest.raises(StackOperationFailed) as failed:
        changesets.execute(cfn, "DatabaseStack", "velaops-m2-r2", log=print, sleep=no_sleep, since_event=since)
    assert str(failed.value).startswith("DatabaseStack ended UPDATE_ROLLBACK_COMPLETE: Export DatabaseStack:Exports")
    assert failed.value.data["status"] == "UPDATE_ROLLBACK_COMPLETE"


def test_drift_report_lists_each_difference(vela):
    _, client = vela
    cfn, lam = client("cloudformation"), client("lambda")
    assert drift.detect(cfn, "ApiStack", sleep=no_sleep)["status"] == "IN_SYNC"
    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName="vela-api", Environment={"Variables": {**variables, "DSQL_ENDPOINT": "x.dsql.us-east-1.on.aws"}}
    )
    report = drift.detect(cfn, "ApiStack", sleep=no_sleep)
    assert report["status"] == "DRIFTED"
    assert drift.describe_report(report) == [
        "ApiStack/ApiFunctionCE271BD4 (AWS::Lambda::Function) MODIFIED",
        "  /Environment/Variables/DSQL_ENDPOINT ADD: expected null, actual x.dsql.us-east-1.on.aws",
    ]
    json.dumps(report)  # recorded as step outputs
