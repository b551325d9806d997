"""Is the new DSQL cluster in a state the switch can use, and is there room to make another?

Cluster states (botocore's dsql ClusterStatus, checked 2026-12-02): CREATING, ACTIVE, IDLE, INACTIVE,
UPDATING, DELETING, DELETED, FAILED, PENDING_SETUP, PENDING_DELETE. An IDLE or INACTIVE cluster (no
connections for a while) wakes on a connection; UPDATING settles by itself; PENDING_SETUP is a multi-Region
cluster waiting for its peer, which this runbook does not handle. Quota (Aurora DSQL user guide, "Cluster
quotas and database limits", checked 2026-12-02): 20 single-Region clusters per account and Region by
default, adjustable through Service Quotas; ServiceQuotaExceededException "You have reached the cluster limit."
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dashboard.readiness.findings import BLOCKER, OK, WARNING, Finding

SINGLE_REGION_CLUSTER_QUOTA = 20  # the default; an account may have more (Service Quotas)
QUOTA_HEADROOM = 2  # warn when fewer clusters than this can still be made (a rollback and a retry need one)
ASLEEP = ("IDLE", "INACTIVE")
SETTLING = ("CREATING", "UPDATING")
WAKE_TIMEOUT = 300
SETTLE_TIMEOUT = 900


def check(
    dsql: Any,
    identifier: str,
    *,
    wake: Callable[[], None],
    log: Callable[[str], None],
    sleep: Callable[[float], None],
) -> list[Finding]:
    """The cluster's state (woken or waited on where AWS would get there by itself), then the quota headroom.
    `wake()` opens one connection to the cluster (a DSQL login)."""
    findings = [_state(dsql, identifier, wake=wake, log=log, sleep=sleep)]
    findings.append(_quota(dsql))
    return findings


def _status(dsql: Any, identifier: str) -> str:
    return dsql.get_cluster(identifier=identifier)["status"]


def _state(dsql: Any, identifier: str, *, wake, log, sleep) -> Finding:
    status = _status(dsql, identifier)
    evidence = {"cluster": identifier, "status": status}
    if status in SETTLING:
        log(f"cluster {identifier} is {status}: waiting for it to settle")
        status = _wait(dsql, identifier, lambda s: s not in SETTLING, SETTLE_TIMEOUT, sleep)
        evidence["settled_to"] = status
    if status in ASLEEP:
        log(f"cluster {identifier} is {status}: waking it with a connection")
        started = time.monotonic()
        try:
            wake()
        except Exception as exc:  # the login may fail while it wakes: the state below decides
            log(f"the waking connection failed ({type(exc).__name__}): waiting on the cluster's state")
        status = _wait(dsql, identifier, lambda s: s not in ASLEEP, WAKE_TIMEOUT, sleep)
        evidence |= {"woke_to": status, "wake_seconds": round(time.monotonic() - started, 1)}
    if status == "ACTIVE":
        return Finding("cluster", OK, f"Cluster {identifier} is ACTIVE", evidence)
    if status == "PENDING_SETUP":
        return Finding(
            "cluster",
            BLOCKER,
            f"Cluster {identifier} is PENDING_SETUP: a multi-Region cluster waiting for its peer. This runbook "
            "moves Vela to a single-Region cluster; it does not support multi-Region clusters.",
            evidence,
            "Use a single-Region cluster (no multiRegionProperties), or finish the peering outside VelaOps.",
        )
    return Finding(
        "cluster",
        BLOCKER,
        f"Cluster {identifier} is {status}, not ACTIVE",
        evidence,
        "Roll the provisioning step back and provision again"
        if status in ("FAILED", "DELETING", "DELETED", "PENDING_DELETE")
        else "",
    )


def _wait(dsql: Any, identifier: str, done: Callable[[str], bool], timeout: float, sleep) -> str:
    deadline = time.monotonic() + timeout
    status = _status(dsql, identifier)
    while not done(status) and time.monotonic() < deadline:
        sleep(2)
        status = _status(dsql, identifier)
    return status


def _quota(dsql: Any) -> Finding:
    clusters, token = [], None
    while True:
        page = dsql.list_clusters(**({"nextToken": token} if token else {}))
        clusters += page.get("clusters") or []
        token = page.get("nextToken")
        if not token:
            break
    count = len(clusters)
    evidence = {"clusters": count, "default_quota": SINGLE_REGION_CLUSTER_QUOTA}
    if SINGLE_REGION_CLUSTER_QUOTA - count < QUOTA_HEADROOM:
        return Finding(
            "cluster",
            WARNING,
            f"{count} DSQL clusters in the account and Region: at the default quota of "
            f"{SINGLE_REGION_CLUSTER_QUOTA}, a rollback and new provisioning may be refused",
            evidence,
            "Delete clusters no longer used, or raise the quota in Service Quotas.",
        )
    return Finding("cluster", OK, f"{count} of {SINGLE_REGION_CLUSTER_QUOTA} DSQL clusters (default quota)", evidence)
