"""The health pages: overview, target detail, their live polls, pause and resume; with history put in
the database the way probes and the rollup job do it, so the pages show real computed figures."""

from __future__ import annotations

import json
import math
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dashboard import formatting
from dashboard.models import (
    Attempt,
    AuditEvent,
    Environment,
    FillingRollup,
    HealthMethod,
    MigrationRun,
    ProbeKind,
    Resolution,
    Rollup,
    RollupCursor,
    Step,
    Target,
    TargetStatus,
)
from dashboard.monitoring import selectors, target_page
from dashboard.monitoring.charts import RANGES
from dashboard.monitoring.rollup import refresh_summaries, rollup_all
from dashboard.monitoring.stats import DAY, HOUR, MINUTE, floor_time
from tests.conftest import clear_django_cache
from tests.monitoring.history import histogram_of, make_target, record

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def roll_up(now):
    """Run the rollup job until it has caught up (it folds at most two hours of minutes per run)."""
    while rollup_all(now)["minutes"]:
        pass
    refresh_summaries(now)


def row_html(html: str, pk: int) -> str:
    match = re.search(rf'<tr id="target-{pk}"[^>]*>.*?</tr>', html, re.S)
    assert match, f"no row for target {pk}"
    return match.group(0)


@pytest.fixture
def environment(bare_environment):
    """An environment without managed targets: the tests create exactly the targets they count."""
    return bare_environment


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def other_environment(db):
    return Environment.objects.create(name="Prod", slug="prod", region="eu-west-1", account_id="210987654321")


@pytest.fixture
def history(environment, operator):
    """Four targets in four states, 40 minutes of probes of the DSQL one (4 failed), and migration steps."""
    now = timezone.now()
    dsql = make_target(environment, "vela-dsql", kind=ProbeKind.DSQL, label="Vela DSQL")
    api = make_target(
        environment, "vela-api", kind=ProbeKind.API_HEALTH, health_method=HealthMethod.INVOKE, down_after=2
    )
    aurora = make_target(environment, "vela-aurora", kind=ProbeKind.AURORA, paused=True)
    table = make_target(environment, "vela-users", kind=ProbeKind.DYNAMODB)
    start = floor_time(now, MINUTE) - 45 * MINUTE
    latencies = []
    for index in range(40):
        ok = index % 10 != 3
        latency = 10.0 + index * 1.5 if ok else None
        if ok:
            latencies.append(latency)
        record(
            dsql, start + index * MINUTE + timedelta(seconds=7), latency, ok,
            phases={"token": 0.5, "connect": latency - 1.0, "query": 0.5} if ok else {},
        )  # fmt: skip
    for index in range(3):
        record(api, now - timedelta(minutes=20 - index), None, ok=False, error=f"HTTP 502 #{index}")
    roll_up(now)
    migration = MigrationRun.objects.create(environment=environment, runbook_version="1", started_by=operator)
    step = Step.objects.create(
        migration=migration, position=3, key="provision_dsql", title="Provision the DSQL cluster"
    )
    recent = Attempt.objects.create(
        migration=migration,
        step=step,
        number=1,
        action="run",
        status="succeeded",
        requested_by=operator,
        started_at=now - 3 * HOUR,
        finished_at=now - 3 * HOUR + 10 * MINUTE,
    )
    old_step = Step.objects.create(migration=migration, position=1, key="preflight", title="Check the old preflight")
    old = Attempt.objects.create(
        migration=migration,
        step=old_step,
        number=1,
        action="run",
        status="failed",
        requested_by=operator,
        started_at=now - 3 * DAY,
        finished_at=now - 3 * DAY + MINUTE,
    )
    return {
        "now": now,
        "dsql": dsql,
        "api": api,
        "aurora": aurora,
        "table": table,
        "latencies": latencies,
        "recent": recent,
        "old": old,
    }


# --- the overview ----------------------------------------------------------------------------------------


def test_overview_lists_every_target_with_its_figures(viewer_client, environment, history):
    response = viewer_client.get(reverse("health-overview", args=[environment.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    dsql = Target.objects.get(pk=history["dsql"].pk)

    # Uptime is exact (36 of 40 probes succeeded); p95 comes from the histogram, within its 5 %.
    assert dsql.uptime_24h == pytest.approx(0.9)
    assert dsql.p95_24h_ms == pytest.approx(exact_percentile(history["latencies"], 0.95), rel=0.05)
    row = row_html(html, dsql.pk)
    assert "Vela DSQL" in row and "vela-dsql" in row
    assert '<span class="status st-up">up</span>' in row
    assert ">90.000 %<" in row  # 24 h, 7 d and 30 d alike: all the history is 45 minutes old
    assert row.count(">90.000 %<") == 3
    assert f">{formatting.latency_ms(dsql.p95_24h_ms)}<" in row
    assert f">{formatting.latency_ms(dsql.last_latency_ms)}<" in row
    assert "<polyline points=" in row  # the sparkline, drawn on the server
    assert dsql.get_absolute_url() in row

    api_row = row_html(html, history["api"].pk)
    assert '<span class="status st-down">down</span>' in api_row
    assert ">since " in api_row and "HTTP 502 #0" in api_row  # the first failure is the cause (tooltip)
    assert ">—<" in api_row and ">0.000 %<" in api_row  # every probe failed: no latency, no uptime
    assert '<span class="status st-paused">paused</span>' in row_html(html, history["aurora"].pk)
    table_row = row_html(html, history["table"].pk)
    assert '<span class="status st-unknown">unknown</span>' in table_row
    assert table_row.count(">—<") >= 5  # never probed: no latency, p95 or uptime
    assert "spark-empty" in table_row

    # Down targets first.
    assert html.index(f'id="target-{history["api"].pk}"') < html.index(f'id="target-{dsql.pk}"')
    assert response.context["counts"] == {"down": 1, "unknown": 1, "up": 1, "paused": 1}
    # The open incidents block.
    assert "Open incidents" in html and 'class="badge danger">1<' in html


def test_overview_marks_migration_steps_of_the_last_24_hours(viewer_client, environment, history):
    response = viewer_client.get(reverse("health-overview", args=[environment.slug]))
    html = response.content.decode()
    events = response.context["timeline"]["events"]
    assert [event["title"] for event in events] == ["Provision the DSQL cluster"]
    event = events[0]
    start, end = response.context["timeline"]["start"], response.context["timeline"]["end"]
    assert end - start == timedelta(hours=24) and start <= timezone.now() - 23 * HOUR
    expected = (history["recent"].started_at - start) / (end - start) * 100
    assert float(event["left"]) == pytest.approx(expected, abs=0.01)
    assert float(event["width"]) == pytest.approx(10 / (24 * 60) * 100, abs=0.01)
    assert f'x1="{event["left"]}%"' in html  # the tick on the timeline strip
    assert "Provision the DSQL cluster: run #1 succeeded by otto" in html  # its tooltip
    assert history["recent"].get_absolute_url() in html
    assert "Check the old preflight" not in html  # three days old


def test_overview_sorts_by_kind_with_group_headers(viewer_client, environment, history):
    response = viewer_client.get(reverse("health-overview", args=[environment.slug]), {"sort": "kind"})
    html = response.content.decode()
    assert '<tr class="group">' in html
    kinds = [row["kind"] for row in response.context["rows"]]
    assert kinds == [ProbeKind.DSQL, ProbeKind.API_HEALTH, ProbeKind.AURORA, ProbeKind.DYNAMODB]


def test_overview_queries_do_not_grow_with_targets(viewer_client, environment, history):
    url = reverse("health-overview", args=[environment.slug])
    with CaptureQueriesContext(connection) as few:
        assert viewer_client.get(url).status_code == 200
    Target.objects.bulk_create(
        [
            Target(environment=environment, kind=ProbeKind.DYNAMODB, name=f"table-{n}", sparkline=[1.0] * 24)
            for n in range(200)
        ]
    )
    with CaptureQueriesContext(connection) as many:
        response = viewer_client.get(url)
    assert len(response.context["rows"]) == 204
    assert len(many) == len(few)
    # session, user, permissions, environment; then targets, open incidents, step events.
    assert len(many) <= 8
    target_queries = [query["sql"] for query in many.captured_queries if 'FROM "dashboard_target"' in query["sql"]]
    assert len(target_queries) == 1
    assert '"dashboard_target"."last_error"' not in target_queries[0]  # .only(): what the row shows


# --- the overview's live poll ----------------------------------------------------------------------------


def test_overview_live_answers_204_until_a_target_changes_then_only_changed_rows(
    viewer_client, environment, history, django_assert_max_num_queries
):
    page = viewer_client.get(reverse("health-overview", args=[environment.slug]))
    state = {"since": page.context["since"], "n": page.context["total"], "axis": page.context["axis"]}
    live = reverse("health-overview-live", args=[environment.slug])

    with django_assert_max_num_queries(6):
        assert viewer_client.get(live, state, **HTMX).status_code == 204

    table = history["table"]
    record(table, timezone.now(), 4.2)
    response = viewer_client.get(live, state, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'<tr id="target-(\d+)"', html) == [str(table.pk)]
    assert f'<tr id="target-{table.pk}" class="st-up" hx-swap-oob="true">' in html
    assert "4.20 ms" in html
    assert 'id="open-incidents"' in html and 'id="health-counts"' in html
    assert 'id="timeline-strip"' not in html  # same hour: the timeline stays
    new_since = int(re.search(r'name="since" value="(\d+)"', html).group(1))
    assert new_since == selectors.micros(Target.objects.get(pk=table.pk).changed_at) > state["since"]

    assert viewer_client.get(live, {**state, "since": new_since}, **HTMX).status_code == 204


def test_overview_live_answers_204_after_a_minute_job_that_changed_nothing_shown(viewer_client, environment, history):
    now = timezone.now()
    roll_up(now)
    page = viewer_client.get(reverse("health-overview", args=[environment.slug]))
    state = {"since": page.context["since"], "n": page.context["total"], "axis": page.context["axis"]}
    live = reverse("health-overview-live", args=[environment.slug])
    # The minute job again, a little later in the same hour: every summary is written, none shows otherwise.
    later = min(now + timedelta(seconds=20), floor_time(now, HOUR) + HOUR - timedelta(microseconds=1))
    rollup_all(later)
    assert refresh_summaries(later) == 4
    assert viewer_client.get(live, state, **HTMX).status_code == 204
    # A failure shown in the uptime cells re-sends that row only.
    record(history["table"], later, None, ok=False, error="throttled")
    state["since"] = page.context["since"]
    response = viewer_client.get(live, state, **HTMX)
    assert re.findall(r'<tr id="target-(\d+)"', response.content.decode()) == [str(history["table"].pk)]


@pytest.mark.parametrize("since", ["", "nonsense", "-5", "9" * 30])
def test_overview_live_takes_any_since(viewer_client, environment, history, since):
    live = reverse("health-overview-live", args=[environment.slug])
    assert viewer_client.get(live, {"since": since, "n": 4}, **HTMX).status_code in (200, 204)


def test_overview_live_sends_the_timeline_when_the_hour_turned(viewer_client, environment, history):
    live = reverse("health-overview-live", args=[environment.slug])
    response = viewer_client.get(live, {"since": 0, "n": 4, "axis": 1}, **HTMX)
    assert 'id="timeline-strip" class="timeline" hx-swap-oob="true"' in response.content.decode()


def test_overview_live_reloads_the_page_when_targets_were_added(viewer_client, environment, history):
    live = reverse("health-overview-live", args=[environment.slug])
    response = viewer_client.get(live, {"since": 0, "n": 3}, **HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Refresh"] == "true"


def test_overview_live_204_costs_the_same_with_many_targets(viewer_client, environment, history):
    Target.objects.bulk_create(
        [Target(environment=environment, kind=ProbeKind.DYNAMODB, name=f"table-{n}") for n in range(300)]
    )
    live = reverse("health-overview-live", args=[environment.slug])
    since = selectors.micros(timezone.now())
    with CaptureQueriesContext(connection) as queries_run:
        assert viewer_client.get(live, {"since": since}, **HTMX).status_code == 204
    target_queries = [q["sql"] for q in queries_run.captured_queries if 'FROM "dashboard_target"' in q["sql"]]
    assert len(target_queries) == 1 and '"changed_at" >' in target_queries[0]


# --- a target ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("range_key", ["1h", "24h", "7d", "30d", "1y"])
def test_detail_shows_each_range(viewer_client, environment, history, range_key):
    dsql = history["dsql"]
    response = viewer_client.get(dsql.get_absolute_url(), {"range": range_key})
    assert response.status_code == 200
    context = response.context
    assert context["spec"].key == range_key
    summary = context["summary"]
    assert summary["uptime"] == "90.000 %"
    assert summary["count"] == 40 and summary["failures"] == 4
    assert summary["p95"] == formatting.latency_ms(
        histogram_of(history["latencies"]).percentile(0.95)
    )  # from the rollups' merged histogram
    columns = context["chart"]["columns"]
    assert sum(count for count in columns["count"] if count) == 40
    assert context["chart"]["step"] == RANGES[range_key].resolution
    assert set(context["chart"]["phases"]) == {"token", "connect", "query"}
    html = response.content.decode()
    assert 'id="chart-data"' in html and 'data-chart="latency"' in html and 'data-chart="phases"' in html
    assert "Provision the DSQL cluster" in html if range_key != "1h" else "Provision the DSQL cluster" not in html


def test_detail_reads_where_the_rollups_end_once_for_its_chart_and_summary(viewer_client, environment, history):
    with CaptureQueriesContext(connection) as queries_run:
        response = viewer_client.get(history["dsql"].get_absolute_url(), {"range": "24h"})
    assert response.status_code == 200
    cursor_reads = [q for q in queries_run.captured_queries if 'FROM "dashboard_rollupcursor"' in q["sql"]]
    assert len(cursor_reads) == 1
    # Its results' times, formatted for the table, as the date filter gave them.
    newest = history["dsql"].results.order_by("-at", "-id").first()
    assert f'<td class="mono">{newest.at:%Y-%m-%d %H:%M:%S}</td>' in response.content.decode()


def test_detail_chart_has_percentiles_per_bucket(viewer_client, environment):
    target = make_target(environment, "per-bucket")
    minute = floor_time(timezone.now(), MINUTE) - 10 * MINUTE
    latencies = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 20.0, 40.0, 80.0, 160.0]
    for index, latency in enumerate(latencies):
        record(target, minute + timedelta(seconds=index * 5), latency, phases={"connect": latency / 2})
    record(target, minute + timedelta(seconds=55), None, ok=False)
    roll_up(timezone.now())
    chart = viewer_client.get(target.get_absolute_url(), {"range": "1h"}).context["chart"]
    columns = chart["columns"]
    index = columns["x"].index(minute.timestamp())
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert columns[name][index] == pytest.approx(exact_percentile(latencies, q), rel=0.05)
    assert columns["avg"][index] == pytest.approx(sum(latencies) / 10)
    assert columns["uptime"][index] == pytest.approx(100 * 10 / 11)
    assert chart["phases"]["connect"][index] == pytest.approx(sum(latencies) / 20)


def test_detail_chart_includes_results_not_rolled_up_yet(viewer_client, environment):
    target = make_target(environment, "fresh")
    at = timezone.now() - timedelta(seconds=20)
    record(target, at, 12.5)
    columns = viewer_client.get(target.get_absolute_url(), {"range": "1h"}).context["chart"]["columns"]
    assert columns["x"] == [floor_time(at, MINUTE).timestamp()]
    assert columns["p50"] == [pytest.approx(12.5, rel=0.05)]


def test_detail_breaks_chart_lines_where_nothing_was_probed(viewer_client, environment):
    target = make_target(environment, "gappy", interval_seconds=60)
    start = floor_time(timezone.now(), MINUTE) - 50 * MINUTE
    for minute in (0, 1, 2, 30, 31):
        record(target, start + minute * MINUTE, 10.0)
    roll_up(timezone.now())
    columns = viewer_client.get(target.get_absolute_url(), {"range": "1h"}).context["chart"]["columns"]
    assert columns["p50"].count(None) == 1 and len(columns["x"]) == 6


def test_detail_of_an_api_health_target_compares_cold_and_warm_starts(viewer_client, environment):
    target = make_target(environment, "vela-api", kind=ProbeKind.API_HEALTH, health_method=HealthMethod.INVOKE)
    start = floor_time(timezone.now(), MINUTE) - 30 * MINUTE
    cold = [400.0, 500.0, 600.0]
    warm = [20.0 + n for n in range(20)]
    for index, latency in enumerate(cold + warm):
        is_cold = index < len(cold)
        phases = {"duration": latency - 100 if is_cold else latency, **({"init": 100.0} if is_cold else {})}
        record(target, start + index * MINUTE, latency, phases=phases, cold_start=is_cold)
    roll_up(timezone.now())
    response = viewer_client.get(target.get_absolute_url(), {"range": "24h"})
    cold_warm = response.context["cold_warm"]
    assert cold_warm["cold_count"] == 3 and cold_warm["warm_count"] == 20
    assert cold_warm["cold_avg"] == formatting.latency_ms(500.0)
    assert cold_warm["warm_avg"] == formatting.latency_ms(sum(warm) / 20)
    assert cold_warm["cold"] == {"n": 3, "p50": formatting.latency_ms(500.0), "p95": formatting.latency_ms(590.0)}
    assert cold_warm["warm"]["p50"] == formatting.latency_ms(29.5)  # exact, from raw results (percentile_cont)
    html = response.content.decode()
    assert "Cold and warm starts" in html
    assert set(response.context["chart"]["phases"]) == {"init", "duration"}


def test_detail_without_history(viewer_client, environment):
    target = make_target(environment, "new-one")
    response = viewer_client.get(target.get_absolute_url())
    assert response.status_code == 200
    assert response.context["summary"]["uptime"] == "—"
    assert "not probed yet" in response.content.decode()
    assert "Cold and warm" not in response.content.decode()


def test_detail_of_a_year_reads_day_rollups_with_bounded_queries(viewer_client, environment):
    target = make_target(environment, "a-year")
    today = floor_time(timezone.now(), DAY)

    # Rollups exist once the rollup job has run: it leaves its cursor.
    RollupCursor.objects.update_or_create(
        resolution=Resolution.MINUTE, defaults={"done_until": floor_time(timezone.now(), MINUTE)}
    )

    day_histogram = histogram_of([6.0] * 1000 + [8.0] * 1500 + [30.0] * 373)

    def add_days(days: int):
        Rollup.objects.filter(target=target).delete()
        FillingRollup.objects.filter(target=target).delete()
        rows = [
            # Today's day is still filling: its row is in FillingRollup.
            (Rollup if n else FillingRollup)(
                target=target,
                resolution=Resolution.DAY,
                bucket=today - n * DAY,
                count=2880,
                ok_count=2880 - (n % 7),
                latency_count=2880 - (n % 7),
                latency_sum=(2880 - (n % 7)) * 8.0,
                latency_min=4.0,
                latency_max=90.0,
                histogram=day_histogram.encode(),
                **dict(
                    zip(
                        ("p50_index", "p95_index", "p99_index"),
                        day_histogram.percentile_indexes(0.5, 0.95, 0.99),
                        strict=True,
                    )
                ),
                phase_sums={"token": 1000.0, "connect": 15000.0, "query": 2000.0},
            )
            for n in range(days)
        ]
        FillingRollup.objects.bulk_create(rows[:1])
        Rollup.objects.bulk_create(rows[1:])

    url = target.get_absolute_url()
    add_days(30)
    with CaptureQueriesContext(connection) as month:
        viewer_client.get(url, {"range": "1y"})
    add_days(366)
    clear_django_cache()  # the test rewrites days that, live, never change once complete
    with CaptureQueriesContext(connection) as year:
        response = viewer_client.get(url, {"range": "1y"})
    assert len(year) == len(month) <= 20
    columns = response.context["chart"]["columns"]
    assert len(columns["x"]) == 366  # one point per day, today's included
    assert columns["p95"][-1] == columns["p95"][0] == pytest.approx(30.0, rel=0.05)
    rollup_reads = [q["sql"] for q in year.captured_queries if re.search(r'FROM "?dashboard_rollup\b', q["sql"])]
    # The chart's settled days (stored quantiles) and its day still filling (histogram), the range's
    # settled days (then cached) and its edges.
    assert len(rollup_reads) == 4
    assert 'resolution" = 86400' in rollup_reads[0]
    # Raw results: only the page of 50 (and its count) and the minutes not rolled up yet.
    raw_reads = [q["sql"] for q in year.captured_queries if 'FROM "dashboard_proberesult"' in q["sql"]]
    assert all("LIMIT 50" in sql or "COUNT(*)" in sql or '"at" >=' in sql for sql in raw_reads)
    # Wall time is not asserted (it depends on the machine); what keeps it low is: one row per day, two reads.


def test_results_are_paginated_50_a_page(viewer_client, environment):
    target = make_target(environment, "busy")
    start = timezone.now() - 3 * HOUR
    for index in range(120):
        record(target, start + index * MINUTE, 1.0 + index, ok=index != 100)
    url = target.get_absolute_url()
    first = viewer_client.get(url)
    assert len(first.context["results"]) == 50
    assert first.context["results"][0]["latency"] == formatting.latency_ms(120.0)  # newest first
    assert first.context["results_pager"]["pages"] == 3
    last = viewer_client.get(url, {"page": 3})
    assert len(last.context["results"]) == 20
    assert last.context["results"][-1]["latency"] == formatting.latency_ms(1.0)
    # HTMX pager: only the results part comes back, its links keep the other parameters.
    partial = viewer_client.get(url, {"page": 2, "range": "7d"}, HTTP_HX_TARGET="results", **HTMX)
    html = partial.content.decode()
    assert html.startswith('<section id="results"') and 'id="range-body"' not in html
    assert "page 2 of 3" in html and "range=7d" in html


def test_incidents_are_listed_and_paginated(viewer_client, environment):
    target = make_target(environment, "flappy", down_after=1)
    start = timezone.now() - 5 * HOUR
    for index in range(25):  # 25 outages of one minute each
        record(target, start + (2 * index) * 5 * MINUTE, None, ok=False, error=f"failure {index}")
        record(target, start + (2 * index + 1) * 5 * MINUTE, 3.0)
    response = viewer_client.get(target.get_absolute_url())
    incidents = response.context["incidents"]
    assert len(incidents) == target_page.INCIDENTS_PER_PAGE
    assert incidents[0]["cause"] == "failure 24" and incidents[0]["duration"] == "5 min 00 s"
    second = viewer_client.get(target.get_absolute_url(), {"ipage": 2}, HTTP_HX_TARGET="incidents", **HTMX)
    assert second.content.decode().count("failure ") == 5


def test_the_status_card_shows_the_open_incident_whichever_page_of_incidents_is_shown(viewer_client, environment):
    target = make_target(environment, "flappy-down", down_after=1)
    start = timezone.now() - 5 * HOUR
    for index in range(22):  # 22 closed outages, then one still open
        record(target, start + (2 * index) * 5 * MINUTE, None, ok=False, error=f"failure {index}")
        record(target, start + (2 * index + 1) * 5 * MINUTE, 3.0)
    record(target, start + 45 * 5 * MINUTE, None, ok=False, error="still down")
    for params in ({}, {"ipage": 2}):
        context = viewer_client.get(target.get_absolute_url(), params).context
        assert context["open_incident"].cause == "still down" and context["open_incident"].closed_at is None
        assert context["open_for"]
    # And none once it closed, on the first page, where the newest incident is a closed one.
    record(target, start + 46 * 5 * MINUTE, 3.0)
    context = viewer_client.get(target.get_absolute_url()).context
    assert context["open_incident"] is None and context["incidents"][0]["cause"] == "still down"


def test_detail_switches_range_in_place(viewer_client, environment, history):
    url = history["dsql"].get_absolute_url()
    response = viewer_client.get(url, {"range": "7d"}, HTTP_HX_TARGET="range-body", **HTMX)
    html = response.content.decode()
    assert html.startswith('<div id="range-body">')
    assert '<span class="current">7 days</span>' in html
    assert 'name="range" value="7d"' in html


def test_detail_queries_are_bounded(viewer_client, environment, history, django_assert_max_num_queries):
    # 22 with a cold cache: the range's settled days are read once, then come from the cache; the chart
    # reads its settled buckets and the one still filling separately.
    with django_assert_max_num_queries(22):
        viewer_client.get(history["api"].get_absolute_url(), {"range": "30d"})


# --- the target's live poll ---------------------------------------------------------------------------


def test_detail_live_answers_204_until_a_new_result_then_sends_it(viewer_client, environment, history):
    dsql = Target.objects.get(pk=history["dsql"].pk)
    page = viewer_client.get(dsql.get_absolute_url(), {"range": "1h"})
    live = reverse("target-detail-live", args=[environment.slug, dsql.pk])
    state = {"since": page.context["since"], "after": page.context["after"], "page": 1, "range": "1h"}
    assert viewer_client.get(live, state, **HTMX).status_code == 204

    at = timezone.now()
    recorded = record(dsql, at, 77.0, phases={"token": 1.0, "connect": 75.0, "query": 1.0})
    response = viewer_client.get(live, state, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<tbody hx-swap-oob="afterbegin:#results-rows">' in html
    assert html.count("<tr class=") == 1 and "77.0 ms" in html
    assert f'id="live-after" name="after" value="{recorded.result.pk}"' in html
    assert 'id="target-status" class="card status-card st-up" hx-swap-oob="true"' in html
    tail = json.loads(re.search(r'<script id="chart-tail" type="application/json">(.*?)</script>', html, re.S).group(1))
    x = floor_time(at, MINUTE).timestamp()
    index = tail["columns"]["x"].index(x)
    assert tail["columns"]["p50"][index] == pytest.approx(77.0, rel=0.05)
    assert tail["phases"]["connect"][index] == pytest.approx(75.0)
    assert tail["start"] == pytest.approx(floor_time(timezone.now() - HOUR, MINUTE).timestamp(), abs=60)

    new_since = int(re.search(r'id="live-since" name="since" value="(\d+)"', html).group(1))
    assert viewer_client.get(live, {**state, "since": new_since}, **HTMX).status_code == 204


def test_detail_live_on_an_older_page_does_not_insert_rows(viewer_client, environment, history):
    dsql = history["dsql"]
    live = reverse("target-detail-live", args=[environment.slug, dsql.pk])
    record(dsql, timezone.now(), 5.0)
    html = viewer_client.get(live, {"since": 0, "after": 0, "page": 2}, **HTMX).content.decode()
    assert "results-rows" not in html and 'id="target-status"' in html


# --- pause and resume -------------------------------------------------------------------------------------


def test_pause_and_resume_need_a_post(operator_client, environment, history):
    for name in ("target-pause", "target-resume"):
        url = reverse(name, args=[environment.slug, history["dsql"].pk])
        assert operator_client.get(url).status_code == 405


def test_viewers_and_outsiders_cannot_pause(client, viewer, outsider, environment, history):
    url = reverse("target-pause", args=[environment.slug, history["dsql"].pk])
    for user in (viewer, outsider):
        client.force_login(user)
        assert client.post(url).status_code == 403
    assert not Target.objects.get(pk=history["dsql"].pk).paused


def test_anonymous_users_are_sent_to_log_in(client, environment, history):
    response = client.post(reverse("target-pause", args=[environment.slug, history["dsql"].pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_operator_pauses_and_resumes_with_an_audit_trail(operator_client, operator, environment, history):
    dsql = history["dsql"]
    pause = reverse("target-pause", args=[environment.slug, dsql.pk])
    response = operator_client.post(pause, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302 and response["Location"] == dsql.get_absolute_url()
    target = Target.objects.get(pk=dsql.pk)
    assert target.paused and target.shown_status == TargetStatus.PAUSED
    event = AuditEvent.objects.get(action="target.pause")
    assert (event.user, event.environment, event.source_address) == (operator, environment, "10.1.2.3")
    assert event.details == {"target_id": dsql.pk, "target": "vela-dsql", "kind": "dsql"}

    operator_client.post(pause)  # already paused: nothing recorded twice
    assert AuditEvent.objects.filter(action="target.pause").count() == 1

    resume = reverse("target-resume", args=[environment.slug, dsql.pk])
    response = operator_client.post(resume, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('<section id="target-status"') and "Pause probing" in html and "resumed" in html
    assert not Target.objects.get(pk=dsql.pk).paused
    assert AuditEvent.objects.filter(action="target.resume").count() == 1


def test_pause_of_a_target_of_another_environment_is_404(operator_client, environment, other_environment, history):
    url = reverse("target-pause", args=[other_environment.slug, history["dsql"].pk])
    assert operator_client.post(url).status_code == 404
    assert not Target.objects.get(pk=history["dsql"].pk).paused


# --- access ---------------------------------------------------------------------------------------------


def test_pages_need_the_viewer_role(client, outsider, environment, history):
    client.force_login(outsider)
    dsql = history["dsql"]
    for url in (
        reverse("health-overview", args=[environment.slug]),
        reverse("health-overview-live", args=[environment.slug]),
        dsql.get_absolute_url(),
        reverse("target-detail-live", args=[environment.slug, dsql.pk]),
    ):
        assert client.get(url).status_code == 403, url


def test_pages_need_a_login(client, environment, history):
    response = client.get(reverse("health-overview", args=[environment.slug]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_target_under_another_environment_is_404(viewer_client, environment, other_environment, history):
    dsql = history["dsql"]
    assert viewer_client.get(reverse("target-detail", args=[other_environment.slug, dsql.pk])).status_code == 404
    assert viewer_client.get(reverse("target-detail-live", args=[other_environment.slug, dsql.pk])).status_code == 404
    assert viewer_client.get(reverse("health-overview", args=["nowhere"])).status_code == 404


def test_environment_pages_link_to_the_health_overview(viewer_client, environment):
    url = reverse("health-overview", args=[environment.slug])
    assert url in viewer_client.get(reverse("environment-list")).content.decode()


def test_long_target_names_keep_their_distinct_end_visible(viewer_client, environment):
    """A thousand names sharing a prefix must not all read `bench-api_health-1-0…`: the end shows."""
    names = [f"bench-api_health-1-0000-a-rather-long-shared-prefix-{n:04d}" for n in (7, 8)]
    targets = [make_target(environment, name, kind=ProbeKind.DYNAMODB) for name in names]
    html = viewer_client.get(reverse("health-overview", args=[environment.slug])).content.decode()
    for target, name in zip(targets, names, strict=True):
        cell = re.search(r'<td class="tname">(.*?)</td>', row_html(html, target.pk), re.S).group(1)
        assert f'title="{name}"' in cell  # the whole name on hover
        assert f'<span class="head">{name[:-12]}</span><span class="tail">{name[-12:]}</span>' in cell
    css = (Path(settings.BASE_DIR) / "static/velaops/health.css").read_text()
    assert re.search(r"\.mid-ellipsis \.tail \{[^}]*flex: 0 0 auto", css)  # the tail never shrinks
    assert re.search(r"\.mid-ellipsis \.head \{[^}]*text-overflow: ellipsis", css)
