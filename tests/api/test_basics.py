"""The API's operations over the runbook, end to end through the URL, auth, services and error shape."""

import pytest

from dashboard.models import Attempt, MigrationRun

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_environment_list_and_detail(as_viewer, environment):
    body = as_viewer.get("/api/v1/environments").json()
    assert body["count"] == 1
    assert body["items"][0] == {
        "slug": "staging",
        "name": "Staging",
        "description": environment.description,
        "region": environment.region,
        "account_id": environment.account_id,
        "requires_approval": environment.requires_approval,
        "runbook_mode": None,
        "open_migration": None,
    }


def test_start_run_cancel_and_log(as_operator, environment, operator):
    response = as_operator.post("/api/v1/environments/staging/migrations")
    assert response.status_code == 201, response.content
    migration = response.json()
    assert migration["status"] == "open" and migration["started_by"] == operator.username
    first = migration["steps"][0]
    assert first["actions"]["run"]["allowed"] is True
    second = migration["steps"][1]
    assert second["actions"]["run"]["allowed"] is False and "Earlier steps" in second["actions"]["run"]["refusal"]

    # The second open migration is refused by the service: 409 `refused`, its sentence.
    again = as_operator.post("/api/v1/environments/staging/migrations")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "refused"
    assert "already has an open migration" in again.json()["error"]["message"]

    run = as_operator.post(f"/api/v1/migrations/{migration['id']}/steps/{first['key']}/run", {}, content_type=JSON)
    assert run.status_code == 202, run.content
    attempt = run.json()
    assert attempt["status"] == "queued" and attempt["step_key"] == first["key"] and attempt["number"] == 1

    # One attempt at a time, whoever asks.
    busy = as_operator.post(f"/api/v1/migrations/{migration['id']}/steps/{first['key']}/run", content_type=JSON)
    assert busy.status_code == 409 and "already queued" in busy.json()["error"]["message"]

    cancelled = as_operator.post(f"/api/v1/attempts/{attempt['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    log = as_operator.get(f"/api/v1/attempts/{attempt['id']}/log").json()
    assert log["finished"] is True and log["status"] == "cancelled"

    listed = as_operator.get(f"/api/v1/attempts?migration={migration['id']}&status=cancelled").json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == attempt["id"]


def test_skip_needs_a_reason_and_abandon(as_operator, migration):
    key = migration.steps.order_by("position").first().key
    refused = as_operator.post(f"/api/v1/migrations/{migration.pk}/steps/{key}/skip", {}, content_type=JSON)
    assert refused.status_code == 409 and "Say why" in refused.json()["error"]["message"]
    skipped = as_operator.post(
        f"/api/v1/migrations/{migration.pk}/steps/{key}/skip",
        {"reason": "done by hand"},
        content_type=JSON,
    )
    assert skipped.status_code == 202 and skipped.json()["status"] == "succeeded"
    assert Attempt.objects.get(pk=skipped.json()["id"]).action == "skip"

    abandoned = as_operator.post(f"/api/v1/migrations/{migration.pk}/abandon", {"reason": "test"}, content_type=JSON)
    assert abandoned.status_code == 200 and abandoned.json()["status"] == "abandoned"
    assert MigrationRun.objects.get(pk=migration.pk).status == "abandoned"


def test_export(as_viewer, migration):
    md = as_viewer.get(f"/api/v1/migrations/{migration.pk}/export")
    assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
    js = as_viewer.get(f"/api/v1/migrations/{migration.pk}/export?format=json")
    assert js.status_code == 200 and js["Content-Type"] == "application/json"
    assert js.json()["migration"] == migration.pk


def test_environment_detail_reads_the_pages_snapshot(as_viewer, environment):
    # The environment names a closed local port as its AWS endpoint: nothing can be read, and that is said.
    environment.aws_endpoint_url = "http://127.0.0.1:9"
    environment.save()
    body = as_viewer.get("/api/v1/environments/staging").json()
    assert body["slug"] == "staging" and body["resources_read_at"] is not None
    assert all(r["exists"] is None for r in body["resources"]) or body["resources_error"]


def test_a_host_django_refuses_gets_the_error_shape_under_the_api_only(as_viewer, client):
    # What schemathesis found: Django refuses a bad Host header before any view (DisallowedHost, a 400).
    answer = as_viewer.get("/api/v1/environments", HTTP_HOST=",$HlD[guY")
    assert answer.status_code == 400 and answer["Content-Type"] == "application/json"
    assert answer.json()["error"]["code"] == "bad_request"
    page = client.get("/login/", HTTP_HOST=",$HlD[guY")
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")


def test_an_offset_past_any_bigint_is_an_empty_page(as_viewer, migration):
    # What schemathesis found: ?offset=983633023415521116160 was a 500 (PostgreSQL's OFFSET is a bigint).
    answer = as_viewer.get(f"/api/v1/attempts?migration={migration.pk}&offset=983633023415521116160&limit=177")
    assert answer.status_code == 200 and answer.json()["items"] == []
