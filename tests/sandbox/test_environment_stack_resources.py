"""The environment page lists each CloudFormation stack's resources (the console's Resources tab), read
through the sandbox's moto where Vela's real CDK stacks are deployed."""

import time

import pytest
from botocore.exceptions import ClientError

from tests.sandbox.helpers import aws

pytestmark = pytest.mark.django_db


def stacks(response):
    return {r.name: r for r in response.context["resources"] if r.kind == "CloudFormation stack"}


def by_logical_id(stack):
    return {item.logical_id: item for item in stack.stack_resources.items}


def detect_drift(sandbox, stack_name: str, timeout: float = 15) -> dict:
    cfn = aws(sandbox, "cloudformation")
    detection = cfn.detect_stack_drift(StackName=stack_name)["StackDriftDetectionId"]
    deadline = time.monotonic() + timeout
    while True:
        status = cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
        if status["DetectionStatus"] != "DETECTION_IN_PROGRESS":
            return status
        assert time.monotonic() < deadline, "drift detection never finished"
        time.sleep(0.1)


def test_each_stack_row_lists_its_resources(client, viewer, sandbox, sandbox_environment):
    client.force_login(viewer)
    response = client.get(sandbox_environment.get_absolute_url())
    assert response.status_code == 200
    found = stacks(response)
    database, api = found["DatabaseStack"], found["ApiStack"]

    listed = aws(sandbox, "cloudformation").list_stack_resources(StackName="DatabaseStack")["StackResourceSummaries"]
    assert len(database.stack_resources.items) == len(listed) and not database.stack_resources.error_code
    (cluster,) = [item for item in database.stack_resources.items if item.type == "AWS::RDS::DBCluster"]
    assert cluster.physical_id == "vela-aurora" and cluster.status == "CREATE_COMPLETE"
    (function,) = [item for item in api.stack_resources.items if item.type == "AWS::Lambda::Function"]
    assert function.physical_id == "vela-api"
    keys = [(item.type, item.logical_id) for item in database.stack_resources.items]
    assert keys == sorted(keys), "grouped by type, then by logical id"

    html = response.content.decode()
    assert f"{len(listed)} resources in DatabaseStack</summary>" in html
    assert '<details id="stack-resources-DatabaseStack" data-keep-open>' in html  # closed until opened
    row = html.split(f">{cluster.logical_id}</td>")[1].split("</tr>")[0]
    assert "AWS::RDS::DBCluster" in row and ">vela-aurora</td>" in row and "CREATE_COMPLETE" in row
    # Never checked for drift: the stack says so, and its resources have no drift column.
    assert database.details["drift"] == "NOT_CHECKED" and "drift checked" not in database.details
    assert ">Drift</th>" not in html


def test_the_htmx_refresh_carries_the_resources_too(client, viewer, sandbox_environment):
    client.force_login(viewer)
    html = client.get(sandbox_environment.get_absolute_url(), headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<div id="resources"')
    assert 'id="stack-resources-ApiStack"' in html and ">vela-api</td>" in html


def test_after_a_drift_detection_the_rows_show_it(client, viewer, sandbox, fresh_sandbox_environment):
    status = detect_drift(sandbox, "ApiStack")
    assert status["StackDriftStatus"] == "IN_SYNC"
    client.force_login(viewer)
    response = client.get(fresh_sandbox_environment.get_absolute_url())
    api = stacks(response)["ApiStack"]
    assert api.details["drift"] == "IN_SYNC" and api.details["drift checked"].endswith(" UTC") and api.healthy
    function = next(item for item in api.stack_resources.items if item.physical_id == "vela-api")
    assert function.drift == "IN_SYNC" and function.drift_checked
    assert api.stack_resources.drift_checked and api.stack_resources.drifted == 0
    html = response.content.decode()
    assert ">Drift</th>" in html
    row = html.split(f">{function.logical_id}</td>")[1].split("</tr>")[0]
    assert 'class="drift drift-IN_SYNC"' in row and f'title="checked {function.drift_checked}"' in row
    assert "drift: <span" in html and ">IN_SYNC</span>" in html


def test_a_drifted_lambda_marks_the_stack_and_its_row(client, viewer, sandbox, fresh_sandbox_environment):
    lam = aws(sandbox, "lambda")
    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName="vela-api", Environment={"Variables": {**variables, "CHANGED_BY_HAND": "1"}}
    )
    try:
        assert detect_drift(sandbox, "ApiStack")["StackDriftStatus"] == "DRIFTED"
        client.force_login(viewer)
        response = client.get(fresh_sandbox_environment.get_absolute_url())
    finally:  # the session's sandbox as the next test expects it
        lam.update_function_configuration(FunctionName="vela-api", Environment={"Variables": variables})
        detect_drift(sandbox, "ApiStack")
    api = stacks(response)["ApiStack"]
    assert api.details["drift"] == "DRIFTED" and not api.healthy
    function = next(item for item in api.stack_resources.items if item.physical_id == "vela-api")
    assert function.drift == "MODIFIED" and function.status_class == "bad"
    assert "1 drifted</span></summary>" in response.content.decode()


def test_a_listing_that_fails_keeps_the_stack_row(client, viewer, sandbox_environment, monkeypatch):
    from botocore.paginate import PageIterator

    def refuse(self):
        raise ClientError(
            {"Error": {"Code": "AccessDenied", "Message": "not allowed: cloudformation:ListStackResources"}},
            "ListStackResources",
        )

    monkeypatch.setattr(PageIterator, "__iter__", refuse)
    client.force_login(viewer)
    response = client.get(sandbox_environment.get_absolute_url())
    assert response.status_code == 200
    database = stacks(response)["DatabaseStack"]
    assert database.exists and database.state == "CREATE_COMPLETE" and not database.error_code
    assert database.stack_resources.error_code == "AccessDenied" and database.stack_resources.items == ()
    html = response.content.decode()
    assert "could not be listed: <strong>AccessDenied</strong>: not allowed: cloudformation:ListStackResources" in html
    assert ">DatabaseStack</td>" in html


def test_a_stack_that_does_not_exist_shows_the_error_and_no_listing(client, viewer, sandbox_environment):
    sandbox_environment.cloudformation_stacks = ["DatabaseStack", "NoSuchStack", "<b>x</b>"]
    sandbox_environment.save()
    client.force_login(viewer)
    response = client.get(sandbox_environment.get_absolute_url())
    assert response.status_code == 200
    found = stacks(response)
    missing = found["NoSuchStack"]
    assert missing.exists is False and "does not exist" in missing.error_message and missing.stack_resources is None
    assert found["DatabaseStack"].stack_resources.items
    html = response.content.decode()
    assert 'id="stack-resources-NoSuchStack"' not in html and "<b>x</b>" not in html
