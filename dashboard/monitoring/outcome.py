"""What a probe returns: plain data, recorded by monitoring.recording."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProbeOutcome:
    ok: bool
    latency_ms: float | None = None
    # Milliseconds per phase, e.g. {"token": 0.4, "connect": 6.1, "query": 0.3}.
    phases: dict[str, float] = field(default_factory=dict)
    # Lambda invokes only: whether the REPORT line had an Init Duration.
    cold_start: bool | None = None
    # What failed, for people: an AWS error code and message, an SQLSTATE, a failed check.
    error: str = ""
    # Small facts worth keeping with the result (HTTP status, request id, failed checks).
    details: dict[str, object] = field(default_factory=dict)
