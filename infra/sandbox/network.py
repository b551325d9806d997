"""Can a Lambda function reach a DSQL cluster on 5432? Decided from the account's EC2 state, as AWS would route it.

The sandbox's health route asks before each DSQL login (the real handler's packets would simply be dropped);
the control endpoint shows the answer to the rehearsing engineer. Written to read as the rules themselves, so a
product readiness check (issue #15) can follow the same logic; it lives here because the product may not
import the sandbox.

The rules (AWS docs, checked 2026-12-02: Lambda "Giving Lambda functions access to resources in an Amazon
VPC" / "Enable internet access for VPC-connected Lambda functions"; Aurora DSQL "Managing and connecting to
Aurora DSQL clusters using AWS PrivateLink"; VPC "Security group rules"):

1. A function without VpcConfig runs in Lambda's own network and reaches the cluster's public endpoint.
2. A VPC-connected function has no public IP: the public endpoint is reachable only if the route table of
   *each* of its subnets (an explicit association, else the VPC's main table) has a default route to an
   available NAT gateway or to a transit gateway (assumed to lead to egress; the sandbox does not follow it).
   An internet gateway route is not enough for a Lambda ENI.
3. Or through an interface VPC endpoint in the function's VPC whose service name is the cluster's
   (`GetVpcEndpointServiceName`), state `available`, with private DNS on (else the cluster's host name still
   resolves to the public endpoint and rule 2 applies).
4. Security groups are stateful; a path needs the function's groups to allow egress TCP 5432 towards the
   target (public path: 0.0.0.0/0; endpoint path: one of the endpoint's groups, or a CIDR holding its
   subnets) and, for the endpoint path, the endpoint's groups to allow ingress TCP 5432 from one of the
   function's groups or a CIDR holding the function's subnets.

Not modelled: network ACLs, DNS resolution settings of the VPC, prefix lists, IPv6-only paths, the NAT
gateway's own route to an internet gateway, and VPC endpoint policies.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

DSQL_PORT = 5432
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class Verdict:
    reachable: bool
    path: str  # "public" (no VPC), "nat", "transit-gateway", "vpc-endpoint", or "none"
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- security-group rules -----------------------------------------------------------------------------------
def _allows_port(permission: dict[str, Any], port: int = DSQL_PORT) -> bool:
    protocol = str(permission.get("IpProtocol"))
    if protocol == "-1":
        return True
    return protocol in ("tcp", "6") and permission.get("FromPort", 0) <= port <= permission.get("ToPort", -1)


def _cidr_holds(cidr: str, targets: Iterable[str]) -> bool:
    network = ipaddress.ip_network(cidr, strict=False)
    return all(ipaddress.ip_network(target, strict=False).subnet_of(network) for target in targets)


def _permits(
    permissions: Iterable[dict[str, Any]], *, peer_groups: set[str], peer_cidrs: list[str]
) -> dict[str, Any] | None:
    """The first rule that lets TCP 5432 through to/from the peer (one of its groups, or all its CIDRs)."""
    for permission in permissions:
        if not _allows_port(permission):
            continue
        if any(pair.get("GroupId") in peer_groups for pair in permission.get("UserIdGroupPairs", [])):
            return permission
        if peer_cidrs and any(_cidr_holds(r["CidrIp"], peer_cidrs) for r in permission.get("IpRanges", [])):
            return permission
    return None


def _egress(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for group in groups for p in group.get("IpPermissionsEgress", [])]


def _ingress(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for group in groups for p in group.get("IpPermissions", [])]


# -- the evaluation -----------------------------------------------------------------------------------------
def evaluate(vpc_config: dict[str, Any] | None, cluster_identifier: str, client: Callable[[str], Any]) -> Verdict:
    """Whether a function with this VpcConfig reaches the cluster; `client(service)` gives boto3 clients."""
    subnet_ids = (vpc_config or {}).get("SubnetIds") or []
    if not subnet_ids:
        return Verdict(True, "public", "the function is not connected to a VPC: it reaches the public endpoint")
    ec2 = client("ec2")
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    vpc_ids = {subnet["VpcId"] for subnet in subnets}
    if len(vpc_ids) != 1:
        return Verdict(False, "none", f"the function's subnets are in {len(vpc_ids)} VPCs")
    (vpc_id,) = vpc_ids
    subnet_cidrs = [subnet["CidrBlock"] for subnet in subnets]
    group_ids = (vpc_config or {}).get("SecurityGroupIds") or []
    groups = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"] if group_ids else []

    reasons = []
    endpoint = _endpoint_path(ec2, client("dsql"), vpc_id, cluster_identifier, set(group_ids), groups, subnet_cidrs)
    if endpoint.reachable:
        return endpoint
    reasons.append(endpoint.reason)
    public = _public_path(ec2, vpc_id, subnet_ids, groups)
    if public.reachable:
        return public
    reasons.append(public.reason)
    return Verdict(False, "none", "; ".join(reasons))


def _endpoint_path(
    ec2: Any,
    dsql: Any,
    vpc_id: str,
    identifier: str,
    group_ids: set[str],
    groups: list[dict[str, Any]],
    subnet_cidrs: list[str],
) -> Verdict:
    try:
        service_name = dsql.get_vpc_endpoint_service_name(identifier=identifier)["serviceName"]
    except ClientError as exc:
        return Verdict(
            False, "none", f"no VPC endpoint service for cluster {identifier} ({exc.response['Error']['Code']})"
        )
    endpoints = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "service-name", "Values": [service_name]}]
    )["VpcEndpoints"]
    interface = [e for e in endpoints if e.get("VpcEndpointType") == "Interface"]
    if not interface:
        return Verdict(False, "none", f"no interface VPC endpoint for {service_name} in {vpc_id}")
    problems = []
    for candidate in interface:
        name = candidate["VpcEndpointId"]
        if candidate.get("State", "").lower() != "available":
            problems.append(f"{name} is {candidate.get('State')}")
            continue
        if not candidate.get("PrivateDnsEnabled"):
            problems.append(f"{name} has private DNS off (the cluster's name resolves to its public endpoint)")
            continue
        endpoint_group_ids = {g["GroupId"] for g in candidate.get("Groups", [])}
        endpoint_groups = (
            ec2.describe_security_groups(GroupIds=sorted(endpoint_group_ids))["SecurityGroups"]
            if endpoint_group_ids
            else []
        )
        endpoint_subnets = candidate.get("SubnetIds") or []
        endpoint_cidrs = (
            [s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=endpoint_subnets)["Subnets"]]
            if endpoint_subnets
            else []
        )
        if not _permits(_egress(groups), peer_groups=endpoint_group_ids, peer_cidrs=endpoint_cidrs):
            problems.append(f"the function's security groups allow no egress on TCP {DSQL_PORT} to {name}")
            continue
        if not _permits(_ingress(endpoint_groups), peer_groups=group_ids, peer_cidrs=subnet_cidrs):
            problems.append(
                f"{name}'s security groups ({', '.join(sorted(endpoint_group_ids)) or 'none'}) allow no ingress "
                f"on TCP {DSQL_PORT} from the function's groups or subnets"
            )
            continue
        return Verdict(True, "vpc-endpoint", f"through interface endpoint {name} ({service_name})")
    return Verdict(False, "none", "; ".join(problems))


def _route_table(ec2: Any, vpc_id: str, subnet_id: str) -> dict[str, Any] | None:
    explicit = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    if explicit["RouteTables"]:
        return explicit["RouteTables"][0]
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
    )
    return main["RouteTables"][0] if main["RouteTables"] else None


def _public_path(ec2: Any, vpc_id: str, subnet_ids: list[str], groups: list[dict[str, Any]]) -> Verdict:
    paths = set()
    for subnet_id in subnet_ids:
        table = _route_table(ec2, vpc_id, subnet_id)
        default = [r for r in (table or {}).get("Routes", []) if r.get("DestinationCidrBlock") == ANYWHERE]
        via = None
        for route in default:
            if route.get("NatGatewayId"):
                nat = ec2.describe_nat_gateways(NatGatewayIds=[route["NatGatewayId"]])["NatGateways"]
                if nat and nat[0].get("State") == "available":
                    via = "nat"
            elif route.get("TransitGatewayId"):
                via = "transit-gateway"
        if via is None:
            return Verdict(
                False, "none", f"subnet {subnet_id} has no route to a NAT gateway or transit gateway (no public path)"
            )
        paths.add(via)
    if not _permits(_egress(groups), peer_groups=set(), peer_cidrs=[ANYWHERE]):
        return Verdict(
            False, "none", f"the function's security groups allow no egress on TCP {DSQL_PORT} to the internet"
        )
    path = "nat" if paths == {"nat"} else "transit-gateway"
    return Verdict(True, path, f"to the public endpoint through a {path.replace('-', ' ')} from every subnet")


class CachedPath:
    """`evaluate` for one function, remembered for `ttl` seconds (the health route asks on every request)."""

    def __init__(self, client: Callable[[str], Any], ttl: float = 2.0) -> None:
        self._client, self.ttl = client, ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Verdict]] = {}

    def verdict(self, vpc_config: dict[str, Any] | None, cluster_identifier: str) -> Verdict:
        key = repr(
            (
                sorted((vpc_config or {}).get("SubnetIds") or []),
                sorted((vpc_config or {}).get("SecurityGroupIds") or []),
                cluster_identifier,
            )
        )
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached and now - cached[0] < self.ttl:
                return cached[1]
        verdict = evaluate(vpc_config, cluster_identifier, self._client)
        with self._lock:
            self._cache = {key: (now, verdict)}  # one function: the latest configuration is all that matters
        return verdict
