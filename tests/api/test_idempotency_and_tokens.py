"""Idempotency-Key on writes; session auth needs CSRF, a token does not; the token page; tokens never stored,
logged or shown in clear after their creation; last use recorded."""

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from dashboard.models import ApiToken, Attempt, AuditEvent, IdempotencyRecord, MigrationRun
from dashboard.tokens import service as tokens
from tests.api.conftest import token_for

pytestmark = pytest.mark.django_db
JSON = "application/json"


def test_a_retry_with_the_same_key_acts_once(as_operator, migration):
    key = migration.steps.order_by("position").first().key
    path = f"/api/v1/migrations/{migration.pk}/steps/{key}/run"
    first = as_operator.post(path, {}, content_type=JSON, HTTP_IDEMPOTENCY_KEY="pipeline-42-run")
    again = as_operator.post(path, {}, content_type=JSON, HTTP_IDEMPOTENCY_KEY="pipeline-42-run")
    assert first.status_code == again.status_code == 202
    assert first.content == again.content and again["Idempotent-Replayed"] == "true"
    assert Attempt.objects.filter(migration=migration).count() == 1
    # Without the key, the same request is a second request: the service refuses it (one attempt at a time).
    assert as_operator.post(path, {}, content_type=JSON).status_code == 409


def test_the_first_answer_is_replayed_even_a_refusal(as_operator, migration):
    path = f"/api/v1/environments/{migration.environment.slug}/migrations"
    first = as_operator.post(path, HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 409
    MigrationRun.objects.filter(pk=migration.pk).update(status="abandoned")
    again = as_operator.post(path, HTTP_IDEMPOTENCY_KEY="k1")
    assert (again.status_code, again.content) == (409, first.content)
    assert MigrationRun.objects.filter(environment=migration.environment).count() == 1
    assert as_operator.post(path, HTTP_IDEMPOTENCY_KEY="k2").status_code == 201


def test_the_same_key_for_another_request_is_422(as_operator, migration):
    path = f"/api/v1/migrations/{migration.pk}/abandon"
    as_operator.post(path, {"reason": "one"}, content_type=JSON, HTTP_IDEMPOTENCY_KEY="k")
    other = as_operator.post(path, {"reason": "two"}, content_type=JSON, HTTP_IDEMPOTENCY_KEY="k")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_mismatch"


def test_keys_are_per_user(as_operator, operator, migration, superuser):
    path = f"/api/v1/migrations/{migration.pk}/abandon"
    as_operator.post(path, {"reason": "x"}, content_type=JSON, HTTP_IDEMPOTENCY_KEY="shared")
    other = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(superuser)}")
    answer = other.post(path, {"reason": "x"}, content_type=JSON, HTTP_IDEMPOTENCY_KEY="shared")
    assert answer.status_code == 409 and "Idempotent-Replayed" not in answer  # acted (refused) on its own
    assert IdempotencyRecord.objects.filter(key="shared").count() == 2


def test_a_bad_key_is_400(as_operator, migration):
    path = f"/api/v1/migrations/{migration.pk}/abandon"
    long = as_operator.post(path, {"reason": "x"}, content_type=JSON, HTTP_IDEMPOTENCY_KEY="k" * 300)
    assert long.status_code == 400 and long.json()["error"]["code"] == "bad_idempotency_key"


@pytest.mark.django_db(transaction=True)
def test_concurrent_twins_act_once(operator, environment):
    """Two identical requests at once (a pipeline's retry racing its first try): one acts, the other waits
    for nothing and is told the first is in progress, or replays it."""
    token = token_for(operator)
    barrier, answers = threading.Barrier(2), []

    def send():
        barrier.wait()
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
        answers.append(client.post("/api/v1/environments/staging/migrations", HTTP_IDEMPOTENCY_KEY="race").status_code)
        connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) in ([201, 201], [201, 409])
    assert MigrationRun.objects.filter(environment=environment).count() == 1


# --- authentication -----------------------------------------------------------------------------------------


def test_a_session_write_needs_csrf_and_a_token_write_does_not(operator, migration):
    path = f"/api/v1/migrations/{migration.pk}/abandon"
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    refused = browser.post(path, {"reason": "x"}, content_type=JSON)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert browser.get(f"/api/v1/migrations/{migration.pk}").status_code == 200  # reads need no CSRF token
    browser.get("/account/tokens/")  # any page sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    assert browser.post(path, {"reason": "x"}, content_type=JSON, HTTP_X_CSRFTOKEN=csrf).status_code == 200

    pipeline = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {token_for(operator)}")
    answer = pipeline.post(f"/api/v1/environments/{migration.environment.slug}/migrations")
    assert answer.status_code == 201


def test_a_token_acts_as_its_user_with_its_roles(as_viewer, viewer, migration):
    refused = as_viewer.post(f"/api/v1/migrations/{migration.pk}/abandon", {"reason": "x"}, content_type=JSON)
    assert refused.status_code == 403
    event = AuditEvent.objects.filter(outcome="refused").latest("at")
    assert event.user == viewer and event.action == "migration.abandon"


def test_malformed_authorization_is_401(migration):
    for header in ("Basic abc", "Bearer", "Bearer velaops_" + "x" * 300):
        answer = Client(HTTP_AUTHORIZATION=header).get("/api/v1/environments")
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_token", header


def test_last_use_is_recorded_at_most_once_a_minute(operator, environment):
    clear = token_for(operator)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {clear}")
    client.get("/api/v1/environments")
    token = ApiToken.objects.get(user=operator)
    first = token.last_used_at
    assert first is not None
    client.get("/api/v1/environments")
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/v1/environments")
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first - timedelta(seconds=1)


# --- the token page and where the clear token may be ------------------------------------------------------


def test_the_token_page_shows_a_token_once_and_stores_only_its_digest(client, operator, caplog, environment):
    client.force_login(operator)
    caplog.set_level(logging.DEBUG)
    created = client.post("/account/tokens/new", {"name": "ci", "expires_in": "30"})
    assert created.status_code == 201 and "no-store" in created["Cache-Control"]
    page = created.content.decode()
    clear = page.split('id="token-value">')[1].split("<")[0]
    assert clear.startswith("velaops_") and len(clear) > 40

    token = ApiToken.objects.get(user=operator)
    assert token.digest == tokens.digest(clear) and token.expires_at is not None
    # Not in any column of its row, nor anywhere else in the database's text.
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert not any(clear in str(value) for value in row.values())
    with connection.cursor() as cursor:
        row_text = "SELECT count(*) FROM dashboard_apitoken WHERE row_to_json(dashboard_apitoken)::text LIKE %s"
        cursor.execute(row_text, [f"%{clear[8:]}%"])
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM django_session WHERE session_data LIKE %s", [f"%{clear[8:]}%"])
        assert cursor.fetchone()[0] == 0

    # Used, refused, listed: the clear token appears in no log line and on no later page.
    api = Client(HTTP_AUTHORIZATION=f"Bearer {clear}")
    assert api.get("/api/v1/environments").status_code == 200
    assert api.get("/api/v1/environments/nowhere").status_code == 404
    assert api.post("/api/v1/environments/nowhere/migrations").status_code == 404
    listing = client.get("/account/tokens/").content.decode()
    assert clear not in listing and token.prefix in listing
    assert clear not in caplog.text and clear[8:] not in caplog.text

    # Revoked: it no longer authenticates, and the page says so.
    client.post(f"/account/tokens/{token.pk}/revoke")
    assert api.get("/api/v1/environments").json()["error"]["code"] == "token_revoked"
    assert "revoked" in client.get("/account/tokens/").content.decode()


def test_a_user_revokes_only_their_own_tokens(client, operator, viewer):
    theirs = tokens.token_create(user=viewer, name="v").token
    client.force_login(operator)
    client.post(f"/account/tokens/{theirs.pk}/revoke")
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


def test_the_token_page_needs_a_login(client):
    assert client.get("/account/tokens/").status_code == 302


def test_keys_are_forgotten_after_a_day_by_the_hourly_job(as_operator, migration):
    from dashboard.api.idempotency import RETENTION
    from tasks.api import prune_idempotency_keys
    from tasks.schedule import BEAT_SCHEDULE

    url = f"/api/v1/migrations/{migration.pk}/abandon"
    as_operator.post(url, {"reason": "old"}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="old-key")
    as_operator.post(url, {"reason": "new"}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="new-key")
    IdempotencyRecord.objects.filter(key="old-key").update(created_at=timezone.now() - RETENTION - timedelta(minutes=1))
    assert prune_idempotency_keys() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new-key"]
    assert any(entry["task"] == "tasks.api.prune_idempotency_keys" for entry in BEAT_SCHEDULE.values())
