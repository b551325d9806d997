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
DIFF_ROWS = 200  # resource changes in the benchmarked change set (issue #13: "fast and readable with 200")


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
    _seed_change_set(user)


def _seed_change_set(user) -> None:
    """A change-set migration whose first review holds a DIFF_ROWS-row diff, each Modify with eight property
    changes: the migration page shows it under the review (folded, as any diff over 30 rows starts)."""
    from dashboard.models import Attempt, Environment, MigrationRun, Step
    from dashboard.runbook import THROUGH_STACKS

    environment, _ = Environment.objects.get_or_create(
        slug="bench-stacks",
        defaults=dict(
            name="Bench stacks", region="us-east-1", account_id="123456789012", cloudformation_stacks=["DatabaseStack"]
        ),
    )
    # Made directly: starting it through the service would ask AWS which runbook the stacks call for.
    migration = MigrationRun.objects.create(
        environment=environment, runbook_version=THROUGH_STACKS.version, started_by=user
    )
    Step.objects.bulk_create(
        Step(migration=migration, position=index, key=d.key, title=d.title)
        for index, d in enumerate(THROUGH_STACKS.steps, start=1)
    )
    actions = ("Add", "Modify", "Modify", "Remove")
    diff = [
        {
            "action": actions[i % 4],
            "logical_id": f"Resource{i:03d}ABCDEF12",
            "type": "AWS::Lambda::Function" if i % 3 else "AWS::EC2::SecurityGroup",
            "physical_id": f"vela-resource-{i}" if actions[i % 4] != "Add" else "",
            "replacement": "Conditional" if i % 7 == 0 else "False",
            "policy_action": "Delete" if actions[i % 4] == "Remove" else "",
            "scope": ["Properties", "Tags"],
            "details": [
                {
                    "attribute": "Properties",
                    "name": f"Environment.Variables.VAR_{j}",
                    "before": f"old-value-{i}-{j}",
                    "after": f"new-value-{i}-{j}",
                    "requires_recreation": "Never",
                    "evaluation": "Static",
                    "source": "DirectModification",
                    "causing": "",
                }
                for j in range(8 if actions[i % 4] == "Modify" else 0)
            ],
        }
        for i in range(DIFF_ROWS)
    ]
    outputs = {
        "stack": "DatabaseStack",
        "change_set": "velaops-bench-review-add-dsql",
        "change_set_id": "arn:aws:cloudformation:us-east-1:123456789012:changeSet/velaops-bench/1",
        "empty": False,
        "diff": diff,
        "blockers": [],
        "previous_template": "{}",
        "since_event": "",
    }
    keys = [d.key for d in THROUGH_STACKS.steps]
    migration.steps.filter(key__in=keys[: keys.index("review_add_dsql")]).update(state=Step.State.SUCCEEDED)
    review = migration.steps.get(key="review_add_dsql")
    Attempt.objects.create(
        migration=migration, step=review, number=1, action="run", status="succeeded", requested_by=user, outputs=outputs
    )
    Step.objects.filter(pk=review.pk).update(state=Step.State.SUCCEEDED, outputs=outputs)


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
    stacks_page = session.get(f"{base}/environments/bench-stacks/").text
    diff_path = re.search(r'href="(/environments/bench-stacks/migrations/\d+/)"', stacks_page).group(1)
    attempt_page = session.get(base + attempt).text
    # The page opens at the log's end; the rest is a link away (earlier pages, the whole log as text).
    assert f"cluster x: CREATING ({LOG_LINES - 1})" in attempt_page and "log.txt" in attempt_page
    diff_page = session.get(base + diff_path).text
    assert diff_page.count('class="diff-row') == DIFF_ROWS, "the diff does not show every resource change"
    cases = [
        ("migration_page_ms", path, {}, "full page"),
        (f"change_set_diff_page_ms_{DIFF_ROWS}_changes", diff_path, {}, "migration page with the diff"),
        (f"change_set_diff_partial_ms_{DIFF_ROWS}_changes", diff_path, htmx, "its HTMX refresh"),
        ("steps_partial_ms", path, htmx, "HTMX refresh of the steps"),
        ("steps_poll_unchanged_ms", f"{path}?v={version}", htmx, "204: nothing changed"),
        (f"attempt_page_{LOG_LINES}_log_lines_ms", attempt, {}, "first view: the last 200 lines, the rest linked"),
        (f"attempt_log_text_{LOG_LINES}_lines_ms", f"{attempt}log.txt", {}, "the whole log as text"),
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
    figures.append(bake_verdict())
    write_figures(out, figures)


def bake_verdict() -> Figure:
    """The bake's judgement at its heaviest: a 24-hour baseline at the default 30 s interval (2,880 probes) against
    a whole default bake (600 s at 2 s: 300 probes), as the worker computes it every 5 s and at the end."""
    import random
    import statistics
    import time
    from datetime import UTC, datetime

    from dashboard.bake.verdict import Sample, judge
    from dashboard.validators import BAKE_CRITERIA

    criteria = {name: default for name, (default, _low, _high) in BAKE_CRITERIA.items()}
    rng, at = random.Random(16), datetime.now(UTC)
    baseline = [Sample(at, True, True, rng.lognormvariate(3.6, 0.35)) for _ in range(2880)]
    bake = [Sample(at, True, True, rng.lognormvariate(3.6, 0.35) + 30, 30.0) for _ in range(300)]
    times = []
    for _ in range(7):
        started = time.perf_counter()
        assert judge(baseline, bake, criteria).outcome == "pass"
        times.append((time.perf_counter() - started) * 1000)
    return Figure(
        "bake_verdict_ms_24h_baseline",
        statistics.median(times),
        "ms",
        "2,880 baseline and 300 bake probes; median of 7",
    )


if __name__ == "__main__":
    main(sys.argv[1])
