"""What every page benchmark shares: databases by name, a gunicorn serving the app, a logged-in session,
and timing a URL several times.

The app runs as in production: DEBUG off (DEBUG on keeps every query in memory and formats each one
for the debug log), a throwaway SECRET_KEY, static files collected for whitenoise's manifest storage.
Requests go over plain HTTP on loopback and say X-Forwarded-Proto: https, as a TLS proxy in front of
gunicorn would, so the strict production settings (secure cookies, SSL redirect) stay as they are.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dj_database_url
import psycopg
import requests
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/velaops_bench")
USERNAME = "bench"
PASSWORD = "bench-password-1"
WORKERS = 2  # one per core of the development machine
# One key for the whole run, inherited by every process it starts: sessions made by one are valid in all.
os.environ.setdefault("BENCH_SECRET_KEY", secrets.token_urlsafe(50))


def database_url(name: str) -> str:
    """The URL of database `name` on the bench's server (velaops_bench* databases only)."""
    config = dj_database_url.parse(SERVER_URL)
    user = config.get("USER") or "postgres"
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{config.get('HOST') or '127.0.0.1'}:{config.get('PORT') or 5432}/{name}"


def admin_connection(url: str = SERVER_URL) -> psycopg.Connection:
    """Autocommit connection to the server's maintenance database."""
    config = dj_database_url.parse(url)
    return psycopg.connect(
        host=config.get("HOST") or "127.0.0.1",
        port=config.get("PORT") or 5432,
        user=config.get("USER") or "postgres",
        password=config.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


def connect(url: str, **kwargs) -> psycopg.Connection:
    config = dj_database_url.parse(url)
    return psycopg.connect(
        host=config.get("HOST") or "127.0.0.1",
        port=config.get("PORT") or 5432,
        user=config.get("USER") or "postgres",
        password=config.get("PASSWORD") or None,
        dbname=config["NAME"],
        **kwargs,
    )


def drop_database(name: str) -> None:
    assert name.startswith("velaops_bench"), name
    with admin_connection() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_exists(name: str) -> bool:
    with admin_connection() as connection:
        return connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def app_environ(url: str, **extra: str) -> dict[str, str]:
    """Environment of every process the bench starts against database `url`: production settings."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "velaops.settings",
        "DATABASE_URL": url,
        "DEBUG": "0",
        "SECRET_KEY": os.environ["BENCH_SECRET_KEY"],
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def manage(url: str, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=app_environ(url), check=True)


def migrate(url: str) -> None:
    subprocess.run([sys.executable, "-m", "infra.ensure_database"], cwd=ROOT, env=app_environ(url), check=True)
    manage(url, "migrate", "--no-input", "-v0")


_collected = False


def collectstatic(url: str) -> None:
    """Once per run: whitenoise's manifest storage (DEBUG off) needs the collected files and manifest."""
    global _collected
    if not _collected:
        manage(url, "collectstatic", "--no-input", "-v0")
        _collected = True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(url: str, *, workers: int = WORKERS, **environ: str) -> Iterator[str]:
    """gunicorn with the project's config (gthread) on a free loopback port; yields the base URL."""
    collectstatic(url)
    port = free_port()
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
            str(workers),
            "--access-logfile",
            "/dev/null",
            "velaops.wsgi",
        ],
        cwd=ROOT,
        env=app_environ(url, **environ),
        stdout=subprocess.DEVNULL,
        stderr=None if os.environ.get("BENCH_VERBOSE") else subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(f"{base}/login/", server)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_serving(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}; BENCH_VERBOSE=1 shows its log")
        try:
            requests.get(url, timeout=10, headers={"X-Forwarded-Proto": "https"}).raise_for_status()
            return
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def login(base: str, username: str = USERNAME, password: str = PASSWORD) -> requests.Session:
    """A session logged in through the login form, as a browser behind the TLS proxy would be."""
    session = requests.Session()
    session.headers["X-Forwarded-Proto"] = "https"
    login_url = f"{base}/login/"
    page = session.get(login_url)
    _send_secure_cookies_over_http(session)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = session.post(
        login_url,
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": login_url.replace("http://", "https://", 1)},
        allow_redirects=False,
    )
    assert response.status_code == 302, f"login failed: {response.status_code}"
    _send_secure_cookies_over_http(session)
    return session


def _send_secure_cookies_over_http(session: requests.Session) -> None:
    # Django marks its cookies Secure (DEBUG off); the TLS proxy is only pretended, so send them anyway.
    for cookie in session.cookies:
        cookie.secure = False


def time_get(
    session: requests.Session, url: str, headers: dict | None = None, expect: tuple[int, ...] = (200, 204)
) -> float:
    """Milliseconds from sending the request to having read the whole response."""
    started = time.perf_counter()
    response = session.get(url, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code in expect, (url, response.status_code, response.text[:300])
    return elapsed


def median_ms(session: requests.Session, url: str, runs: int, headers: dict | None = None, warmup: int = 2) -> float:
    for _ in range(warmup):
        time_get(session, url, headers)
    return round(statistics.median(time_get(session, url, headers) for _ in range(runs)), 2)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank q-quantile (0 < q <= 1)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]
