"""The sandbox's CloudFormation engine (infra/sandbox/cfn/engine.py) against moto as a real HTTP server:
change sets as AWS describes them, DeletionPolicy on removal, exports held by their importers, IMPORT, events."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.cloudformation import parsing

from infra.sandbox.cfn import engine
from tests.fixtures.aws import moto_server, moto_url  # noqa: F401  (fixtures)


@pytest.fixture
def aws(moto_url):  # noqa: F811
    engine.install()
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()

    def client(service: str):
        return boto3.client(
            service,
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    return client


def table(name: str, **extra) -> dict:
    properties = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
    }
    return {"Type": "AWS::DynamoDB::Table", "Properties": properties, **extra}


def queue(name, **properties) -> dict:
    return {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name, **properties}}


def change_set(cfn, stack: str, template: dict, name: str = "next", kind: str = "UPDATE", **extra) -> dict:
    cfn.create_change_set(
        StackName=stack, ChangeSetName=name, TemplateBody=json.dumps(template), ChangeSetType=kind, **extra
    )
    return cfn.describe_change_set(StackName=stack, ChangeSetName=name)


def changes_by_id(described: dict) -> dict[str, dict]:
    return {c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"] for c in described["Changes"]}


def status(cfn, stack: str) -> tuple[str, str | None]:
    found = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return found["StackStatus"], found.get("StackStatusReason")


def events(cfn, stack: str) -> list[tuple[str, str]]:
    listed = cfn.describe_stack_events(StackName=stack)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"]) for e in reversed(listed)]


def test_change_set_says_what_replaces_and_what_each_removal_does(aws):
    cfn = aws("cloudformation")
    cfn.create_stack(
        StackName="S",
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "Renamed": queue("q-old"),
                    "Tuned": queue("q-tuned", VisibilityTimeout=30),
                    "Kept": table("kept", DeletionPolicy="Retain"),
                    "Dropped": table("dropped"),
                    "Policy": table("policy"),
                }
            }
        ),
    )
    described = change_set(
        cfn,
        "S",
        {
            "Resources": {
                "Renamed": queue("q-new"),
                "Tuned": queue("q-tuned", VisibilityTimeout=60),
                "Policy": table("policy", DeletionPolicy="Retain", UpdateReplacePolicy="Retain"),
                "Added": queue("q-added"),
            }
        },
    )
    assert described["Status"] == "CREATE_COMPLETE" and described["ExecutionStatus"] == "AVAILABLE"
    changes = changes_by_id(described)

    renamed = changes["Renamed"]
    assert (renamed["Action"], renamed["Replacement"], renamed["PolicyAction"]) == (
        "Modify",
        "True",
        "ReplaceAndDelete",
    )
    target = renamed["Details"][0]["Target"]
    assert target == {
        "Attribute": "Properties",
        "RequiresRecreation": "Always",
        "Name": "QueueName",
        "Path": "/Properties/QueueName",
        "AttributeChangeType": "Modify",
        "BeforeValue": "q-old",
        "AfterValue": "q-new",
    }
    assert renamed["Details"][0]["Evaluation"] == "Static"

    tuned = changes["Tuned"]
    assert (tuned["Replacement"], tuned["Scope"]) == ("False", ["Properties"])
    assert "PolicyAction" not in tuned
    assert tuned["Details"][0]["Target"]["RequiresRecreation"] == "Never"

    assert (changes["Kept"]["Action"], changes["Kept"]["PolicyAction"]) == ("Remove", "Retain")
    assert changes["Kept"]["PhysicalResourceId"] == "kept"
    assert (changes["Dropped"]["Action"], changes["Dropped"]["PolicyAction"]) == ("Remove", "Delete")
    assert changes["Policy"]["Scope"] == ["DeletionPolicy", "UpdateReplacePolicy"]
    assert changes["Policy"]["Replacement"] == "False"
    assert changes["Added"]["Action"] == "Add" and "Replacement" not in changes["Added"]


def test_executing_keeps_retained_resources_and_records_every_transition(aws):
    cfn, ddb, sqs = aws("cloudformation"), aws("dynamodb"), aws("sqs")
    cfn.create_stack(
        StackName="S",
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "Kept": table("kept", DeletionPolicy="Retain"),
                    "Dropped": table("dropped"),
                    "Q": queue("q1"),
                }
            }
        ),
    )
    change_set(cfn, "S", {"Resources": {"Q": queue("q2")}})
    cfn.execute_change_set(StackName="S", ChangeSetName="next")

    assert status(cfn, "S") == ("UPDATE_COMPLETE", None)
    assert sorted(ddb.list_tables()["TableNames"]) == ["kept"]  # retained in DynamoDB, gone from the stack
    assert [url.rsplit("/", 1)[1] for url in sqs.list_queues()["QueueUrls"]] == [
        "q2"
    ]  # replaced: new, then old deleted
    listed = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName="S")["StackResourceSummaries"]
    }
    assert set(listed) == {"Q"}
    update = events(cfn, "S")[events(cfn, "S").index(("S", "UPDATE_IN_PROGRESS")) :]
    assert update == [
        ("S", "UPDATE_IN_PROGRESS"),
        ("Q", "UPDATE_IN_PROGRESS"),
        ("Q", "CREATE_IN_PROGRESS"),
        ("Q", "CREATE_COMPLETE"),
        ("S", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        ("Q", "DELETE_IN_PROGRESS"),
        ("Q", "DELETE_COMPLETE"),
        ("Kept", "DELETE_SKIPPED"),
        ("Dropped", "DELETE_IN_PROGRESS"),
        ("Dropped", "DELETE_COMPLETE"),
        ("S", "UPDATE_COMPLETE"),
    ]
    # The executed change set is done; the stack's other change sets are gone, as on AWS.
    assert cfn.describe_change_set(StackName="S", ChangeSetName="next")["ExecutionStatus"] == "EXECUTE_COMPLETE"


def test_resources_are_tagged_as_cloudformation_tags_them(aws):
    cfn, ddb = aws("cloudformation"), aws("dynamodb")
    stack_id = cfn.create_stack(
        StackName="S", TemplateBody=json.dumps({"Resources": {"T": table("t")}}), Tags=[{"Key": "app", "Value": "vela"}]
    )["StackId"]
    arn = ddb.describe_table(TableName="t")["Table"]["TableArn"]
    tags = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]}
    assert tags == {
        "aws:cloudformation:stack-name": "S",
        "aws:cloudformation:stack-id": stack_id,
        "aws:cloudformation:logical-id": "T",
        "app": "vela",
    }


def test_an_export_another_stack_imports_holds_until_the_importer_lets_go(aws):
    cfn, ddb = aws("cloudformation"), aws("dynamodb")
    exporting = {
        "Resources": {"T": table("t")},
        "Outputs": {"Name": {"Value": {"Ref": "T"}, "Export": {"Name": "P:TableName"}}},
    }
    cfn.create_stack(StackName="P", TemplateBody=json.dumps(exporting))
    importing = {"Resources": {"Q": queue({"Fn::ImportValue": "P:TableName"})}}
    cfn.create_stack(StackName="C", TemplateBody=json.dumps(importing))
    assert cfn.list_imports(ExportName="P:TableName")["Imports"] == ["C"]

    without = {"Resources": {"T": table("t")}}
    change_set(cfn, "P", without)
    cfn.execute_change_set(StackName="P", ChangeSetName="next")
    assert status(cfn, "P") == (
        "UPDATE_ROLLBACK_COMPLETE",
        "Export P:TableName cannot be deleted as it is in use by C",
    )
    assert [e["Name"] for e in cfn.list_exports()["Exports"]] == ["P:TableName"]
    assert ddb.list_tables()["TableNames"] == ["t"]

    # Changing the exported value is refused the same way.
    changed = json.loads(json.dumps(exporting))
    changed["Outputs"]["Name"]["Value"] = "other"
    cfn.update_stack(StackName="P", TemplateBody=json.dumps(changed))
    assert status(cfn, "P")[1] == "Cannot update export P:TableName as it is in use by C"

    # The importer first, then the exporter: the order CloudFormation forces.
    cfn.update_stack(StackName="C", TemplateBody=json.dumps({"Resources": {"Q": queue("plain")}}))
    assert status(cfn, "C")[0] == "UPDATE_COMPLETE"
    cfn.update_stack(StackName="P", TemplateBody=json.dumps(without))
    assert status(cfn, "P") == ("UPDATE_COMPLETE", None)
    assert cfn.list_exports()["Exports"] == []


def test_a_stack_whose_export_is_imported_fails_to_delete(aws):
    cfn = aws("cloudformation")
    exporting = {"Resources": {"T": table("t")}, "Outputs": {"N": {"Value": {"Ref": "T"}, "Export": {"Name": "P:N"}}}}
    cfn.create_stack(StackName="P", TemplateBody=json.dumps(exporting))
    cfn.create_stack(StackName="C", TemplateBody=json.dumps({"Resources": {"Q": queue({"Fn::ImportValue": "P:N"})}}))
    cfn.delete_stack(StackName="P")  # answers, as on AWS; the stack then fails to delete
    assert status(cfn, "P") == ("DELETE_FAILED", "Export P:N cannot be deleted as it is in use by C")
    assert aws("dynamodb").list_tables()["TableNames"] == ["t"]
    with pytest.raises(cfn.exceptions.ClientError, match="DELETE_FAILED state and can not be updated"):
        cfn.update_stack(StackName="P", TemplateBody=json.dumps({"Resources": {"T": table("t")}}))


def test_new_exports_are_published_for_importers(aws):
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="P", TemplateBody=json.dumps({"Resources": {"T": table("t")}}))
    with_export = {
        "Resources": {"T": table("t"), "U": table("u")},
        "Outputs": {"U": {"Value": {"Ref": "U"}, "Export": {"Name": "P:U"}}},
    }
    cfn.update_stack(StackName="P", TemplateBody=json.dumps(with_export))
    assert [(e["Name"], e["Value"]) for e in cfn.list_exports()["Exports"]] == [("P:U", "u")]
    cfn.create_stack(StackName="C", TemplateBody=json.dumps({"Resources": {"Q": queue({"Fn::ImportValue": "P:U"})}}))
    assert status(cfn, "C")[0] == "CREATE_COMPLETE"
    assert aws("sqs").get_queue_url(QueueName="u")["QueueUrl"]


def test_a_custom_named_resource_cannot_be_replaced_and_the_update_rolls_back(aws):
    cfn, sqs = aws("cloudformation"), aws("sqs")
    cfn.create_stack(StackName="S", TemplateBody=json.dumps({"Resources": {"Q": queue("q1"), "T": table("t")}}))
    # FifoQueue is create-only: a replacement, but the queue keeps its custom name.
    described = change_set(
        cfn, "S", {"Resources": {"Q": queue("q1", FifoQueue=True), "T": table("t"), "U": table("u")}}
    )
    assert changes_by_id(described)["Q"]["Replacement"] == "True"
    cfn.execute_change_set(StackName="S", ChangeSetName="next")
    state, reason = status(cfn, "S")
    assert state == "UPDATE_ROLLBACK_COMPLETE"
    assert reason == (
        "CloudFormation cannot update a stack when a custom-named resource requires replacing. "
        "Rename q1 and update the stack again."
    )
    assert sorted(aws("dynamodb").list_tables()["TableNames"]) == ["t"]  # the added table was rolled back
    assert [url.rsplit("/", 1)[1] for url in sqs.list_queues()["QueueUrls"]] == ["q1"]


def test_an_unchanged_template_makes_a_failed_change_set(aws):
    cfn = aws("cloudformation")
    template = {"Resources": {"T": table("t")}}
    cfn.create_stack(StackName="S", TemplateBody=json.dumps(template))
    described = change_set(cfn, "S", template)
    assert (described["Status"], described["ExecutionStatus"]) == ("FAILED", "UNAVAILABLE")
    with pytest.raises(cfn.exceptions.ClientError, match="cannot be executed in its current execution status"):
        cfn.execute_change_set(StackName="S", ChangeSetName="next")


def test_an_import_change_set_adopts_an_existing_resource(aws):
    cfn, ddb = aws("cloudformation"), aws("dynamodb")
    base = {"Resources": {"T": table("t")}}
    cfn.create_stack(StackName="S", TemplateBody=json.dumps(base))
    ddb.create_table(
        TableName="outside",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    adopted = {"Resources": {**base["Resources"], "Outside": table("outside", DeletionPolicy="Retain")}}
    to_import = [
        {
            "ResourceType": "AWS::DynamoDB::Table",
            "LogicalResourceId": "Outside",
            "ResourceIdentifier": {"TableName": "outside"},
        }
    ]

    # AWS's checks: a DeletionPolicy is required, the resource must exist, nothing else may change.
    without_policy = {"Resources": {**base["Resources"], "Outside": table("outside")}}
    with pytest.raises(cfn.exceptions.ClientError, match=r"\[Outside\] must have DeletionPolicy"):
        change_set(cfn, "S", without_policy, name="i0", kind="IMPORT", ResourcesToImport=to_import)
    ghost = [{**to_import[0], "ResourceIdentifier": {"TableName": "ghost"}}]
    ghost_template = {"Resources": {**base["Resources"], "Outside": table("ghost", DeletionPolicy="Retain")}}
    with pytest.raises(cfn.exceptions.ClientError, match="'ghost' of type 'AWS::DynamoDB::Table' does not exist"):
        change_set(cfn, "S", ghost_template, name="i1", kind="IMPORT", ResourcesToImport=ghost)
    also_changed = {"Resources": {"T": table("t", DeletionPolicy="Retain"), "Outside": adopted["Resources"]["Outside"]}}
    with pytest.raises(cfn.exceptions.ClientError, match=r"modified resources \[T\]"):
        change_set(cfn, "S", also_changed, name="i2", kind="IMPORT", ResourcesToImport=to_import)

    described = change_set(cfn, "S", adopted, name="import", kind="IMPORT", ResourcesToImport=to_import)
    change = changes_by_id(described)["Outside"]
    assert (change["Action"], change["PhysicalResourceId"]) == ("Import", "outside")
    cfn.execute_change_set(StackName="S", ChangeSetName="import")

    assert status(cfn, "S")[0] == "IMPORT_COMPLETE"
    listed = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.list_stack_resources(StackName="S")["StackResourceSummaries"]
    }
    assert listed == {"T": "t", "Outside": "outside"}
    assert ("Outside", "IMPORT_COMPLETE") in events(cfn, "S")
    # Owned now: a second import of it into another stack is refused.
    cfn.create_stack(StackName="Other", TemplateBody=json.dumps({"Resources": {"U": table("u")}}))
    other = {"Resources": {"U": table("u"), "Outside": table("outside", DeletionPolicy="Retain")}}
    with pytest.raises(cfn.exceptions.ClientError, match="already belongs to stack S"):
        change_set(cfn, "Other", other, name="steal", kind="IMPORT", ResourcesToImport=to_import)


def test_a_change_set_name_is_unique_per_stack_until_executed(aws):
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="S", TemplateBody=json.dumps({"Resources": {"T": table("t")}}))
    change_set(cfn, "S", {"Resources": {"T": table("t"), "U": table("u")}})
    with pytest.raises(cfn.exceptions.AlreadyExistsException, match="ChangeSet next already exists"):
        change_set(cfn, "S", {"Resources": {"T": table("t"), "V": table("v")}})
    cfn.execute_change_set(StackName="S", ChangeSetName="next")
    again = change_set(cfn, "S", {"Resources": {"T": table("t")}})  # the executed one gave its name up
    assert changes_by_id(again)["U"]["Action"] == "Remove"


def test_a_change_set_importing_an_export_nobody_has_fails(aws):
    cfn = aws("cloudformation")
    cfn.create_stack(StackName="S", TemplateBody=json.dumps({"Resources": {"T": table("t")}}))
    described = change_set(cfn, "S", {"Resources": {"T": table("t"), "Q": queue({"Fn::ImportValue": "Nope:X"})}})
    assert (described["Status"], described["ExecutionStatus"]) == ("FAILED", "UNAVAILABLE")
    assert described["StatusReason"] == "No export named Nope:X found"


def test_a_rollback_that_cannot_restore_a_resource_fails_until_continued_past_it(aws):
    """What CloudFormation's guide gives as the cause of UPDATE_ROLLBACK_FAILED: a resource deleted outside
    CloudFormation. The update fails on it, so does its rollback; ContinueUpdateRollback without skipping it fails
    again, and with it in ResourcesToSkip the rollback completes (the table the update added goes)."""
    cfn, sqs = aws("cloudformation"), aws("sqs")
    cfn.create_stack(StackName="S", TemplateBody=json.dumps({"Resources": {"Q": queue("q1", VisibilityTimeout=30)}}))
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName="q1")["QueueUrl"])  # out of band
    change_set(cfn, "S", {"Resources": {"T": table("t"), "Q": queue("q1", VisibilityTimeout=60)}})
    cfn.execute_change_set(StackName="S", ChangeSetName="next")
    assert status(cfn, "S") == ("UPDATE_ROLLBACK_FAILED", "The following resource(s) failed to update: [Q].")
    assert ("Q", "UPDATE_FAILED") in events(cfn, "S")[-3:]
    with pytest.raises(cfn.exceptions.ClientError, match="UPDATE_ROLLBACK_FAILED state and can not be updated"):
        change_set(cfn, "S", {"Resources": {"Q": queue("q1")}}, name="again")

    with pytest.raises(cfn.exceptions.ClientError, match=r"Resources \[T\] cannot be skipped"):
        cfn.continue_update_rollback(StackName="S", ResourcesToSkip=["T"])
    cfn.continue_update_rollback(StackName="S")
    assert status(cfn, "S")[0] == "UPDATE_ROLLBACK_FAILED"
    cfn.continue_update_rollback(StackName="S", ResourcesToSkip=["Q"])
    assert status(cfn, "S")[0] == "UPDATE_ROLLBACK_COMPLETE"
    tail = events(cfn, "S")[-5:]
    assert tail[0] == ("S", "UPDATE_ROLLBACK_IN_PROGRESS") and tail[1] == ("Q", "UPDATE_COMPLETE")
    assert tail[-1] == ("S", "UPDATE_ROLLBACK_COMPLETE") and ("T", "DELETE_COMPLETE") in tail
    assert aws("dynamodb").list_tables()["TableNames"] == []
    with pytest.raises(cfn.exceptions.ClientError, match="can not be rolled back"):
        cfn.continue_update_rollback(StackName="S")
