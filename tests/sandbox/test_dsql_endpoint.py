"""The sandbox's DSQL endpoint: VelaOps's own login code (IAM token over psycopg) against the local PostgreSQL."""

import time
from datetime import UTC, datetime, timedelta

import boto3
import psycopg
import pytest

from dashboard import dsql
from dashboard.aws import boto3_session
from infra.sandbox.dsql_token import check_token, presign
from tests.sandbox.helpers import aws, create_active_dsql_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_active_dsql_cluster(sandbox)


def endpoint_of(cluster, region="us-east-1"):
    return dsql.cluster_endpoint(cluster["identifier"], region)


def timed_select_one(environment, endpoint):
    """dashboard.dsql's timed login (as the verify step and the probe use it), its connection closed at once."""
    login = dsql.TimedLogin(environment, endpoint, connect_timeout=5)
    login.open().close()
    return login.timings


def test_login_with_a_real_iam_token_reaches_the_stand_in_database(sandbox_environment, sandbox, cluster):
    timings = timed_select_one(sandbox_environment, endpoint_of(cluster))
    assert timings.total_ms > 0
    with dsql.TimedLogin(sandbox_environment, endpoint_of(cluster)).open() as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == sandbox.config.dsql_database


def connect_with(environment, endpoint, token):
    return psycopg.connect(**dsql.connection_kwargs(environment, endpoint, token, 5))


def test_a_tampered_token_is_refused(sandbox_environment, cluster):
    endpoint = endpoint_of(cluster)
    token = dsql.auth_token(sandbox_environment, endpoint)
    tampered = token.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    # libpq reports a failed login without its SQLSTATE; the message and detail are DSQL-like.
    with pytest.raises(psycopg.OperationalError, match="access denied(.|\n)*signature does not match"):
        connect_with(sandbox_environment, endpoint, tampered)


def test_an_unknown_cluster_is_refused(sandbox_environment):
    endpoint = dsql.cluster_endpoint("abcdefghijklmnopqrstuvwxyz", "us-east-1")
    with pytest.raises(psycopg.OperationalError, match="no DSQL cluster"):
        timed_select_one(sandbox_environment, endpoint)


def test_a_cluster_still_creating_is_refused(sandbox_environment, sandbox, slow_cluster_creation):
    created = aws(sandbox, "dsql").create_cluster(deletionProtectionEnabled=False)
    with pytest.raises(psycopg.OperationalError, match="CREATING"):
        timed_select_one(sandbox_environment, endpoint_of(created))


def test_a_token_for_the_wrong_user_is_refused(sandbox_environment, cluster):
    endpoint = endpoint_of(cluster)
    token = dsql.auth_token(sandbox_environment, endpoint)  # DbConnectAdmin
    sandbox_environment.dsql_user = "reader"
    with pytest.raises(psycopg.OperationalError, match="needs a DbConnect token"):
        connect_with(sandbox_environment, endpoint, token)


def test_an_expired_token_is_refused(sandbox_environment, cluster):
    endpoint = endpoint_of(cluster)
    session = boto3_session(sandbox_environment)
    token = session.client("dsql").generate_db_connect_admin_auth_token(
        Hostname=endpoint, Region="us-east-1", ExpiresIn=60
    )
    credentials = session.get_credentials().get_frozen_credentials()
    check = {
        "region": "us-east-1",
        "secret_for": {credentials.access_key: credentials.secret_key}.get,
        "cluster_status": lambda identifier: "ACTIVE",
    }
    assert check_token(token, "admin", **check) is None
    later = datetime.now(UTC) + timedelta(seconds=61)
    assert check_token(token, "admin", now=later, **check).reason == "the token has expired"


def test_the_health_routes_token_is_the_one_the_sdk_makes():
    # presign (the health route's, signing as the Lambda's role session) against botocore's own, same second.
    credentials = {"access_key": "ASIAEXAMPLE", "secret_key": "secret", "session_token": "session"}
    sdk = boto3.client(
        "dsql",
        region_name="us-east-1",
        aws_access_key_id=credentials["access_key"],
        aws_secret_access_key=credentials["secret_key"],
        aws_session_token=credentials["session_token"],
    )
    host = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"
    for action, make in (
        ("DbConnectAdmin", sdk.generate_db_connect_admin_auth_token),
        ("DbConnect", sdk.generate_db_connect_auth_token),
    ):
        for _ in range(3):  # a second may turn between the two
            ours, theirs = presign(host, "us-east-1", action=action, **credentials), make(host, "us-east-1")
            if ours == theirs:
                break
        assert ours == theirs
    check = {
        "region": "us-east-1",
        "secret_for": {"ASIAEXAMPLE": "secret"}.get,
        "cluster_status": lambda identifier: "ACTIVE",
    }
    assert check_token(presign(host, "us-east-1", action="DbConnectAdmin", **credentials), "admin", **check) is None


def test_refuse_fault_makes_connections_fail(sandbox_environment, sandbox, cluster):
    sandbox.faults.update({"dsql_refuse": True})
    with pytest.raises(psycopg.OperationalError):
        timed_select_one(sandbox_environment, endpoint_of(cluster))


def test_latency_fault_slows_each_connection(sandbox_environment, sandbox, cluster):
    sandbox.faults.update({"dsql_latency_ms": 300})
    started = time.perf_counter()
    timings = timed_select_one(sandbox_environment, endpoint_of(cluster))
    assert timings.connect_ms >= 300
    assert (time.perf_counter() - started) * 1000 >= 300


def test_an_admin_session_left_idle_is_handed_to_the_next_login_as_a_new_one(sandbox_environment, cluster):
    endpoint = endpoint_of(cluster)
    with dsql.TimedLogin(sandbox_environment, endpoint).open() as conn:
        first = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        conn.execute("SET statement_timeout = '17s'")
        conn.execute("PREPARE left_behind AS SELECT 1")
        conn.execute("SELECT pg_advisory_lock(4242)")
    time.sleep(0.3)  # the endpoint resets the server's session once the client has gone
    with dsql.TimedLogin(sandbox_environment, endpoint).open() as conn:
        # The same server process (no new PostgreSQL session to start), reset to what a new one would be.
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] == first
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        assert conn.execute(held).fetchone()[0] == 0
        # DSQL's session rules (the endpoint's startup options) hold as in a new session.
        assert conn.execute("SHOW lock_timeout").fetchone()[0] == "20ms"
        assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "repeatable read"


def test_a_session_left_in_a_transaction_is_not_handed_on(sandbox_environment, cluster):
    endpoint = endpoint_of(cluster)
    conn = dsql.TimedLogin(sandbox_environment, endpoint).open()
    first = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE IF NOT EXISTS handed_on_test (id int PRIMARY KEY)")
    conn.close()  # in the block: its work is rolled back with its server session
    time.sleep(0.3)
    with dsql.TimedLogin(sandbox_environment, endpoint).open() as conn:
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != first
        assert conn.execute("SELECT to_regclass('handed_on_test')").fetchone()[0] is None


def test_a_handed_on_session_its_server_ended_is_replaced(sandbox_environment, sandbox, cluster):
    endpoint = endpoint_of(cluster)
    with dsql.TimedLogin(sandbox_environment, endpoint).open() as conn:
        first = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    time.sleep(0.3)
    with psycopg.connect(**sandbox.config.pg_params()) as server:
        assert server.execute("SELECT pg_terminate_backend(%s)", [first]).fetchone()[0]
    time.sleep(0.3)
    with dsql.TimedLogin(sandbox_environment, endpoint).open() as conn:
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != first
