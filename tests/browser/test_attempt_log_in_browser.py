"""The attempt page's long log in Debian's Chromium (Playwright): it opens at the last lines, and "show the
previous" puts the earlier ones in place, a page at a time, back to the first line."""

import pytest

from dashboard.models import Attempt, AttemptLog
from dashboard.runbook import queries, service

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINES = queries.LOG_TAIL * 2 + 50


def test_earlier_lines_come_in_place_back_to_the_first(page, environment, operator):
    from playwright.sync_api import expect

    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    attempt = Attempt.objects.create(
        migration=migration,
        step=migration.steps.get(key="preflight_stacks"),
        number=1,
        action="run",
        status=Attempt.Status.SUCCEEDED,
        requested_by=operator,
    )
    AttemptLog.objects.bulk_create(AttemptLog(attempt=attempt, message=f"line {i}") for i in range(LINES))
    page.goto(attempt.get_absolute_url())
    page.fill("input[name=username]", operator.username)
    page.fill("input[name=password]", f"pw-{operator.username}")
    page.click("button[type=submit]")
    lines = page.locator("#log-lines li:not(#log-earlier)")
    assert lines.count() == queries.LOG_TAIL
    assert lines.last.inner_text().endswith(f"line {LINES - 1}")
    assert page.locator("#log-earlier").inner_text().startswith(f"{LINES - queries.LOG_TAIL} earlier lines")

    page.click("#log-earlier >> text=show the previous")
    expect(lines).to_have_count(2 * queries.LOG_TAIL)
    assert page.url.endswith(attempt.get_absolute_url())  # in place, not a new page
    page.click("#log-earlier >> text=show the previous 50")
    expect(lines).to_have_count(LINES)
    assert page.locator("#log-earlier").count() == 0
    texts = lines.all_inner_texts()
    assert [int(text.rsplit(" ", 1)[1]) for text in texts] == list(range(LINES))  # in order, each once
