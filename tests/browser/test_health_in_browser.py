"""The health pages in Debian's Chromium (Playwright): the overview with its sparklines and step timeline,
a target's uPlot charts with hover values, and both updating without a reload when a probe reports.
Screenshots go to var/screenshots/."""

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.models import Attempt, HealthMethod, MigrationRun, ProbeKind, Step, Target, TargetStatus
from dashboard.monitoring.rollup import refresh_summaries, rollup_all
from dashboard.monitoring.stats import MINUTE, floor_time
from tests.browser.screenshots import shot
from tests.monitoring.history import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def monitored(environment, operator):
    """The staging environment's managed targets plus a DSQL cluster, with three hours of history, an
    outage, cold and warm invokes, and migration steps run during that time."""
    now = timezone.now()
    targets = {target.kind: target for target in Target.objects.filter(environment=environment)}
    dsql = Target.objects.create(
        environment=environment, kind=ProbeKind.DSQL, name="vela-dsql-abc123", label="Vela DSQL cluster"
    )
    api = targets[ProbeKind.API_HEALTH]
    assert api.health_method == HealthMethod.INVOKE
    start = floor_time(now, MINUTE) - 180 * MINUTE
    for minute in range(178):
        at = start + minute * MINUTE + timedelta(seconds=5)
        wave = 6 + 3 * math.sin(minute / 12)
        outage = 95 <= minute < 99
        record(
            dsql, at, None if outage else wave + (minute % 7) * 0.4, ok=not outage,
            phases={} if outage else {"token": 0.4, "connect": wave - 1, "query": 0.6 + (minute % 7) * 0.4},
            **({"error": "OC000: connection refused by the DSQL endpoint"} if outage else {}),
        )  # fmt: skip
        if not 130 <= minute < 134:  # the Lambda's route was not probed for a few minutes: a break in its lines
            cold = minute % 30 == 0
            latency = 420 + minute if cold else 35 + (minute % 5) * 3
            phases = {"duration": latency - 300 if cold else latency, **({"init": 300.0} if cold else {})}
            record(api, at, latency, phases=phases, cold_start=cold)
        if minute % 5 == 0:
            record(targets[ProbeKind.DYNAMODB], at, 4 + (minute % 4))
            record(targets[ProbeKind.AURORA], at, 30 + (minute % 6))
    while rollup_all(now)["minutes"]:
        pass
    refresh_summaries(now)
    Target.objects.filter(pk=targets[ProbeKind.AURORA].pk).update(paused=True)

    migration = MigrationRun.objects.create(environment=environment, runbook_version="1", started_by=operator)
    for position, (key, title, hours_ago, status) in enumerate(
        [
            ("preflight", "Check prerequisites", 2.8, "succeeded"),
            ("provision_dsql", "Provision the DSQL cluster", 1.7, "failed"),
            ("provision_dsql_retry", "Provision the DSQL cluster (retry)", 1.4, "succeeded"),
            ("point_lambda", "Point the Lambda at DSQL", 0.6, "succeeded"),
        ],
        start=1,
    ):
        step = Step.objects.create(migration=migration, position=position, key=key, title=title)
        Attempt.objects.create(
            migration=migration,
            step=step,
            number=1,
            action="run",
            status=status,
            requested_by=operator,
            started_at=now - timedelta(hours=hours_ago),
            finished_at=now - timedelta(hours=hours_ago) + 6 * MINUTE,
        )
    return {"dsql": dsql, "api": api, "table": targets[ProbeKind.DYNAMODB], "config": targets[ProbeKind.LAMBDA_CONFIG]}


def log_in(page, user, path):
    page.goto(path)
    assert "/login/" in page.url
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", f"pw-{user.username}")
    page.click("button[type=submit]")


def test_overview_and_target_charts_update_live(page, environment, operator, monitored):
    dsql, table = monitored["dsql"], monitored["table"]
    long_names = [f"bench-api_health-1-0000-with-a-long-shared-prefix-{n:04d}" for n in (41, 42)]
    long = [Target.objects.create(environment=environment, kind=ProbeKind.DYNAMODB, name=n) for n in long_names]
    log_in(page, operator, f"/environments/{environment.slug}/health/")
    page.wait_for_selector(f"#target-{dsql.pk}")
    for target, name in zip(long, long_names, strict=True):
        link = page.locator(f"#target-{target.pk} td.tname a")
        assert link.get_attribute("title") == name
        cell, tail = page.locator(f"#target-{target.pk} td.tname").bounding_box(), link.locator(".tail").bounding_box()
        assert tail["x"] + tail["width"] <= cell["x"] + cell["width"] + 1, "the distinct end is cut off"
        assert link.locator(".tail").inner_text() == name[-12:]
    assert page.locator(f"#target-{dsql.pk} svg.spark polyline").count() >= 1
    assert page.locator("#timeline-strip a.ev").count() == 4
    assert "Point the Lambda at DSQL" in page.locator("#timeline-strip").inner_html()
    shot(page, "health-01-overview")

    # A probe reports: the row changes within a poll, the page is not reloaded.
    page.evaluate("window.__notReloaded = true")
    record(table, timezone.now(), 123.0)
    row = page.locator(f"#target-{table.pk}")
    row.locator("td.num", has_text="123 ms").wait_for(timeout=20_000)
    assert page.evaluate("window.__notReloaded") is True
    # A failure run marks it down and opens an incident: the badge, counts and incidents block follow.
    table.refresh_from_db()
    for _ in range(table.down_after):
        record(table, timezone.now(), None, ok=False, error="ResourceNotFoundException: table vela-users is gone")
    assert Target.objects.get(pk=table.pk).status == TargetStatus.DOWN
    row.locator(".status.st-down").wait_for(timeout=20_000)
    page.locator("#open-incidents", has_text="ResourceNotFoundException").wait_for(timeout=5_000)
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "health-02-overview-live-down")

    # The target's page: charts drawn by uPlot, values on hover, step markers.
    page.click(f"#target-{dsql.pk} a")
    page.wait_for_selector(".chart[data-chart=latency] canvas")
    assert page.locator(".chart[data-chart=phases] canvas").count() == 1
    assert page.locator(".chart[data-chart=latency] .step-mark").count() == 4
    chart = page.locator(".chart[data-chart=latency] .u-over")
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] * 0.5)  # where the history is
    legend = page.locator(".chart[data-chart=latency] .u-legend .u-series").nth(1).locator(".u-value")
    assert legend.inner_text().endswith("ms"), legend.inner_text()
    shot(page, "health-03-target-24h")

    points_before = int(page.locator(".chart[data-chart=latency]").get_attribute("data-points"))
    page.evaluate("window.__notReloaded = true")
    at = timezone.now()
    record(dsql, at, 250.0, phases={"token": 0.5, "connect": 248.0, "query": 1.5})
    page.locator("#results-rows tr").first.locator("td.num", has_text="250 ms").wait_for(timeout=20_000)
    latency_chart = page.locator(".chart[data-chart=latency]")
    minute = str(int(floor_time(at, MINUTE).timestamp()))
    page.wait_for_function(
        "minute => document.querySelector('.chart[data-chart=latency]').dataset.last.startsWith(minute)", arg=minute
    )
    assert int(latency_chart.get_attribute("data-points")) >= points_before
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "health-04-target-live-point")

    # Ranges swap in place, keeping charts working.
    page.click("nav.ranges a:text('7 days')")
    page.wait_for_selector("nav.ranges .current:text('7 days')")
    page.wait_for_selector(".chart[data-chart=latency] canvas")
    assert "range=7d" in page.url
    shot(page, "health-05-target-7d")

    # The Lambda health route: cold against warm starts.
    page.goto(f"/environments/{environment.slug}/health/targets/{monitored['api'].pk}/?range=24h")
    page.wait_for_selector(".chart[data-chart=phases] canvas")
    assert "Cold and warm starts" in page.content()
    shot(page, "health-06-api-health")

    # A target never probed: no chart, until its first result arrives.
    config = monitored["config"]
    page.goto(f"/environments/{environment.slug}/health/targets/{config.pk}/?range=1h")
    page.wait_for_selector(".chart.no-data[data-chart=latency]")
    record(config, timezone.now(), 42.0)
    page.wait_for_selector(".chart[data-chart=latency] canvas", timeout=20_000)
    assert page.locator(".status.big.st-up").count() == 1
