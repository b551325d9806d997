"""The environment page against the offline sandbox (issue #18): its live resources poll with 50 viewers of one
environment, the AWS calls that makes per minute against one viewer's, and the readiness check.

- environment_poll_p95_ms_50_viewers: 50 viewers of one environment, each with its own connection, open the page
  at random moments of one poll period and then poll its resources partial as the page does (poll.js: 15 s
  after each answer, on a 0.5 s tick), through gunicorn; p95 over every poll of the window.
- environment_aws_calls_per_minute_50_viewers / _1_viewer: the AWS requests those pages cause, counted by a
  forwarding proxy in front of the sandbox's moto (one per environment: two environments with the sandbox's
  configuration, one with 50 viewers and one with one, measured side by side), per minute of the window;
  the ratio of the two is the figure with the goal: AWS calls follow time, not viewers.
- readiness_check_ms: dashboard.readiness.service.assess (the Lambda's network path, the IAM simulations,
  the cluster's state, the schema's translation) for the sandbox environment's ACTIVE DSQL cluster, in this
  process, median of READINESS_RUNS.

The sandbox (bench/sandbox_process.py) runs in a process of its own, on free ports, with its own databases
(velaops_bench_env_aurora, velaops_bench_env_dsql; dropped at the end). Run as
`python -m bench.environment_page OUT.json` by `python -m bench`.
"""

from __future__ import annotations

import http.client
import os
import random
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from bench import http as bench_http
from bench import sandbox_process
from bench.results import Figure, write_figures

QUICK = os.environ.get("BENCH_QUICK") == "1"
DATABASE = "velaops_bench"
VIEWERS = 50
WINDOW_SECONDS = 30 if QUICK else 60
READINESS_RUNS = 3 if QUICK else 5
TICK_SECONDS = 0.5  # poll.js checks its timers every half second
REDIS_PREFIX = os.environ.get("REDIS_KEY_PREFIX") or f"velaops-bench-{os.getpid()}:"


class CountingProxy:
    """Forwards every request to moto as it came (its signed Host header included), counting them with the time
    each was made."""

    def __init__(self, upstream: str):
        host, port = upstream.removeprefix("http://").split(":")
        self.times: list[float] = []
        lock = threading.Lock()
        local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                with lock:
                    proxy.times.append(time.monotonic())
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                connection = getattr(local, "connection", None) or http.client.HTTPConnection(host, int(port))
                local.connection = connection
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    connection.putheader(name, value)
                connection.endheaders(body)
                answer = connection.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", bench_http.free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls_between(self, start: float, end: float) -> int:
        return sum(start <= at < end for at in self.times)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(out: str) -> None:
    url = bench_http.database_url(DATABASE)
    os.environ["REDIS_KEY_PREFIX"] = REDIS_PREFIX
    # The sandbox's moto takes any credentials and its DSQL endpoint checks tokens signed with these.
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "sandbox"
    if not bench_http.database_exists(DATABASE):
        bench_http.migrate(url)

    import django

    django.setup()

    from infra.sandbox import aurora_db, dsql_proxy

    config = sandbox_process.bench_config("bench-env")
    _bench_user()
    sandbox = sandbox_process.start(url, config, REDIS_PREFIX)
    proxies: list[CountingProxy] = []
    try:
        environment = _with_cluster(config)
        figures = [readiness(environment)]
        proxies = [CountingProxy(config.moto_url), CountingProxy(config.moto_url)]
        many = _copy(environment, f"bench-env-{VIEWERS}", proxies[0].url)
        one = _copy(environment, "bench-env-1", proxies[1].url)
        bench_http.collectstatic(url)
        with bench_http.gunicorn(url, REDIS_KEY_PREFIX=REDIS_PREFIX) as base:
            figures += viewers(base, many, one, *proxies)
    finally:
        for proxy in proxies:
            proxy.stop()
        sandbox.terminate()
        sandbox.wait(timeout=30)
        aurora_db.drop(config)
        dsql_proxy.drop_database(config)
    write_figures(out, figures)


def _bench_user() -> None:
    from django.contrib.auth.models import User

    user, _ = User.objects.get_or_create(
        username=bench_http.USERNAME, defaults={"is_superuser": True, "is_staff": True}
    )
    user.set_password(bench_http.PASSWORD)
    user.save()


def _with_cluster(config):
    """The sandbox environment with an ACTIVE DSQL cluster of its own, as after the provisioning step."""
    import boto3

    from dashboard.models import Environment, Target

    environment = Environment.objects.get(slug=config.environment_slug)
    dsql = boto3.client(
        "dsql",
        region_name=config.region,
        endpoint_url=config.moto_url,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    identifier = dsql.create_cluster(deletionProtectionEnabled=False)["identifier"]
    deadline = time.monotonic() + 60
    while dsql.get_cluster(identifier=identifier)["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "the sandbox's DSQL cluster never became ACTIVE"
        time.sleep(0.3)
    environment.dsql_cluster_identifier = identifier
    environment.save()
    Target.objects.filter(environment=environment).update(paused=True)  # nothing probes here
    return environment


def _copy(environment, slug: str, endpoint: str):
    """Another environment configured as the sandbox's, reaching moto through `endpoint`."""
    from dashboard.models import Environment, Target

    skip = {"id", "name", "slug", "created_at", "updated_at", "aws_endpoint_url"}
    fields = {f.name: getattr(environment, f.name) for f in Environment._meta.concrete_fields if f.name not in skip}
    Environment.objects.filter(slug=slug).delete()
    copy = Environment.objects.create(name=slug, slug=slug, aws_endpoint_url=endpoint, **fields)
    Target.objects.filter(environment=copy).update(paused=True)
    return copy


# --- readiness ------------------------------------------------------------------------------------------


def readiness(environment) -> Figure:
    from dashboard.aws import client
    from dashboard.dsql import cluster_endpoint
    from dashboard.readiness import service

    cluster = client(environment, "dsql").get_cluster(identifier=environment.dsql_cluster_identifier)
    target = service.Target(
        cluster["identifier"], cluster["arn"], cluster_endpoint(cluster["identifier"], environment.region)
    )

    def once() -> tuple[float, int]:
        started = time.perf_counter()
        found = service.assess(environment, target, mode="stacks", log=lambda line: None, sleep=time.sleep)
        return (time.perf_counter() - started) * 1000, len(found)

    once()  # warm-up: imports, botocore's service models
    runs = [once() for _ in range(READINESS_RUNS)]
    times = [ms for ms, _ in runs]
    return Figure(
        "readiness_check_ms",
        round(statistics.median(times), 1),
        "ms",
        f"service.assess against the sandbox, {runs[0][1]} findings; median of {READINESS_RUNS}, "
        f"min {min(times):.0f}, max {max(times):.0f}",
    )


# --- viewers --------------------------------------------------------------------------------------------


def viewers(base: str, many, one, many_proxy: CountingProxy, one_proxy: CountingProxy) -> list[Figure]:
    from dashboard.environments import snapshot

    login = bench_http.login(base)
    for environment in (many, one):
        snapshot.invalidate(environment.pk)  # the window starts with a read, for both alike
    started = time.monotonic()
    end = started + WINDOW_SECONDS
    polls: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def viewer(environment, opens_at: float) -> None:
        session = requests.Session()
        session.headers.update(login.headers)
        session.cookies.update(login.cookies)
        page = f"{base}/environments/{environment.slug}/"
        time.sleep(max(0.0, opens_at - time.monotonic()))
        try:
            bench_http.time_get(session, page)
            while True:
                # poll.js: the new copy's timer starts when it is swapped in, checked on a half-second tick.
                time.sleep(snapshot.POLL_SECONDS + random.uniform(0, TICK_SECONDS))
                if time.monotonic() >= end:
                    return
                elapsed = bench_http.time_get(session, page, {"HX-Request": "true"}, expect=(200,))
                if environment is many:
                    with lock:
                        polls.append(elapsed)
        except Exception as exc:  # counted: a poll that failed is a figure that missed
            with lock:
                failures.append(repr(exc)[:200])

    threads = [threading.Thread(target=viewer, args=(one, started))]
    threads += [
        threading.Thread(
            target=viewer, args=(many, started + (0 if n == 0 else random.uniform(0, snapshot.POLL_SECONDS)))
        )
        for n in range(VIEWERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    per_minute = 60 / WINDOW_SECONDS
    calls_many = many_proxy.calls_between(started, end) * per_minute
    calls_one = one_proxy.calls_between(started, end) * per_minute
    p95 = bench_http.percentile(polls, 0.95)
    window = f"{WINDOW_SECONDS} s window"
    return [
        Figure(
            f"environment_poll_p95_ms_{VIEWERS}_viewers",
            round(p95, 2),
            "ms",
            f"{len(polls)} polls of the resources partial, each viewer every {snapshot.POLL_SECONDS} s as the page; "
            f"median {statistics.median(polls):.1f} ms, max {max(polls):.1f} ms; {window}",
        ),
        Figure(
            f"environment_aws_calls_per_minute_{VIEWERS}_viewers",
            round(calls_many, 1),
            "/min",
            f"AWS requests counted at a proxy in front of moto; {window}",
        ),
        Figure(
            "environment_aws_calls_per_minute_1_viewer",
            round(calls_one, 1),
            "/min",
            f"the same, one viewer of another environment configured alike, side by side; {window}",
        ),
        Figure(
            f"environment_aws_calls_ratio_{VIEWERS}_to_1_viewers",
            round(calls_many / calls_one, 3) if calls_one else None,
            "ratio",
            f"{calls_many:.0f} / {calls_one:.0f} AWS calls a minute",
        ),
    ]


if __name__ == "__main__":
    main(sys.argv[1])
