"""The permission matrix, per operation of the OpenAPI document: no token, an expired or revoked token, a token
of a user without a role, viewer, operator, approver. Tokens act with their user's roles, nothing more, and
the answers are the pages' (dashboard.access, dashboard.runbook.service).

VelaOps's roles are global (dashboard/roles.py): a role is held for every environment, so "another
environment" means an object reached through an environment it does not belong to: that is a 404, never
the object (test_objects_are_not_reached_through_another_environment).
"""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.api.app import api
from dashboard.models import (
    ApiToken,
    Approval,
    Environment,
    Incident,
    MaintenanceWindow,
    ReadinessCheck,
    ReportRequest,
    ReportSchedule,
    Target,
)
from dashboard.runbook import service
from dashboard.tokens.service import token_create
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
JSON = "application/json"

OPERATIONS = sorted(
    (method.upper(), path, op["operationId"])
    for path, item in api.get_openapi_schema()["paths"].items()
    for method, op in item.items()
    if isinstance(op, dict) and "operationId" in op
)

# Bodies the writes need to get past validation to the permission check's outcome.
BODIES = {
    "migration_abandon": {"reason": "matrix"},
    "approval_request": {"action": "run"},
    "step_skip": {"reason": "matrix"},
    "step_override": {"reason": "matrix"},
    "attempt_bake_stop": {"outcome": "pass", "reason": "matrix"},
    "report_generate": {"period": "daily"},
    "schedule_create": {"name": "matrix-new"},
    "schedule_update": {"name": "matrix"},
    "alert_settings_update": {"emails": ["ops@example.com"]},
    "window_create": {"starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z", "reason": "m"},
}
# Writes an approver (not an operator) gets past the access check for, with the answer expected: granting an
# approval; accepting a gate's findings (here refused by the service: the step is not a gate).
APPROVER_WRITES = {"approval_grant": 200, "step_override": 409}
# Reads whose answer in this world is not a 200: the report is still queued.
READ_ANSWERS = {"report_download": 409}
# Writes the service refuses (409) rather than the access check (403) for a viewer, as the pages do (the page
# shows the refusal as a message): granting is the approver's, by the service's rules.
SERVICE_REFUSED = {"approval_grant"}


@pytest.fixture
def world(db):
    operator = make_user("otto", "operator")
    environment = Environment.objects.create(
        name="Staging",
        slug="staging",
        region="us-east-1",
        account_id="123456789012",
        aws_endpoint_url="http://127.0.0.1:9",  # a closed local port: resources fail fast, offline
        cloudformation_stacks=[],
    )
    Environment.objects.create(name="Other", slug="other", region="us-east-1", account_id="123456789012")
    migration = service.migration_start(environment=environment, user=operator, source_address=None)
    first = migration.steps.order_by("position").first()
    attempt = service.attempt_request(step=first, action="run", user=operator, source_address=None)
    approval = Approval.objects.create(step=first, action="run", requested_by=operator)
    target = Target.objects.create(environment=environment, kind="dynamodb", name="vela-users")
    now = timezone.now()
    Incident.objects.create(target=target, opened_at=now, cause="x")
    report = ReportRequest.objects.create(environment=environment, kind="daily", period_start=now, period_end=now)
    schedule = ReportSchedule.objects.create(environment=environment, name="matrix")
    window = MaintenanceWindow.objects.create(
        environment=environment, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2), reason="m"
    )
    ReadinessCheck.objects.create(environment=environment, requested_by=operator, status="done")
    ids = {
        "slug": "staging",
        "migration_id": migration.pk,
        "key": first.key,
        "attempt_id": attempt.pk,
        "approval_id": approval.pk,
        "target_id": target.pk,
        "report_id": report.pk,
        "schedule_id": schedule.pk,
        "window_id": window.pk,
    }
    return operator, ids


def _client(user=None, **token) -> Client:
    if user is None:
        return Client()
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_create(user=user, name='m', **token).clear}")


def _call(client: Client, method: str, path: str, operation_id: str):
    body = BODIES.get(operation_id, {})
    if method == "GET":
        return client.get(path)
    return client.generic(method, path, b"" if method == "DELETE" else _json(body), content_type=JSON)


def _json(body) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize(("method", "template", "operation_id"), OPERATIONS, ids=[o[2] for o in OPERATIONS])
def test_permission_matrix(world, method, template, operation_id):
    operator, ids = world
    path = template.format(**ids)
    write = method != "GET"

    # No token, an unknown one, an expired one, a revoked one: 401, each saying which.
    assert _call(_client(), method, path, operation_id).status_code == 401
    unknown = Client(HTTP_AUTHORIZATION="Bearer velaops_not-a-token")
    assert _call(unknown, method, path, operation_id).json()["error"]["code"] == "invalid_token"
    expired = _client(operator, expires_at=timezone.now() - timedelta(seconds=1))
    answer = _call(expired, method, path, operation_id)
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_expired")
    revoked_client = _client(operator)
    ApiToken.objects.filter(user=operator).update(revoked_at=timezone.now())
    answer = _call(revoked_client, method, path, operation_id)
    assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_revoked")

    # A user without a role reads nothing and does nothing.
    nobody = _call(_client(make_user("nobody", None)), method, path, operation_id)
    assert nobody.status_code == 403, nobody.content

    viewer = _call(_client(make_user("vera", "viewer")), method, path, operation_id)
    approver = _call(_client(make_user("april", "approver")), method, path, operation_id)
    if not write:
        expected = READ_ANSWERS.get(operation_id, 200)
        assert viewer.status_code == expected, viewer.content
        assert approver.status_code == expected, approver.content
        assert _call(_client(operator), method, path, operation_id).status_code == expected
        return
    denied = 409 if operation_id in SERVICE_REFUSED else 403
    assert viewer.status_code == denied, viewer.content
    if operation_id in APPROVER_WRITES:
        assert approver.status_code == APPROVER_WRITES[operation_id], approver.content
    else:
        assert approver.status_code == 403, approver.content
        acted = _call(_client(operator), method, path, operation_id)
        # The operator passes the access check: the answer is the action's (done, or refused by its rules).
        assert acted.status_code in (200, 201, 202, 204, 409), acted.content


def test_objects_are_not_reached_through_another_environment(world):
    operator, ids = world
    client = _client(operator)
    incidents = client.get(f"/api/v1/environments/other/incidents?target={ids['target_id']}").json()
    assert incidents["count"] == 0
    attempts = client.get(f"/api/v1/attempts?environment=other&migration={ids['migration_id']}").json()
    assert attempts["count"] == 0
    assert client.get("/api/v1/environments/nowhere/health").status_code == 404
    assert client.get(f"/api/v1/migrations/{ids['migration_id']}/steps/no_such_step/run").status_code == 405
    missing = client.post(f"/api/v1/migrations/{ids['migration_id']}/steps/no_such_step/run", content_type=JSON)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
