"""The Lambda configuration audit and the API health probe (by URL and by invoke).

moto's Lambda without Docker (the "simple" backend) answers an invoke with the next result queued at
/moto-api/static/lambda-simple/response (else it echoes the request's payload), and never with a log
tail or a function error. So the payload path runs through moto, and LogResult and FunctionError come
from a small stand-in Invoke endpoint that answers with the headers Lambda sends.
"""

import base64
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests

from dashboard import dsql
from dashboard.models import Environment, HealthMethod, ProbeKind, Target
from dashboard.monitoring.probes import run_probe
from dashboard.monitoring.probes.api_health import api_gateway_event, reading_from_proxy_result
from dashboard.monitoring.probes.lambda_config import audit
from infra.sandbox.seed import LAMBDA_FUNCTION, ensure_dsql_endpoint
from tests.fixtures.aws import free_port
from tests.fixtures.iam import lambda_dsql_grant  # noqa: F401  (fixture)
from tests.sandbox.helpers import aws, create_active_dsql_cluster

pytestmark = pytest.mark.django_db


def target(environment, kind, name, **fields) -> Target:
    found, _ = Target.objects.update_or_create(environment=environment, kind=kind, name=name, defaults=fields)
    return found


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_active_dsql_cluster(sandbox)


@pytest.fixture
def lambda_configuration(sandbox):
    """The seeded Lambda's variables and VPC, restored after the test whatever it changed."""
    lam = aws(sandbox, "lambda")
    before = lam.get_function_configuration(FunctionName=LAMBDA_FUNCTION)
    yield before
    lam.update_function_configuration(
        FunctionName=LAMBDA_FUNCTION,
        Environment=before["Environment"],
        VpcConfig={key: before["VpcConfig"][key] for key in ("SubnetIds", "SecurityGroupIds")},
    )


def point_lambda(sandbox, variables, **dsql_variables):
    aws(sandbox, "lambda").update_function_configuration(
        FunctionName=LAMBDA_FUNCTION, Environment={"Variables": {**variables, **dsql_variables}}
    )


def pointed_at(cluster, region="us-east-1"):
    return {
        "DSQL_CLUSTER_ARN": cluster["arn"],
        "DSQL_ENDPOINT": dsql.cluster_endpoint(cluster["identifier"], region),
        "DSQL_REGION": region,
    }


@pytest.fixture
def dsql_path(sandbox):
    """What AWS needs for the Lambda's DSQL login to arrive: the interface endpoint r1 adds (made here when
    missing, and then removed afterwards)."""
    ec2 = aws(sandbox, "ec2")
    before = {e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]}
    endpoint = ensure_dsql_endpoint(sandbox.config)
    yield endpoint
    if endpoint not in before:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])


@pytest.fixture
def migrated(sandbox, sandbox_environment, cluster, lambda_configuration):
    """The environment and its Lambda both on the cluster, as after the runbook's point_lambda step."""
    point_lambda(sandbox, lambda_configuration["Environment"]["Variables"], **pointed_at(cluster))
    sandbox_environment.dsql_cluster_identifier = cluster["identifier"]
    sandbox_environment.save()
    return sandbox_environment


# -- Lambda configuration audit ---------------------------------------------------------------------


def test_a_function_pointed_at_the_current_cluster_passes_every_check(migrated, cluster):
    outcome = run_probe(target(migrated, ProbeKind.LAMBDA_CONFIG, LAMBDA_FUNCTION))
    assert outcome.ok is True, outcome.error
    assert outcome.error == ""
    assert outcome.latency_ms > 0
    checks = outcome.details["checks"]
    assert set(checks) == {"state", "last_update", "vpc", "dsql_endpoint", "dsql_region", "dsql_cluster_arn"}
    assert all(check["ok"] for check in checks.values())
    assert checks["dsql_endpoint"]["found"] == f"{cluster['identifier']}.dsql.us-east-1.on.aws"
    assert outcome.details["dsql_variables"] == pointed_at(cluster)


def test_only_the_dsql_variables_leave_aws(migrated, lambda_configuration):
    outcome = run_probe(target(migrated, ProbeKind.LAMBDA_CONFIG, LAMBDA_FUNCTION))
    shown = json.dumps(outcome.details) + outcome.error
    others = {k: v for k, v in lambda_configuration["Environment"]["Variables"].items() if not k.startswith("DSQL_")}
    assert others  # the seed's AURORA_SECRET_ARN and friends
    for name, value in others.items():
        assert name not in shown and value not in shown


def test_without_a_cluster_the_variables_are_reported_not_judged(sandbox_environment, lambda_configuration):
    assert sandbox_environment.dsql_cluster_identifier == ""
    outcome = run_probe(target(sandbox_environment, ProbeKind.LAMBDA_CONFIG, LAMBDA_FUNCTION))
    assert outcome.ok is True, outcome.error
    assert set(outcome.details["checks"]) == {"state", "last_update", "vpc"}
    assert outcome.details["dsql_variables"] == {"DSQL_CLUSTER_ARN": None, "DSQL_ENDPOINT": None, "DSQL_REGION": None}


def test_a_function_still_on_another_cluster_fails_each_dsql_check(sandbox, migrated, cluster, lambda_configuration):
    variables = lambda_configuration["Environment"]["Variables"]
    point_lambda(
        sandbox,
        variables,
        DSQL_CLUSTER_ARN="arn:aws:dsql:us-east-2:123456789012:cluster/oldcluster",
        DSQL_ENDPOINT="oldcluster.dsql.us-east-2.on.aws",
        DSQL_REGION="us-east-2",
    )
    outcome = run_probe(target(migrated, ProbeKind.LAMBDA_CONFIG, LAMBDA_FUNCTION))
    assert outcome.ok is False
    checks = outcome.details["checks"]
    assert [name for name, check in checks.items() if not check["ok"]] == [
        "dsql_endpoint",
        "dsql_region",
        "dsql_cluster_arn",
    ]
    endpoint = f"{cluster['identifier']}.dsql.us-east-1.on.aws"
    assert outcome.error == (
        f"DSQL_ENDPOINT is 'oldcluster.dsql.us-east-2.on.aws', expected '{endpoint}'; "
        "DSQL_REGION is 'us-east-2', expected 'us-east-1'; "
        "DSQL_CLUSTER_ARN is 'arn:aws:dsql:us-east-2:123456789012:cluster/oldcluster', "
        f"expected '…cluster/{cluster['identifier']}'"
    )


@pytest.mark.parametrize(
    ("variable", "value", "failed"),
    [
        ("DSQL_ENDPOINT", None, "DSQL_ENDPOINT is not set"),
        ("DSQL_REGION", "us-west-2", "DSQL_REGION is 'us-west-2'"),
        ("DSQL_CLUSTER_ARN", "arn:aws:dsql:us-east-1:123456789012:cluster/other", "DSQL_CLUSTER_ARN is 'arn:"),
    ],
)
def test_each_dsql_variable_is_checked_on_its_own(
    sandbox, migrated, cluster, lambda_configuration, variable, value, failed
):
    variables = {**lambda_configuration["Environment"]["Variables"], **pointed_at(cluster)}
    variables.pop(variable)
    point_lambda(sandbox, variables, **({variable: value} if value else {}))
    outcome = run_probe(target(migrated, ProbeKind.LAMBDA_CONFIG, LAMBDA_FUNCTION))
    assert outcome.ok is False
    assert outcome.error.startswith(failed) and ";" not in outcome.error
    assert [name for name, check in outcome.details["checks"].items() if not check["ok"]] == [
        {"DSQL_ENDPOINT": "dsql_endpoint", "DSQL_REGION": "dsql_region", "DSQL_CLUSTER_ARN": "dsql_cluster_arn"}[
            variable
        ]
    ]


def test_a_function_outside_its_vpc_fails(sandbox, migrated, lambda_configuration):
    aws(sandbox, "lambda").update_function_configuration(
        FunctionName=LAMBDA_FUNCTION, VpcConfig={"SubnetIds": [], "SecurityGroupIds": []}
    )
    outcome = run_probe(target(migrated, ProbeKind.LAMBDA_CONFIG, LAMBDA_FUNCTION))
    assert outcome.ok is False
    assert outcome.error == "the function is not in a VPC"
    assert outcome.details["checks"]["vpc"] == {
        "ok": False,
        "found": "0 subnets, 0 security groups",
        "expected": "at least one subnet and one security group",
    }


def test_a_missing_function_fails_with_the_aws_error(sandbox_environment):
    outcome = run_probe(target(sandbox_environment, ProbeKind.LAMBDA_CONFIG, "vela-gone"))
    assert outcome.ok is False
    assert outcome.error.startswith("ResourceNotFoundException: ") and "vela-gone" in outcome.error


# moto always reports State=Active and LastUpdateStatus=Successful: those checks run on Lambda's own shapes.
ACTIVE_IN_VPC = {
    "State": "Active",
    "LastUpdateStatus": "Successful",
    "VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"], "VpcId": "vpc-1"},
}


def problems(configuration, environment):
    return [check.problem for check in audit(configuration, environment) if not check.ok]


def test_a_function_pending_or_failed_fails_its_state_checks(sandbox_environment):
    assert problems(ACTIVE_IN_VPC, sandbox_environment) == []
    never_updated = {k: v for k, v in ACTIVE_IN_VPC.items() if k != "LastUpdateStatus"}
    assert problems(never_updated, sandbox_environment) == []
    pending = {**ACTIVE_IN_VPC, "State": "Pending", "LastUpdateStatus": "InProgress"}
    assert problems(pending, sandbox_environment) == [
        "the function is Pending, not Active",
        "the last update is InProgress",
    ]
    failed = {
        **ACTIVE_IN_VPC,
        "LastUpdateStatus": "Failed",
        "LastUpdateStatusReason": "Lambda was unable to create an ENI",
    }
    assert problems(failed, sandbox_environment) == ["the last update is Failed: Lambda was unable to create an ENI"]
    half_vpc = {**ACTIVE_IN_VPC, "VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": []}}
    assert problems(half_vpc, sandbox_environment) == [
        "the function's VPC configuration has 1 subnets and 0 security groups; it needs at least one of each"
    ]


# -- API health by URL --------------------------------------------------------------------------------


def health_target(environment, url, **fields):
    return target(environment, ProbeKind.API_HEALTH, url, health_method=HealthMethod.URL, **fields)


def test_the_health_url_is_up_when_the_api_reaches_dsql(sandbox, migrated, cluster, dsql_path, lambda_dsql_grant):  # noqa: F811
    outcome = run_probe(health_target(migrated, sandbox.config.health_url))
    assert outcome.ok is True, outcome.error
    assert outcome.latency_ms > 0
    assert outcome.phases["dsql"] > 0 and outcome.latency_ms > outcome.phases["dsql"]
    assert outcome.details == {
        "http_status": 200,
        "status": "ok",
        "dsql_connected": True,
        "cluster_arn": cluster["arn"],
        "dsql_expected": True,
    }


def test_before_the_environment_has_dsql_an_api_serving_without_it_is_up(sandbox, sandbox_environment):
    outcome = run_probe(health_target(sandbox_environment, sandbox.config.health_url))
    assert outcome.ok is True and outcome.error == ""
    assert outcome.details["status"] == "degraded" and outcome.details["dsql_expected"] is False


def test_once_the_environment_has_dsql_an_api_without_it_is_down(
    sandbox, sandbox_environment, cluster, lambda_configuration
):
    # The environment names a cluster, but the Lambda was never pointed at it.
    sandbox_environment.dsql_cluster_identifier = cluster["identifier"]
    sandbox_environment.save()
    outcome = run_probe(health_target(sandbox_environment, sandbox.config.health_url))
    assert outcome.ok is False
    assert outcome.error == "status degraded, DSQL not connected"
    assert outcome.details["http_status"] == 200


def test_the_health_url_answering_503_is_down_with_the_routes_reason(sandbox, migrated):
    sandbox.faults.update({"dsql_refuse": True})
    outcome = run_probe(health_target(migrated, sandbox.config.health_url))
    assert outcome.ok is False
    assert outcome.error.startswith("HTTP 503, status error, DSQL not connected, ")
    assert outcome.details["http_status"] == 503
    assert outcome.latency_ms > 0  # the route answered


def test_the_health_url_answering_500_is_down(sandbox, sandbox_environment):
    sandbox.faults.update({"health_fail": True})
    outcome = run_probe(health_target(sandbox_environment, sandbox.config.health_url))
    assert outcome.ok is False
    assert outcome.error == "HTTP 500, status error, DSQL not connected, injected fault"


def test_an_unreachable_health_url_is_down_without_a_latency(sandbox_environment):
    outcome = run_probe(health_target(sandbox_environment, f"http://127.0.0.1:{free_port()}/health/dsql"))
    assert outcome.ok is False
    assert "refused" in outcome.error.lower()
    assert outcome.latency_ms is None and outcome.details["elapsed_ms"] >= 0


def test_a_health_url_that_hangs_fails_at_the_targets_timeout(sandbox, sandbox_environment):
    sandbox.faults.update({"health_timeout": True})
    outcome = run_probe(health_target(sandbox_environment, sandbox.config.health_url, timeout_seconds=1))
    assert outcome.ok is False
    assert "timed out" in outcome.error
    assert outcome.latency_ms is None
    assert 900 < outcome.details["elapsed_ms"] < 3000


# -- API health by invoke -----------------------------------------------------------------------------


def test_the_event_is_an_api_gateway_rest_proxy_event(sandbox_environment):
    event = api_gateway_event("/health/dsql?deep=1&tag=a&tag=b", sandbox_environment)
    assert event["httpMethod"] == "GET" and event["path"] == event["resource"] == "/health/dsql"
    assert event["queryStringParameters"] == {"deep": "1", "tag": "b"}
    assert event["multiValueQueryStringParameters"] == {"deep": ["1"], "tag": ["a", "b"]}
    assert event["requestContext"]["accountId"] == sandbox_environment.account_id
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert api_gateway_event("/health", sandbox_environment)["queryStringParameters"] is None


def test_a_proxy_result_body_may_be_base64():
    body = base64.b64encode(json.dumps({"status": "ok", "dsql": {"connected": True, "latencyMs": 4}}).encode())
    payload = json.dumps({"statusCode": 200, "body": body.decode(), "isBase64Encoded": True}).encode()
    reading = reading_from_proxy_result(payload, 10.0)
    assert (reading.ok, reading.dsql_latency_ms) == (True, 4.0)
    assert (
        reading_from_proxy_result(b'{"statusCode": 200, "body": "<html>"}', 1).error == "the response body is not JSON"
    )
    assert reading_from_proxy_result(b"[1]", 1).error == "the function's answer is not an API Gateway proxy result"


@pytest.fixture
def moto_lambda(moto_url, db):
    """An environment on the test's own moto, with a function, and moto's Lambda set to run without Docker
    (a server-wide setting, put back afterwards)."""
    config_url = f"{moto_url}/moto-api/config"
    previous = requests.get(config_url, timeout=10).json()["lambda"]
    requests.post(config_url, json={"lambda": {"use_docker": False}}, timeout=10).raise_for_status()
    kwargs = {"region_name": "us-east-1", "endpoint_url": moto_url}
    role = boto3.client("iam", **kwargs).create_role(RoleName="vela-api-role", AssumeRolePolicyDocument="{}")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("index.js", "exports.handler = async () => ({});")
    boto3.client("lambda", **kwargs).create_function(
        FunctionName="vela-api",
        Runtime="nodejs20.x",
        Handler="index.handler",
        Role=role["Role"]["Arn"],
        Code={"ZipFile": archive.getvalue()},
    )
    environment = Environment.objects.create(
        name="Moto", slug="moto", region="us-east-1", account_id="123456789012", aws_endpoint_url=moto_url
    )
    yield environment
    requests.post(config_url, json={"lambda": previous}, timeout=10).raise_for_status()


def queue_invoke_results(moto_url, *results):
    response = requests.post(
        f"{moto_url}/moto-api/static/lambda-simple/response",
        json={"results": [json.dumps(result) for result in results], "region": "us-east-1"},
        timeout=10,
    )
    response.raise_for_status()


def invoke_target(environment, name="vela-api", **fields):
    return target(environment, ProbeKind.API_HEALTH, name, health_method=HealthMethod.INVOKE, **fields)


def proxy_result(status_code, payload):
    return {"statusCode": status_code, "headers": {"Content-Type": "application/json"}, "body": json.dumps(payload)}


HEALTHY = {"status": "ok", "dsql": {"connected": True, "latencyMs": 7.5, "clusterArn": "arn:aws:dsql:x:1:cluster/c"}}


def test_an_invoked_health_route_that_answers_ok_is_up(moto_url, moto_lambda):
    queue_invoke_results(moto_url, proxy_result(200, HEALTHY))
    outcome = run_probe(invoke_target(moto_lambda))
    assert outcome.ok is True, outcome.error
    assert outcome.latency_ms > 0
    assert outcome.phases == {"dsql": 7.5}
    assert outcome.cold_start is None  # moto sends no log tail
    assert outcome.details["log_report"] is False
    assert outcome.details["cluster_arn"] == "arn:aws:dsql:x:1:cluster/c"
    assert outcome.details["request_id"]


def test_an_invoked_health_route_answering_503_is_down(moto_url, moto_lambda):
    failing = {"status": "error", "dsql": {"connected": False, "latencyMs": None, "error": "access denied"}}
    queue_invoke_results(moto_url, proxy_result(503, failing))
    outcome = run_probe(invoke_target(moto_lambda))
    assert outcome.ok is False
    assert outcome.error == "HTTP 503, status error, DSQL not connected, access denied"
    assert outcome.details["http_status"] == 503


def test_an_answer_that_is_not_a_proxy_result_is_down(moto_url, moto_lambda):
    # With nothing queued, moto echoes the request: the probe's own event comes back.
    outcome = run_probe(invoke_target(moto_lambda))
    assert outcome.ok is False
    assert outcome.error == "the function's answer is not an API Gateway proxy result"


class FakeLambda(BaseHTTPRequestHandler):
    """Lambda's Invoke as the wire carries it: the payload, and the log tail and error in headers."""

    answers: list[tuple[int, dict[str, str], bytes]] = []
    received: list[tuple[dict[str, str], dict]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), json.loads(body)))
        status, headers, payload = type(self).answers.pop(0)
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_lambda(db):
    FakeLambda.answers, FakeLambda.received = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLambda)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Environment.objects.create(
        name="Fake",
        slug="fake",
        region="us-east-1",
        account_id="123456789012",
        aws_endpoint_url=f"http://127.0.0.1:{server.server_port}",
    )
    server.shutdown()
    server.server_close()


def log_tail(*lines):
    return base64.b64encode(("\n".join(lines) + "\n").encode()).decode()


REQUEST = "c0ffee00-1111-2222-3333-444455556666"


def test_a_cold_invoke_reports_its_duration_init_and_memory(fake_lambda):
    tail = log_tail(
        f"START RequestId: {REQUEST} Version: $LATEST",
        f"END RequestId: {REQUEST}",
        f"REPORT RequestId: {REQUEST}\tDuration: 41.20 ms\tBilled Duration: 42 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 96 MB\tInit Duration: 310.55 ms\t",
    )
    FakeLambda.answers.append((200, {"X-Amz-Log-Result": tail}, json.dumps(proxy_result(200, HEALTHY)).encode()))
    outcome = run_probe(invoke_target(fake_lambda, health_path="/health/dsql?deep=1"))
    assert outcome.ok is True, outcome.error
    assert outcome.cold_start is True
    assert outcome.phases == {"duration": 41.2, "init": 310.55, "dsql": 7.5}
    assert outcome.details["billed_ms"] == 42.0
    assert (outcome.details["memory_size_mb"], outcome.details["max_memory_used_mb"]) == (512.0, 96.0)
    assert outcome.details["lambda_request_id"] == REQUEST
    headers, event = FakeLambda.received[0]
    assert headers["X-Amz-Log-Type"] == "Tail"
    assert event["path"] == "/health/dsql" and event["queryStringParameters"] == {"deep": "1"}


def test_a_warm_invoke_is_not_a_cold_start(fake_lambda):
    tail = log_tail(f"REPORT RequestId: {REQUEST}\tDuration: 5.00 ms\tBilled Duration: 5 ms\tMemory Size: 512 MB\t")
    FakeLambda.answers.append((200, {"X-Amz-Log-Result": tail}, json.dumps(proxy_result(200, HEALTHY)).encode()))
    outcome = run_probe(invoke_target(fake_lambda))
    assert outcome.cold_start is False and outcome.phases == {"duration": 5.0, "dsql": 7.5}


def test_a_function_error_is_down_with_its_message_not_its_trace(fake_lambda):
    tail = log_tail(
        f"REPORT RequestId: {REQUEST}\tDuration: 12.00 ms\tBilled Duration: 12 ms\tMemory Size: 512 MB\t"
        "Max Memory Used: 80 MB\tInit Duration: 250.00 ms\tStatus: error\tError Type: Runtime.UnhandledError"
    )
    error = {
        "errorType": "Error",
        "errorMessage": "DSQL_ENDPOINT is not set",
        "trace": ["Error: DSQL_ENDPOINT is not set", "    at handler (/var/task/index.js:3:9)"],
    }
    FakeLambda.answers.append(
        (200, {"X-Amz-Function-Error": "Unhandled", "X-Amz-Log-Result": tail}, json.dumps(error).encode())
    )
    outcome = run_probe(invoke_target(fake_lambda))
    assert outcome.ok is False
    assert outcome.error == "the function failed (Unhandled): Error: DSQL_ENDPOINT is not set"
    assert "index.js" not in repr(outcome)
    assert outcome.cold_start is True and outcome.phases == {"duration": 12.0, "init": 250.0}
    assert outcome.details["lambda_error_type"] == "Runtime.UnhandledError"
    assert outcome.latency_ms > 0


def test_invoking_a_missing_function_fails_with_the_aws_error(fake_lambda):
    # moto's Lambda without Docker answers an invoke of any name, so Lambda's 404 comes from the stand-in.
    missing = {
        "Type": "User",
        "message": "Function not found: arn:aws:lambda:us-east-1:123456789012:function:vela-gone",
    }
    FakeLambda.answers.append(
        (
            404,
            {"X-Amzn-ErrorType": "ResourceNotFoundException", "X-Amzn-RequestId": "req-404"},
            json.dumps(missing).encode(),
        )
    )
    outcome = run_probe(invoke_target(fake_lambda, name="vela-gone"))
    assert outcome.ok is False
    assert outcome.error == (
        "ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:123456789012:function:vela-gone"
    )
    assert outcome.details["request_id"] == "req-404"
    assert outcome.latency_ms > 0  # Lambda answered, with an error
