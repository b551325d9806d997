"""`make bench`: page times of the migration pages through real HTTP to a running gunicorn.

Seeds a separate database (velaops_bench), starts gunicorn on a free port, logs in, and times each
page several times; prints a table and writes bench/results.json. Medians, in milliseconds.
"""

from __future__ import annotations

import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/velaops_bench")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
LOG_LINES = 5000  # lines in the benchmarked attempt's log


def main() -> None:
    environ = {**os.environ, "DEBUG": "1", "DATABASE_URL": DATABASE_URL, "DJANGO_SETTINGS_MODULE": "velaops.settings"}
    run = lambda *args: subprocess.run([sys.executable, *args], cwd=ROOT, env=environ, check=True)  # noqa: E731
    _recreate_database()
    run("-m", "infra.ensure_database")
    run("manage.py", "migrate", "--no-input", "-v0")
    run("-c", SEED)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "infra/gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--access-logfile",
            "/dev/null",
            "velaops.wsgi",
        ],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}/healthz")
        results = measure(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=20)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "runs": RUNS,
        "results_ms": results,
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'figure':45} {'median ms':>10}")
    for name, value in results.items():
        print(f"{name:45} {value:10.2f}")
    print(f"\nwritten to bench/results.json ({report['machine']})")


SEED = f"""
import django; django.setup()
from django.contrib.auth.models import User
from dashboard.models import Attempt, AttemptLog, Environment, MigrationRun, Step
from dashboard.services.migrations import migration_start
user, _ = User.objects.get_or_create(username="bench", defaults={{"is_superuser": True, "is_staff": True}})
user.set_password("bench-password-1"); user.save()
environment, _ = Environment.objects.get_or_create(slug="bench", defaults=dict(
    name="Bench", region="us-east-1", account_id="123456789012", cloudformation_stacks=[]))
migration = migration_start(environment=environment, user=user, source_address="127.0.0.1")
for step in migration.steps.all():
    for number in range(1, 4):  # three attempts per step: two failures and a success
        attempt = Attempt.objects.create(migration=migration, step=step, number=number, action="run",
            status="succeeded" if number == 3 else "failed", requested_by=user)
attempt = migration.steps.get(key="provision_dsql").attempts.get(number=3)
AttemptLog.objects.bulk_create(AttemptLog(attempt=attempt, message=f"cluster x: CREATING ({{i}})")
    for i in range({LOG_LINES}))
print("seeded migration", migration.pk)
"""


def measure(base: str) -> dict[str, float]:
    session = requests.Session()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', session.get(f"{base}/login/").text).group(1)
    session.post(
        f"{base}/login/",
        data={"username": "bench", "password": "bench-password-1", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
    )
    migration = session.get(f"{base}/environments/bench/").text
    path = re.search(r'href="(/environments/bench/migrations/\d+/)"', migration).group(1)
    htmx = {"HX-Request": "true"}
    partial = session.get(base + path, headers=htmx).text
    version = re.search(r"\?v=([0-9a-f]+)", partial).group(1)
    page = session.get(base + path).text
    provision_row = page.split('data-step="provision_dsql"')[1]
    attempt = re.search(r'href="(/environments/bench/migrations/\d+/attempts/\d+/)"', provision_row).group(1)
    cases = {
        "migration_page_ms": (path, {}),
        "steps_partial_ms": (path, htmx),
        "steps_poll_unchanged_ms (204)": (f"{path}?v={version}", htmx),
        f"attempt_page_{LOG_LINES}_log_lines_ms": (attempt, {}),
        "log_tail_poll_nothing_new_ms (204)": (f"{attempt}?after=999999999&status=succeeded", htmx),
    }
    results = {}
    for name, (url, headers) in cases.items():
        timings = []
        for _ in range(RUNS):
            started = time.perf_counter()
            response = session.get(base + url, headers=headers)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 204), (url, response.status_code)
        results[name] = round(statistics.median(timings), 2)
    return results


def _recreate_database() -> None:
    """Every run starts from the same seed (history is append-only and cannot be deleted row by row)."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(DATABASE_URL)
    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"] or "postgres",
        dbname="postgres",
        autocommit=True,
    ) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(config["NAME"])))


def _wait_until_serving(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
