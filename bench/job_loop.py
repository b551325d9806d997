"""The minute job (rollup_all + refresh_summaries) run every SECONDS in a process of its own, as a Celery
worker runs it, while bench/health_history.py measures the live polls: `python -m bench.job_loop SECONDS
IDS` (IDS: comma-separated target ids for refresh_summaries, or "all"). Prints each run's milliseconds;
stops at SIGTERM after the run under way."""

from __future__ import annotations

import signal
import sys
import threading
import time


def main(seconds: float, ids: str) -> None:
    import django

    django.setup()
    from django.utils import timezone

    from dashboard.monitoring.rollup import refresh_summaries, rollup_all

    targets = None if ids == "all" else [int(pk) for pk in ids.split(",")]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("job loop: ready", flush=True)
    while not stop.is_set():
        tick = time.monotonic()
        now = timezone.now()
        rollup_all(now)
        refresh_summaries(now, targets)
        print(f"{(time.monotonic() - tick) * 1000:.1f}", flush=True)
        stop.wait(max(0.0, seconds - (time.monotonic() - tick)))


if __name__ == "__main__":
    main(float(sys.argv[1]), sys.argv[2])
