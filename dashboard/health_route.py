"""Reading the Vela API's DSQL health route:
GET {url} -> {"status": ..., "dsql": {"connected": bool, "latencyMs": n, "clusterArn": str}}."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

MAX_BODY = 65536


@dataclass(frozen=True)
class HealthReading:
    reachable: bool
    http_status: int | None = None
    status: str = ""
    dsql_connected: bool | None = None
    dsql_latency_ms: float | None = None
    cluster_arn: str = ""
    error: str = ""
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reachable and self.http_status == 200 and self.status == "ok" and bool(self.dsql_connected)


def fetch_health(url: str, timeout: float = 5.0) -> HealthReading:
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "velaops"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status_code, body = response.status, response.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        status_code, body = exc.code, exc.read(MAX_BODY)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return HealthReading(False, error=str(reason), elapsed_ms=_since(started))
    elapsed = _since(started)
    try:
        payload = json.loads(body)
    except ValueError:
        return HealthReading(True, status_code, error="the response is not JSON", elapsed_ms=elapsed)
    return reading_from_payload(payload, status_code, elapsed)


def reading_from_payload(payload: object, status_code: int, elapsed_ms: float) -> HealthReading:
    if not isinstance(payload, dict):
        return HealthReading(True, status_code, error="the response is not a JSON object", elapsed_ms=elapsed_ms)
    dsql = payload.get("dsql") if isinstance(payload.get("dsql"), dict) else {}
    latency = dsql.get("latencyMs")
    return HealthReading(
        reachable=True,
        http_status=status_code,
        status=str(payload.get("status", "")),
        dsql_connected=dsql.get("connected") if isinstance(dsql.get("connected"), bool) else None,
        dsql_latency_ms=float(latency) if isinstance(latency, (int, float)) else None,
        cluster_arn=str(dsql.get("clusterArn") or ""),
        error=str(dsql.get("error") or payload.get("error") or ""),
        elapsed_ms=elapsed_ms,
    )


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
