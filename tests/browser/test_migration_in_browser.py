"""A person's path: log in, open the sandbox environment, start the migration and click through every
step in Debian's Chromium (Playwright), saving a screenshot at each stage under var/screenshots/."""

import os
import shutil
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from dashboard.runbook import STEPS
from velaops.celery import app

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("VELAOPS_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the test makes are still
    # plain synchronous calls, so Django's async-safety guard does not apply.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]  # later subprocesses (check --deploy) must not inherit it


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


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
