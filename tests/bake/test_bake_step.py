"""The bake on the sandbox through a real Celery worker: a clean bake passes; added DSQL latency fails it and
VelaOps rolls the repoint back by itself; an API that does not answer is inconclusive; too little history
refuses the baseline; an operator can end a bake early."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker

from dashboard.health_route import fetch_health
from dashboard.models import Attempt, AuditEvent, ProbeKind
from dashboard.runbook import DIRECT, service
from tests.runbook.conftest import step
from tests.runbook.test_full_migration import aws
from tests.runbook.test_worker import wait_finished
from tests.sandbox.helpers import QUICK_BAKE, clear_vela_schema_from_dsql, probe_history
from velaops.celery import app

pytestmark = pytest.mark.django_db(transaction=True)

# The direct runbook's steps before the baseline.
KEYS = [d.key for d in DIRECT.steps]
BEFORE_BASELINE = tuple(KEYS[: KEYS.index("baseline_api")])


@pytest.fixture(scope="module")
def worker():
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10) as running:
        yield running


def act(migration, key, user, action="run", timeout=90, **kwargs):
    attempt = service.attempt_request(
        step=step(migration, key), action=action, user=user, source_address="127.0.0.1", **kwargs
    )
    return wait_finished(attempt.pk, timeout=timeout)


@pytest.fixture
def repointed(worker, fresh_direct_sandbox_environment, operator, sandbox):
    """A migration up to the bake: baseline taken, the Lambda pointed at DSQL and verified."""
    environment = fresh_direct_sandbox_environment  # with QUICK_BAKE and a dozen probes of history
    clear_vela_schema_from_dsql(sandbox)
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    for key in (*BEFORE_BASELINE, "baseline_api", "point_lambda", "verify_api"):
        attempt = act(migration, key, operator)
        assert attempt.status == "succeeded", (key, attempt.error)
    return environment, migration


def start_a_long_bake(environment, migration, operator):
    """A two-minute bake, returned once the worker runs it: long enough for an operator to end it early."""
    environment.bake_criteria = {**QUICK_BAKE, "bake_window_seconds": 120}
    environment.save(update_fields=["bake_criteria"])
    attempt = service.attempt_request(
        step=step(migration, "bake_repoint"), action="run", user=operator, source_address="127.0.0.1"
    )
    deadline = time.monotonic() + 30
    while Attempt.objects.get(pk=attempt.pk).status != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    return attempt


def test_a_clean_bake_passes_with_its_figures(repointed, operator):
    environment, migration = repointed
    attempt = act(migration, "bake_repoint", operator)
    assert attempt.status == "succeeded", attempt.error
    found = attempt.outputs["verdict"]
    assert found["outcome"] == "pass"
    checks = {check["name"]: check for check in found["checks"]}
    assert checks["api_latency"]["outcome"] == "pass" and checks["dsql_check"]["outcome"] == "pass"
    assert checks["cold_start"]["outcome"] == "not judged"  # the sandbox's target is probed by URL
    assert found["figures"]["bake"]["answered"] >= QUICK_BAKE["bake_min_samples"]
    assert found["figures"]["baseline"]["answered"] >= 12
    assert attempt.outputs["judged"] == "point_lambda"
    # Its probes are the target's history too: the target page shows the bake's window.
    target = environment.targets.get(kind=ProbeKind.API_HEALTH)
    assert target.results.filter(at__gte=attempt.started_at).count() >= QUICK_BAKE["bake_min_samples"]


def test_added_dsql_latency_fails_the_bake_and_velaops_rolls_the_repoint_back(repointed, operator, sandbox):
    environment, migration = repointed
    lam = aws(environment, "lambda")
    sandbox.faults.update({"dsql_latency_ms": 1000})
    attempt = act(migration, "bake_repoint", operator)
    sandbox.faults.update({"dsql_latency_ms": 0})
    assert attempt.status == "failed"
    found = attempt.outputs["verdict"]
    assert found["outcome"] == "fail" and "DSQL check" in found["reason"]
    assert "VelaOps rolls back" in attempt.error["message"]

    rollback = Attempt.objects.get(migration=migration, step__key="point_lambda", action="rollback")
    assert rollback.requested_by.get_username() == service.AUTOMATIC_USERNAME
    assert rollback.reason.startswith("automatic: the bake")
    rollback = wait_finished(rollback.pk, timeout=60)
    assert rollback.status == "succeeded", rollback.error
    assert step(migration, "point_lambda").state == "rolled_back"
    variables = lam.get_function_configuration(FunctionName=environment.lambda_function_name)["Environment"][
        "Variables"
    ]
    assert not {"DSQL_CLUSTER_ARN", "DSQL_ENDPOINT"} & set(variables)
    # The health route reports the state from before the migration: serving, no DSQL.
    health = fetch_health(environment.api_health_url)
    assert health.http_status == 200 and health.status == "degraded" and not health.cluster_arn
    # Recorded like every action, and the bake's log says what VelaOps did.
    assert AuditEvent.objects.filter(migration=migration, action="step.rollback", details__automatic=True).exists()
    assert attempt.logs.filter(message__startswith="VelaOps started the rollback").exists()


def test_an_api_that_does_not_answer_is_inconclusive_and_held(repointed, operator, sandbox):
    environment, migration = repointed
    target = environment.targets.get(kind=ProbeKind.API_HEALTH)
    target.timeout_seconds = 1
    target.save(update_fields=["timeout_seconds"])
    sandbox.faults.update({"health_timeout": True})
    attempt = act(migration, "bake_repoint", operator)
    sandbox.faults.update({"health_timeout": False})
    assert attempt.status == "failed"
    assert attempt.outputs["verdict"]["outcome"] == "inconclusive"
    assert "no answer" in attempt.outputs["verdict"]["reason"]
    # Held: nothing was rolled back, and an approver could accept it.
    assert not Attempt.objects.filter(migration=migration, action="rollback").exists()
    assert step(migration, "point_lambda").state == "succeeded"


def test_too_little_history_refuses_the_baseline(worker, fresh_direct_sandbox_environment, operator):
    environment = fresh_direct_sandbox_environment
    environment.targets.get(kind=ProbeKind.API_HEALTH).results.all().delete()
    probe_history(environment, 3)
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    for key in BEFORE_BASELINE[:4]:
        assert act(migration, key, operator).status == "succeeded"
    migration.steps.filter(key__in=BEFORE_BASELINE[4:]).update(state="skipped")
    attempt = act(migration, "baseline_api", operator)
    assert attempt.status == "failed"
    assert "Too little history for a baseline: 3 served probes" in attempt.error["message"]
    assert "run this step again then" in attempt.error["message"]


def test_an_operator_ends_a_bake_early(repointed, operator):
    environment, migration = repointed
    attempt = start_a_long_bake(environment, migration, operator)
    with pytest.raises(service.ActionRefused, match="Say why"):
        service.bake_stop(attempt=attempt, user=operator, source_address=None, outcome="pass", reason=" ")
    service.bake_stop(attempt=attempt, user=operator, source_address=None, outcome="pass", reason="looks fine")
    with pytest.raises(service.ActionRefused, match="stopped already"):
        service.bake_stop(attempt=attempt, user=operator, source_address=None, outcome="fail", reason="again")
    finished = wait_finished(attempt.pk, timeout=30)
    assert finished.status == "succeeded"
    found = finished.outputs["verdict"]
    assert found["outcome"] == "pass" and found["decided_by"] == operator.get_username()
    assert "stopped early by" in found["reason"] and "looks fine" in found["reason"]
    assert (finished.finished_at - finished.started_at).total_seconds() < 60


def test_the_migration_page_shows_the_bake_and_its_verdict(repointed, operator, client, viewer):
    environment, migration = repointed
    attempt = act(migration, "bake_repoint", operator)
    assert attempt.status == "succeeded", attempt.error
    client.force_login(viewer)
    page = client.get(migration.get_absolute_url())
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-bake-row="bake_repoint"' in html and 'class="verdict v-pass"' in html
    assert f'id="bake-data-{attempt.pk}"' in html and "baseline_p95" in html  # the chart's data
    assert "End the bake now" not in html  # it has ended, and a viewer may not act anyway
    # The run's report carries the verdict with its figures.
    report = client.get(f"{migration.get_absolute_url()}export.md").content.decode()
    assert "## Bakes" in report and "### Bake: the Lambda on DSQL, run #1 — pass" in report
    assert "| api_latency | pass |" in report and "| API p95 ms |" in report
    # The API target's page shades the bake's window on its chart (the step events carry its end).
    target = environment.targets.get(kind=ProbeKind.API_HEALTH)
    chart = client.get(target.get_absolute_url() + "?range=24h").content.decode()
    assert f'"until": {attempt.finished_at.timestamp()}' in chart


def test_ending_a_bake_early_by_http_needs_an_operator_and_a_post(repointed, operator, viewer, client):
    environment, migration = repointed
    attempt = start_a_long_bake(environment, migration, operator)
    url = f"{migration.get_absolute_url()}attempts/{attempt.pk}/bake-stop"
    client.force_login(viewer)
    assert client.post(url, {"outcome": "fail", "reason": "no"}).status_code == 403
    client.force_login(operator)
    assert client.get(url).status_code == 405
    assert "End the bake now" in client.get(migration.get_absolute_url()).content.decode()
    client.post(url, {"outcome": "maybe", "reason": "x"})  # refused by the form: nothing recorded
    assert not AuditEvent.objects.filter(action="bake.stop", outcome="ok").exists()
    assert client.post(url, {"outcome": "fail", "reason": "latency looks wrong"}).status_code == 302
    finished = wait_finished(attempt.pk, timeout=30)
    assert finished.status == "failed" and finished.outputs["verdict"]["outcome"] == "fail"
    # An operator's fail is a fail: the repoint is rolled back as for the figures' own.
    rollback = Attempt.objects.get(migration=migration, step__key="point_lambda", action="rollback")
    assert wait_finished(rollback.pk, timeout=60).status == "succeeded"
