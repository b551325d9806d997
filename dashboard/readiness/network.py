"""Can the API Lambda reach the new DSQL cluster on 5432? Read from the account's EC2 state before the Lambda is
repointed, as findings with evidence and the CDK change that fixes each.

The rules (AWS documentation, checked 2026-12-02: Lambda "Giving Lambda functions access to resources in an
Amazon VPC" and "Enable internet access for VPC-connected Lambda functions"; Aurora DSQL "Managing and
connecting to Aurora DSQL clusters using AWS PrivateLink"; Amazon VPC "Security group rules"):

1. A function without VpcConfig runs in Lambda's own network and reaches the cluster's public endpoint.
2. A VPC-connected function has no public IP: the public endpoint is reachable only if the route table of each
   of its subnets (its explicit association, else the VPC's main table) has a default route to an available
   NAT gateway or to a transit gateway. An internet-gateway route does not serve a Lambda ENI.
3. Or through an interface VPC endpoint in the function's VPC for the cluster's service name
   (`GetVpcEndpointServiceName`), `available`, with private DNS on (else the cluster's name resolves to its
   public endpoint and rule 2 applies).
4. Security groups are stateful: the function's groups must allow egress TCP 5432 towards the target (public:
   0.0.0.0/0; endpoint: one of its groups or a CIDR holding its subnets) and, on the endpoint path, the
   endpoint's groups must allow ingress TCP 5432 from one of the function's groups or a CIDR holding its subnets.

Not checked: network ACLs, the VPC's DNS attributes, prefix lists, IPv6-only paths, a NAT gateway's own route
out, endpoint policies. The sandbox's health route applies the same rules (infra/sandbox/network.py, which
delegates here), so a rehearsal that passes this check can reach DSQL, and one that fails it cannot.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dashboard.readiness.findings import BLOCKER, OK, Finding

DSQL_PORT = 5432
ANYWHERE = "0.0.0.0/0"
ENDPOINT_FIX = (
    "Add an interface endpoint for the cluster's service to the Lambda's VPC, with private DNS and a security group "
    "allowing 5432 from the Lambda's: vpc.addInterfaceEndpoint('Dsql', { service: new "
    "ec2.InterfaceVpcEndpointService(cluster.attrVpcEndpointServiceName, 5432), privateDnsEnabled: true, "
    "securityGroups: [endpointSg] }) and endpointSg.addIngressRule(lambdaSg, ec2.Port.tcp(5432))."
)


@dataclass
class NetworkReport:
    reachable: bool
    path: str  # public (no VPC), nat, transit-gateway, vpc-endpoint, none
    findings: list[Finding] = field(default_factory=list)

    @property
    def reason(self) -> str:
        return "; ".join(f.title for f in self.findings if f.severity == BLOCKER) or (
            self.findings[0].title if self.findings else ""
        )


def allows_port(permission: dict[str, Any], port: int = DSQL_PORT) -> bool:
    protocol = str(permission.get("IpProtocol"))
    if protocol == "-1":
        return True
    return protocol in ("tcp", "6") and permission.get("FromPort", 0) <= port <= permission.get("ToPort", -1)


def _holds(cidr: str, targets: Iterable[str]) -> bool:
    network = ipaddress.ip_network(cidr, strict=False)
    return all(ipaddress.ip_network(t, strict=False).subnet_of(network) for t in targets)


def permitting_rule(
    permissions: Iterable[dict[str, Any]], *, peer_groups: set[str], peer_cidrs: list[str]
) -> dict[str, Any] | None:
    """The first rule letting TCP 5432 through to or from the peer (one of its groups, or all of its CIDRs)."""
    for permission in permissions:
        if not allows_port(permission):
            continue
        if any(pair.get("GroupId") in peer_groups for pair in permission.get("UserIdGroupPairs", [])):
            return permission
        if peer_cidrs and any(_holds(r["CidrIp"], peer_cidrs) for r in permission.get("IpRanges", [])):
            return permission
    return None


def check(
    vpc_config: dict[str, Any] | None, service_name: str, ec2: Any, *, function: str = "the Lambda"
) -> NetworkReport:
    """The path from a function with `vpc_config` to a DSQL cluster whose endpoint service is `service_name`."""
    subnet_ids = (vpc_config or {}).get("SubnetIds") or []
    if not subnet_ids:
        finding = Finding("network", OK, f"{function} is not connected to a VPC: it reaches the public endpoint")
        return NetworkReport(True, "public", [finding])
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    vpc_ids = sorted({s["VpcId"] for s in subnets})
    if len(vpc_ids) != 1:
        return NetworkReport(
            False,
            "none",
            [Finding("network", BLOCKER, f"{function}'s subnets are in {len(vpc_ids)} VPCs", {"vpcs": vpc_ids})],
        )
    vpc_id = vpc_ids[0]
    cidrs = [s["CidrBlock"] for s in subnets]
    group_ids = (vpc_config or {}).get("SecurityGroupIds") or []
    groups = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"] if group_ids else []
    egress = [p for g in groups for p in g.get("IpPermissionsEgress", [])]
    context = {"vpc": vpc_id, "subnets": subnet_ids, "security_groups": group_ids}

    endpoint = _endpoint_path(ec2, vpc_id, service_name, set(group_ids), egress, cidrs, context, function)
    if endpoint.reachable:
        return endpoint
    public = _public_path(ec2, vpc_id, subnet_ids, egress, context, function)
    if public.reachable:
        return public
    if endpoint.findings and endpoint.findings[0].evidence.get("endpoint"):
        # The team chose the endpoint path (one exists): what breaks it is the finding, not the absent NAT.
        return endpoint
    unrouted = [f.evidence["subnet"] for f in public.findings if f.evidence.get("subnet")]
    if len(unrouted) == len(subnet_ids):
        # Neither path at all: one blocker, both ways out (Vela's private subnets have no NAT by design).
        tables = {f.evidence["subnet"]: f.evidence.get("route_table", "") for f in public.findings}
        return NetworkReport(
            False,
            "none",
            [
                Finding(
                    "network",
                    BLOCKER,
                    f"No path from {function} to DSQL: no interface VPC endpoint for {service_name} in {vpc_id}, "
                    f"and no subnet of the function has a default route to a NAT or transit gateway",
                    {**context, "service_name": service_name, "route_tables": tables},
                    ENDPOINT_FIX + " Or: a NAT gateway for the Lambda's subnets (subnetType PRIVATE_WITH_EGRESS).",
                )
            ],
        )
    return NetworkReport(False, "none", endpoint.findings + public.findings)


def _endpoint_path(
    ec2: Any,
    vpc_id: str,
    service_name: str,
    group_ids: set[str],
    egress: list[dict[str, Any]],
    cidrs: list[str],
    context: dict[str, Any],
    function: str,
) -> NetworkReport:
    endpoints = ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "service-name", "Values": [service_name]}]
    )["VpcEndpoints"]
    interface = [e for e in endpoints if e.get("VpcEndpointType") == "Interface"]
    if not interface:
        return NetworkReport(
            False,
            "none",
            [
                Finding(
                    "network",
                    BLOCKER,
                    f"No interface VPC endpoint for {service_name} in {vpc_id}",
                    {**context, "service_name": service_name},
                    ENDPOINT_FIX,
                )
            ],
        )
    findings = []
    for candidate in interface:
        name = candidate["VpcEndpointId"]
        evidence = {**context, "endpoint": name, "service_name": service_name}
        if candidate.get("State", "").lower() != "available":
            findings.append(
                Finding(
                    "network",
                    BLOCKER,
                    f"Endpoint {name} is {candidate.get('State')}",
                    evidence,
                    "Wait for it to be available, or recreate it if it failed.",
                )
            )
            continue
        if not candidate.get("PrivateDnsEnabled"):
            findings.append(
                Finding(
                    "network",
                    BLOCKER,
                    f"Endpoint {name} has private DNS off: the cluster's name resolves to its public endpoint",
                    evidence,
                    "Set privateDnsEnabled: true on the endpoint.",
                )
            )
            continue
        endpoint_group_ids = sorted({g["GroupId"] for g in candidate.get("Groups", [])})
        endpoint_groups = (
            ec2.describe_security_groups(GroupIds=endpoint_group_ids)["SecurityGroups"] if endpoint_group_ids else []
        )
        endpoint_subnets = candidate.get("SubnetIds") or []
        endpoint_cidrs = (
            [s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=endpoint_subnets)["Subnets"]]
            if endpoint_subnets
            else []
        )
        evidence["endpoint_security_groups"] = endpoint_group_ids
        out = permitting_rule(egress, peer_groups=set(endpoint_group_ids), peer_cidrs=endpoint_cidrs)
        if out is None:
            findings.append(
                Finding(
                    "network",
                    BLOCKER,
                    f"{function}'s security groups allow no egress on TCP {DSQL_PORT} to endpoint {name}",
                    evidence,
                    "lambdaSg.addEgressRule(endpointSg, ec2.Port.tcp(5432)) (or allowAllOutbound: true).",
                )
            )
            continue
        ingress = [p for g in endpoint_groups for p in g.get("IpPermissions", [])]
        into = permitting_rule(ingress, peer_groups=group_ids, peer_cidrs=cidrs)
        if into is None:
            findings.append(
                Finding(
                    "network",
                    BLOCKER,
                    f"Endpoint {name}'s security groups "
                    f"({', '.join(endpoint_group_ids) or 'none'}) allow no ingress on TCP {DSQL_PORT} from "
                    f"{function}'s groups or subnets",
                    evidence,
                    "endpointSg.addIngressRule(lambdaSg, ec2.Port.tcp(5432)).",
                )
            )
            continue
        return NetworkReport(
            True,
            "vpc-endpoint",
            [
                Finding(
                    "network",
                    OK,
                    f"{function} reaches the cluster through interface endpoint {name} (private DNS, 5432 allowed "
                    "both ways)",
                    {**evidence, "egress_rule": _rule_text(out), "ingress_rule": _rule_text(into)},
                )
            ],
        )
    return NetworkReport(False, "none", findings)


def _route_table(ec2: Any, vpc_id: str, subnet_id: str) -> dict[str, Any] | None:
    explicit = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    if explicit["RouteTables"]:
        return explicit["RouteTables"][0]
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
    )
    return main["RouteTables"][0] if main["RouteTables"] else None


def _public_path(
    ec2: Any, vpc_id: str, subnet_ids: list[str], egress: list[dict[str, Any]], context: dict[str, Any], function: str
) -> NetworkReport:
    findings, paths = [], set()
    for subnet_id in subnet_ids:
        table = _route_table(ec2, vpc_id, subnet_id)
        via = None
        for route in (table or {}).get("Routes", []):
            if route.get("DestinationCidrBlock") != ANYWHERE:
                continue
            if route.get("NatGatewayId"):
                nat = ec2.describe_nat_gateways(NatGatewayIds=[route["NatGatewayId"]])["NatGateways"]
                if nat and nat[0].get("State") == "available":
                    via = "nat"
            elif route.get("TransitGatewayId"):
                via = "transit-gateway"
        if via is None:
            findings.append(
                Finding(
                    "network",
                    BLOCKER,
                    f"Subnet {subnet_id} has no default route to a NAT or transit "
                    "gateway (no path to the public endpoint)",
                    {**context, "subnet": subnet_id, "route_table": (table or {}).get("RouteTableId", "")},
                    "Either the interface endpoint above, or a NAT gateway for the Lambda's subnets "
                    "(ec2.Vpc natGateways, subnetType PRIVATE_WITH_EGRESS).",
                )
            )
        else:
            paths.add(via)
    if findings:
        return NetworkReport(False, "none", findings)
    if permitting_rule(egress, peer_groups=set(), peer_cidrs=[ANYWHERE]) is None:
        return NetworkReport(
            False,
            "none",
            [
                Finding(
                    "network",
                    BLOCKER,
                    f"{function}'s security groups allow no egress on TCP {DSQL_PORT} to the internet",
                    context,
                    "lambdaSg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(5432)).",
                )
            ],
        )
    path = "nat" if paths == {"nat"} else "transit-gateway"
    title = f"{function} reaches the public endpoint through a {path.replace('-', ' ')} from every subnet"
    return NetworkReport(True, path, [Finding("network", OK, title, context)])


def _rule_text(permission: dict[str, Any]) -> str:
    peers = [pair["GroupId"] for pair in permission.get("UserIdGroupPairs", [])] + [
        r["CidrIp"] for r in permission.get("IpRanges", [])
    ]
    protocol = permission.get("IpProtocol")
    ports = "all" if str(protocol) == "-1" else f"{permission.get('FromPort')}-{permission.get('ToPort')}"
    return f"{protocol} {ports} {', '.join(peers)}"
