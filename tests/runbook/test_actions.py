"""The rules of acting on a migration: order, roles, confirmation, approval, skip reasons, cancel."""

import re

import pytest
from django.urls import reverse

from dashboard.models import Approval, Attempt, AuditEvent, MigrationRun, Step
from dashboard.runbook import DIRECT, service
from tests.runbook.conftest import mark, step

pytestmark = pytest.mark.django_db
BEFORE_DECOMMISSION = [s.key for s in DIRECT.steps[: [s.key for s in DIRECT.steps].index("decommission_aurora")]]


def request(migration, key, action="run", user=None, **kwargs):
    return service.attempt_request(
        step=step(migration, key), action=action, user=user or migration.started_by, source_address="10.0.0.7", **kwargs
    )


def test_a_migration_records_the_runbook_and_its_steps_in_order(migration, operator):
    assert migration.runbook_version == DIRECT.version
    assert list(migration.steps.values_list("key", flat=True)) == [s.key for s in DIRECT.steps]
    assert AuditEvent.objects.get(action="migration.start").user == operator


def test_only_one_open_migration_per_environment(migration, environment, operator):
    with pytest.raises(service.ActionRefused, match="already has an open migration"):
        service.migration_start(environment=environment, user=operator, source_address=None)
    service.migration_abandon(migration=migration, user=operator, source_address=None, reason="rehearsal over")
    assert service.migration_start(environment=environment, user=operator, source_address=None).pk != migration.pk


def test_a_step_runs_only_after_the_steps_before_it(migration):
    with pytest.raises(service.ActionRefused, match="Earlier steps must succeed or be skipped first"):
        request(migration, "baseline_dynamodb")
    assert not Attempt.objects.exists()
    refusal = AuditEvent.objects.get(outcome="refused")
    assert refusal.action == "step.run" and refusal.source_address == "10.0.0.7"


def test_run_queues_one_attempt_and_skip_needs_a_reason(migration, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        attempt = request(migration, "preflight_stacks")
    assert attempt.status == "queued" and attempt.number == 1 and len(callbacks) == 1  # the Celery enqueue
    Attempt.objects.filter(pk=attempt.pk).update(status="failed")
    with pytest.raises(service.ActionRefused, match="Say why"):
        request(migration, "preflight_stacks", "skip", reason="  ")
    skipped = request(migration, "preflight_stacks", "skip", reason="stacks checked by hand in the console")
    assert skipped.status == "succeeded" and skipped.number == 2
    assert step(migration, "preflight_stacks").state == Step.State.SKIPPED


def test_a_succeeded_step_is_not_run_again_and_a_step_without_rollback_cannot_roll_back(migration):
    mark(migration, "preflight_stacks")
    with pytest.raises(service.ActionRefused, match="roll it back to run it again"):
        request(migration, "preflight_stacks")
    with pytest.raises(service.ActionRefused, match="has no rollback"):
        request(migration, "preflight_stacks", "rollback")


def test_viewers_and_approvers_cannot_act(migration, viewer, approver):
    for user in (viewer, approver):
        with pytest.raises(service.ActionRefused, match="operator role"):
            request(migration, "preflight_stacks", user=user)


def test_destructive_actions_need_the_resource_name_typed(migration):
    mark(migration, *BEFORE_DECOMMISSION)
    with pytest.raises(service.ActionRefused, match="Type the resource name “vela-aurora”"):
        request(migration, "decommission_aurora", confirmation="vela")
    assert request(migration, "decommission_aurora", confirmation="vela-aurora").status == "queued"


def test_rollback_of_an_earlier_step_waits_for_later_rollbacks(migration):
    mark(migration, *BEFORE_DECOMMISSION)
    migration.environment.dsql_cluster_identifier = "abc"
    migration.environment.save()
    later = "later steps first: Schema onto DSQL, The application.s database role, Point"
    with pytest.raises(service.ActionRefused, match=later):
        request(migration, "provision_dsql", "rollback", confirmation="abc")


def test_approval_by_a_different_approver_is_needed_and_used_once(migration, operator, approver, superuser):
    migration.environment.requires_approval = True
    migration.environment.save()
    mark(migration, *BEFORE_DECOMMISSION)
    with pytest.raises(service.ActionRefused, match="requires an approver's approval"):
        request(migration, "decommission_aurora", confirmation="vela-aurora")
    asked = service.approval_request(
        step=step(migration, "decommission_aurora"), action="run", user=superuser, source_address=None
    )
    with pytest.raises(service.ActionRefused, match="someone other than who asked"):
        service.approval_grant(approval=asked, user=superuser, source_address=None)
    with pytest.raises(service.ActionRefused, match="approver role"):
        service.approval_grant(approval=asked, user=operator, source_address=None)
    service.approval_grant(approval=asked, user=approver, source_address=None)
    attempt = request(migration, "decommission_aurora", confirmation="vela-aurora")
    assert Approval.objects.get(pk=asked.pk).used_by_attempt == attempt
    Attempt.objects.filter(pk=attempt.pk).update(status="failed")
    with pytest.raises(service.ActionRefused, match="requires an approver's approval"):
        request(migration, "decommission_aurora", confirmation="vela-aurora")


def test_cancel_a_queued_attempt_at_once_and_a_running_one_cooperatively(migration, operator):
    attempt = request(migration, "preflight_stacks")
    assert service.attempt_cancel(attempt=attempt, user=operator, source_address=None) == "cancelled"
    second = request(migration, "preflight_stacks")
    Attempt.objects.filter(pk=second.pk).update(status="running")
    assert service.attempt_cancel(attempt=second, user=operator, source_address=None) == "cancelling"
    with pytest.raises(service.ActionRefused, match="already cancelling"):
        request(migration, "preflight_stacks")


def test_an_old_runbook_version_stays_readable_but_cannot_act(migration):
    MigrationRun.objects.filter(pk=migration.pk).update(runbook_version="2020.01-1")
    with pytest.raises(service.ActionRefused, match="follows runbook 2020.01-1"):
        request(migration, "preflight_stacks")


# --- through the views --------------------------------------------------------------------------


def action_url(migration, key, action="run"):
    return reverse("step-action", args=[migration.environment.slug, migration.pk, step(migration, key).pk, action])


def test_actions_are_post_only(client, operator, migration):
    client.force_login(operator)
    assert client.get(action_url(migration, "preflight_stacks")).status_code == 405


def test_a_viewer_gets_403_and_another_environment_404(client, viewer, operator, migration):
    client.force_login(viewer)
    assert client.post(action_url(migration, "preflight_stacks")).status_code == 403
    client.force_login(operator)
    other = action_url(migration, "preflight_stacks").replace("/staging/", "/nope/")
    assert client.post(other).status_code == 404


def test_htmx_action_answers_with_the_steps_partial_and_the_message(client, operator, migration):
    client.force_login(operator)
    response = client.post(action_url(migration, "baseline_dynamodb"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<div id="migration-live"')
    assert "Earlier steps must succeed or be skipped first" in html


def test_unchanged_steps_answer_204_to_a_poll(client, viewer, migration):
    client.force_login(viewer)
    url = migration.get_absolute_url()
    page = client.get(url, headers={"HX-Request": "true"})
    version = re.search(r"\?v=([0-9a-f]+)", page.content.decode()).group(1)
    assert client.get(f"{url}?v={version}", headers={"HX-Request": "true"}).status_code == 204
    request(migration, "preflight_stacks")
    assert client.get(f"{url}?v={version}", headers={"HX-Request": "true"}).status_code == 200


def test_exports_hold_steps_attempts_and_operators(client, viewer, migration):
    request(migration, "preflight_stacks", "skip", reason="checked by hand")
    client.force_login(viewer)
    data = client.get(reverse("migration-export", args=["staging", migration.pk, "json"])).json()
    assert data["steps"][0]["attempts"][0]["operator"] == "otto"
    assert data["steps"][0]["attempts"][0]["reason"] == "checked by hand"
    markdown = client.get(reverse("migration-export", args=["staging", migration.pk, "md"])).content.decode()
    assert "skip #1: **succeeded** by otto (from 10.0.0.7)" in markdown
    assert client.get(reverse("migration-export", args=["staging", migration.pk, "exe"])).status_code == 404


# --- the selector and the service agree ---------------------------------------------------------


def _try(migration, key, action, user, confirmation):
    """The service's answer, rolled back whatever it was."""
    from django.db import transaction

    with transaction.atomic():
        try:
            request(migration, key, action, user=user, confirmation=confirmation, reason="checked by hand")
            answer = ""
        except service.ActionRefused as refusal:
            answer = str(refusal)
        transaction.set_rollback(True)
    return answer


@pytest.mark.parametrize("requires_approval", [False, True])
def test_every_offer_is_what_the_service_does(migration, operator, viewer, requires_approval):
    from dashboard.runbook import actions

    migration.environment.requires_approval = requires_approval
    migration.environment.dsql_cluster_identifier = "abc"
    migration.environment.save()
    keys = [s.key for s in DIRECT.steps]
    mark(migration, *keys[: keys.index("point_lambda") + 1])
    mark(migration, "provision_dsql", state=Step.State.FAILED)
    checked = 0
    for user in (operator, viewer):
        offers = actions.migration_actions(MigrationRun.objects.get(pk=migration.pk), user)
        for row in offers.steps:
            for offer in (row.run, row.skip, row.rollback):
                answer = _try(migration, row.step.key, offer.action, user, offer.confirm)
                expected = offer.refusal or (actions.NEEDS_APPROVAL if offer.awaiting_approval else "")
                assert answer == expected, (row.step.key, offer)
                checked += 1
    assert checked == 2 * 3 * len(DIRECT.steps)
