"""`make bench` (`python -m bench`): page times through real HTTP to a running gunicorn, probe overhead and
throughput against the offline sandbox, storage of a year of health history.

Sections, each run in its own process against its own database (velaops_bench*), in this order:

- migration: the migration pages (bench/migration_pages.py), on a recreated velaops_bench;
- environment: the environment page's live resources poll with 50 viewers and its AWS calls, and the
  readiness check, against the sandbox (bench/environment_page.py), on velaops_bench;
- history: the health pages over a seeded year of probe history (bench/seed_history.py seeds it once and
  reuses it; bench/health_history.py times the pages, live polls and reports and measures storage);
- probes: the DSQL probe against a bare login loop, and the throughput of one probe worker
  (bench/probes.py), on velaops_bench with the sandbox.

    python -m bench [--quick] [--reseed] [--only migration,environment,history,probes]

--quick (or BENCH_QUICK=1) seeds 100 targets instead of 1,000 into its own cached database and shortens
the probe runs: for trying the bench out, not for the figures in docs/benchmarks.md. Prints a table with
the goals and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import http
from bench.results import Figure, missed, read_figures, table

SECTIONS = {
    "migration": ("bench.migration_pages", "velaops_bench"),
    "environment": ("bench.environment_page", "velaops_bench"),
    "history": ("bench.health_history", None),  # its database depends on --quick
    "probes": ("bench.probes", "velaops_bench_probes"),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    parser.add_argument("--reseed", action="store_true", help="seed the history database again even if cached")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="write bench/results.json from a modified tree (the run is marked so)",
    )
    options = parser.parse_args()
    chosen = [name.strip() for name in options.only.split(",") if name.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    started = time.monotonic()
    figures: list[Figure] = []
    info: dict[str, object] = {}
    speed = {"before": cpu_reference_ms()}
    # Redis keys of this run (Celery, Django's cache) under a prefix of their own: the bench's targets must
    # never read the cached figures of a development database's targets of the same id, or the reverse.
    redis_prefix = f"velaops-bench-{os.getpid()}:"
    try:
        _run_sections(chosen, options, redis_prefix, figures, info)
    finally:
        _delete_redis_keys(redis_prefix)
    speed["after"] = cpu_reference_ms()
    if _report(chosen, options, started, figures, info, speed):
        sys.exit(1)


def cpu_reference_ms(runs: int = 5) -> float:
    """A fixed pure-Python workload's time (median of `runs`): machines of one kind differ, and one machine
    differs from hour to hour (its host's other tenants), by more than most changes move a figure. The same
    code's figures are comparable only next to this."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        total = 0
        for number in range(2_000_000):
            total += number % 7
        times.append((time.perf_counter() - started) * 1000)
    return round(sorted(times)[runs // 2], 1)


def _run_sections(chosen: list[str], options, redis_prefix: str, figures: list[Figure], info: dict) -> None:
    for name in chosen:
        module, database = SECTIONS[name]
        if database is None:
            from bench.seed_history import database_for

            database = database_for(options.quick)
        extra = {
            "BENCH_QUICK": "1" if options.quick else "0",
            "BENCH_RESEED": "1" if options.reseed else "0",
            "REDIS_KEY_PREFIX": redis_prefix,
        }
        section_started = time.monotonic()
        print(f"== {name} ({module}, database {database})", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                [sys.executable, "-m", module, out.name],
                cwd=http.ROOT,
                env=http.app_environ(http.database_url(database), **extra),
                check=True,
            )
            section_figures, section_info = read_figures(out.name)
        figures += section_figures
        info[name] = {
            **section_info,
            "seconds": round(time.monotonic() - section_started, 1),
            # Other work on the machine skews the figures: keep the load next to them.
            "load_average_after": [round(load, 2) for load in os.getloadavg()],
        }
        print(table(section_figures), flush=True)


def _delete_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def _report(chosen: list[str], options, started: float, figures: list[Figure], info: dict, speed: dict) -> list[str]:
    """Print the table, write results.json where allowed; the figures that missed their goal (make bench fails)."""
    commit, dirty = _commit()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "commit": commit,
        "dirty": dirty,
        "quick": options.quick,
        "seconds": round(time.monotonic() - started, 1),
        "sections": info,
        # cpu_reference_ms before the first section and after the last: how fast this machine was.
        "cpu_reference_ms": speed,
        "figures": {
            f.name: {"value": f.value, "unit": f.unit, "goal": f.goal_text(), "verdict": f.verdict(), "note": f.note}
            for f in figures
        },
    }
    # The committed figures are a clean tree's full seed; a quick run or a modified tree writes elsewhere.
    path = Path(http.ROOT, "bench", "results-quick.json" if options.quick else "results.json")
    if dirty and not options.quick and not options.allow_dirty:
        path = Path(http.ROOT, "bench", "results-dirty.json")
        print(
            "the work tree is modified: figures written to bench/results-dirty.json (--allow-dirty to overwrite"
            " bench/results.json)"
        )
    if set(chosen) != set(SECTIONS) and path.exists():
        # A partial run keeps the figures of the sections it did not run.
        previous = json.loads(path.read_text())
        report["figures"] = {**previous.get("figures", {}), **report["figures"]}
        report["sections"] = {**previous.get("sections", {}), **info}
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{table(figures)}\n")
    seed = info.get("history", {}).get("seed")
    if seed:
        how = "reused" if seed["reused"] else "seeded now"
        print(f"history seed: {seed['database']}, {how} (seeding took {seed['seed_seconds']:.0f} s)")
    print(f"machine speed (cpu_reference_ms): {speed.get('before')} ms before, {speed.get('after')} ms after")
    print(f"{len(figures)} figures in {report['seconds']:.0f} s; written to {path.relative_to(http.ROOT)}")
    failed = missed(figures, every_section_ran=set(chosen) == set(SECTIONS))
    if failed:
        print(f"missed their goal: {', '.join(failed)}")
    return failed


def _commit() -> tuple[str, bool]:
    """The commit measured, and whether the work tree differs from it (results.json's figures then measure
    code that is in no commit)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=http.ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=http.ROOT, capture_output=True, text=True)
    except OSError:
        return "", True
    return head.stdout.strip(), bool(dirty.stdout.strip())


if __name__ == "__main__":
    main()
