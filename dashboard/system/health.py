"""VelaOps's own health, for /healthz: database, Redis and a recent worker heartbeat."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from dashboard.redis_client import redis_client
from dashboard.system.heartbeat import seconds_since_worker_heartbeat


def velaops_health() -> dict:
    checks: dict[str, dict] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:  # any failure means "down"; only the class name is shown, never a DSN
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        redis_client().ping()
        checks["redis"] = {"ok": True}
        age = seconds_since_worker_heartbeat()
        checks["worker"] = {
            "ok": age is not None and age <= settings.WORKER_HEARTBEAT_MAX_AGE,
            "last_heartbeat_seconds_ago": None if age is None else round(age, 1),
        }
    except Exception as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
        checks["worker"] = {"ok": False, "last_heartbeat_seconds_ago": None}
    if not (checks["database"]["ok"] and checks["redis"]["ok"]):
        status = "down"
    elif not checks["worker"]["ok"]:
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "checks": checks}
