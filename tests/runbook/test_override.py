"""Gates (change-set reviews, the drift checks): an approver, not the operator who ran the step, accepts what a
failed run found, with a reason; the step then passes with that run's outputs and the acceptance recorded."""

import pytest
from django.urls import reverse

from dashboard.models import Attempt, AuditEvent, MigrationRun, Step
from dashboard.runbook import THROUGH_STACKS, actions, service
from tests.conftest import make_user
from tests.runbook.conftest import mark, step

pytestmark = pytest.mark.django_db
KEYS = [s.key for s in THROUGH_STACKS.steps]
BLOCKED = {
    "stack": "DatabaseStack",
    "change_set": "velaops-1-review-add-dsql",
    "change_set_id": "arn:aws:cloudformation:us-east-1:123456789012:changeSet/velaops-1-review-add-dsql/1",
    "empty": False,
    "diff": [
        {
            "action": "Modify",
            "logical_id": "UsersTable9725E9C8",
            "type": "AWS::DynamoDB::Table",
            "physical_id": "vela-users",
            "replacement": "False",
            "policy_action": "",
            "scope": ["Properties"],
            "details": [],
        }
    ],
    "blockers": [
        "UsersTable9725E9C8 (AWS::DynamoDB::Table, vela-users) would be modified: no change may touch a table"
    ],
    "previous_template": "{}",
    "since_event": "",
}


@pytest.fixture
def stacks_migration(environment, operator):
    """A through-the-stacks migration (made directly: choosing the runbook would ask AWS for the stacks)."""
    migration = MigrationRun.objects.create(
        environment=environment, runbook_version=THROUGH_STACKS.version, started_by=operator
    )
    Step.objects.bulk_create(
        Step(migration=migration, position=index, key=d.key, title=d.title)
        for index, d in enumerate(THROUGH_STACKS.steps, start=1)
    )
    return migration


def failed_run(migration, key, user, outputs):
    target = step(migration, key)
    number = target.attempts.count() + 1
    Attempt.objects.create(
        migration=migration, step=target, number=number, action="run", status="failed", requested_by=user,
        outputs=outputs, error={"code": "StepFailed", "message": "blocked"},
    )  # fmt: skip
    Step.objects.filter(pk=target.pk).update(state=Step.State.FAILED)
    return target


def offers(migration, user, key):
    return actions.migration_actions(MigrationRun.objects.get(pk=migration.pk), user).for_step(step(migration, key).pk)


def test_an_approver_accepts_a_blocked_review_and_the_execute_step_deploys_that_change_set(
    stacks_migration, operator, approver
):
    migration = stacks_migration
    mark(migration, *KEYS[: KEYS.index("review_add_dsql")])
    failed_run(migration, "review_add_dsql", operator, BLOCKED)

    # The operator who ran it sees why the step waits, and cannot accept the blockers.
    row = offers(migration, operator, "review_add_dsql")
    assert row.gate_findings == BLOCKED["blockers"]
    assert row.override.refusal == "You need the approver role to accept a gate's findings."
    with pytest.raises(service.ActionRefused, match="approver role"):
        service.attempt_override(step=row.step, user=operator, source_address="10.0.0.7", reason="fine")
    with pytest.raises(service.ActionRefused, match="Say why"):
        service.attempt_override(step=row.step, user=approver, source_address="10.0.0.8", reason="  ")

    accepted = service.attempt_override(
        step=row.step, user=approver, source_address="10.0.0.8", reason="the table change is a tag, agreed in CAB-12"
    )
    assert (accepted.action, accepted.status, accepted.number) == ("override", "succeeded", 2)
    passed = step(migration, "review_add_dsql")
    assert passed.state == Step.State.SUCCEEDED
    assert passed.outputs["change_set_id"] == BLOCKED["change_set_id"]
    assert passed.outputs["overridden"] == {
        "findings": BLOCKED["blockers"],
        "by": str(approver),
        "reason": "the table change is a tag, agreed in CAB-12",
        "of_attempt": 1,
    }
    event = AuditEvent.objects.get(action="step.override", outcome="ok")
    assert (event.user, event.source_address, event.details["findings"]) == (approver, "10.0.0.8", 1)
    # The next step may now run; the override cannot be repeated.
    assert offers(migration, operator, "execute_add_dsql").run.refusal == ""
    with pytest.raises(service.ActionRefused, match="no failed run"):
        service.attempt_override(step=passed, user=approver, source_address=None, reason="again")


def test_findings_are_accepted_by_someone_other_than_who_ran_the_step(stacks_migration, superuser):
    migration = stacks_migration
    mark(migration, *KEYS[: KEYS.index("review_add_dsql")])
    target = failed_run(migration, "review_add_dsql", superuser, BLOCKED)
    with pytest.raises(service.ActionRefused, match="someone other than who ran the step"):
        service.attempt_override(step=target, user=superuser, source_address=None, reason="mine")
    assert AuditEvent.objects.filter(action="step.override").get().outcome == "refused"


def test_a_failure_without_findings_is_not_accepted_and_postcheck_drift_never_is(stacks_migration, operator, approver):
    migration = stacks_migration
    mark(migration, *KEYS[: KEYS.index("review_add_dsql")])
    target = failed_run(migration, "review_add_dsql", operator, {})  # CloudFormation failed: nothing to accept
    with pytest.raises(service.ActionRefused, match="without findings"):
        service.attempt_override(step=target, user=approver, source_address=None, reason="ship it")

    mark(migration, *KEYS[: KEYS.index("postcheck_drift")])
    drifted = {
        "reports": [
            {
                "stack": "ApiStack",
                "status": "DRIFTED",
                "drifted": [
                    {
                        "logical_id": "ApiFunctionCE271BD4",
                        "type": "AWS::Lambda::Function",
                        "status": "MODIFIED",
                        "differences": [
                            {"path": "/Timeout", "expected": "10", "actual": "30", "kind": "NOT_EQUAL"},
                        ],
                    }
                ],
            }
        ]
    }
    target = failed_run(migration, "postcheck_drift", operator, drifted)
    assert offers(migration, approver, "postcheck_drift").override.refusal.startswith("Its last run failed without")


def test_preflight_drift_is_accepted_with_the_drift_it_accepted(stacks_migration, operator, approver):
    migration = stacks_migration
    mark(migration, *KEYS[: KEYS.index("preflight_drift")])
    report = {
        "stack": "ApiStack",
        "status": "DRIFTED",
        "drifted": [
            {
                "logical_id": "ApiFunctionCE271BD4",
                "type": "AWS::Lambda::Function",
                "status": "MODIFIED",
                "differences": [{"path": "/Environment/Variables/HAND_SET", "expected": None, "actual": "1",
                                 "kind": "ADD"}],
            }
        ],
    }  # fmt: skip
    target = failed_run(migration, "preflight_drift", operator, {"reports": [report], "in_sync": False})
    service.attempt_override(step=target, user=approver, source_address=None, reason="HAND_SET is a debug flag")
    findings = step(migration, "preflight_drift").outputs["overridden"]["findings"]
    assert findings == [
        "ApiStack/ApiFunctionCE271BD4 (AWS::Lambda::Function) MODIFIED",
        "/Environment/Variables/HAND_SET ADD: expected None, actual 1",
    ]


def test_only_an_approver_skips_a_gate(stacks_migration, operator, approver):
    migration = stacks_migration
    mark(migration, *KEYS[: KEYS.index("preflight_drift")])
    with pytest.raises(service.ActionRefused, match="is a gate: only an approver"):
        service.attempt_request(
            step=step(migration, "preflight_drift"), action="skip", user=operator, source_address=None, reason="x"
        )
    skipped = service.attempt_request(
        step=step(migration, "preflight_drift"),
        action="skip",
        user=approver,
        source_address=None,
        reason="drift detection unsupported for a resource type",
    )
    assert skipped.status == "succeeded" and step(migration, "preflight_drift").state == Step.State.SKIPPED
    # Ordinary steps are still the operator's to skip, and not an approver's.
    assert offers(migration, operator, "preflight_aurora_empty").skip.refusal == ""
    assert offers(migration, approver, "preflight_aurora_empty").skip.refusal.startswith("You need the operator")


def test_override_through_the_page_post_only_csrf_and_roles(client, stacks_migration, operator, approver, viewer):
    migration = stacks_migration
    mark(migration, *KEYS[: KEYS.index("review_add_dsql")])
    target = failed_run(migration, "review_add_dsql", operator, BLOCKED)
    url = reverse("step-action", args=[migration.environment.slug, migration.pk, target.pk, "override"])
    page = reverse("migration-detail", args=[migration.environment.slug, migration.pk])

    client.force_login(operator)
    assert "An approver other than otto can accept these findings." in client.get(page).content.decode()
    client.force_login(viewer)
    assert client.post(url, {"reason": "x"}).status_code == 403
    client.force_login(approver)
    assert client.get(url).status_code == 405
    html = client.get(page).content.decode()
    assert "Accept findings" in html and "why the findings are accepted" in html
    answer = client.post(url, {"reason": "tag-only change, CAB-12"}, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    body = answer.content.decode()
    assert "passed: findings accepted" in body and "Accepted by april" in body
    assert step(migration, "review_add_dsql").state == Step.State.SUCCEEDED


def test_a_csrf_less_override_is_refused(stacks_migration, operator):
    from django.test import Client

    migration = stacks_migration
    mark(migration, *KEYS[: KEYS.index("review_add_dsql")])
    target = failed_run(migration, "review_add_dsql", operator, BLOCKED)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user("ada", "approver"))
    url = reverse("step-action", args=[migration.environment.slug, migration.pk, target.pk, "override"])
    assert strict.post(url, {"reason": "x"}).status_code == 403
    assert step(migration, "review_add_dsql").state == Step.State.FAILED
