"""Health-history figures (issue #5) and report figures (issue #6) over the seeded year of probe history
(bench/seed_history.py), through real HTTP to gunicorn unless said otherwise:

- overview_ms_1000_targets_1y: the overview of bench-1y (1,000 targets, a year of history);
- overview_growth_ratio: that overview over the one of bench-1d (as many targets, one day of history),
  the two requested alternately in the same run, medians;
- detail_ms_1y (and 24h, 7d, 30d for information): a target's page with ?range=..., cycling over
  DETAIL_TARGETS targets of bench-1y;
- live_poll_p95_ms_50_clients: 50 pollers of the overview's live partial, each with its own session and
  connection, each polling every
  POLL_SECONDS with the `since` its last answer gave it, while a thread records a result every second
  for a random target (so some polls answer 204 and some a few changed rows); p95 of every poll. Then
  the same at the production rate (1,000 targets probed every 30 s, the page's own 5 s poll), for
  information;
- storage_bytes_per_target_year: the rollup table's size (pg_total_relation_size: heap, TOAST, all
  its indexes) shared out over the targets by their rows, per target with a year of history;
- report_ms_30d_20_targets, report_ms_1y_20_targets: dashboard.reports.generate.build_report (content,
  HTML, CSV and PDF in memory; nothing stored or sent) for bench-report's 20 targets, in this process.

Run as `python -m bench.health_history OUT.json` by `python -m bench` (after seeding).
"""

from __future__ import annotations

import os
import random
import re
import statistics
import sys
import threading
import time
from datetime import timedelta

import requests

from bench import http, overview_browser, seed_history
from bench.results import Figure, write_figures

QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = int(os.environ.get("BENCH_RUNS", "10" if QUICK else "30"))
DETAIL_TARGETS = 10
DETAIL_RANGES = ("1y", "24h", "7d", "30d")
POLLERS = 50
POLL_SECONDS = 1.0
POLL_DURATION = 15 if QUICK else 30
REPORT_RUNS = 3 if QUICK else 5
HTMX = {"HX-Request": "true"}


def main(out: str) -> None:
    seed = seed_history.ensure_seeded(QUICK, os.environ.get("BENCH_RESEED") == "1")
    size = seed_history.size_for(QUICK)
    url = http.database_url(seed["database"])

    import django

    django.setup()
    from dashboard.models import Environment

    environments = {e.slug: e for e in Environment.objects.filter(slug__in=["bench-1y", "bench-1d", "bench-report"])}
    figures: list[Figure] = []
    with http.gunicorn(url) as base:
        session = http.login(base)
        figures += overview(session, base, size.targets)
        figures += overview_browser.figures(base, session, "bench-1y", size.targets)  # the same page in Chromium
        figures += detail(session, base, environments["bench-1y"])
        figures += live_polls(session, base, environments["bench-1y"])
    figures += debug_on(url, size.targets)
    figures += storage()
    figures += reports(environments["bench-report"])
    write_figures(out, figures, {"seed": seed})


# --- pages ------------------------------------------------------------------------------------------------


def overview(session: requests.Session, base: str, targets: int) -> list[Figure]:
    year, day = f"{base}/environments/bench-1y/health/", f"{base}/environments/bench-1d/health/"
    for url in (year, day, year, day):
        session.get(url).raise_for_status()
    timings: dict[str, list[float]] = {year: [], day: []}
    for run in range(RUNS):
        # Alternately, so whatever else the machine does weighs on both alike.
        for url in (year, day) if run % 2 else (day, year):
            timings[url].append(http.time_get(session, url, expect=(200,)))
    year_ms, day_ms = statistics.median(timings[year]), statistics.median(timings[day])
    size = len(session.get(year).content)
    return [
        Figure(
            f"overview_ms_{targets}_targets_1y",
            round(year_ms, 2),
            "ms",
            f"median of {RUNS}; {size / 1000:.0f} kB of HTML; min {min(timings[year]):.1f}, "
            f"max {max(timings[year]):.1f}",
        ),
        Figure(f"overview_ms_{targets}_targets_1d", round(day_ms, 2), "ms", f"median of {RUNS}, same run"),
        Figure("overview_growth_ratio", round(year_ms / day_ms, 3), "ratio", "a year of history / a day"),
    ]


def debug_on(url: str, targets: int) -> list[Figure]:
    """The same overview with DEBUG on (as `make run` serves it), for information: the figures above are
    with DEBUG off, as in production."""
    with http.gunicorn(url, DEBUG="1") as base:
        session = http.login(base)
        ms = http.median_ms(session, f"{base}/environments/bench-1y/health/", max(5, RUNS // 2))
    return [Figure(f"overview_ms_{targets}_targets_1y_debug_on", ms, "ms", "DEBUG=1, for comparison only")]


def detail(session: requests.Session, base: str, environment) -> list[Figure]:
    from dashboard.models import Target

    # Typical targets: up, of every kind, spread over the environment.
    targets = list(
        Target.objects.filter(environment=environment, status="up").order_by("pk").values_list("pk", flat=True)
    )
    chosen = targets[:: max(1, len(targets) // DETAIL_TARGETS)][:DETAIL_TARGETS]
    urls = [f"{base}/environments/{environment.slug}/health/targets/{pk}/" for pk in chosen]
    figures = []
    for key in DETAIL_RANGES:
        for url in urls[:2]:
            session.get(f"{url}?range={key}").raise_for_status()
        timings = [http.time_get(session, f"{urls[run % len(urls)]}?range={key}", expect=(200,)) for run in range(RUNS)]
        figures.append(
            Figure(
                f"detail_ms_{key}",
                round(statistics.median(timings), 2),
                "ms",
                f"median of {RUNS} over {len(urls)} targets; max {max(timings):.1f}",
            )
        )
    return figures


# --- live polls -------------------------------------------------------------------------------------------


def live_polls(session: requests.Session, base: str, environment) -> list[Figure]:
    page = session.get(f"{base}/environments/{environment.slug}/health/").text
    state = {name: _hidden(page, name) for name in ("since", "n", "axis")}
    brief = _poll_run(session, base, environment, state, POLL_SECONDS, writes_per_second=1)
    targets = environment.targets.count()
    production = _poll_run(session, base, environment, state, 5.0, writes_per_second=targets / 30)
    figures = []
    for name, (timings, statuses, writes), note in (
        ("live_poll_p95_ms_50_clients", brief, f"each polls every {POLL_SECONDS:g} s; 1 result recorded a second"),
        (
            "live_poll_p95_ms_50_clients_production_rate",
            production,
            f"each polls every 5 s (the page's rate); {targets / 30:.0f} results a second "
            f"({targets} targets every 30 s)",
        ),
    ):
        share_204 = statuses.count(204) / len(statuses)
        figures.append(
            Figure(
                name,
                round(http.percentile(timings, 0.95), 2),
                "ms",
                f"{note}; {len(timings)} polls, {100 * share_204:.0f} % answered 204, median "
                f"{statistics.median(timings):.1f} ms, max {max(timings):.1f} ms; {writes} results recorded",
            )
        )
    return figures


def _hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def _poll_run(
    session: requests.Session, base: str, environment, state: dict, interval: float, writes_per_second: float
) -> tuple[list[float], list[int], int]:
    """POLLERS threads, each its own connection and session, polling for POLL_DURATION seconds; a writer
    thread records ok results for random targets meanwhile."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from dashboard.models import Target
    from dashboard.monitoring.outcome import ProbeOutcome
    from dashboard.monitoring.recording import record_outcome

    live = f"{base}/environments/{environment.slug}/health/live"
    stop = threading.Event()
    timings: list[float] = []
    statuses: list[int] = []
    lock = threading.Lock()
    writes = [0]

    # Each poller logged in with a session of its own, made the way a login makes one but without the
    # password hash (50 of those would only slow the start).
    user = User.objects.get(username=http.USERNAME)
    session_keys = []
    for _ in range(POLLERS):
        django_client = Client()
        django_client.force_login(user)
        session_keys.append(django_client.cookies[settings.SESSION_COOKIE_NAME].value)

    errors: list[BaseException] = []

    def poller(session_key: str) -> None:
        try:
            poll(session_key)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    def poll(session_key: str) -> None:
        client = requests.Session()
        client.headers.update(session.headers)
        client.cookies.set(settings.SESSION_COOKIE_NAME, session_key)
        mine = dict(state)
        stop.wait(random.uniform(0, interval))  # the pages were opened at different moments
        while not stop.is_set():
            tick = time.monotonic()
            started = time.perf_counter()
            response = client.get(live, params=mine, headers=HTMX, allow_redirects=False)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code in (200, 204), (response.status_code, response.text[:300])
            if response.status_code == 200:
                mine["since"] = _hidden(response.text, "since")
            with lock:
                timings.append(elapsed)
                statuses.append(response.status_code)
            stop.wait(max(0.0, interval - (time.monotonic() - tick)))

    ids = list(Target.objects.filter(environment=environment, status="up").values_list("pk", flat=True))

    def writer() -> None:
        try:
            while not stop.is_set():
                tick = time.monotonic()
                latency = random.lognormvariate(3.2, 0.35)
                outcome = ProbeOutcome(ok=True, latency_ms=latency, phases={"connect": latency})
                record_outcome(random.choice(ids), timezone.now(), outcome)
                writes[0] += 1
                stop.wait(max(0.0, random.expovariate(writes_per_second) - (time.monotonic() - tick)))
        finally:
            connection.close()

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=poller, args=(k,)) for k in session_keys]
    for thread in threads:
        thread.start()
    time.sleep(POLL_DURATION)
    stop.set()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} pollers failed") from errors[0]
    return timings, statuses, writes[0]


# --- storage ----------------------------------------------------------------------------------------------


def storage() -> list[Figure]:
    from django.db import connection

    from dashboard.models import Rollup, Target

    table = Rollup._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_total_relation_size('{table}'), pg_relation_size('{table}'), pg_indexes_size('{table}')"
        )
        total, heap, indexes = cursor.fetchone()
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE t.created_at < now() - interval '300 days'), "
            f"(SELECT count(*) FROM {table} r JOIN {Target._meta.db_table} y ON y.id = r.target_id "
            f"  WHERE y.created_at < now() - interval '300 days'), (SELECT count(*) FROM {table}) "
            f"FROM {Target._meta.db_table} t"
        )
        year_targets, year_rows, all_rows = cursor.fetchone()
    per_target = total * (year_rows / all_rows) / year_targets
    return [
        Figure(
            "storage_bytes_per_target_year",
            round(per_target),
            "bytes",
            f"rollup table {total / 1e6:.0f} MB (heap {heap / 1e6:.0f} MB, indexes {indexes / 1e6:.0f} MB) x "
            f"{year_rows:,} of {all_rows:,} rows / {year_targets} year targets; "
            f"{year_rows / year_targets:,.0f} rows each: minutes 8 d, hours and days a year",
        )
    ]


# --- reports (issue #6) -----------------------------------------------------------------------------------


def reports(environment) -> list[Figure]:
    """build_report(environment, period) for 30 days and a year of bench-report's 20 targets."""
    try:
        from dashboard.periods import custom_period
        from dashboard.reports.generate import build_report
    except ImportError as exc:  # the reports are not built in this tree
        return [
            Figure(name, None, "ms", f"not measured: {exc}")
            for name in ("report_ms_30d_20_targets", "report_ms_1y_20_targets")
        ]
    from django.utils import timezone

    figures = []
    for key, span in (("30d", timedelta(days=30)), ("1y", timedelta(days=365))):
        now = timezone.now()
        period = custom_period(now - span, now)
        build_report(environment, period, now=now)  # templates, fonts and imports loaded once
        timings = []
        for _ in range(REPORT_RUNS):
            started = time.perf_counter()
            build_report(environment, period, now=now)
            timings.append((time.perf_counter() - started) * 1000)
        figures.append(
            Figure(
                f"report_ms_{key}_20_targets",
                round(statistics.median(timings), 1),
                "ms",
                f"build_report: content, HTML, CSV and PDF in memory, in-process; median of {REPORT_RUNS}",
            )
        )
    return figures


if __name__ == "__main__":
    main(sys.argv[1])
