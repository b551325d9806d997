"""Turning what went wrong into a failed ProbeOutcome: readable, bounded, and free of secrets.

Latency rule shared by every probe: `latency_ms` is set whenever the probed service answered, even
with a failure (an AWS error response, HTTP 503, a cluster that is not available); it is None when no
answer came (refused, timed out, login failed), and `details["elapsed_ms"]` then says how long the
probe waited.
"""

from __future__ import annotations

import time

import psycopg
from botocore.exceptions import ClientError

from dashboard.aws import describe_error
from dashboard.monitoring.outcome import ProbeOutcome

MAX_ERROR = 500


def since_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def clean(text: str, *secrets: str) -> str:
    """One line, bounded, with every secret replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def aws_failure(exc: Exception, started: float, details: dict | None = None) -> ProbeOutcome:
    """An AWS error as "Code: message"; an error response is an answer, a client-side failure is not."""
    error = describe_error(exc)
    elapsed = round(since_ms(started), 3)
    answered = isinstance(exc, ClientError)
    facts = {**(details or {}), "aws_error_code": error.code}
    if error.request_id:
        facts["request_id"] = error.request_id
    if not answered:
        facts["elapsed_ms"] = elapsed
    return ProbeOutcome(
        ok=False,
        latency_ms=elapsed if answered else None,
        error=clean(f"{error.code}: {error.message}"),
        details=facts,
    )


def database_error(exc: psycopg.Error, *secrets: str) -> str:
    """psycopg's message with the SQLSTATE first when the server sent one (libpq drops it for failed logins)."""
    text = clean(str(exc) or type(exc).__name__, *secrets)
    return f"{exc.sqlstate}: {text}" if exc.sqlstate else text


def unexpected_failure(exc: BaseException, started: float) -> ProbeOutcome:
    """A bug in a probe, not a finding about the target: say so, without the exception's text."""
    return ProbeOutcome(
        ok=False,
        error=f"the probe itself failed ({type(exc).__name__}); see the worker's log",
        details={"elapsed_ms": round(since_ms(started), 3), "probe_error": type(exc).__name__},
    )
