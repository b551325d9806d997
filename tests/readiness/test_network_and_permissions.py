"""The readiness check's network and permission findings against moto's state: Vela's r0 VPC (private subnets, no
NAT), an interface endpoint added and broken; the Lambda role's DSQL grant through SimulatePrincipalPolicy
(the sandbox's moto extension), allowed, missing and explicitly denied."""

from __future__ import annotations

import json
import time

import pytest

from dashboard.readiness import network, permissions
from tests.sandbox.test_network_path import _api_group, add_endpoint


@pytest.fixture
def vela(vela_r0):
    _, client = vela_r0
    cluster = client("dsql").create_cluster(deletionProtectionEnabled=False)
    vpc_config = client("lambda").get_function_configuration(FunctionName="vela-api")["VpcConfig"]
    service = client("dsql").get_vpc_endpoint_service_name(identifier=cluster["identifier"])["serviceName"]
    return client, vpc_config, cluster, service


def test_no_nat_and_no_endpoint_is_one_blocker_with_both_ways_out(vela):
    client, vpc_config, _, service = vela
    report = network.check(vpc_config, service, client("ec2"), function="Lambda vela-api")
    assert not report.reachable
    (blocker,) = report.findings
    assert blocker.severity == "blocker"
    assert blocker.title.startswith(f"No path from Lambda vela-api to DSQL: no interface VPC endpoint for {service}")
    assert "vpc.addInterfaceEndpoint('Dsql'" in blocker.fix and "NAT gateway" in blocker.fix
    assert sorted(blocker.evidence["route_tables"]) == sorted(vpc_config["SubnetIds"])
    assert all(table.startswith("rtb-") for table in blocker.evidence["route_tables"].values())


def test_a_nat_route_from_only_some_subnets_names_the_others(vela):
    client, vpc_config, _, service = vela
    ec2 = client("ec2")
    first, second = vpc_config["SubnetIds"]
    vpc_id = ec2.describe_subnets(SubnetIds=[first])["Subnets"][0]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.200.0/24")["Subnet"]["SubnetId"]
    gateway = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc_id)
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    table = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    for association in ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [first]}])[
        "RouteTables"
    ]:
        for link in association["Associations"]:
            if link.get("SubnetId") == first:
                ec2.disassociate_route_table(AssociationId=link["RouteTableAssociationId"])
    ec2.associate_route_table(RouteTableId=table, SubnetId=first)
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    report = network.check(vpc_config, service, ec2, function="Lambda vela-api")
    blockers = [f for f in report.findings if f.severity == "blocker"]
    assert [f.evidence.get("subnet") for f in blockers if f.evidence.get("subnet")] == [second]


def test_an_endpoint_clears_it_and_a_revoked_5432_rule_brings_back_exactly_that_blocker(vela):
    client, vpc_config, cluster, service = vela
    endpoint, group = add_endpoint(client, vpc_config, cluster["identifier"])
    report = network.check(vpc_config, service, client("ec2"), function="Lambda vela-api")
    assert report.reachable and report.path == "vpc-endpoint"
    (ok,) = report.findings
    assert ok.severity == "ok" and endpoint in ok.title and ok.evidence["ingress_rule"].startswith("tcp 5432-5432 sg-")

    client("ec2").revoke_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
             "UserIdGroupPairs": [{"GroupId": _api_group(client, vpc_config)}]}
        ],
    )  # fmt: skip
    report = network.check(vpc_config, service, client("ec2"), function="Lambda vela-api")
    blockers = [f for f in report.findings if f.severity == "blocker"]
    assert blockers[0].title == (
        f"Endpoint {endpoint}'s security groups ({group}) allow no ingress on TCP 5432 from Lambda vela-api's "
        "groups or subnets"
    )
    assert blockers[0].fix == "endpointSg.addIngressRule(lambdaSg, ec2.Port.tcp(5432))."


def test_the_lambda_roles_grant_is_simulated_on_the_clusters_arn(vela):
    client, _, cluster, _ = vela
    iam = client("iam")
    role_arn = client("lambda").get_function_configuration(FunctionName="vela-api")["Role"]
    role = role_arn.rsplit("/", 1)[1]

    missing = permissions.lambda_login(iam, role_arn, cluster["arn"], "admin")
    assert missing.severity == "blocker" and missing.evidence["decision"] == "implicitDeny"
    assert missing.fix.startswith("cluster.grant(apiFunction, 'dsql:DbConnectAdmin')")
    changing = permissions.lambda_login(
        iam, role_arn, cluster["arn"], "admin", granted_by_change="ApiRoleDefaultPolicy"
    )
    assert changing.severity == "warning" and "ApiRoleDefaultPolicy" in changing.title

    def grant(effect: str, resource: str, name: str) -> None:
        document = {"Version": "2012-10-17", "Statement": [
            {"Effect": effect, "Action": "dsql:DbConnectAdmin", "Resource": resource}]}  # fmt: skip
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))

    grant("Allow", "arn:aws:dsql:us-east-1:123456789012:cluster/someone-else", "other-cluster")
    assert permissions.lambda_login(iam, role_arn, cluster["arn"], "admin").severity == "blocker"
    grant("Allow", "arn:aws:dsql:us-east-1:123456789012:cluster/*", "dsql")
    allowed = permissions.lambda_login(iam, role_arn, cluster["arn"], "admin")
    assert allowed.severity == "ok" and allowed.evidence["matched"] == ["dsql"]
    # A non-admin database user needs DbConnect, which the policy does not give.
    assert permissions.lambda_login(iam, role_arn, cluster["arn"], "vela_api").severity == "blocker"
    grant("Deny", cluster["arn"], "deny")
    denied = permissions.lambda_login(iam, role_arn, cluster["arn"], "admin")
    assert (denied.severity, denied.evidence["decision"], denied.evidence["matched"]) == (
        "blocker",
        "explicitDeny",
        ["deny"],
    )


def test_an_idle_cluster_is_woken_and_a_multi_region_one_is_a_blocker(sandbox, sandbox_environment):
    """The readiness check's cluster findings against the sandbox's lifecycle: IDLE is woken by a login (logged,
    with how long it took), PENDING_SETUP is said plainly to be out of this runbook's reach."""
    from dashboard import dsql
    from dashboard.readiness import cluster
    from tests.sandbox.helpers import aws, create_active_dsql_cluster

    created = create_active_dsql_cluster(sandbox)
    endpoint = dsql.cluster_endpoint(created["identifier"], "us-east-1")
    lines: list[str] = []
    sandbox.faults.update({"dsql_idle": "idle"})
    try:
        deadline = time.monotonic() + 10  # the fault lets a cluster fall asleep after a short grace
        while aws(sandbox, "dsql").get_cluster(identifier=created["identifier"])["status"] != "IDLE":
            assert time.monotonic() < deadline, "the cluster never fell asleep"
            time.sleep(0.2)
        state, quota = cluster.check(
            aws(sandbox, "dsql"),
            created["identifier"],
            wake=lambda: dsql.TimedLogin(sandbox_environment, endpoint).open().close(),
            log=lines.append,
            sleep=lambda s: None,
        )
    finally:
        sandbox.faults.clear()
    assert state.severity == "ok" and state.evidence["status"] == "IDLE" and state.evidence["woke_to"] == "ACTIVE"
    assert any("is IDLE: waking it with a connection" in line for line in lines)
    assert quota.severity == "ok" and quota.evidence["default_quota"] == 20

    peered = aws(sandbox, "dsql").create_cluster(
        deletionProtectionEnabled=False, multiRegionProperties={"witnessRegion": "us-west-2"}
    )
    (pending, _) = cluster.check(
        aws(sandbox, "dsql"), peered["identifier"], wake=lambda: None, log=lines.append, sleep=lambda s: None
    )
    assert pending.severity == "blocker" and "does not support multi-Region clusters" in pending.title
