"""A second sandbox started beside a running one adopts it: no port clash, nothing re-seeded over a rehearsal."""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import replace

import pytest

from infra.sandbox.control import get_state
from infra.sandbox.faults import Faults
from infra.sandbox.moto_server import is_answering
from infra.sandbox.runner import Sandbox
from infra.sandbox.seed import LAMBDA_FUNCTION
from tests.sandbox.helpers import aws


def test_moto_counts_as_answering_once_the_lambda_exists(sandbox):
    # The seeded Lambda made moto's /moto-api/data.json answer 500 (it serialises the function's
    # docker_client property, which needs a Docker daemon), so a running moto looked absent.
    assert aws(sandbox, "lambda").get_function_configuration(FunctionName=LAMBDA_FUNCTION)
    assert is_answering(sandbox.config.moto_url)


def test_the_control_endpoint_says_which_sandbox_serves_the_ports(sandbox):
    state = get_state(sandbox.config.control_url)["sandbox"]
    assert state["pid"] == os.getpid()
    assert state["moto_url"] == sandbox.config.moto_url
    assert state["dsql_port"] == sandbox.config.dsql_port
    assert state["dsql_database"] == sandbox.config.dsql_database


@pytest.fixture
def rehearsal_variable(sandbox):
    """A change a rehearsal made to the Lambda's variables, undone afterwards."""
    lam = aws(sandbox, "lambda")
    before = lam.get_function_configuration(FunctionName=LAMBDA_FUNCTION)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=LAMBDA_FUNCTION, Environment={"Variables": {**before, "REHEARSAL": "kept"}}
    )
    yield
    lam.update_function_configuration(FunctionName=LAMBDA_FUNCTION, Environment={"Variables": before})


def test_a_second_sandbox_adopts_the_running_one(sandbox, rehearsal_variable):
    second = Sandbox(sandbox.config)
    account = second.start()  # before the fix: a second moto on the same port, "moto exited with code 1"
    try:
        assert second.adopted["pid"] == os.getpid()
        assert second.moto.adopted
        assert account.function_arn.endswith(f":function:{LAMBDA_FUNCTION}")
        assert any(label == "adopted" for label, _ in second.describe())
    finally:
        second.stop()
    # Seeding looked before it created: the rehearsal's change is still there.
    variables = aws(sandbox, "lambda").get_function_configuration(FunctionName=LAMBDA_FUNCTION)["Environment"]
    assert variables["Variables"]["REHEARSAL"] == "kept"
    # Stopping the adopter stopped nothing of the running sandbox.
    assert is_answering(sandbox.config.moto_url)
    assert get_state(sandbox.config.control_url)["sandbox"]["pid"] == os.getpid()
    with urllib.request.urlopen(sandbox.config.health_url, timeout=10) as response:
        assert json.loads(response.read())["status"] in {"ok", "degraded"}


def test_an_adopting_sandbox_sets_its_faults_on_the_running_one(sandbox):
    second = Sandbox(sandbox.config, Faults(dsql_latency_ms=25))
    second.start()
    second.stop()
    assert sandbox.faults.current.dsql_latency_ms == 25


def test_a_sandbox_set_up_differently_on_the_ports_is_not_adopted(sandbox):
    other = Sandbox(replace(sandbox.config, dsql_database="vela_dsql_elsewhere"))
    with pytest.raises(RuntimeError, match=r"another sandbox .*different dsql_database"):
        other.start()
    assert is_answering(sandbox.config.moto_url)


def test_reset_beside_a_running_sandbox_is_refused(sandbox):
    with pytest.raises(RuntimeError, match="stop it before --reset"):
        Sandbox(sandbox.config).start(reset=True)
    assert get_state(sandbox.config.control_url)["sandbox"]["pid"] == os.getpid()
