"""The environment page's shared resources snapshot (dashboard/environments/snapshot.py): AWS calls counted at
moto's real HTTP server bound by time, not by viewers; invalidated when a runbook attempt ends; the last good
snapshot and the error when AWS cannot be reached."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import boto3
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from dashboard.environments import snapshot
from dashboard.environments.resources import environment_resources
from dashboard.models import Attempt, MigrationRun, Step
from dashboard.runbook import worker
from tests.fixtures.aws import free_port

HTMX = {"HX-Request": "true"}


class CountingMoto:
    """moto's HTTP app on a port of its own (the same in-process backends as the session's moto), counting the
    AWS requests it answers."""

    def __init__(self):
        self.calls = 0
        self._lock = threading.Lock()
        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ, start_response):
            if not environ.get("PATH_INFO", "").startswith("/moto-api"):
                with self._lock:
                    self.calls += 1
            return app(environ, start_response)

        self.url = f"http://127.0.0.1:{free_port()}"
        self._server = make_server("127.0.0.1", int(self.url.rsplit(":", 1)[1]), counting, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def counting_moto(moto_url):
    server = CountingMoto()
    yield server
    server.stop()


@pytest.fixture
def counted_environment(environment, moto_url, counting_moto):
    boto3.client("dynamodb", region_name="us-east-1", endpoint_url=moto_url).create_table(
        TableName="vela-users",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    environment.aws_endpoint_url = counting_moto.url
    environment.save()
    return environment


def poll(client: Client, environment):
    """The page's 15 s poll (its resources partial)."""
    response = client.get(environment.get_absolute_url(), headers=HTMX)
    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<div id="resources"')
    return response


def view(client: Client, environment):
    """The whole page, whose context the test client keeps (a partial's it does not)."""
    response = client.get(environment.get_absolute_url())
    assert response.status_code == 200
    return response


def table_row(response):
    return {(r.kind, r.name): r for r in response.context["resources"]}[("DynamoDB table", "vela-users")]


def calls_of_one_read(environment, counting_moto) -> int:
    before = counting_moto.calls
    environment_resources(environment)
    calls = counting_moto.calls - before
    assert calls >= 2  # the table, the Aurora cluster, the Lambda function at least
    return calls


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_viewers_read_aws_once_and_then_by_time(
    counted_environment, counting_moto, viewer, monkeypatch
):
    one_read = calls_of_one_read(counted_environment, counting_moto)

    clients = []
    for _ in range(50):
        client = Client()
        client.force_login(viewer)
        clients.append(client)

    def viewers_poll(count: int) -> list:
        start = threading.Barrier(count)
        responses, errors = [], []

        def view(client):
            try:
                start.wait()
                responses.append(poll(client, counted_environment))
            except Exception as exc:  # reported below, with the thread's own assertion
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=view, args=(client,)) for client in clients[:count]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        return responses

    counting_moto.calls = 0
    responses = viewers_poll(50)
    assert counting_moto.calls == one_read  # fifty viewers at once: one read of AWS, single-flight
    assert all(b"vela-users" in r.content and b"ACTIVE" in r.content for r in responses)
    assert all(b"shared by everyone viewing this page" in r.content for r in responses)

    # Then by time: one read per MAX_AGE however many poll in it.
    # (3 s: twenty concurrent polls answer well within it, even on a busy machine.)
    monkeypatch.setattr(snapshot, "MAX_AGE", 3)
    for _ in range(2):
        time.sleep(3.1)
        viewers_poll(20)
    assert counting_moto.calls == 3 * one_read


def test_polls_within_the_snapshots_age_read_nothing_and_show_its_age(
    counted_environment, counting_moto, client, viewer
):
    client.force_login(viewer)
    poll(client, counted_environment)
    read_at = time.monotonic()
    after_first = counting_moto.calls
    assert after_first > 0
    # 48 viewers' polls, as long as they fall inside the snapshot's age (a loaded machine takes longer).
    polls = 0
    while polls < 48 and time.monotonic() - read_at < snapshot.MAX_AGE / 2:
        poll(client, counted_environment)
        polls += 1
    response = view(client, counted_environment)
    assert polls >= 10 and counting_moto.calls == after_first
    age = response.context["snapshot"].age_seconds()
    assert age < snapshot.MAX_AGE
    # The page said its age when it rendered: the same second, or the one before this reading.
    assert any(f"Read from AWS {shown} s ago".encode() in response.content for shown in (age - 1, age))


def test_an_ended_attempt_invalidates_the_snapshot(
    counted_environment, counting_moto, moto_url, client, viewer, operator, django_capture_on_commit_callbacks
):
    client.force_login(viewer)
    assert table_row(view(client, counted_environment)).exists
    boto3.client("dynamodb", region_name="us-east-1", endpoint_url=moto_url).delete_table(TableName="vela-users")
    assert table_row(view(client, counted_environment)).exists  # the snapshot: the table as it was read

    migration = MigrationRun.objects.create(environment=counted_environment, runbook_version="1", started_by=operator)
    step = Step.objects.create(migration=migration, position=1, key="provision_dsql", title="Provision DSQL")
    Attempt.objects.create(
        migration=migration,
        step=step,
        number=1,
        action="run",
        status=Attempt.Status.RUNNING,
        requested_by=operator,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert worker.attempts_sweep() == 1  # the worker's end of an attempt: interrupted, attempt_ended sent

    row = table_row(view(client, counted_environment))
    assert row.exists is False and row.error_code == "ResourceNotFoundException"


def test_a_changed_configuration_is_read_afresh(counted_environment, counting_moto, client, viewer):
    client.force_login(viewer)
    poll(client, counted_environment)
    counted_environment.dynamodb_tables = ["vela-users", "vela-orders"]
    counted_environment.save()
    names = {r.name for r in view(client, counted_environment).context["resources"]}
    assert "vela-orders" in names


def test_aws_unreachable_keeps_the_last_good_snapshot_with_the_error(
    counted_environment, counting_moto, client, viewer, monkeypatch
):
    client.force_login(viewer)
    good = view(client, counted_environment)
    assert table_row(good).state == "ACTIVE"
    counting_moto.stop()  # AWS is gone
    monkeypatch.setattr(snapshot, "MAX_AGE", 0)
    response = view(client, counted_environment)
    shown = response.context["snapshot"]
    assert table_row(response).state == "ACTIVE"  # what was last read, not a page of errors
    assert shown.failure is not None and shown.failure.code == "EndpointConnectionError"
    html = response.content.decode()
    assert "AWS could not be read at" in html and "EndpointConnectionError" in html and "Showing what was read" in html
    # Without a last good snapshot (a first view), the rows say what failed, as before.
    snapshot.invalidate(counted_environment.pk)
    from tests.conftest import clear_django_cache

    clear_django_cache()
    response = view(client, counted_environment)
    assert table_row(response).error_code == "EndpointConnectionError"
    assert response.context["snapshot"].failure is None


@pytest.mark.django_db(transaction=True)
def test_while_aws_hangs_one_viewer_reads_and_the_others_are_told_not_kept_waiting(
    environment, viewer, settings, monkeypatch
):
    # An endpoint that takes connections and never answers: AWS hanging, each call until its read timeout.
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(64)
    settings.AWS_READ_TIMEOUT = settings.AWS_CONNECT_TIMEOUT = 1
    settings.AWS_MAX_ATTEMPTS = 1
    monkeypatch.setattr(snapshot, "WAIT_SECONDS", 0.3)
    environment.aws_endpoint_url = f"http://127.0.0.1:{hanging.getsockname()[1]}"
    environment.save()
    reader, other = Client(), Client()
    for client in (reader, other):
        client.force_login(viewer)
    answers = {}

    def read():
        answers["reader"] = poll(reader, environment)
        connection.close()

    thread = threading.Thread(target=read)
    try:
        thread.start()
        time.sleep(0.2)  # the reader holds the lock, waiting on AWS
        started = time.monotonic()
        told = poll(other, environment).content.decode()
        waited = time.monotonic() - started
        thread.join()
    finally:
        hanging.close()
    assert waited < 0.9  # not the reader's second of timeouts
    assert "ReadInProgress" in told and "None could be read." in told
    assert b"ReadTimeoutError" in answers["reader"].content  # the reader's own answer: each check timed out
