"""Probes: plain functions that look at one Target and return a ProbeOutcome, never raising.

One module per kind of target; `run_probe` picks the function. Every probe bounds itself by the
target's `timeout_seconds`, makes a single attempt (no retries: the next probe is the retry), reuses
this thread's boto3 clients (`clients.py`), and keeps secrets and IAM tokens out of what it returns.
See `failures.py` for when `latency_ms` is set on a failure.

The caller should load the target with `select_related("environment")`: every probe reads it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from dashboard.models import ProbeKind, Target
from dashboard.monitoring.outcome import ProbeOutcome
from dashboard.monitoring.probes.api_health import probe_api_health
from dashboard.monitoring.probes.aurora import probe_aurora
from dashboard.monitoring.probes.dsql import probe_dsql
from dashboard.monitoring.probes.dynamodb import probe_dynamodb
from dashboard.monitoring.probes.failures import unexpected_failure
from dashboard.monitoring.probes.lambda_config import probe_lambda_config

log = logging.getLogger(__name__)

PROBES: dict[str, Callable[[Target], ProbeOutcome]] = {
    ProbeKind.DSQL: probe_dsql,
    ProbeKind.LAMBDA_CONFIG: probe_lambda_config,
    ProbeKind.API_HEALTH: probe_api_health,
    ProbeKind.AURORA: probe_aurora,
    ProbeKind.DYNAMODB: probe_dynamodb,
}


def run_probe(target: Target) -> ProbeOutcome:
    """Probe `target` once. Expected failures (AWS, database, network) are findings about the target;
    anything else is a bug in the probe, logged with its traceback and reported as a failed probe."""
    probe = PROBES.get(target.kind)
    if probe is None:
        return ProbeOutcome(ok=False, error=f"no probe for targets of kind {target.kind!r}")
    started = time.perf_counter()
    try:
        return probe(target)
    except Exception as exc:
        log.exception("probe of target %s (%s %s) failed", target.pk, target.kind, target.name)
        return unexpected_failure(exc, started)
