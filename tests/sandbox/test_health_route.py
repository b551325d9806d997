"""The stand-in for the API's DSQL health route follows the Lambda's environment variables."""

import pytest
import requests

from dashboard import dsql
from infra.sandbox.seed import LAMBDA_FUNCTION
from tests.sandbox.helpers import aws, create_active_dsql_cluster


@pytest.fixture
def lambda_variables(sandbox):
    """The Lambda's variables, restored after the test whatever it changed."""
    lam = aws(sandbox, "lambda")
    before = lam.get_function_configuration(FunctionName=LAMBDA_FUNCTION)["Environment"]["Variables"]
    yield dict(before)
    lam.update_function_configuration(FunctionName=LAMBDA_FUNCTION, Environment={"Variables": before})


def test_without_dsql_variables_it_reports_degraded(sandbox, lambda_variables):
    response = requests.get(sandbox.config.health_url, timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "dsql": {"connected": False, "latencyMs": None, "clusterArn": None},
    }


def test_it_reports_the_cluster_the_lambda_is_pointed_at(sandbox, lambda_variables):
    cluster = create_active_dsql_cluster(sandbox)
    variables = lambda_variables | {
        "DSQL_CLUSTER_ARN": cluster["arn"],
        "DSQL_ENDPOINT": dsql.cluster_endpoint(cluster["identifier"], "us-east-1"),
        "DSQL_REGION": "us-east-1",
    }
    aws(sandbox, "lambda").update_function_configuration(
        FunctionName=LAMBDA_FUNCTION, Environment={"Variables": variables}
    )
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
