"""DSQL cluster states past CREATING/ACTIVE (infra/sandbox/dsql_lifecycle.py), in moto over HTTP and through
the sandbox's DSQL endpoint: IDLE and INACTIVE after quiet time, woken by a login; UPDATING with its
ConflictException; PENDING_SETUP until a multi-Region cluster is peered."""

from __future__ import annotations

import time

import boto3
import psycopg
import pytest
import requests

from dashboard import dsql
from infra.sandbox import dsql_lifecycle
from tests.sandbox.helpers import aws, create_active_dsql_cluster


def _client(moto_url: str):
    return boto3.client(
        "dsql",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


@pytest.fixture
def moto_dsql(moto_url):
    """In-process moto with clusters ACTIVE at once and the lifecycle settings put back afterwards."""
    requests.post(
        f"{moto_url}/moto-api/state-manager/set-transition",
        json={"model_name": "dsql::cluster", "transition": {"progression": "immediate"}},
        timeout=5,
    ).raise_for_status()
    before = dsql_lifecycle.current(moto_url)
    yield _client(moto_url), moto_url
    dsql_lifecycle.configure(moto_url, **before)


def wait_for_status(client, identifier: str, wanted: str, timeout: float = 10) -> float:
    started = time.monotonic()
    while (status := client.get_cluster(identifier=identifier)["status"]) != wanted:
        assert time.monotonic() - started < timeout, f"still {status}, never {wanted}"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_quiet_cluster_goes_idle_then_inactive(moto_dsql):
    client, moto_url = moto_dsql
    dsql_lifecycle.configure(moto_url, idle_seconds=1, inactive_seconds=2.5)
    identifier = client.create_cluster(deletionProtectionEnabled=False)["identifier"]
    assert client.get_cluster(identifier=identifier)["status"] == "ACTIVE"
    wait_for_status(client, identifier, "IDLE", timeout=3)
    wait_for_status(client, identifier, "INACTIVE", timeout=3)


def test_update_cluster_is_updating_for_a_while_and_conflicting_calls_get_conflict_exception(moto_dsql):
    client, moto_url = moto_dsql
    dsql_lifecycle.configure(moto_url, updating_seconds=1.5)
    identifier = client.create_cluster(deletionProtectionEnabled=True)["identifier"]

    answer = client.update_cluster(identifier=identifier, deletionProtectionEnabled=False)
    assert answer["status"] == "UPDATING"
    assert client.get_cluster(identifier=identifier)["status"] == "UPDATING"
    for call in (
        lambda: client.update_cluster(identifier=identifier, deletionProtectionEnabled=True),
        lambda: client.delete_cluster(identifier=identifier),
    ):
        with pytest.raises(client.exceptions.ConflictException) as refused:
            call()
        error = refused.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 409
        assert error["resourceId"] == identifier and error["resourceType"] == "cluster"
        assert "UPDATING" in error["message"]

    wait_for_status(client, identifier, "ACTIVE", timeout=4)
    assert client.get_cluster(identifier=identifier)["deletionProtectionEnabled"] is False
    assert client.delete_cluster(identifier=identifier)["status"] == "DELETING"


def test_a_multi_region_cluster_is_pending_setup_until_peered(moto_dsql):
    client, moto_url = moto_dsql
    dsql_lifecycle.configure(moto_url, updating_seconds=0)
    identifier = client.create_cluster(
        deletionProtectionEnabled=False, multiRegionProperties={"witnessRegion": "us-west-2"}
    )["identifier"]
    assert client.get_cluster(identifier=identifier)["status"] == "PENDING_SETUP"

    peer = "arn:aws:dsql:us-east-2:123456789012:cluster/abcdefghijklmnopqrstuvwxyz"
    client.update_cluster(
        identifier=identifier, multiRegionProperties={"witnessRegion": "us-west-2", "clusters": [peer]}
    )
    assert client.get_cluster(identifier=identifier)["status"] == "ACTIVE"


def test_forced_idle_reports_every_quiet_cluster_idle(moto_dsql):
    client, moto_url = moto_dsql
    identifier = client.create_cluster(deletionProtectionEnabled=False)["identifier"]
    dsql_lifecycle.configure(moto_url, forced="INACTIVE")
    wait_for_status(client, identifier, "INACTIVE", timeout=dsql_lifecycle.FORCED_GRACE + 2)
    dsql_lifecycle.configure(moto_url, forced=None)
    assert client.get_cluster(identifier=identifier)["status"] == "ACTIVE"


def test_lifecycle_settings_refuse_nonsense(moto_dsql):
    _, moto_url = moto_dsql
    for bad in ({"idle_seconds": -1}, {"forced": "ASLEEP"}, {"nap_seconds": 3}):
        with pytest.raises(Exception, match="400"):
            dsql_lifecycle.configure(moto_url, **bad)


# -- through the DSQL endpoint (the whole sandbox) ------------------------------------------------------
@pytest.fixture
def lifecycle_settings(sandbox):
    before = dsql_lifecycle.current(sandbox.config.moto_url)
    yield sandbox.config.moto_url
    dsql_lifecycle.configure(sandbox.config.moto_url, **before)


@pytest.mark.django_db
def test_a_login_wakes_an_idle_cluster_after_a_slower_first_connect(sandbox, sandbox_environment, lifecycle_settings):
    cluster = create_active_dsql_cluster(sandbox)
    identifier = cluster["identifier"]
    endpoint = dsql.cluster_endpoint(identifier, sandbox.config.region)
    dsql_lifecycle.configure(lifecycle_settings, idle_seconds=0.5, idle_wake_seconds=1.5)
    wait_for_status(aws(sandbox, "dsql"), identifier, "IDLE", timeout=3)

    started = time.monotonic()
    with dsql.TimedLogin(sandbox_environment, endpoint, connect_timeout=5).open() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    first = time.monotonic() - started
    assert first >= 1.5, f"the wake-up took {first:.2f} s"
    # Woken by the login (read at once, before the 0.5 s of quiet pass again).
    assert aws(sandbox, "dsql").get_cluster(identifier=identifier)["status"] == "ACTIVE"

    started = time.monotonic()
    dsql.TimedLogin(sandbox_environment, endpoint, connect_timeout=5).open().close()
    assert time.monotonic() - started < first


@pytest.mark.django_db
def test_a_cluster_being_deleted_is_still_refused(sandbox, sandbox_environment):
    cluster = create_active_dsql_cluster(sandbox)
    aws(sandbox, "dsql").delete_cluster(identifier=cluster["identifier"])
    endpoint = dsql.cluster_endpoint(cluster["identifier"], sandbox.config.region)
    with pytest.raises(psycopg.OperationalError, match="DELETING|no DSQL cluster"):
        dsql.TimedLogin(sandbox_environment, endpoint, connect_timeout=5).open().close()
