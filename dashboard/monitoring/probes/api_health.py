"""The API's DSQL health route, reached one of two ways.

"url": GET the target's name (a URL) like any client. "invoke": call the Lambda named by the target
directly with the API Gateway (REST, payload 1.0) event for GET `health_path`, with the log tail, so
the probe also learns the function's own duration, memory and whether this was a cold start.

latency_ms is what the probe observed end to end: the HTTP round trip, or the Invoke call's. The
phases add what the route reports itself ("dsql": its own login and query) and, for an invoke, the
REPORT line's "duration" and "init" (a cold start) or "restore" (a SnapStart restore).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

from dashboard.aws import AWS_EXCEPTIONS
from dashboard.health_route import HealthReading, fetch_health, reading_from_payload
from dashboard.models import Environment, HealthMethod, Target
from dashboard.monitoring.outcome import ProbeOutcome
from dashboard.monitoring.probes.clients import probe_client
from dashboard.monitoring.probes.failures import aws_failure, clean, since_ms
from dashboard.monitoring.probes.lambda_report import LambdaReport, decode_log_result, parse_report

USER_AGENT = "velaops-probe"


def probe_api_health(target: Target) -> ProbeOutcome:
    if target.health_method == HealthMethod.INVOKE:
        return probe_by_invoke(target)
    return probe_by_url(target)


def probe_by_url(target: Target) -> ProbeOutcome:
    reading = fetch_health(target.name, timeout=target.timeout_seconds)
    if not reading.reachable:
        return ProbeOutcome(
            ok=False,
            error=clean(reading.error or "unreachable"),
            details={"elapsed_ms": round(reading.elapsed_ms, 3)},
        )
    return outcome_from_reading(reading, latency_ms=reading.elapsed_ms, dsql_expected=dsql_expected(target))


def probe_by_invoke(target: Target) -> ProbeOutcome:
    environment = target.environment
    event = api_gateway_event(target.health_path, environment)
    started = time.perf_counter()
    try:
        lam = probe_client(environment, "lambda", target.timeout_seconds)
        started = time.perf_counter()  # the round trip alone, not the client's construction
        response = lam.invoke(FunctionName=target.name, Payload=json.dumps(event).encode(), LogType="Tail")
        payload = response["Payload"].read()
    except AWS_EXCEPTIONS as exc:
        return aws_failure(exc, started)
    latency = since_ms(started)
    report = parse_report(decode_log_result(response.get("LogResult")))
    phases, details = report_facts(report)
    details["request_id"] = response.get("ResponseMetadata", {}).get("RequestId", "")
    cold = report.cold_start if report else None
    if response.get("FunctionError"):
        return ProbeOutcome(
            ok=False,
            latency_ms=latency,
            phases=phases,
            cold_start=cold,
            error=clean(f"the function failed ({response['FunctionError']}): {function_error(payload)}"),
            details=details,
        )
    reading = reading_from_proxy_result(payload, latency)
    return outcome_from_reading(
        reading,
        latency_ms=latency,
        phases=phases,
        cold_start=cold,
        details=details,
        dsql_expected=dsql_expected(target),
    )


def dsql_expected(target: Target) -> bool:
    """Before the environment has a DSQL cluster, the API answering "degraded: no DSQL" is its healthy state."""
    return bool(target.environment.dsql_cluster_identifier)


def api_gateway_event(health_path: str, environment: Environment) -> dict:
    """What API Gateway (REST API, Lambda proxy integration) sends the function for GET `health_path`."""
    parts = urlsplit(health_path)
    path = parts.path or "/"
    query = parse_qsl(parts.query, keep_blank_values=True)
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    now = time.time()
    return {
        "resource": path,
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": dict(query) or None,
        "multiValueQueryStringParameters": _multi(query) or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": environment.account_id,
            "apiId": "velaops",
            "resourceId": "velaops",
            "resourcePath": path,
            "httpMethod": "GET",
            "path": path,
            "stage": "velaops",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": USER_AGENT},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def reading_from_proxy_result(payload: bytes, elapsed_ms: float) -> HealthReading:
    """The health route's answer inside a proxy result: {"statusCode": n, "body": "<JSON>", ...}."""
    try:
        result = json.loads(payload)
    except ValueError:
        return HealthReading(True, error="the function's answer is not JSON", elapsed_ms=elapsed_ms)
    status_code = result.get("statusCode") if isinstance(result, dict) else None
    if not isinstance(status_code, int) or isinstance(status_code, bool):
        return HealthReading(
            True, error="the function's answer is not an API Gateway proxy result", elapsed_ms=elapsed_ms
        )
    body = result.get("body") or ""
    try:
        if result.get("isBase64Encoded"):
            body = base64.b64decode(body, validate=True).decode()
        parsed = json.loads(body)
    except (ValueError, TypeError, binascii.Error):
        return HealthReading(True, status_code, error="the response body is not JSON", elapsed_ms=elapsed_ms)
    return reading_from_payload(parsed, status_code, elapsed_ms)


def function_error(payload: bytes) -> str:
    """Lambda's {"errorType": ..., "errorMessage": ...} as one line; never the stack trace."""
    try:
        error = json.loads(payload)
    except ValueError:
        error = None
    if not isinstance(error, dict):
        return "no error message"
    kind, message = str(error.get("errorType") or ""), str(error.get("errorMessage") or "")
    return f"{kind}: {message}" if kind and message else kind or message or "no error message"


def report_facts(report: LambdaReport | None) -> tuple[dict[str, float], dict[str, object]]:
    """Phases and details from the REPORT line; none when the log tail had none."""
    if report is None:
        return {}, {"log_report": False}
    phases = {
        name: value
        for name, value in (("duration", report.duration_ms), ("init", report.init_ms), ("restore", report.restore_ms))
        if value is not None
    }
    details: dict[str, object] = {
        "log_report": True,
        "lambda_request_id": report.request_id,
        "billed_ms": report.billed_ms,
        "memory_size_mb": report.memory_size_mb,
        "max_memory_used_mb": report.max_memory_used_mb,
    }
    if report.status:
        details["lambda_status"] = report.status
    if report.error_type:
        details["lambda_error_type"] = report.error_type
    return phases, details


def outcome_from_reading(
    reading: HealthReading,
    *,
    latency_ms: float,
    phases: dict[str, float] | None = None,
    cold_start: bool | None = None,
    details: dict[str, object] | None = None,
    dsql_expected: bool = True,
) -> ProbeOutcome:
    phases = dict(phases or {})
    if reading.dsql_latency_ms is not None:
        phases["dsql"] = reading.dsql_latency_ms
    facts = {
        **(details or {}),
        "http_status": reading.http_status,
        "status": reading.status,
        "dsql_connected": reading.dsql_connected,
        "cluster_arn": reading.cluster_arn,
        "dsql_expected": dsql_expected,
    }
    serving_without_dsql = not dsql_expected and reading.http_status == 200 and reading.status in ("ok", "degraded")
    ok = reading.ok or serving_without_dsql
    return ProbeOutcome(
        ok=ok,
        latency_ms=latency_ms,
        phases=phases,
        cold_start=cold_start,
        error="" if ok else clean(reading_problem(reading)),
        details=facts,
    )


def reading_problem(reading: HealthReading) -> str:
    """Why a reading is not ok, in the route's own order: HTTP status, route status, DSQL, its message."""
    problems = []
    if reading.http_status is not None and reading.http_status != 200:
        problems.append(f"HTTP {reading.http_status}")
    if reading.status and reading.status != "ok":
        problems.append(f"status {reading.status}")
    if reading.status and not reading.dsql_connected:
        problems.append("DSQL not connected")
    if reading.error:
        problems.append(reading.error)
    return ", ".join(problems) or "the route did not report ok"


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    return values
