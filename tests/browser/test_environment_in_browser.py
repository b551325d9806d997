"""The environment page in Debian's Chromium (Playwright): a stack's resources open under its row and stay
as the user left them when the resources refresh live. Screenshot under var/screenshots/."""

import os

import pytest

from tests.browser.screenshots import shot
from tests.sandbox.test_environment_stack_resources import detect_drift

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def refresh_resources(page) -> None:
    """One live refresh now, as the 15 s poll would do it; returns once htmx has settled the new copy.
    (A promise, not wait_for_function: that evaluates a string, which the page's CSP refuses.)"""
    page.evaluate(
        """() => new Promise((resolve) => {
        document.addEventListener("htmx:afterSettle", () => resolve(true), {once: true});
        htmx.trigger(document.getElementById("resources"), "poll");
    })"""
    )


def test_stack_resources_open_and_stay_open_across_the_live_refresh(page, sandbox, fresh_sandbox_environment, viewer):
    environment = fresh_sandbox_environment
    detect_drift(sandbox, "ApiStack")  # one stack checked for drift, the other not
    page.goto(f"/environments/{environment.slug}/")
    page.fill("input[name=username]", viewer.username)
    page.fill("input[name=password]", f"pw-{viewer.username}")
    page.click("button[type=submit]")
    database, api = page.locator("#stack-resources-DatabaseStack"), page.locator("#stack-resources-ApiStack")
    database.wait_for()
    assert database.get_attribute("open") is None and api.get_attribute("open") is None

    database.locator("summary").click()
    row = database.locator("tr", has_text="AWS::RDS::DBCluster")
    assert row.is_visible() and "vela-aurora" in row.inner_text()
    refresh_resources(page)
    database = page.locator("#stack-resources-DatabaseStack")
    assert database.get_attribute("open") is not None, "the refresh closed what the user opened"
    assert page.locator("#stack-resources-ApiStack").get_attribute("open") is None

    page.locator("#stack-resources-ApiStack summary").click()
    refresh_resources(page)
    assert page.locator("#stack-resources-ApiStack").get_attribute("open") is not None
    function = page.locator("#stack-resources-ApiStack tr", has_text="AWS::Lambda::Function")
    assert function.is_visible() and "IN_SYNC" in function.inner_text()
    # Nothing is wider than the card it is in.
    card, table = page.locator("section.card", has=page.locator("#resources")), page.locator("#resources > table")
    assert table.bounding_box()["width"] <= card.bounding_box()["width"]
    shot(page, "environment-stack-resources")
    if os.environ.get("VELAOPS_ENVPAGE_SHOT"):
        page.screenshot(path=os.environ["VELAOPS_ENVPAGE_SHOT"], full_page=True)

    database.locator("summary").click()  # closed again: the refresh keeps it closed
    refresh_resources(page)
    assert page.locator("#stack-resources-DatabaseStack").get_attribute("open") is None
