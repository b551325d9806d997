"""A worker killed with SIGKILL mid-step: the sweep marks the attempt interrupted, and the retry
converges on the cluster the first attempt created instead of making a second one."""

import os
import signal
import time
from datetime import timedelta

import boto3
import pytest
from celery.contrib.testing.worker import start_worker

from dashboard.models import Attempt
from dashboard.runbook import service, worker
from tests.fixtures.workers import worker_process
from tests.runbook.conftest import mark, step
from tests.runbook.test_worker import wait_finished
from velaops.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for_log(attempt_id, text, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attempt = Attempt.objects.get(pk=attempt_id)
        if attempt.logs.filter(message__contains=text).exists():
            return attempt
        time.sleep(0.2)
    raise AssertionError(f"no log line containing {text!r}; status {attempt.status}")


def test_sigkill_during_provisioning_then_sweep_then_retry(fresh_direct_sandbox_environment, sandbox, operator):
    environment = fresh_direct_sandbox_environment
    sandbox.moto.configure(20)  # a long CREATING phase to kill the worker in
    migration = service.migration_start(environment=environment, user=operator, source_address=None)
    mark(migration, "preflight_stacks", "preflight_aurora_empty", "baseline_dynamodb", "snapshot_aurora")

    process = worker_process()
    try:
        attempt = service.attempt_request(
            step=step(migration, "provision_dsql"), action="run", user=operator, source_address=None
        )
        wait_for_log(attempt.pk, ": CREATING")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    assert Attempt.objects.get(pk=attempt.pk).status == "running"  # nobody has noticed yet
    time.sleep(1.5)
    assert worker.attempts_sweep(stale_after=timedelta(seconds=1)) == 1
    killed = Attempt.objects.get(pk=attempt.pk)
    assert killed.status == "interrupted" and "stopped sending heartbeats" in killed.reason

    sandbox.moto.configure(1)
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=10):
        retry = service.attempt_request(
            step=step(migration, "provision_dsql"), action="run", user=operator, source_address=None
        )
        retry = wait_finished(retry.pk, timeout=120)
    assert (retry.number, retry.status) == (2, "succeeded"), retry.error
    assert retry.logs.filter(message__contains="exists already").exists()
    dsql = boto3.client("dsql", region_name="us-east-1", endpoint_url=environment.aws_endpoint_url)
    clusters = dsql.list_clusters()["clusters"]
    assert len(clusters) == 1 and clusters[0]["identifier"] == retry.outputs["identifier"]
