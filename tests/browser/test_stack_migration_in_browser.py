"""The change-set runbook in Debian's Chromium (Playwright): log in, start the migration on the sandbox as its
stacks hold it, and click through every step; each review's diff shows under it before its change set is
deployed, and each deploy is confirmed by typing the stack's name."""

import os

import pytest
from celery.contrib.testing.worker import start_worker

from dashboard.runbook import THROUGH_STACKS
from dashboard.runbook.steps.stack_change import ExecuteChange, ReviewChange
from tests.browser.screenshots import shot
from tests.runbook.test_worker import wait_finished
from velaops.celery import app

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DIFF_SHOT = os.environ.get("VELAOPS_STACKDIFF_SHOT", "/tmp/stackdiff.png")


def test_click_through_the_change_set_runbook(page, fresh_sandbox_environment, operator):
    environment = fresh_sandbox_environment
    page.goto(f"/environments/{environment.slug}/")
    page.fill("input[name=username]", operator.username)
    page.fill("input[name=password]", f"pw-{operator.username}")
    page.click("button[type=submit]")
    page.wait_for_selector("#resources")
    page.click("text=Start a migration")
    page.wait_for_selector("#steps")
    assert page.locator(".messages li", has_text=THROUGH_STACKS.version).count() == 1
    migration = environment.migrations.get()

    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=10):
        for definition in THROUGH_STACKS.steps:
            row = page.locator(f"tr[data-step={definition.key}]")
            if isinstance(definition, ExecuteChange):
                review = migration.steps.get(key=definition.review)
                stack, change_set = review.outputs["stack"], review.outputs["change_set"]
                prompt = row.locator(".confirm-name")
                assert " ".join(prompt.inner_text().split()) == (
                    f"Deploy change set {change_set} to stack {stack}: type {stack} to confirm:"
                )
                row.locator("input[name=confirmation]").fill(stack)
            elif definition.destructive:
                row.locator("input[name=confirmation]").fill(environment.aurora_cluster_identifier)
            row.locator("button", has_text="Run").first.click()
            row.locator("a", has_text="run #1").wait_for()  # the action's own swap: the attempt is queued
            attempt = wait_finished(migration.steps.get(key=definition.key).attempts.get().pk, timeout=60)
            assert attempt.status == "succeeded", (definition.key, attempt.error)
            if definition.key != "review_add_dsql":
                # The poll shows it within 2 s (as it does the first diff's); nudged at once, to keep this short.
                page.evaluate("htmx.trigger(document.getElementById('migration-live'), 'poll')")
            row.locator(".state.s-succeeded").wait_for(timeout=10_000)

            if isinstance(definition, ReviewChange):
                # The diff is under the review, swapped in by the poll, before anything deploys it.
                diff = page.locator(f"#change-set-{definition.key}")
                diff.wait_for(timeout=10_000)
                assert "Change set" in diff.inner_text()
            if definition.key == "review_add_dsql":
                added = diff.locator("tr.diff-row[data-logical-id=DsqlCluster]")
                assert added.is_visible()
                assert added.locator(".badge", has_text="Add").is_visible()
                assert "AWS::DSQL::Cluster" in added.inner_text()
                assert migration.steps.get(key="execute_add_dsql").attempts.count() == 0
                # One resource's property changes unfolded, as a reader would.
                diff.locator("tr.diff-props details.props summary").first.click()
                diff.scroll_into_view_if_needed()
                page.screenshot(path=DIFF_SHOT, full_page=True)
            if definition.key == "review_remove_aurora":
                shot(page, "stack-migration-remove-aurora-review")

    page.wait_for_selector("text=Migration completed")
    page.locator("#abandon").wait_for(state="detached", timeout=10_000)
    assert page.locator("#audit tr:not(.refused) td", has_text="step.run").count() == len(THROUGH_STACKS.steps)
    shot(page, "stack-migration-completed")
