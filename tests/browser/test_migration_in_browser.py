"""A person's path: log in, open the sandbox environment, start the migration and click through every
step in Debian's Chromium (Playwright), saving a screenshot at each stage under var/screenshots/."""

import pytest
from celery.contrib.testing.worker import start_worker

from dashboard.runbook import STEPS
from velaops.celery import app

from .screenshots import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_and_click_through_the_whole_migration(page, fresh_sandbox_environment, operator):
    environment = fresh_sandbox_environment
    page.goto(f"/environments/{environment.slug}/")
    assert "/login/" in page.url
    page.fill("input[name=username]", operator.username)
    page.fill("input[name=password]", f"pw-{operator.username}")
    page.click("button[type=submit]")
    page.wait_for_selector("#resources")
    shot(page, "01-environment")

    page.click("text=Start a migration")
    page.wait_for_selector("#steps")
    shot(page, "02-migration-started")

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10):
        for number, definition in enumerate(STEPS, start=1):
            row = page.locator(f"tr[data-step={definition.key}]")
            if definition.destructive:
                row.locator("input[name=confirmation]").fill(environment.aurora_cluster_identifier)
            row.locator("button", has_text="Run").first.click()
            # HTMX polls the steps while the attempt runs; the row turns "succeeded" without a reload.
            row.locator(".state.s-succeeded").wait_for(timeout=90_000)
            if definition.key in ("provision_dsql", "point_lambda", "decommission_aurora"):
                shot(page, f"03-step-{number:02d}-{definition.key}")

    page.wait_for_selector("text=Migration completed")
    shot(page, "04-migration-completed")

    page.locator("tr[data-step=provision_dsql] a", has_text="run #1").click()
    page.wait_for_selector("#log-lines li")
    assert page.locator("#log-lines").inner_text().count("ACTIVE") >= 1
    shot(page, "05-provision-log")
