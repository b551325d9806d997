"""The stand-in for the API's DSQL health route follows the Lambda's environment variables, and reaches DSQL
only where the Lambda's VPC would let it (infra/sandbox/network.py)."""

import time

import pytest
import requests

from dashboard import dsql
from infra.sandbox import control, seed
from infra.sandbox.health_route import CONNECT_TIMEOUT_ERROR, DSQL_CONNECT_TIMEOUT
from infra.sandbox.seed import LAMBDA_FUNCTION
from tests.fixtures.iam import lambda_dsql_grant  # noqa: F401 (r1's grant, so the login itself is allowed)
from tests.sandbox.helpers import aws, create_active_dsql_cluster


@pytest.fixture
def lambda_variables(sandbox):
    """The Lambda's variables, restored after the test whatever it changed."""
    lam = aws(sandbox, "lambda")
    before = lam.get_function_configuration(FunctionName=LAMBDA_FUNCTION)["Environment"]["Variables"]
    yield dict(before)
    lam.update_function_configuration(FunctionName=LAMBDA_FUNCTION, Environment={"Variables": before})


@pytest.fixture
def dsql_endpoint(sandbox):
    """What a migration gives the Lambda's VPC: the DSQL interface endpoint (removed afterwards if made here)."""
    ec2 = seed._client(sandbox.config, "ec2")  # the sandbox's own look at its account (VelaOps may not)
    before = {e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]}
    endpoint = seed.ensure_dsql_endpoint(sandbox.config)
    yield endpoint
    if endpoint not in before:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])


def point_lambda_at(sandbox, variables, cluster):
    """The direct-API runbook's repoint: the Lambda's variables, nothing in its VPC."""
    aws(sandbox, "lambda").update_function_configuration(
        FunctionName=LAMBDA_FUNCTION,
        Environment={
            "Variables": variables
            | {
                "DSQL_CLUSTER_ARN": cluster["arn"],
                "DSQL_ENDPOINT": dsql.cluster_endpoint(cluster["identifier"], "us-east-1"),
                "DSQL_REGION": "us-east-1",
            }
        },
    )


def test_without_dsql_variables_it_reports_degraded(sandbox, lambda_variables):
    response = requests.get(sandbox.config.health_url, timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "dsql": {"connected": False, "latencyMs": None, "clusterArn": None},
    }


@pytest.mark.usefixtures("lambda_dsql_grant")
def test_it_reports_the_cluster_the_lambda_is_pointed_at(sandbox, lambda_variables, dsql_endpoint):
    cluster = create_active_dsql_cluster(sandbox)
    point_lambda_at(sandbox, lambda_variables, cluster)
    payload = requests.get(sandbox.config.health_url, timeout=10).json()
    assert payload["status"] == "ok"
    assert payload["dsql"]["connected"] is True and payload["dsql"]["clusterArn"] == cluster["arn"]
    assert payload["dsql"]["latencyMs"] > 0

    sandbox.faults.update({"dsql_refuse": True})
    response = requests.get(sandbox.config.health_url, timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "error" and response.json()["dsql"]["connected"] is False


def test_health_fail_fault_answers_500(sandbox):
    sandbox.faults.update({"health_fail": True})
    response = requests.get(sandbox.config.health_url.replace("/dsql", ""), timeout=10)
    assert response.status_code == 500 and response.json()["status"] == "error"


def test_health_timeout_fault_outlasts_the_client(sandbox):
    sandbox.faults.update({"health_timeout": True})
    with pytest.raises(requests.Timeout):
        requests.get(sandbox.config.health_url, timeout=0.5)


def wait_for_health(sandbox, status: str, timeout: float = 30) -> tuple[requests.Response, float]:
    """The health route's answer once it is `status` (its network verdict is cached for a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        response = requests.get(sandbox.config.health_url, timeout=DSQL_CONNECT_TIMEOUT + 10)
        if response.json()["status"] == status or time.monotonic() > deadline:
            return response, time.monotonic() - started
        time.sleep(0.5)


def test_r0_vpc_without_the_dsql_endpoint_times_out_then_the_endpoint_opens_the_path(
    fresh_sandbox_environment, sandbox, lambda_variables, request
):
    request.getfixturevalue("lambda_dsql_grant")  # after the reseed, which would forget it
    # Vela's r0 VPC: private subnets, no NAT, no endpoint. The Lambda repointed by direct API cannot get out.
    cluster = create_active_dsql_cluster(sandbox)
    point_lambda_at(sandbox, lambda_variables, cluster)
    response, took = wait_for_health(sandbox, "error")
    assert response.status_code == 503
    assert response.json()["dsql"] == {
        "connected": False,
        "latencyMs": None,
        "clusterArn": cluster["arn"],
        "error": CONNECT_TIMEOUT_ERROR,
    }
    assert took >= DSQL_CONNECT_TIMEOUT - 0.5, "a dropped connection hangs until the handler's connect timeout"
    # The reason is for the rehearsing engineer, on the control endpoint, never in the Lambda's answer.
    path = control.get_network_path(sandbox.config.control_url)
    assert path["checked"] and not path["reachable"]
    assert "no interface VPC endpoint" in path["reason"]
    assert "default route to a NAT or transit gateway" in path["reason"]

    seed.ensure_dsql_endpoint(sandbox.config)
    response, _ = wait_for_health(sandbox, "ok")
    assert response.status_code == 200 and response.json()["dsql"]["connected"] is True
    assert control.get_network_path(sandbox.config.control_url)["path"] == "vpc-endpoint"


def test_revoking_the_endpoint_groups_5432_rule_blocks_the_health_route(
    fresh_sandbox_environment, sandbox, lambda_variables, request
):
    request.getfixturevalue("lambda_dsql_grant")  # after the reseed, which would forget it
    cluster = create_active_dsql_cluster(sandbox)
    point_lambda_at(sandbox, lambda_variables, cluster)
    seed.ensure_dsql_endpoint(sandbox.config)
    assert wait_for_health(sandbox, "ok")[0].status_code == 200

    sandbox.faults.update({"dsql_endpoint_sg_revoked": True})
    ec2 = seed._client(sandbox.config, "ec2")
    (group,) = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [seed.DSQL_ENDPOINT_GROUP]}])[
        "SecurityGroups"
    ]
    assert group["IpPermissions"] == [], "the fault revokes the rule in moto's state"
    response, _ = wait_for_health(sandbox, "error")
    assert response.json()["dsql"]["error"] == CONNECT_TIMEOUT_ERROR
    path = control.get_network_path(sandbox.config.control_url)
    assert "allow no ingress on TCP 5432" in path["reason"]

    sandbox.faults.update({"dsql_endpoint_sg_revoked": False})
    (group,) = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"]
    assert [p["FromPort"] for p in group["IpPermissions"]] == [5432]
    assert wait_for_health(sandbox, "ok")[0].status_code == 200


def test_the_seeded_endpoint_uses_the_service_name_dsql_answers(sandbox):
    cluster = create_active_dsql_cluster(sandbox)
    answered = aws(sandbox, "dsql").get_vpc_endpoint_service_name(identifier=cluster["identifier"])["serviceName"]
    assert seed.DSQL_ENDPOINT_SERVICE.format(region=sandbox.config.region) == answered
