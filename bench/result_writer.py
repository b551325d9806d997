"""Probe results recorded at a rate in a process of its own, as the probes' Celery worker records them,
while bench/health_history.py measures the live polls: `python -m bench.result_writer RATE IDS` (results a
second, Poisson arrivals, for random ones of the comma-separated target ids). Prints the number recorded
when it stops at SIGTERM.

In the measuring process the writer's record_outcome calls would take the interpreter from the 50
pollers it times, and count in their latencies; production's web servers do not record results."""

from __future__ import annotations

import random
import signal
import sys
import threading
import time


def main(rate: float, ids: str) -> None:
    import django

    django.setup()
    from django.utils import timezone

    from dashboard.monitoring.outcome import ProbeOutcome
    from dashboard.monitoring.recording import record_outcome

    targets = [int(pk) for pk in ids.split(",")]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("result writer: ready", flush=True)
    written = 0
    while not stop.is_set():
        tick = time.monotonic()
        latency = random.lognormvariate(3.2, 0.35)
        record_outcome(
            random.choice(targets),
            timezone.now(),
            ProbeOutcome(ok=True, latency_ms=latency, phases={"connect": latency}),
        )
        written += 1
        stop.wait(max(0.0, random.expovariate(rate) - (time.monotonic() - tick)))
    print(f"written {written}", flush=True)


if __name__ == "__main__":
    main(float(sys.argv[1]), sys.argv[2])
