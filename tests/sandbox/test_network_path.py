"""infra/sandbox/network.py against moto's EC2 state: Vela's r0 VPC (private subnets, no NAT) and what a
migration adds to it (an interface endpoint for DSQL, or a NAT gateway), and what breaks the path."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.sandbox import network


@pytest.fixture
def vela(vela_r0):
    """r0 deployed, a DSQL cluster, and the API Lambda's VpcConfig: (client factory, vpc config, cluster id)."""
    _, client = vela_r0
    identifier = client("dsql").create_cluster(deletionProtectionEnabled=False)["identifier"]
    vpc_config = client("lambda").get_function_configuration(FunctionName="vela-api")["VpcConfig"]
    return client, vpc_config, identifier


def _api_group(client, vpc_config) -> str:
    (group,) = vpc_config["SecurityGroupIds"]
    return group


def _vpc_id(client, vpc_config) -> str:
    return client("ec2").describe_subnets(SubnetIds=vpc_config["SubnetIds"])["Subnets"][0]["VpcId"]


def add_endpoint(client, vpc_config, identifier, *, private_dns=True, ingress=True) -> tuple[str, str]:
    """What r1 adds, by direct API: an interface endpoint for the cluster's service with a 5432 group."""
    ec2 = client("ec2")
    vpc_id = _vpc_id(client, vpc_config)
    group = ec2.create_security_group(GroupName="dsql-endpoint", Description="DSQL endpoint", VpcId=vpc_id)["GroupId"]
    if ingress:
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 5432,
                    "ToPort": 5432,
                    "UserIdGroupPairs": [{"GroupId": _api_group(client, vpc_config)}],
                }
            ],
        )
    service = client("dsql").get_vpc_endpoint_service_name(identifier=identifier)["serviceName"]
    endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=vpc_id,
        ServiceName=service,
        SubnetIds=vpc_config["SubnetIds"],
        SecurityGroupIds=[group],
        PrivateDnsEnabled=private_dns,
    )["VpcEndpoint"]["VpcEndpointId"]
    return endpoint, group


def test_vela_r0_cannot_reach_dsql_private_subnets_without_nat_or_endpoint(vela):
    client, vpc_config, identifier = vela
    verdict = network.evaluate(vpc_config, identifier, client)
    assert not verdict.reachable and verdict.path == "none"
    assert "no interface VPC endpoint for com.amazonaws.us-east-1.dsql-" in verdict.reason
    assert "default route to a NAT or transit gateway" in verdict.reason


def test_a_function_outside_any_vpc_reaches_the_public_endpoint(vela):
    client, _, identifier = vela
    for vpc_config in (None, {"SubnetIds": [], "SecurityGroupIds": []}):
        assert network.evaluate(vpc_config, identifier, client).path == "public"


def test_an_interface_endpoint_with_private_dns_and_5432_from_the_api_group_is_a_path(vela):
    client, vpc_config, identifier = vela
    endpoint, _ = add_endpoint(client, vpc_config, identifier)
    verdict = network.evaluate(vpc_config, identifier, client)
    assert verdict.reachable and verdict.path == "vpc-endpoint"
    assert endpoint in verdict.reason


def test_an_endpoint_without_private_dns_is_no_path(vela):
    client, vpc_config, identifier = vela
    add_endpoint(client, vpc_config, identifier, private_dns=False)
    verdict = network.evaluate(vpc_config, identifier, client)
    assert not verdict.reachable and "private DNS off" in verdict.reason


def test_removing_the_endpoint_groups_5432_rule_blocks_the_path(vela):
    client, vpc_config, identifier = vela
    _, group = add_endpoint(client, vpc_config, identifier)
    assert network.evaluate(vpc_config, identifier, client).reachable
    client("ec2").revoke_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": _api_group(client, vpc_config)}],
            }
        ],
    )
    verdict = network.evaluate(vpc_config, identifier, client)
    assert not verdict.reachable and "allow no ingress on TCP 5432" in verdict.reason


def test_ingress_from_the_function_subnets_cidr_is_enough(vela):
    client, vpc_config, identifier = vela
    _, group = add_endpoint(client, vpc_config, identifier, ingress=False)
    assert not network.evaluate(vpc_config, identifier, client).reachable
    client("ec2").authorize_security_group_ingress(
        GroupId=group, IpProtocol="tcp", FromPort=5432, ToPort=5432, CidrIp="10.20.0.0/16"
    )
    assert network.evaluate(vpc_config, identifier, client).path == "vpc-endpoint"


def test_the_api_groups_egress_must_allow_5432(vela):
    client, vpc_config, identifier = vela
    add_endpoint(client, vpc_config, identifier)
    client("ec2").revoke_security_group_egress(
        GroupId=_api_group(client, vpc_config),
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    verdict = network.evaluate(vpc_config, identifier, client)
    assert not verdict.reachable and "allow no egress on TCP 5432" in verdict.reason


def test_a_nat_gateway_route_from_every_subnet_reaches_the_public_endpoint(vela):
    client, vpc_config, identifier = vela
    ec2 = client("ec2")
    vpc_id = _vpc_id(client, vpc_config)
    public = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.200.0/24")["Subnet"]["SubnetId"]
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)

    first, second = vpc_config["SubnetIds"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=first)
    verdict = network.evaluate(vpc_config, identifier, client)
    assert not verdict.reachable and f"Subnet {second} has no default route" in verdict.reason

    ec2.associate_route_table(RouteTableId=table, SubnetId=second)
    assert network.evaluate(vpc_config, identifier, client).path == "nat"


def test_the_cached_verdict_is_read_again_after_its_ttl(vela):
    client, vpc_config, identifier = vela
    cached = network.CachedPath(client, ttl=0)
    assert not cached.verdict(vpc_config, identifier).reachable
    add_endpoint(client, vpc_config, identifier)
    assert cached.verdict(vpc_config, identifier).reachable


def test_requests_that_find_the_verdict_stale_together_wait_for_one_evaluation(monkeypatch):
    evaluated = []

    def slow_evaluate(vpc_config, cluster_identifier, client):
        evaluated.append(cluster_identifier)
        time.sleep(0.3)  # reading moto's EC2 state
        return network.Verdict(True, "public", "")

    monkeypatch.setattr(network, "evaluate", slow_evaluate)
    cached = network.CachedPath(lambda service: None, ttl=60)
    barrier = threading.Barrier(8)

    def ask(_):
        barrier.wait()
        return cached.verdict(None, "abc")

    with ThreadPoolExecutor(8) as pool:
        verdicts = list(pool.map(ask, range(8)))
    assert evaluated == ["abc"] and all(verdict.reachable for verdict in verdicts)
    cached.ttl = 0  # stale at once: the next request reads the state again
    cached.verdict(None, "abc")
    assert evaluated == ["abc", "abc"]
