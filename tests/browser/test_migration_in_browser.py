"""A person's path: log in, open the sandbox environment, start the migration and click through every
step in Debian's Chromium (Playwright), saving a screenshot at each stage under var/screenshots/."""

import pytest
from celery.contrib.testing.worker import start_worker

from dashboard.runbook import DIRECT, service
from tests.browser.screenshots import SHOTS, shot
from tests.runbook.test_worker import wait_finished
from velaops.celery import app

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_and_click_through_the_whole_migration(page, fresh_direct_sandbox_environment, operator):
    environment = fresh_direct_sandbox_environment
    page.goto(f"/environments/{environment.slug}/")
    assert "/login/" in page.url
    page.fill("input[name=username]", operator.username)
    page.fill("input[name=password]", f"pw-{operator.username}")
    page.click("button[type=submit]")
    page.wait_for_selector("#resources")
    shot(page, "01-environment")

    page.click("text=Start a migration")
    page.wait_for_selector("#steps")
    # The flash message once (not at the top and again in the steps), Abandon offered to an operator.
    assert page.locator(".messages li", has_text="started with runbook").count() == 1
    assert page.locator("#abandon summary", has_text="Abandon this migration").count() == 1
    shot(page, "02-migration-started")

    # The audit trail follows the run without a reload: a refusal elsewhere shows up with the next poll.
    migration = environment.migrations.get()
    try:
        later = migration.steps.get(key="verify_dsql")
        service.attempt_request(step=later, action="run", user=operator, source_address="10.9.8.7")
    except service.ActionRefused:
        pass
    page.locator("#audit tr.refused", has_text="10.9.8.7").wait_for(timeout=15_000)

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10):
        for number, definition in enumerate(DIRECT.steps, start=1):
            row = page.locator(f"tr[data-step={definition.key}]")
            if definition.destructive:
                row.locator("input[name=confirmation]").fill(environment.aurora_cluster_identifier)
            row.locator("button", has_text="Run").first.click()
            # HTMX polls the steps while the attempt runs; the row turns "succeeded" without a reload. The first
            # step's by the 2 s poll itself; the others' nudged once the attempt has finished, to keep this short.
            if number > 1:
                row.locator("a", has_text="run #1").wait_for()  # the action's own swap: the attempt is queued
                wait_finished(migration.steps.get(key=definition.key).attempts.get().pk, timeout=90)
                page.evaluate("htmx.trigger(document.getElementById('migration-live'), 'poll')")
            row.locator(".state.s-succeeded").wait_for(timeout=90_000)
            if definition.key in ("provision_dsql", "point_lambda", "decommission_aurora"):
                shot(page, f"03-step-{number:02d}-{definition.key}")
            if definition.key == "bake_repoint":
                # The bake's verdict and its chart (uPlot, drawn by bake.js after the swap) under the step.
                bake = page.locator("tr[data-bake-row=bake_repoint]")
                bake.locator(".verdict.v-pass").first.wait_for(timeout=15_000)
                bake.locator(".bake-chart canvas").wait_for(timeout=15_000)
                assert bake.locator(".bake-checks tr").count() >= 5
                bake.scroll_into_view_if_needed()
                bake.screenshot(path=str(SHOTS / "03-bake-verdict.png"))

    page.wait_for_selector("text=Migration completed")
    # Swapped live with the steps: no Abandon on a completed migration, the steps' audit events are there.
    page.locator("#abandon").wait_for(state="detached", timeout=10_000)
    assert page.locator("#audit tr:not(.refused) td", has_text="step.run").count() == len(DIRECT.steps)
    assert page.locator(".messages li").count() <= 1
    shot(page, "04-migration-completed")

    # The environment page shows the world as it now is: the DSQL cluster, Aurora decommissioned.
    page.goto(f"/environments/{environment.slug}/")
    dsql_row = page.locator("#resources tr", has_text="DSQL cluster")
    dsql_row.wait_for()
    assert "ACTIVE" in dsql_row.inner_text() and ".dsql." in dsql_row.inner_text()
    aurora_row = page.locator("#resources tr", has_text="Aurora cluster")
    assert "decommissioned" in aurora_row.inner_text() and "-final" in aurora_row.inner_text()
    assert "NotFound" not in aurora_row.inner_text()
    shot(page, "06-environment-after-migration")
    page.goto(migration.get_absolute_url())

    page.locator("tr[data-step=provision_dsql] a", has_text="run #1").click()
    page.wait_for_selector("#log-lines li")
    assert page.locator("#log-lines").inner_text().count("ACTIVE") >= 1
    shot(page, "05-provision-log")


def test_the_admin_satisfies_the_policy(page, superuser, environment):
    """Django's admin in the same browser: no CSP violation on its index, lists and forms."""
    page.goto("/admin/")
    page.fill("input[name=username]", superuser.username)
    page.fill("input[name=password]", f"pw-{superuser.username}")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    for path in (
        "/admin/dashboard/environment/",
        f"/admin/dashboard/environment/{environment.pk}/change/",
        "/admin/dashboard/environment/add/",
        "/admin/dashboard/auditevent/",
        "/admin/dashboard/target/",
        "/admin/auth/user/",
    ):
        page.goto(path)
        page.wait_for_selector("#content")
    page.wait_for_timeout(500)  # violations are reported asynchronously
