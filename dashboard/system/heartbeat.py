"""A periodic task stamps Redis; /healthz reads the stamp to tell whether a worker is alive."""

from __future__ import annotations

import time

from dashboard.redis_client import redis_client, redis_key

HEARTBEAT_KEY = "worker-heartbeat"


def record_worker_heartbeat() -> None:
    redis_client().set(redis_key(HEARTBEAT_KEY), f"{time.time():.3f}", ex=3600)


def seconds_since_worker_heartbeat() -> float | None:
    raw = redis_client().get(redis_key(HEARTBEAT_KEY))
    return None if raw is None else max(0.0, time.time() - float(raw))
