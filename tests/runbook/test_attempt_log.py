"""The attempt page opens at its log's last lines; the earlier ones come a page at a time (htmx, or a plain link)
and the whole log is there as text."""

from __future__ import annotations

import re

import pytest

from dashboard.models import Attempt, AttemptLog
from dashboard.runbook import queries
from tests.runbook.conftest import step

pytestmark = pytest.mark.django_db

LINES = 1000
HTMX = {"HX-Request": "true"}


@pytest.fixture
def long_attempt(migration, operator):
    attempt = Attempt.objects.create(
        migration=migration,
        step=step(migration, "preflight_stacks"),
        number=1,
        action="run",
        status=Attempt.Status.SUCCEEDED,
        requested_by=operator,
    )
    AttemptLog.objects.bulk_create(
        AttemptLog(
            attempt=attempt,
            message=f"line {i}",
            level="error" if i == LINES - 1 else "info",
            data={"request_id": "req-last"} if i == LINES - 1 else {},
        )
        for i in range(LINES)
    )
    return attempt


def shown(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"</span> line (\d+)", html)]


def test_the_page_opens_at_the_last_lines_and_says_how_many_come_before(client, viewer, long_attempt):
    client.force_login(viewer)
    html = client.get(long_attempt.get_absolute_url()).content.decode()
    assert shown(html) == list(range(LINES - queries.LOG_TAIL, LINES))
    assert f"{LINES - queries.LOG_TAIL} earlier lines:" in html
    assert 'class="log-error"' in html and "[req-last]" in html
    assert re.search(r"<span class=\"mono muted\">\d\d:\d\d:\d\d\.\d{3}</span> line 999", html)
    assert "/log.txt" in html


def test_earlier_pages_follow_one_another_back_to_the_first_line(client, viewer, long_attempt):
    client.force_login(viewer)
    html = client.get(long_attempt.get_absolute_url()).content.decode()
    seen = shown(html)
    while True:
        found = re.search(r'hx-get="([^"]+\?before=\d+)"', html)
        if not found:
            break
        html = client.get(found.group(1), headers=HTMX).content.decode()
        assert html.startswith('<li id="log-earlier"') or "log-earlier" not in html
        seen = shown(html) + seen
    assert seen == list(range(LINES))  # every line once, in order
    assert "earlier line" not in html  # the first page has no link further back


def test_without_htmx_an_earlier_page_is_a_page(client, viewer, long_attempt):
    client.force_login(viewer)
    first = AttemptLog.objects.filter(attempt=long_attempt).order_by("id")[500]
    html = client.get(f"{long_attempt.get_absolute_url()}?before={first.pk}").content.decode()
    assert "<html" in html
    assert shown(html) == list(range(500 - queries.LOG_TAIL, 500))


def test_the_whole_log_as_text(client, viewer, outsider, long_attempt):
    client.force_login(viewer)
    url = long_attempt.get_absolute_url() + "log.txt"
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
    assert f"attempt-{long_attempt.pk}.log" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    lines = text.splitlines()
    assert len(lines) == LINES
    assert [int(line.rsplit(" ", 1)[1]) for line in lines[:-1]] == list(range(LINES - 1))
    assert lines[-1].endswith("line 999 [req-last]") and " error " in lines[-1]
    client.force_login(outsider)
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("before", ["abc", "-1", "0", "9" * 30, "１２"])
def test_a_bad_cursor_is_the_last_lines_not_an_error(client, viewer, long_attempt, before):
    client.force_login(viewer)
    response = client.get(f"{long_attempt.get_absolute_url()}?before={before}")
    assert response.status_code == 200
    assert shown(response.content.decode())[-1] == LINES - 1


def test_a_short_log_shows_whole_with_no_earlier_link(client, viewer, migration, operator):
    attempt = Attempt.objects.create(
        migration=migration,
        step=step(migration, "preflight_stacks"),
        number=1,
        action="run",
        status=Attempt.Status.SUCCEEDED,
        requested_by=operator,
    )
    AttemptLog.objects.bulk_create(AttemptLog(attempt=attempt, message=f"line {i}") for i in range(3))
    client.force_login(viewer)
    html = client.get(attempt.get_absolute_url()).content.decode()
    assert shown(html) == [0, 1, 2] and "log-earlier" not in html
