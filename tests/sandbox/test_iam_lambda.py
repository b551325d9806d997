"""The Lambda's DSQL login: the health route signs as vela-api's execution role, and the DSQL endpoint lets it
in only when that role's policies allow dsql:DbConnectAdmin on the cluster's ARN."""

from __future__ import annotations

import json

import pytest
import requests

from dashboard import dsql
from infra.sandbox import seed
from infra.sandbox.seed import LAMBDA_FUNCTION
from tests.fixtures.iam import LAMBDA_ROLE, admin_client
from tests.sandbox.helpers import create_active_dsql_cluster

GRANT = "test-dsql-login"


@pytest.fixture
def pointed_lambda(sandbox, fresh_sandbox_environment):
    """vela-api pointed at a new ACTIVE cluster in a freshly seeded account (earlier tests change its network
    and the role), its variables and the role's test grant restored after."""
    lam = admin_client(sandbox.config.moto_url, "lambda")
    before = lam.get_function_configuration(FunctionName=LAMBDA_FUNCTION)["Environment"]["Variables"]
    ensure_path = getattr(seed, "ensure_dsql_endpoint", None)
    if ensure_path is not None:  # where the health route checks the network path, the endpoint opens it
        ensure_path(sandbox.config)
    cluster = create_active_dsql_cluster(sandbox)
    variables = before | {
        "DSQL_CLUSTER_ARN": cluster["arn"],
        "DSQL_ENDPOINT": dsql.cluster_endpoint(cluster["identifier"], sandbox.config.region),
        "DSQL_REGION": sandbox.config.region,
    }
    lam.update_function_configuration(FunctionName=LAMBDA_FUNCTION, Environment={"Variables": variables})
    yield cluster
    lam.update_function_configuration(FunctionName=LAMBDA_FUNCTION, Environment={"Variables": before})
    iam = admin_client(sandbox.config.moto_url, "iam")
    if GRANT in iam.list_role_policies(RoleName=LAMBDA_ROLE)["PolicyNames"]:
        iam.delete_role_policy(RoleName=LAMBDA_ROLE, PolicyName=GRANT)


def grant(sandbox, resource: str, effect: str = "Allow") -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": "dsql:DbConnect*", "Resource": resource}],
    }
    admin_client(sandbox.config.moto_url, "iam").put_role_policy(
        RoleName=LAMBDA_ROLE, PolicyName=GRANT, PolicyDocument=json.dumps(document)
    )


def health(sandbox) -> tuple[int, dict]:
    response = requests.get(sandbox.config.health_url, timeout=20)
    return response.status_code, response.json()["dsql"]


def test_the_lambda_role_without_the_dsql_grant_is_refused(sandbox, pointed_lambda):
    # r0's vela-api-role may read its tables and secret; it has no DSQL grant.
    status, answer = health(sandbox)
    assert status == 503 and answer["connected"] is False
    assert "unable to accept connection, access denied" in answer["error"]
    assert 'IAM authentication failed for user "admin"' in answer["error"]
    assert (
        f"assumed-role/{LAMBDA_ROLE}/{LAMBDA_FUNCTION} is not authorized to perform: dsql:DbConnectAdmin"
        in (answer["error"])
    )


def test_the_grant_is_evaluated_on_the_clusters_arn(sandbox, pointed_lambda):
    arn = pointed_lambda["arn"]
    grant(sandbox, arn.rsplit("/", 1)[0] + "/someothercluster")
    assert health(sandbox)[0] == 503  # another cluster's grant does not count

    grant(sandbox, arn)
    status, answer = health(sandbox)
    assert (status, answer["connected"], answer["clusterArn"]) == (200, True, arn)

    grant(sandbox, arn.rsplit("/", 1)[0] + "/*")  # the wildcard r1's ApiStack would not need, but may use
    assert health(sandbox)[0] == 200


def test_an_explicit_deny_beats_the_grant(sandbox, pointed_lambda):
    grant(sandbox, pointed_lambda["arn"])
    assert health(sandbox)[0] == 200
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dsql:*", "Resource": "*"}]}
    iam = admin_client(sandbox.config.moto_url, "iam")
    arn = iam.create_policy(PolicyName="deny-dsql-test", PolicyDocument=json.dumps(deny))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=LAMBDA_ROLE, PolicyArn=arn)
    try:
        assert health(sandbox)[0] == 503
    finally:
        iam.detach_role_policy(RoleName=LAMBDA_ROLE, PolicyArn=arn)
        iam.delete_policy(PolicyArn=arn)
