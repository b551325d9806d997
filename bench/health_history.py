"""Health-history figures (issue #5) and report figures (issue #6) over the seeded year of probe history
(bench/seed_history.py), through real HTTP to gunicorn unless said otherwise:

- overview_ms_1000_targets_1y: the overview of bench-1y (1,000 targets, a year of history);
- overview_growth_ratio: that overview over the one of bench-1d (as many targets, one day of history),
  the two requested alternately in the same run, medians;
- detail_ms_{24h,1y}_{cold,warm}: a target's page with ?range=..., cycling over DETAIL_TARGETS targets of
  bench-1y; cold: the target's cache keys deleted before each sample (nothing of it cached), warm: the
  same page again right after. detail_ms_1y (and 24h, 7d, 30d for information): the same targets, each
  viewed once first, then cycled over (the warm path of any target viewed in the last hour);
- minute_job_ms_1000_targets, minute_job_ms_2000_targets: one run of the minute job (rollup_all +
  refresh_summaries, in this process) over bench-1y, then bench-1y + bench-30d, each run a minute later
  on a clock of its own with a minute of new results (two per target) recorded before it, the runs
  crossing the turn of an hour; in a transaction rolled back after, with the other environments'
  targets deleted in it (out of the job's sight);
- live_poll_p95_ms_50_clients: 50 pollers of the overview's live partial, each with its own session and
  connection, each polling at the page's rate (every 5 s) with the `since` its last answer gave it,
  while a process of its own (bench/result_writer.py, as the probes' worker would) records results at
  the production rate (1,000 targets every 30 s) and another (bench/job_loop.py) runs the minute job
  every JOB_SECONDS over bench-1y; p95 of every poll.
  live_poll_full_resend_share: the share of those polls answered with every row.
  live_poll_p95_ms_50_clients_production_rate: the same without the minute job, for comparison;
- storage_bytes_per_target_year: what the app's own writes leave on disk per target and year
  (bench/storage.py: a simulated period through record_outcome, the minute job and prune, extrapolated);
  storage_bytes_per_target_year_seed, for comparison: the seeded (bulk-loaded, vacuumed) rollup table's
  size (pg_total_relation_size: heap, TOAST, all its indexes) shared out over the targets by their rows;
- report_ms_30d_20_targets, report_ms_1y_20_targets: dashboard.reports.generate.build_report (content,
  HTML, CSV and PDF in memory; nothing stored or sent) for bench-report's 20 targets, in this process.

Run as `python -m bench.health_history OUT.json` by `python -m bench` (after seeding).
"""

from __future__ import annotations

import os
import random
import re
import signal
import statistics
import sys
import threading
import time
from datetime import timedelta

import requests

from bench import autovacuum, http, overview_browser, seed_history
from bench.results import Figure, write_figures

QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = int(os.environ.get("BENCH_RUNS", "10" if QUICK else "30"))
DETAIL_TARGETS = 10
DETAIL_RANGES = ("1y", "24h", "7d", "30d")
POLLERS = 50
POLL_SECONDS = 5.0  # the page's (static/velaops/health.js)
POLL_DURATION = 20 if QUICK else 45
JOB_SECONDS = 5.0  # the minute job during the live polls: twelve times as often as in production
JOB_RUNS = 8 if QUICK else 20
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
    with autovacuum.Daemon(), http.gunicorn(url) as base:
        session = http.login(base)
        autovacuum.apply()  # what a seed's summaries and an earlier run's writes left
        figures += overview(session, base, size.targets)
        figures += overview_browser.figures(base, session, "bench-1y", size.targets)  # the same page in Chromium
        figures += detail(session, base, environments["bench-1y"])
        figures += detail_cold_warm(session, base, environments["bench-1y"])
        figures += minute_job(size.targets)
        autovacuum.apply()  # the minute job's 20 simulated minutes of runs, in as many seconds
        figures += live_polls(session, base, environments["bench-1y"])
    figures += debug_on(url, size.targets)
    figures += storage_simulated()
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
        _overview_all_rows_changed(session, year, targets),
    ]


def _overview_all_rows_changed(session: requests.Session, url: str, targets: int) -> Figure:
    """The overview when every row changed since anyone last saw it, so none of its rendered rows is
    cached: each target's stamp moved (the row cache's key) before each sample. A worst case: at the
    production rate a view finds the rows of the last seconds changed, not all."""
    from django.utils import timezone

    from dashboard.models import Target

    timings = []
    for _ in range(max(5, RUNS // 3)):
        Target.objects.filter(environment__slug="bench-1y").update(changed_at=timezone.now())
        timings.append(http.time_get(session, url, expect=(200,)))
    return Figure(
        f"overview_ms_{targets}_targets_1y_all_rows_changed",
        round(statistics.median(timings), 2),
        "ms",
        f"every target's stamp moved before each view (no row cached); median of {len(timings)}, "
        f"min {min(timings):.1f}, max {max(timings):.1f}",
    )


def debug_on(url: str, targets: int) -> list[Figure]:
    """The same overview with DEBUG on (as `make run` serves it), for information: the figures above are
    with DEBUG off, as in production."""
    with http.gunicorn(url, DEBUG="1") as base:
        session = http.login(base)
        ms = http.median_ms(session, f"{base}/environments/bench-1y/health/", max(5, RUNS // 2))
    return [Figure(f"overview_ms_{targets}_targets_1y_debug_on", ms, "ms", "DEBUG=1, for comparison only")]


def _detail_targets(environment) -> list[int]:
    from dashboard.models import Target

    # Typical targets: up, of every kind, spread over the environment.
    targets = list(
        Target.objects.filter(environment=environment, status="up").order_by("pk").values_list("pk", flat=True)
    )
    return targets[:: max(1, len(targets) // DETAIL_TARGETS)][:DETAIL_TARGETS]


def detail(session: requests.Session, base: str, environment) -> list[Figure]:
    urls = [f"{base}/environments/{environment.slug}/health/targets/{pk}/" for pk in _detail_targets(environment)]
    figures = []
    for key in DETAIL_RANGES:
        for url in urls:  # each target viewed once: what is cached after a view is cached
            session.get(f"{url}?range={key}").raise_for_status()
        timings = [http.time_get(session, f"{urls[run % len(urls)]}?range={key}", expect=(200,)) for run in range(RUNS)]
        figures.append(
            Figure(
                f"detail_ms_{key}",
                round(statistics.median(timings), 2),
                "ms",
                f"median of {RUNS} over {len(urls)} targets, each viewed once before; max {max(timings):.1f}",
            )
        )
    return figures


def detail_cold_warm(session: requests.Session, base: str, environment) -> list[Figure]:
    """Each sample: the target's cache keys deleted, the page (cold), the same page again (warm)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    chosen = _detail_targets(environment)
    figures = []
    for key in ("24h", "1y"):
        cold, warm, cleared = [], [], 0
        for run in range(RUNS):
            pk = chosen[run % len(chosen)]
            url = f"{base}/environments/{environment.slug}/health/targets/{pk}/?range={key}"
            keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}cache:*:{pk}:*", count=1000))
            cleared += len(keys)
            if keys:
                client.delete(*keys)
            cold.append(http.time_get(session, url, expect=(200,)))
            warm.append(http.time_get(session, url, expect=(200,)))
        for name, timings, how in (
            ("cold", cold, f"its cache keys deleted before each ({cleared / RUNS:.1f} a sample on average)"),
            ("warm", warm, "the same page again right after"),
        ):
            figures.append(
                Figure(
                    f"detail_ms_{key}_{name}",
                    round(statistics.median(timings), 2),
                    "ms",
                    f"median of {RUNS} over {len(chosen)} targets, {how}; min {min(timings):.1f}, "
                    f"max {max(timings):.1f}",
                )
            )
    return figures


# --- the minute job ---------------------------------------------------------------------------------------


def minute_job(targets: int) -> list[Figure]:
    return [
        _minute_job(f"minute_job_ms_{targets}_targets", ["bench-1y"]),
        _minute_job(f"minute_job_ms_{2 * targets}_targets", ["bench-1y", "bench-30d"]),
    ]


def _minute_job(name: str, slugs: list[str]) -> Figure:
    """JOB_RUNS runs of the minute job over the targets of `slugs`, a minute apart on a clock of its own."""
    from django.core.cache import caches
    from django.db import connection, transaction

    from dashboard.models import ProbeResult, Target
    from dashboard.monitoring.rollup import refresh_summaries, rollup_all
    from dashboard.monitoring.stats import HOUR, MINUTE, floor_time

    cache = caches["default"]
    prefix = cache.key_prefix
    # Keys of its own (the run's prefix still, deleted with the run's): the rolled-back runs must not
    # leave cached sums of rollups that never were.
    cache.key_prefix = f"{prefix}-{name}"
    timings, marked = [], []
    try:
        with transaction.atomic():
            kept = list(Target.objects.filter(environment__slug__in=slugs).values_list("pk", flat=True))
            with connection.cursor() as cursor:
                # Their history stays (foreign keys are checked at commit, which never comes): the job
                # reads history by target.
                cursor.execute(f"DELETE FROM {Target._meta.db_table} WHERE NOT (id = ANY(%s))", [kept])
            start = _first_run()
            while rollup_all(start - MINUTE)["minutes"] > 1:  # up to the clock: the seed's age in empty minutes
                pass
            refresh_summaries(start - MINUTE)
            table = ProbeResult._meta.db_table
            for run in range(JOB_RUNS):
                moment = start + run * MINUTE
                minute = floor_time(moment, MINUTE) - MINUTE
                with connection.cursor() as cursor:
                    # The minute just ended: two results a target, lognormal around 40 ms, as the probes write.
                    cursor.execute(
                        f"INSERT INTO {table} (target_id, at, ok, latency_ms, phases, error, details) "
                        "SELECT id, %s + s * interval '30 seconds', true, 40 * exp(0.35 * sqrt(-2 * ln(1 - random()))"
                        " * cos(2 * pi() * random())), '{}', '', '{}' FROM unnest(%s::bigint[]) id, "
                        "generate_series(0, 1) s",
                        [minute, kept],
                    )
                before = Target.objects.order_by("-changed_at").values_list("changed_at", flat=True).first()
                started = time.perf_counter()
                rollup_all(moment)
                refresh_summaries(moment)
                timings.append((time.perf_counter() - started) * 1000)
                marked.append(Target.objects.filter(changed_at__gt=before).count())
            transaction.set_rollback(True)
    finally:
        cache.key_prefix = prefix
    turn = floor_time(start, HOUR) + HOUR
    return Figure(
        name,
        round(statistics.median(timings), 1),
        "ms",
        f"rollup_all + refresh_summaries over {len(kept):,} targets, median of {JOB_RUNS} runs a minute apart "
        f"(the turn of the hour at {turn:%H:%M} among them); min {min(timings):.0f}, max {max(timings):.0f}; "
        f"targets marked changed a run: median {statistics.median(marked):.0f}, max {max(marked)}",
    )


def _first_run():
    """The first run's clock: not before now, and half the runs before the turn of an hour."""
    from django.utils import timezone

    from dashboard.monitoring.stats import HOUR, MINUTE, floor_time

    now = timezone.now()
    start = floor_time(now, HOUR) + HOUR - JOB_RUNS // 2 * MINUTE
    return start if start >= now else start + HOUR


# --- live polls -------------------------------------------------------------------------------------------


def live_polls(session: requests.Session, base: str, environment) -> list[Figure]:
    from django.utils import timezone

    from dashboard.monitoring.rollup import refresh_summaries, rollup_all

    targets = environment.targets.count()
    ids = list(environment.targets.values_list("pk", flat=True))
    now = timezone.now()
    while rollup_all(now)["minutes"] > 1:  # the history up to now, as the running job would have it
        pass
    refresh_summaries(now, ids)
    page = session.get(f"{base}/environments/{environment.slug}/health/").text
    state = {name: _hidden(page, name) for name in ("since", "n", "axis")}
    rate = targets / 30
    autovacuum.apply()
    with_job = _poll_run(session, base, environment, state, POLL_SECONDS, rate, job_ids=ids)
    autovacuum.apply()
    without = _poll_run(session, base, environment, state, POLL_SECONDS, rate)
    figures = []
    for name, run, note in (
        (
            "live_poll_p95_ms_50_clients",
            with_job,
            f"each polls every {POLL_SECONDS:g} s (the page's rate); {rate:.0f} results a second ({targets} targets "
            f"every 30 s); the minute job over them every {JOB_SECONDS:g} s meanwhile",
        ),
        ("live_poll_p95_ms_50_clients_production_rate", without, "the same without the minute job"),
    ):
        timings, statuses, writes = run["timings"], run["statuses"], run["writes"]
        share_204 = statuses.count(204) / len(statuses)
        jobs = run["jobs"]
        figures.append(
            Figure(
                name,
                round(http.percentile(timings, 0.95), 2),
                "ms",
                f"{note}; {len(timings)} polls, {100 * share_204:.0f} % answered 204, median "
                f"{statistics.median(timings):.1f} ms, max {max(timings):.1f} ms, rows a 200 median "
                f"{statistics.median(run['rows'] or [0]):.0f}; {writes} results recorded"
                + (f"; {len(jobs)} job runs, median {statistics.median(jobs):.0f} ms" if jobs else ""),
            )
        )
    full = with_job["rows"].count(targets)
    figures.append(
        Figure(
            "live_poll_full_resend_share",
            round(100 * full / len(with_job["timings"]), 2),
            "%",
            f"{full} of {len(with_job['timings'])} polls (the minute job running) answered with all {targets} rows",
        )
    )
    return figures


def _job_loop(ids: list[int]):
    """bench/job_loop.py in a process of its own (as a Celery worker runs the job): its CPU does not queue
    behind this process's pollers for the interpreter. Returns once it is ready."""
    return _process("bench.job_loop", str(JOB_SECONDS), ",".join(map(str, ids)))


def _process(module: str, *args: str):
    """`python -m module args` on the bench's database and Redis prefix, once it has said it is ready."""
    import subprocess

    from django.conf import settings
    from django.db import connection

    url = http.database_url(connection.settings_dict["NAME"])
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=http.ROOT,
        env=http.app_environ(url, REDIS_KEY_PREFIX=settings.REDIS_KEY_PREFIX),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert ": ready" in process.stdout.readline(), f"{module} did not start"
    return process


def _stop(process) -> str:
    """SIGTERM, then what the process printed after it said it was ready."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, f"{process.args} exited {process.returncode}"
    return output


def _hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def _poll_run(
    session: requests.Session,
    base: str,
    environment,
    state: dict,
    interval: float,
    writes_per_second: float,
    job_ids: list[int] | None = None,
) -> dict:
    """POLLERS threads, each its own connection and session, polling for POLL_DURATION seconds; a writer
    process records ok results for random targets meanwhile, and with `job_ids` another runs the minute
    job over those targets every JOB_SECONDS."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    from dashboard.models import Target

    live = f"{base}/environments/{environment.slug}/health/live"
    stop = threading.Event()
    timings: list[float] = []
    statuses: list[int] = []
    rows: list[int] = []
    jobs: list[float] = []
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
                if response.status_code == 200:
                    rows.append(response.text.count('<tr id="target-'))
            stop.wait(max(0.0, interval - (time.monotonic() - tick)))

    ids = list(Target.objects.filter(environment=environment, status="up").values_list("pk", flat=True))
    writer = _process("bench.result_writer", f"{writes_per_second:g}", ",".join(map(str, ids)))
    job = _job_loop(job_ids) if job_ids is not None else None
    threads = [threading.Thread(target=poller, args=(k,)) for k in session_keys]
    for thread in threads:
        thread.start()
    time.sleep(POLL_DURATION)
    stop.set()
    for thread in threads:
        thread.join()
    writes[0] = int(_stop(writer).split()[-1])
    if job is not None:
        jobs += [float(line) for line in _stop(job).splitlines() if line and line[0].isdigit()]
    if errors:
        raise RuntimeError(f"{len(errors)} pollers failed") from errors[0]
    return {"timings": timings, "statuses": statuses, "writes": writes[0], "rows": rows, "jobs": jobs}


# --- storage ----------------------------------------------------------------------------------------------


def storage_simulated() -> list[Figure]:
    import subprocess
    import tempfile

    from bench.results import read_figures
    from bench.storage import DATABASE

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, "-m", "bench.storage", out.name],
            cwd=http.ROOT,
            env=http.app_environ(http.database_url(DATABASE)),
            check=True,
        )
        return read_figures(out.name)[0]


def storage() -> list[Figure]:
    from django.db import connection

    from dashboard.models import FillingRollup, Rollup, Target

    tables = (Rollup._meta.db_table, FillingRollup._meta.db_table)
    rows = " UNION ALL ".join(f"SELECT target_id FROM {table}" for table in tables)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT "
            + ", ".join(
                " + ".join(f"{size}('{table}')" for table in tables)
                for size in ("pg_total_relation_size", "pg_relation_size", "pg_indexes_size")
            )
        )
        total, heap, indexes = cursor.fetchone()
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE t.created_at < now() - interval '300 days'), "
            f"(SELECT count(*) FROM ({rows}) r JOIN {Target._meta.db_table} y ON y.id = r.target_id "
            f"  WHERE y.created_at < now() - interval '300 days'), (SELECT count(*) FROM ({rows}) r) "
            f"FROM {Target._meta.db_table} t"
        )
        year_targets, year_rows, all_rows = cursor.fetchone()
    per_target = total * (year_rows / all_rows) / year_targets
    return [
        Figure(
            "storage_bytes_per_target_year_seed",
            round(per_target),
            "bytes",
            f"rollup tables {total / 1e6:.0f} MB (heap {heap / 1e6:.0f} MB, indexes {indexes / 1e6:.0f} MB; the "
            f"settled rollups and those still filling) x {year_rows:,} of {all_rows:,} rows / {year_targets} year "
            f"targets; {year_rows / year_targets:,.0f} rows each: minutes 8 d, hours and days a year",
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
