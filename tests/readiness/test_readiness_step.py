"""Cutover readiness on the sandbox with a real worker: the change-set runbook up to the Lambda's review, then the
endpoint's 5432 rule revoked (the sandbox's fault switch, real EC2 state in moto) makes the readiness step list
exactly that blocker with its fix before the Lambda is touched; restored, the step passes. The environment page's
check reads the same."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from dashboard.models import ReadinessCheck
from dashboard.readiness import checks
from dashboard.runbook import THROUGH_STACKS, service
from tests.runbook.conftest import step
from tests.runbook.test_full_migration import aws, worker  # noqa: F401  (fixture)
from tests.runbook.test_stack_migration import run

pytestmark = pytest.mark.django_db(transaction=True)
KEYS = [d.key for d in THROUGH_STACKS.steps]


def blockers(findings):
    return [f for f in findings if f["severity"] == "blocker"]


def test_a_revoked_endpoint_rule_is_the_one_blocker_before_the_repoint_and_restoring_it_passes(
    worker,  # noqa: F811
    fresh_sandbox_environment,
    operator,
    sandbox,
    client,
):
    environment = fresh_sandbox_environment
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    for key in KEYS[: KEYS.index("readiness")]:
        assert run(migration, key, operator, environment).status == "succeeded", key
    lam = aws(environment, "lambda")
    before = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]

    sandbox.faults.update({"dsql_endpoint_sg_revoked": True})
    failed = run(migration, "readiness", operator, environment)
    assert failed.status == "failed"
    (blocker,) = blockers(failed.outputs["findings"])
    assert blocker["area"] == "network"
    assert (
        "security groups" in blocker["title"]
        and "allow no ingress on TCP 5432 from Lambda vela-api" in blocker["title"]
    )
    assert blocker["fix"] == "endpointSg.addIngressRule(lambdaSg, ec2.Port.tcp(5432))."
    assert failed.error["message"] == "Not ready: " + blocker["title"]
    # Nothing was touched: the Lambda still has its Aurora-era variables.
    assert lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"] == before

    # The environment page's check says the same, read-only.
    client.force_login(operator)
    answer = client.post(reverse("readiness-check", args=[environment.slug]), HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    check = ReadinessCheck.objects.get(environment=environment)
    assert checks.run_check(check.pk) in ("done", "not queued")  # the worker may have run it first
    deadline = time.monotonic() + 60
    check.refresh_from_db()
    while check.status == "running" and time.monotonic() < deadline:  # ... or be running it still
        time.sleep(0.2)
        check.refresh_from_db()
    assert check.status == "done" and not check.summary["ready"]
    assert [f["title"] for f in blockers(check.findings)] == [blocker["title"]]
    card = client.get(reverse("readiness-card", args=[environment.slug])).content.decode()
    assert "not ready: 1 blocker" in card and "endpointSg.addIngressRule" in card

    sandbox.faults.update({"dsql_endpoint_sg_revoked": False})
    passed = run(migration, "readiness", operator, environment)
    assert passed.status == "succeeded", passed.error
    findings = step(migration, "readiness").outputs["findings"]
    assert blockers(findings) == []
    ok = [(f["area"], f["title"]) for f in findings if f["severity"] == "ok"]
    network_ok = [title for area, title in ok if area == "network"]
    assert network_ok[0].startswith("Lambda vela-api reaches the cluster through interface endpoint vpce-")
    identifier = step(migration, "execute_add_dsql").outputs["identifier"]
    assert ("cluster", f"Cluster {identifier} is ACTIVE") in ok
    # The Lambda's grant comes with the API stack's reviewed change set: a warning that names it.
    (grant,) = [f for f in findings if f["area"] == "permissions" and "Lambda's role" in f["title"]]
    assert grant["severity"] == "warning" and "ApiRoleDefaultPolicy" in grant["title"]
    page = client.get(migration.get_absolute_url()).content.decode()
    assert "Lambda vela-api reaches the cluster through interface endpoint" in page
