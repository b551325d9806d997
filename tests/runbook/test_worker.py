"""Attempts executed by a real Celery worker on the real Redis broker, against moto's HTTP server."""

import json
import time

import boto3
import pytest
from celery.contrib.testing.worker import start_worker

from dashboard.models import Attempt
from dashboard.runbook import service
from tests.runbook.conftest import step
from velaops.celery import app

pytestmark = pytest.mark.django_db(transaction=True)

TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


@pytest.fixture(scope="module")
def worker():
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10) as running:
        yield running


@pytest.fixture
def aws_environment(environment, moto_url):
    cfn = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto_url)
    cfn.create_stack(StackName="DatabaseStack", TemplateBody=TEMPLATE)
    environment.aws_endpoint_url = moto_url
    environment.cloudformation_stacks = ["DatabaseStack", "ApiStack"]
    environment.save()
    return environment


def wait_finished(attempt_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attempt = Attempt.objects.get(pk=attempt_id)
        if not attempt.is_active:
            return attempt
        time.sleep(0.2)
    raise AssertionError(f"attempt {attempt_id} still {attempt.status}")


def test_a_failing_aws_call_is_recorded_with_code_message_and_request_id(worker, aws_environment, operator):
    migration = service.migration_start(environment=aws_environment, user=operator, source_address=None)
    attempt = service.attempt_request(
        step=step(migration, "preflight_stacks"), action="run", user=operator, source_address=None
    )
    attempt = wait_finished(attempt.pk)
    assert attempt.status == "failed"
    assert attempt.error["code"] == "ValidationError"
    assert "ApiStack does not exist" in attempt.error["message"]
    assert attempt.error["operation"] == "DescribeStacks" and attempt.error["request_id"]
    assert attempt.worker  # the hostname of the worker that ran it
    messages = list(attempt.logs.values_list("message", flat=True))
    assert "dsql.list_clusters" in messages and "stack DatabaseStack: CREATE_COMPLETE" in messages
    assert step(migration, "preflight_stacks").state == "failed"


def test_a_retry_after_fixing_the_cause_succeeds_as_a_second_attempt(worker, aws_environment, operator, moto_url):
    migration = service.migration_start(environment=aws_environment, user=operator, source_address=None)
    first = step(migration, "preflight_stacks")
    wait_finished(service.attempt_request(step=first, action="run", user=operator, source_address=None).pk)
    boto3.client("cloudformation", region_name="us-east-1", endpoint_url=moto_url).create_stack(
        StackName="ApiStack", TemplateBody=TEMPLATE
    )
    retry = wait_finished(service.attempt_request(step=first, action="run", user=operator, source_address=None).pk)
    assert (retry.number, retry.status) == (2, "succeeded")
    assert retry.outputs["stacks"] == {"DatabaseStack": "CREATE_COMPLETE", "ApiStack": "CREATE_COMPLETE"}
    assert len(retry.outputs["aws_request_ids"]) == 3
    assert step(migration, "preflight_stacks").state == "succeeded"
    assert Attempt.objects.get(pk=retry.pk - 1).status == "failed"  # the first attempt is kept as it was
