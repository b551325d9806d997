"""DynamoDB: the table's status through DescribeTable; ACTIVE is up, anything else is down."""

from __future__ import annotations

import time

from dashboard.aws import AWS_EXCEPTIONS
from dashboard.models import Target
from dashboard.monitoring.outcome import ProbeOutcome
from dashboard.monitoring.probes.clients import probe_client
from dashboard.monitoring.probes.failures import aws_failure, since_ms

HEALTHY_STATUS = "ACTIVE"


def probe_dynamodb(target: Target) -> ProbeOutcome:
    started = time.perf_counter()
    try:
        dynamodb = probe_client(target.environment, "dynamodb", target.timeout_seconds)
        started = time.perf_counter()  # the API call alone, not the client's construction
        table = dynamodb.describe_table(TableName=target.name).get("Table", {})
    except AWS_EXCEPTIONS as exc:
        return aws_failure(exc, started)
    latency = since_ms(started)
    status = table.get("TableStatus") or ""
    details = {"status": status}
    if status != HEALTHY_STATUS:
        error = f"the table is {status or 'in no status'}, not {HEALTHY_STATUS}"
        return ProbeOutcome(ok=False, latency_ms=latency, error=error, details=details)
    return ProbeOutcome(ok=True, latency_ms=latency, details=details)
