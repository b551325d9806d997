"""Probe figures (issue #5) against the offline sandbox: what the DSQL probe adds to a bare login, and how
many probes one worker host records per second.

- probe_overhead_ratio: the latency the DSQL probe records (the real task through a real Celery worker,
  read back from ProbeResult.latency_ms) over a bare psycopg connect + SELECT 1 to the same sandbox
  endpoint with one IAM token made beforehand, the two interleaved, medians of RUNS each.
- probes_per_second: a real Celery worker (the probes queue, thread pool of 32 as in infra/Procfile.dev)
  and the real dispatcher (dispatch_probes, called every second as beat would) with DSQL_TARGETS DSQL
  and URL_TARGETS API-health URL targets probed every 5 s: a demand of 100 probes a second, above what
  the machine serves (saturation); ProbeResults recorded per second over a steady window after a
  warm-up. probe_lag_p95_s: what that leaves, the p95 over the window's probes of how late each came
  after its target's previous probe plus the interval (0 when on time). worker_cpu_ms_per_probe,
  sandbox_cpu_ms_per_probe, moto_cpu_ms_per_probe: each process's CPU time over the window per recorded
  probe (less sensitive to other work on the machine than the rate).

BENCH_PROFILE=FILE also profiles (pyinstrument) the probe task's body for a DSQL and a URL target called
in this process, PROFILE_RUNS times each, and writes the profile to FILE: where a probe's CPU goes.

Everything runs on this machine: the sandbox (moto, the DSQL proxy, the API health route) and
PostgreSQL compete with the worker for the same two cores, so the throughput is a lower bound of what a
worker host with the sandbox elsewhere would do. Its database is velaops_bench_probes (made afresh), the
sandbox's velaops_bench_aurora and velaops_bench_dsql (dropped at the end); Celery uses its own Redis key
prefix, so no other worker on the same Redis takes these probes. Run as `python -m bench.probes OUT.json`
by `python -m bench`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from bench import http, sandbox_process
from bench.results import Figure, write_figures

QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = 15 if QUICK else 60
DSQL_TARGETS = 250
URL_TARGETS = 250
INTERVAL_SECONDS = 5
WARMUP_SECONDS = 10 if QUICK else 15
WINDOW_SECONDS = 20 if QUICK else 45
WORKER_CONCURRENCY = 32  # infra/Procfile.dev
REDIS_PREFIX = f"velaops-bench-{os.getpid()}:"
# Its own database, made afresh each run: the other sections' leave environments behind in velaops_bench
# (the environment page's is named "Sandbox" too, which this section's sandbox seed then cannot create).
DATABASE = "velaops_bench_probes"


def main(out: str) -> None:
    url = http.database_url(DATABASE)
    os.environ["REDIS_KEY_PREFIX"] = REDIS_PREFIX
    # The sandbox's moto takes any credentials and its DSQL endpoint checks tokens signed with these.
    if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "sandbox"
    http.drop_database(DATABASE)
    http.migrate(url)

    import django

    django.setup()

    from infra.sandbox import aurora_db, dsql_proxy

    config = sandbox_process.bench_config("bench")
    sandbox = sandbox_process.start(url, config, REDIS_PREFIX)
    worker = None
    try:
        # One cluster for the environment's own target (the overhead figure), the others for the throughput.
        environment, cluster_ids = _prepare(config, DSQL_TARGETS + 1)
        worker = _start_worker(url)
        figures = [*overhead(environment), *throughput(environment, cluster_ids[1:], worker, sandbox)]
        if os.environ.get("BENCH_PROFILE"):
            _profile(environment, os.environ["BENCH_PROFILE"])
    finally:
        for process in (worker, sandbox):
            if process is not None:
                _stop(process)
        aurora_db.drop(config)
        dsql_proxy.drop_database(config)
        _clear_redis()
    write_figures(out, figures)


def _prepare(config, clusters: int):
    """The sandbox environment with ACTIVE DSQL clusters (the first is the environment's own) and the
    API Lambda pointed at it, so the health route logs in to DSQL on every request as after the move."""
    import boto3

    from dashboard.dsql import cluster_endpoint
    from dashboard.models import Environment, Target
    from infra.sandbox import iam_principals, seed

    environment = Environment.objects.get(slug=config.environment_slug)

    def client(service: str):
        return boto3.client(
            service,
            region_name=config.region,
            endpoint_url=config.moto_url,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    dsql = client("dsql")
    with ThreadPoolExecutor(8) as pool:
        ids = list(
            pool.map(lambda _: dsql.create_cluster(deletionProtectionEnabled=False)["identifier"], range(clusters))
        )
    deadline = time.monotonic() + 60
    while any(dsql.get_cluster(identifier=identifier)["status"] != "ACTIVE" for identifier in ids[-3:]):
        assert time.monotonic() < deadline, "the sandbox's DSQL clusters never became ACTIVE"
        time.sleep(0.3)
    lam = client("lambda")
    variables = lam.get_function_configuration(FunctionName="vela-api")["Environment"]["Variables"]
    variables["DSQL_ENDPOINT"] = cluster_endpoint(ids[0], config.region)
    lam.update_function_configuration(FunctionName="vela-api", Environment={"Variables": variables})
    # What AWS needs for the health route's own DSQL login (the sandbox checks both, as AWS would): a network
    # path from the Lambda to the clusters (r1's DSQL interface endpoint) and its role's grant to log in.
    seed.ensure_dsql_endpoint(config)
    iam = boto3.client(
        "iam",
        region_name=config.region,
        endpoint_url=config.moto_url,
        aws_access_key_id=iam_principals.ADMIN_ACCESS_KEY_ID,
        aws_secret_access_key=iam_principals.ADMIN_SECRET_ACCESS_KEY,
    )
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["dsql:DbConnect", "dsql:DbConnectAdmin"],
                "Resource": f"arn:aws:dsql:{config.region}:{config.account_id}:cluster/*",
            }
        ],
    }
    iam.put_role_policy(RoleName="vela-api-role", PolicyName="bench-dsql-grant", PolicyDocument=json.dumps(grant))
    environment.dsql_cluster_identifier = ids[0]
    environment.save()  # creates the managed DSQL target
    # Nothing but what a figure asks for is probed.
    Target.objects.filter(environment=environment).exclude(kind="dsql").update(paused=True)
    return environment, ids


# --- overhead -------------------------------------------------------------------------------------------


def overhead(environment) -> list[Figure]:
    import psycopg

    from dashboard.dsql import auth_token, cluster_endpoint, connection_kwargs
    from dashboard.models import ProbeResult, Target
    from dashboard.monitoring.probes import run_probe as probe_function
    from tasks.probes import run_probe

    target = Target.objects.get(environment=environment, kind="dsql", name=environment.dsql_cluster_identifier)
    endpoint = cluster_endpoint(target.name, environment.region)
    kwargs = connection_kwargs(environment, endpoint, auth_token(environment, endpoint), target.timeout_seconds)

    def bare() -> float:
        started = time.perf_counter()
        connection = psycopg.connect(**kwargs)
        connection.execute("SELECT 1").fetchone()
        elapsed = (time.perf_counter() - started) * 1000
        connection.close()  # after the clock stops, as the probe's latency ends at the query
        return elapsed

    def probe(timeout: float = 30) -> ProbeResult:
        before = ProbeResult.objects.filter(target=target).order_by("-id").values_list("id", flat=True).first() or 0
        run_probe.apply_async((target.pk,))
        deadline = time.monotonic() + timeout
        while True:
            result = ProbeResult.objects.filter(target=target, id__gt=before).first()
            if result is not None:
                assert result.ok, f"the DSQL probe failed: {result.error}"
                return result
            assert time.monotonic() < deadline, "no probe result: is the worker running?"
            time.sleep(0.02)

    in_process_queries: list[float] = []

    def in_process() -> float:
        outcome = probe_function(target)
        assert outcome.ok, outcome.error
        in_process_queries.append(outcome.phases["query"])
        return outcome.latency_ms

    probe(timeout=90)  # the worker is up and its clients made
    bare()
    in_process()
    samples: dict[str, list[float]] = {"bare": [], "worker": [], "in_process": []}
    phases: dict[str, list[float]] = {"token": [], "connect": [], "query": []}
    measures = {"bare": bare, "in_process": in_process}
    for run in range(RUNS):
        # Interleaved, in a rotating order, so drift on the machine hits all alike.
        order = ["bare", "worker", "in_process"]
        order = order[run % 3 :] + order[: run % 3]
        for name in order:
            if name == "worker":
                result = probe()
                samples[name].append(result.latency_ms)
                for phase in phases:
                    phases[phase].append(result.phases.get(phase, 0.0))
            else:
                samples[name].append(measures[name]())
    worker_ms, bare_ms, in_process_ms = (statistics.median(samples[k]) for k in ("worker", "bare", "in_process"))
    phase_text = ", ".join(f"{name} {statistics.median(values):.2f}" for name, values in phases.items())
    return [
        Figure(
            "probe_overhead_ratio",
            round(worker_ms / bare_ms, 3),
            "ratio",
            f"DSQL probe through the worker {worker_ms:.2f} ms (phases {phase_text}) / bare connect + SELECT 1 "
            f"{bare_ms:.2f} ms; medians of {RUNS}, interleaved",
        ),
        Figure(
            "probe_overhead_ratio_in_process",
            round(in_process_ms / bare_ms, 3),
            "ratio",
            f"the probe function called in the bench process {in_process_ms:.2f} ms (query phase "
            f"{statistics.median(in_process_queries):.2f}) / bare, same run",
        ),
        Figure("dsql_bare_login_ms", round(bare_ms, 2), "ms", "psycopg connect + SELECT 1, token made beforehand"),
    ]


# --- throughput -----------------------------------------------------------------------------------------


def throughput(
    environment, cluster_ids: list[str], worker: subprocess.Popen, sandbox: subprocess.Popen
) -> list[Figure]:
    from django.utils import timezone

    from dashboard.models import HealthMethod, ProbeKind, ProbeResult, Target
    from tasks.probes import dispatch_probes

    now = timezone.now()

    def due() -> object:
        # Targets made at different times: their probes are spread over the interval, not in one burst.
        return now + timedelta(seconds=random.uniform(0, INTERVAL_SECONDS))

    common = {"environment": environment, "interval_seconds": INTERVAL_SECONDS, "timeout_seconds": 10}
    Target.objects.filter(environment=environment, managed=False).delete()  # an earlier run's
    Target.objects.filter(environment=environment).update(paused=True)
    targets = [Target(kind=ProbeKind.DSQL, name=identifier, next_due_at=due(), **common) for identifier in cluster_ids]
    targets += [
        Target(
            kind=ProbeKind.API_HEALTH,
            name=f"{environment.api_health_url}?probe={number}",
            health_method=HealthMethod.URL,
            next_due_at=due(),
            **common,
        )
        for number in range(URL_TARGETS)
    ]
    created = Target.objects.bulk_create(targets)
    ids = [target.pk for target in created]

    stop = threading.Event()
    dispatched = [0]

    def dispatcher() -> None:
        from django.db import connection

        try:
            while not stop.is_set():
                tick = time.monotonic()
                dispatched[0] += dispatch_probes()
                stop.wait(max(0.0, 1 - (time.monotonic() - tick)))
        finally:
            connection.close()

    thread = threading.Thread(target=dispatcher, name="bench-dispatcher")
    thread.start()
    try:
        time.sleep(WARMUP_SECONDS)
        processes = {"worker": [worker.pid], "sandbox": [sandbox.pid], "moto": _children(sandbox.pid)}
        window_start, started, dispatched_before = timezone.now(), time.monotonic(), dispatched[0]
        cpu_start = {name: sum(map(_cpu_seconds, pids)) for name, pids in processes.items()}
        dispatcher_start = time.process_time()
        busy_start = _machine_busy()
        time.sleep(WINDOW_SECONDS)
        window_end, elapsed, dispatched_in_window = timezone.now(), time.monotonic() - started, dispatched[0]
        dispatched_in_window -= dispatched_before
        leased = Target.objects.filter(pk__in=ids, lease_until__gt=timezone.now()).count()
        cpu = {name: sum(map(_cpu_seconds, pids)) - cpu_start[name] for name, pids in processes.items()}
        dispatcher = time.process_time() - dispatcher_start
        busy = _machine_busy()
        machine = (busy[0] - busy_start[0]) / (busy[1] - busy_start[1])
    finally:
        stop.set()
        thread.join()
    time.sleep(3)  # probes started in the window are recorded when they end
    states = _task_states()
    results = ProbeResult.objects.filter(target_id__in=ids, at__gte=window_start, at__lt=window_end)
    count, ok = results.count(), results.filter(ok=True).count()
    latencies = {
        kind: statistics.median(values) if values else 0.0
        for kind in (ProbeKind.DSQL, ProbeKind.API_HEALTH)
        for values in [list(results.filter(target__kind=kind).values_list("latency_ms", flat=True))]
    }
    rate = count / elapsed
    demand = len(ids) / INTERVAL_SECONDS
    lags = _lags(ids, window_start, window_end)
    Target.objects.filter(pk__in=ids).update(paused=True)
    shares = ", ".join(f"{name} {100 * seconds / elapsed:.0f} %" for name, seconds in cpu.items())

    def per_probe(seconds: float) -> float | None:
        return round(1000 * seconds / count, 2) if count else None

    return [
        Figure(
            "probes_per_second",
            round(rate, 1),
            "/s",
            f"{count} results in {elapsed:.0f} s ({ok} ok), {DSQL_TARGETS} DSQL + {URL_TARGETS} URL targets every "
            f"{INTERVAL_SECONDS} s (demand {demand:.0f}/s, dispatched {dispatched_in_window / elapsed:.0f}/s, "
            f"{leased} leased at the end; task states {states}); median latency DSQL "
            f"{latencies[ProbeKind.DSQL]:.0f} ms, URL {latencies[ProbeKind.API_HEALTH]:.0f} ms; CPU of one core: "
            f"{shares}; both cores {100 * machine:.0f} % busy",
        ),
        Figure(
            "probe_lag_p95_s",
            round(http.percentile(lags, 0.95), 2) if lags else None,
            "s",
            f"how late each probe in the window came after its target's previous one plus the {INTERVAL_SECONDS} s "
            f"interval, at saturation (demand {demand:.0f}/s); median {statistics.median(lags):.2f} s, max "
            f"{max(lags):.1f} s over {len(lags)} probes"
            if lags
            else "",
        ),
        Figure(
            "worker_cpu_ms_per_probe",
            per_probe(cpu["worker"]),
            "ms",
            f"the worker process's CPU time per recorded probe: one worker process (one interpreter) would "
            f"reach {count / cpu['worker']:.0f} probes/s on a core of its own; the bench's dispatcher (dispatch_probes "
            f"every second) took {per_probe(dispatcher)} ms a probe"
            if cpu["worker"]
            else "",
        ),
        Figure(
            "sandbox_cpu_ms_per_probe",
            per_probe(cpu["sandbox"]),
            "ms",
            "the sandbox process's (its DSQL endpoint and API health route) CPU time per recorded probe",
        ),
        Figure("moto_cpu_ms_per_probe", per_probe(cpu["moto"]), "ms", "the sandbox's moto's CPU time per probe"),
    ]


def _lags(ids: list[int], start, end) -> list[float]:
    from dashboard.models import ProbeResult

    rows = (
        ProbeResult.objects.filter(target_id__in=ids, at__lt=end)
        .filter(at__gte=start - timedelta(seconds=4 * INTERVAL_SECONDS))
        .order_by("target_id", "at")
        .values_list("target_id", "at")
    )
    lags, previous = [], {}
    for target_id, at in rows:
        before = previous.get(target_id)
        if before is not None and at >= start:
            lags.append(max(0.0, (at - before).total_seconds() - INTERVAL_SECONDS))
        previous[target_id] = at
    return lags


PROFILE_RUNS = 50


def _profile(environment, path: str) -> None:
    from pyinstrument import Profiler

    from dashboard.models import ProbeKind, Target
    from tasks.probes import run_probe

    targets = [
        Target.objects.filter(environment=environment, kind=kind, managed=False).first()
        for kind in (ProbeKind.DSQL, ProbeKind.API_HEALTH)
    ]
    Target.objects.filter(pk__in=[t.pk for t in targets]).update(paused=False)
    for target in targets:
        run_probe.run(target.pk)  # clients made
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(PROFILE_RUNS):
        for target in targets:
            run_probe.run(target.pk)
    profiler.stop()
    Path(path).write_text(profiler.output_text(unicode=False, color=False, show_all=False))


# --- the worker -----------------------------------------------------------------------------------------


def _start_worker(url: str) -> subprocess.Popen:
    from django.conf import settings

    environ = http.app_environ(url, REDIS_KEY_PREFIX=REDIS_PREFIX)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "velaops",
            "worker",
            "--queues",
            settings.PROBE_QUEUE,
            "--pool",
            "threads",
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--hostname",
            f"bench-probes-{os.getpid()}@%h",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=http.ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=None if os.environ.get("BENCH_VERBOSE") else subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)  # the worker's warm shutdown finishes the probes it holds
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def _task_states() -> str:
    """How the probe tasks of this run ended, from the result backend (REVOKED: expired in the queue)."""
    import json as json_module
    from collections import Counter

    from dashboard.redis_client import redis_client

    redis = redis_client()
    keys = list(redis.scan_iter(match=f"{REDIS_PREFIX}celery-task-meta-*", count=1000))
    states = Counter(json_module.loads(value)["status"] for value in redis.mget(keys) if value) if keys else Counter()
    return ", ".join(f"{state} {count}" for state, count in states.most_common()) or "none stored"


def _clear_redis() -> None:
    """The queue and results this run left under its own key prefix."""
    from dashboard.redis_client import redis_client

    redis = redis_client()
    keys = list(redis.scan_iter(match=f"{REDIS_PREFIX}*", count=1000))
    if keys:
        redis.delete(*keys)


if __name__ == "__main__":
    main(sys.argv[1])
