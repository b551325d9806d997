"""The migration page shows the run as it is: only the forms the user can use, the audit trail swapped with
the steps by the poll, one flash message, the whole name to type, Ask approval only until asked; and the
role layer's refusals (dashboard/access.py, 403) are in the audit trail like the services' refusals."""

import re

import pytest
from django.urls import reverse

from dashboard.models import AuditEvent, MigrationRun, Step
from dashboard.runbook import DIRECT, service
from tests.runbook.conftest import mark, step

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
BEFORE_DECOMMISSION = [s.key for s in DIRECT.steps[: [s.key for s in DIRECT.steps].index("decommission_aurora")]]
ABANDON = "Abandon this migration"


def page(client, user, migration, **headers) -> str:
    client.force_login(user)
    response = client.get(migration.get_absolute_url(), headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def row(html: str, key: str) -> str:
    match = re.search(rf'<tr class="step-\w+" data-step="{key}">.*?</tr>', html, re.S)
    assert match, f"no row for {key}"
    return match.group(0)


def test_viewers_and_approvers_see_no_abandon_operators_do(client, migration, viewer, approver, operator):
    assert ABANDON not in page(client, viewer, migration)
    assert ABANDON not in page(client, approver, migration)
    assert ABANDON in page(client, operator, migration)


def test_a_completed_migration_offers_no_abandon_even_in_the_poll(client, migration, operator):
    html = page(client, operator, migration, **HTMX)
    assert ABANDON in html
    version = re.search(r"\?v=([0-9a-f]+)", html).group(1)
    mark(migration, *[s.key for s in DIRECT.steps])
    MigrationRun.objects.filter(pk=migration.pk).update(status=MigrationRun.Status.COMPLETED)
    polled = client.get(f"{migration.get_absolute_url()}?v={version}", headers=HTMX)
    assert polled.status_code == 200
    assert ABANDON not in polled.content.decode() and "Migration completed" in polled.content.decode()
    assert ABANDON not in page(client, operator, migration)


def test_no_abandon_while_an_attempt_is_active(client, migration, operator):
    service.attempt_request(step=step(migration, "preflight_stacks"), action="run", user=operator, source_address=None)
    assert ABANDON not in page(client, operator, migration)


def test_the_poll_swaps_the_audit_trail_with_the_steps(client, migration, viewer, operator):
    html = page(client, viewer, migration, **HTMX)
    assert html.lstrip().startswith('<div id="migration-live"') and 'id="audit"' in html
    version = re.search(r"\?v=([0-9a-f]+)", html).group(1)
    # A refusal changes no step, only the audit trail: the poll still answers with it.
    with pytest.raises(service.ActionRefused):
        service.attempt_request(
            step=step(migration, "snapshot_aurora"), action="run", user=operator, source_address=None
        )
    polled = client.get(f"{migration.get_absolute_url()}?v={version}", headers=HTMX)
    assert polled.status_code == 200
    audit = polled.content.decode().split('id="audit"', 1)[1]
    assert "step.run" in audit and "refused" in audit and "Earlier steps must succeed" in audit


def test_a_flash_message_shows_once(client, migration, operator):
    client.force_login(operator)
    url = reverse("migration-abandon", args=[migration.environment.slug, migration.pk])
    response = client.post(url, {"reason": "wrong account"}, follow=True)
    assert response.content.decode().count("Migration abandoned.") == 1
    # Shown once, then gone: the next page and the next poll do not repeat it.
    assert "Migration abandoned." not in client.get(migration.get_absolute_url()).content.decode()


def test_an_htmx_action_shows_its_message_once_in_the_swap(client, migration, operator):
    client.force_login(operator)
    url = reverse("step-action", args=["staging", migration.pk, step(migration, "preflight_stacks").pk, "run"])
    html = client.post(url, headers=HTMX).content.decode()
    assert html.count("queued.") == 1
    assert "queued." not in client.get(migration.get_absolute_url(), headers=HTMX).content.decode()


def test_the_rollback_confirmation_shows_the_whole_name(client, migration, operator):
    name = "vela-dsql-cluster-with-a-rather-long-identifier-0123456789"
    mark(migration, *[s.key for s in DIRECT.steps][: [s.key for s in DIRECT.steps].index("provision_dsql")])
    Step.objects.filter(migration=migration, key="provision_dsql").update(
        state=Step.State.SUCCEEDED, outputs={"identifier": name}
    )
    provision = row(page(client, operator, migration), "provision_dsql")
    assert f'Type <code class="mono">{name}</code> to roll back' in provision
    assert f'aria-label="Type {name} to confirm"' in provision


def test_ask_approval_until_asked_the_destructive_form_once_granted(client, migration, operator, approver):
    migration.environment.requires_approval = True
    migration.environment.save()
    mark(migration, *BEFORE_DECOMMISSION)
    decommission = row(page(client, operator, migration), "decommission_aurora")
    assert "Ask approval" in decommission and 'name="confirmation"' not in decommission  # it would be refused

    asked = service.approval_request(
        step=step(migration, "decommission_aurora"), action="run", user=operator, source_address=None
    )
    decommission = row(page(client, operator, migration), "decommission_aurora")
    assert "Ask approval" not in decommission and "waiting for an approver" in decommission

    approver_view = row(page(client, approver, migration), "decommission_aurora")
    assert "Approve</button>" in approver_view and "Ask approval" not in approver_view
    service.approval_grant(approval=asked, user=approver, source_address=None)
    decommission = row(page(client, operator, migration), "decommission_aurora")
    assert "Ask approval" not in decommission and "approved by april" in decommission
    assert 'Type <code class="mono">vela-aurora</code> to run' in decommission and 'name="confirmation"' in decommission


def test_role_refusals_are_written_to_the_audit_trail(client, migration, viewer, approver):
    client.force_login(viewer)
    preflight = step(migration, "preflight_stacks")
    url = reverse("step-action", args=["staging", migration.pk, preflight.pk, "run"])
    assert client.post(url, REMOTE_ADDR="10.1.2.3").status_code == 403
    refusal = AuditEvent.objects.get(outcome="refused")
    assert (refusal.action, refusal.user, refusal.migration, refusal.source_address) == (
        "step.run",
        viewer,
        migration,
        "10.1.2.3",
    )
    assert "operator role" in refusal.details["reason"] and refusal.details["request"] == f"POST {url}"

    client.force_login(approver)
    abandon = reverse("migration-abandon", args=["staging", migration.pk])
    assert client.post(abandon, {"reason": "x"}).status_code == 403
    assert AuditEvent.objects.filter(outcome="refused", action="migration.abandon", user=approver).count() == 1
    # The page shows them with the run's other events.
    assert "migration.abandon" in page(client, approver, migration).split('id="audit"', 1)[1]


def test_refusals_outside_a_migration_are_audited_too(client, environment, viewer, outsider):
    client.force_login(viewer)
    assert client.post(reverse("migration-start", args=[environment.slug])).status_code == 403
    assert client.post(reverse("report-generate", args=[environment.slug])).status_code == 403
    client.force_login(outsider)
    assert client.get(environment.get_absolute_url()).status_code == 403
    refused = AuditEvent.objects.filter(outcome="refused", environment=environment, migration=None)
    assert sorted(refused.values_list("action", "user__username")) == [
        ("environment.view", "nobody"),
        ("migration.start", "vera"),
        ("view.report-generate", "vera"),
    ]
