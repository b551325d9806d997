"""Aurora: the cluster's status through DescribeDBClusters; available is up, anything else is down."""

from __future__ import annotations

import time

from dashboard.aws import AWS_EXCEPTIONS
from dashboard.models import Target
from dashboard.monitoring.outcome import ProbeOutcome
from dashboard.monitoring.probes.clients import probe_client
from dashboard.monitoring.probes.failures import aws_failure, since_ms

HEALTHY_STATUS = "available"


def probe_aurora(target: Target) -> ProbeOutcome:
    started = time.perf_counter()
    try:
        rds = probe_client(target.environment, "rds", target.timeout_seconds)
        started = time.perf_counter()  # the API call alone, not the client's construction
        clusters = rds.describe_db_clusters(DBClusterIdentifier=target.name).get("DBClusters", [])
    except AWS_EXCEPTIONS as exc:
        return aws_failure(exc, started)
    latency = since_ms(started)
    if not clusters:
        return ProbeOutcome(ok=False, latency_ms=latency, error=f"no Aurora cluster {target.name}")
    cluster = clusters[0]
    status = cluster.get("Status") or ""
    details = {"status": status, "members": len(cluster.get("DBClusterMembers") or [])}
    if status != HEALTHY_STATUS:
        error = f"the cluster is {status or 'in no status'}, not {HEALTHY_STATUS}"
        return ProbeOutcome(ok=False, latency_ms=latency, error=error, details=details)
    return ProbeOutcome(ok=True, latency_ms=latency, details=details)
