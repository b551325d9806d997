"""The migration pages (the first figures of `make bench`): the migration page, its HTMX refresh and
polls, and an attempt page with a long log, on a freshly created database.

Seed: one migration of 11 steps with three attempts each (two failed, one succeeded), and LOG_LINES log
lines on one attempt. Run as `python -m bench.migration_pages OUT.json` by `python -m bench`.
"""

from __future__ import annotations

import os
import re
import sys

from bench import http
from bench.results import Figure, write_figures

DATABASE = "velaops_bench"
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
LOG_LINES = 5000  # lines in the benchmarked attempt's log


def seed() -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User

    from dashboard.models import Attempt, AttemptLog, Environment
    from dashboard.runbook.service import migration_start

    user, _ = User.objects.get_or_create(username=http.USERNAME, defaults={"is_superuser": True, "is_staff": True})
    user.set_password(http.PASSWORD)
    user.save()
    environment, _ = Environment.objects.get_or_create(
        slug="bench",
        defaults=dict(name="Bench", region="us-east-1", account_id="123456789012", cloudformation_stacks=[]),
    )
    migration = migration_start(environment=environment, user=user, source_address="127.0.0.1")
    for step in migration.steps.all():
        for number in range(1, 4):  # three attempts per step: two failures and a success
            Attempt.objects.create(
                migration=migration,
                step=step,
                number=number,
                action="run",
                status="succeeded" if number == 3 else "failed",
                requested_by=user,
            )
    attempt = migration.steps.get(key="provision_dsql").attempts.get(number=3)
    AttemptLog.objects.bulk_create(
        AttemptLog(attempt=attempt, message=f"cluster x: CREATING ({i})") for i in range(LOG_LINES)
    )


def measure(base: str) -> list[Figure]:
    session = http.login(base)
    migration = session.get(f"{base}/environments/bench/").text
    path = re.search(r'href="(/environments/bench/migrations/\d+/)"', migration).group(1)
    htmx = {"HX-Request": "true"}
    partial = session.get(base + path, headers=htmx).text
    version = re.search(r"\?v=([0-9a-f]+)", partial).group(1)
    page = session.get(base + path).text
    provision_row = page.split('data-step="provision_dsql"')[1]
    attempt = re.search(r'href="(/environments/bench/migrations/\d+/attempts/\d+/)"', provision_row).group(1)
    cases = [
        ("migration_page_ms", path, {}, "full page"),
        ("steps_partial_ms", path, htmx, "HTMX refresh of the steps"),
        ("steps_poll_unchanged_ms", f"{path}?v={version}", htmx, "204: nothing changed"),
        (f"attempt_page_{LOG_LINES}_log_lines_ms", attempt, {}, "whole log rendered"),
        ("log_tail_poll_nothing_new_ms", f"{attempt}?after=999999999&status=succeeded", htmx, "204: no new line"),
    ]
    return [
        Figure(name, http.median_ms(session, base + url, RUNS, headers), "ms", f"{note}; median of {RUNS}")
        for name, url, headers, note in cases
    ]


def main(out: str) -> None:
    url = http.database_url(DATABASE)
    http.drop_database(DATABASE)  # every run starts from the same seed (history cannot be deleted row by row)
    http.migrate(url)
    seed()
    with http.gunicorn(url) as base:
        figures = measure(base)
    write_figures(out, figures)


if __name__ == "__main__":
    main(sys.argv[1])
