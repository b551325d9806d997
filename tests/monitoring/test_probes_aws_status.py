"""Aurora and DynamoDB probes against the sandbox's seeded account."""

import pytest

from dashboard.models import ProbeKind, Target
from dashboard.monitoring.probes import run_probe
from infra.sandbox.seed import AURORA_CLUSTER
from tests.sandbox.helpers import aws

pytestmark = pytest.mark.django_db


def target(environment, kind, name, **fields) -> Target:
    found, _ = Target.objects.update_or_create(environment=environment, kind=kind, name=name, defaults=fields)
    return found


@pytest.fixture
def stopped_aurora(sandbox):
    rds = aws(sandbox, "rds")
    rds.stop_db_cluster(DBClusterIdentifier=AURORA_CLUSTER)
    yield
    rds.start_db_cluster(DBClusterIdentifier=AURORA_CLUSTER)


def test_an_available_aurora_cluster_is_up(sandbox_environment):
    outcome = run_probe(target(sandbox_environment, ProbeKind.AURORA, AURORA_CLUSTER))
    assert outcome.ok is True, outcome.error
    assert outcome.latency_ms > 0
    assert outcome.details == {"status": "available", "members": 1}


def test_a_stopped_aurora_cluster_is_down_and_says_its_status(sandbox_environment, stopped_aurora):
    outcome = run_probe(target(sandbox_environment, ProbeKind.AURORA, AURORA_CLUSTER))
    assert outcome.ok is False
    assert outcome.error == "the cluster is stopped, not available"
    assert outcome.details["status"] == "stopped"
    assert outcome.latency_ms > 0  # RDS answered


def test_a_missing_aurora_cluster_is_down(sandbox_environment):
    outcome = run_probe(target(sandbox_environment, ProbeKind.AURORA, "vela-gone"))
    assert outcome.ok is False
    assert outcome.error.startswith("DBClusterNotFoundFault: ") and "vela-gone" in outcome.error
    assert outcome.details["aws_error_code"] == "DBClusterNotFoundFault"
    assert outcome.latency_ms > 0


@pytest.mark.parametrize("table", ["vela-users", "vela-sessions", "vela-content"])
def test_an_active_table_is_up(sandbox_environment, table):
    outcome = run_probe(target(sandbox_environment, ProbeKind.DYNAMODB, table))
    assert outcome.ok is True, outcome.error
    assert outcome.details == {"status": "ACTIVE"}
    assert outcome.latency_ms > 0


def test_a_missing_table_is_down(sandbox_environment):
    outcome = run_probe(target(sandbox_environment, ProbeKind.DYNAMODB, "vela-gone"))
    assert outcome.ok is False
    assert outcome.error.startswith("ResourceNotFoundException: ")
    assert outcome.details["aws_error_code"] == "ResourceNotFoundException"


def test_an_unreachable_aws_endpoint_fails_without_a_latency(sandbox_environment):
    sandbox_environment.aws_endpoint_url = "http://127.0.0.1:9"  # discard port: nothing listens
    sandbox_environment.save()
    outcome = run_probe(target(sandbox_environment, ProbeKind.DYNAMODB, "vela-users", timeout_seconds=2))
    assert outcome.ok is False
    assert outcome.error.startswith("EndpointConnectionError: ")
    assert outcome.latency_ms is None and outcome.details["elapsed_ms"] < 2000


def test_an_unknown_kind_is_a_failed_probe_not_an_exception(sandbox_environment):
    odd = Target(environment=sandbox_environment, kind="ftp", name="x")
    outcome = run_probe(odd)
    assert outcome.ok is False and "no probe for targets of kind 'ftp'" in outcome.error


def test_a_bug_in_a_probe_is_a_failed_probe_not_an_exception(sandbox_environment, monkeypatch, caplog):
    from dashboard.monitoring import probes

    def broken(target):
        raise KeyError("secret-looking detail")

    monkeypatch.setitem(probes.PROBES, ProbeKind.DYNAMODB, broken)
    outcome = run_probe(target(sandbox_environment, ProbeKind.DYNAMODB, "vela-users"))
    assert outcome.ok is False
    assert outcome.error == "the probe itself failed (KeyError); see the worker's log"
    assert "secret-looking" not in repr(outcome)
    assert "KeyError" in caplog.text
