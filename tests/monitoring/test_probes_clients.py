"""Probes reuse one boto3 client per thread, environment version, service and timeout, and never retry."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from dashboard.models import Environment, ProbeKind, Target
from dashboard.monitoring.probes import clients, run_probe


@pytest.fixture(autouse=True)
def _fresh_clients():
    clients.clear()
    yield
    clients.clear()


def test_a_thread_reuses_its_client_until_the_environment_changes(environment):
    first = clients.probe_client(environment, "dynamodb", 10)
    assert clients.probe_client(environment, "dynamodb", 10) is first
    assert clients.probe_client(environment, "dynamodb", 3) is not first
    assert clients.probe_client(environment, "rds", 10) is not first

    environment.aws_endpoint_url = "http://127.0.0.1:9"
    environment.save()
    changed = clients.probe_client(environment, "dynamodb", 10)
    assert changed is not first
    assert changed.meta.endpoint_url == "http://127.0.0.1:9"


def test_each_thread_has_its_own_client(environment):
    mine = clients.probe_client(environment, "dynamodb", 10)
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(clients.probe_client(environment, "dynamodb", 10)))
    thread.start()
    thread.join()
    assert theirs and theirs[0] is not mine


def test_the_client_makes_one_attempt_within_the_target_timeout(environment):
    config = clients.probe_client(environment, "lambda", 7).meta.config
    assert config.retries["total_max_attempts"] == 1
    assert (config.connect_timeout, config.read_timeout) == (7, 7)


def test_clients_under_a_role_are_rebuilt_before_its_credentials_can_expire(db, moto_url, monkeypatch):
    role = Environment.objects.create(
        name="Prod",
        slug="prod",
        region="us-east-1",
        account_id="123456789012",
        role_arn="arn:aws:iam::123456789012:role/velaops",
        aws_endpoint_url=moto_url,
    )
    now = [1000.0]
    monkeypatch.setattr(clients, "time", SimpleNamespace(monotonic=lambda: now[0]))
    first = clients.probe_client(role, "dynamodb", 10)
    now[0] += clients.ROLE_CLIENT_MAX_AGE - 1
    assert clients.probe_client(role, "dynamodb", 10) is first
    now[0] += 2
    assert clients.probe_client(role, "dynamodb", 10) is not first
    assert clients.ROLE_CLIENT_MAX_AGE < 300  # dashboard.aws renews assumed credentials 300 s before expiry


class FailingDynamoDB(BaseHTTPRequestHandler):
    requests = 0

    def do_POST(self):  # noqa: N802 (http.server's naming)
        type(self).requests += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "boom"})
        self.send_response(500)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_a_probe_does_not_retry_an_error_aws_would_retry(db):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FailingDynamoDB)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        failing = Environment.objects.create(
            name="Failing",
            slug="failing",
            region="us-east-1",
            account_id="123456789012",
            aws_endpoint_url=f"http://127.0.0.1:{server.server_port}",
        )
        target = Target.objects.create(environment=failing, kind=ProbeKind.DYNAMODB, name="vela-users")
        outcome = run_probe(target)
    finally:
        server.shutdown()
        server.server_close()
    assert FailingDynamoDB.requests == 1
    assert outcome.ok is False
    assert outcome.error == "InternalServerError: boom"
    assert outcome.latency_ms is not None  # DynamoDB answered, with an error
