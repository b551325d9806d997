"""Fault switches that act on the sandbox's AWS (moto) rather than inside this process.

- `dsql_idle`: the DSQL lifecycle's `forced` setting in the moto process (infra/sandbox/dsql_lifecycle.py), so
  GetCluster reports the clusters IDLE/INACTIVE and each login wakes one, slower.
- `dsql_endpoint_sg_revoked`: real EC2 state: the TCP 5432 ingress rules of every DSQL interface endpoint's
  security groups are revoked (and authorized again when the switch goes off), so the network path, drift
  and any readiness check see the same account a careless security-group change would leave.

Also the network path of the API Lambda as the health route sees it, for the control endpoint.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from dashboard.readiness.network import allows_port
from infra.sandbox import dsql_lifecycle, network, seed
from infra.sandbox.config import SandboxConfig
from infra.sandbox.faults import Faults

log = logging.getLogger(__name__)

_DSQL_SERVICE = re.compile(r"^com\.amazonaws\.[a-z0-9-]+\.dsql-[a-z0-9]+$")
_CLUSTER_HOST = re.compile(r"^(?P<identifier>[a-z0-9]+)\.dsql\.[a-z0-9-]+\.on\.aws$")


class MotoFaults:
    def __init__(self, config: SandboxConfig, function_name: str = "vela-api") -> None:
        self.config, self.function_name = config, function_name
        # The sandbox acting on its own account, with the seed's key (not VelaOps's, not the Lambda's).
        self._clients = {service: seed._client(config, service) for service in ("ec2", "dsql", "lambda")}
        self._lock = threading.Lock()
        self.revoked: list[dict[str, Any]] = []  # {"GroupId", "IpPermissions"} to authorize again

    def apply(self, before: Faults, after: Faults) -> None:
        if before.dsql_idle != after.dsql_idle:
            forced = None if after.dsql_idle == "off" else after.dsql_idle.upper()
            dsql_lifecycle.configure(self.config.moto_url, forced=forced)
        if before.dsql_endpoint_sg_revoked != after.dsql_endpoint_sg_revoked:
            if after.dsql_endpoint_sg_revoked:
                self.revoke_endpoint_ingress()
            else:
                self.restore_endpoint_ingress()

    def revoke_endpoint_ingress(self) -> list[dict[str, Any]]:
        ec2 = self._clients["ec2"]
        with self._lock:
            endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
            group_ids = sorted(
                {
                    group["GroupId"]
                    for endpoint in endpoints
                    if endpoint.get("VpcEndpointType") == "Interface" and _DSQL_SERVICE.match(endpoint["ServiceName"])
                    for group in endpoint.get("Groups", [])
                }
            )
            groups = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"] if group_ids else []
            for group in groups:
                rules = [_authorizable(p) for p in group.get("IpPermissions", []) if allows_port(p)]
                if not rules:
                    continue
                ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=rules)
                self.revoked.append({"GroupId": group["GroupId"], "IpPermissions": rules})
                log.warning("fault: revoked %d TCP 5432 ingress rule(s) of %s", len(rules), group["GroupId"])
            if not self.revoked:
                log.warning("fault: no DSQL interface endpoint with a 5432 ingress rule to revoke")
            return list(self.revoked)

    def restore_endpoint_ingress(self) -> None:
        ec2 = self._clients["ec2"]
        with self._lock:
            while self.revoked:
                entry = self.revoked.pop()
                try:
                    ec2.authorize_security_group_ingress(**entry)
                except Exception:  # the group went away meanwhile (a reset): nothing to restore
                    log.warning("fault: could not restore the ingress rules of %s", entry["GroupId"])

    def network_path(self) -> dict[str, Any]:
        """The API Lambda's path to the cluster it is pointed at, for the rehearsing engineer."""
        try:
            configuration = self._clients["lambda"].get_function_configuration(FunctionName=self.function_name)
            endpoint = ((configuration.get("Environment") or {}).get("Variables") or {}).get("DSQL_ENDPOINT", "")
            match = _CLUSTER_HOST.match(endpoint)
            if not match:
                return {"checked": False, "reason": f"{self.function_name} names no DSQL cluster endpoint"}
            verdict = network.evaluate(configuration.get("VpcConfig"), match["identifier"], self._clients.__getitem__)
        except Exception as exc:
            return {"checked": False, "reason": f"could not read the account: {type(exc).__name__}"}
        return {"checked": True, "function": self.function_name, "endpoint": endpoint, **verdict.as_dict()}


def _authorizable(permission: dict[str, Any]) -> dict[str, Any]:
    """An IpPermissions entry as AuthorizeSecurityGroupIngress takes it back (group pairs without owner)."""
    rule = {key: permission[key] for key in ("IpProtocol", "FromPort", "ToPort") if key in permission}
    for key in ("IpRanges", "Ipv6Ranges", "PrefixListIds"):
        if permission.get(key):
            rule[key] = permission[key]
    if permission.get("UserIdGroupPairs"):
        pairs = permission["UserIdGroupPairs"]
        rule["UserIdGroupPairs"] = [{k: v for k, v in p.items() if k in ("GroupId", "Description")} for p in pairs]
    return rule
