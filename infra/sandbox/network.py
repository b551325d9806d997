"""Can a Lambda function reach a DSQL cluster on 5432? Decided from the account's EC2 state, as AWS would route it.

The sandbox's health route asks before each DSQL login (the real handler's packets would simply be dropped);
the control endpoint shows the answer to the rehearsing engineer. The rules are the product's readiness check's
(`dashboard.readiness.network`, where they are written out with their AWS sources): one statement of AWS's
routing, so a rehearsal the readiness check passes reaches DSQL, and one it fails cannot. The sandbox may
import the product (never the reverse).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from dashboard.readiness import network as rules


@dataclass(frozen=True)
class Verdict:
    reachable: bool
    path: str  # "public" (no VPC), "nat", "transit-gateway", "vpc-endpoint", or "none"
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(vpc_config: dict[str, Any] | None, cluster_identifier: str, client: Callable[[str], Any]) -> Verdict:
    """Whether a function with this VpcConfig reaches the cluster; `client(service)` gives boto3 clients."""
    if (vpc_config or {}).get("SubnetIds"):
        try:
            service_name = client("dsql").get_vpc_endpoint_service_name(identifier=cluster_identifier)["serviceName"]
        except ClientError as exc:
            return Verdict(
                False,
                "none",
                f"no VPC endpoint service for cluster {cluster_identifier} ({exc.response['Error']['Code']})",
            )
    else:
        service_name = ""
    report = rules.check(vpc_config, service_name, client("ec2") if service_name else None, function="the function")
    return Verdict(report.reachable, report.path, report.reason)


class CachedPath:
    """`evaluate` for one function, remembered for `ttl` seconds (the health route asks on every request).

    One evaluation at a time: requests that find the verdict stale while another is deciding it wait for that
    one instead of each reading moto's EC2 state again (eight requests apiece).
    """

    def __init__(self, client: Callable[[str], Any], ttl: float = 2.0) -> None:
        self._client, self.ttl = client, ttl
        self._lock = threading.Lock()
        self._evaluating = threading.Lock()
        self._cache: dict[str, tuple[float, Verdict]] = {}

    def verdict(self, vpc_config: dict[str, Any] | None, cluster_identifier: str) -> Verdict:
        key = repr(
            (
                sorted((vpc_config or {}).get("SubnetIds") or []),
                sorted((vpc_config or {}).get("SecurityGroupIds") or []),
                cluster_identifier,
            )
        )
        asked = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached and asked - cached[0] < self.ttl:
                return cached[1]
        with self._evaluating:
            with self._lock:
                cached = self._cache.get(key)
                if cached and asked - cached[0] < self.ttl:  # decided while this request waited
                    return cached[1]
            started = time.monotonic()
            verdict = evaluate(vpc_config, cluster_identifier, self._client)
            with self._lock:
                self._cache = {key: (started, verdict)}  # one function: the latest configuration is all that matters
        return verdict
