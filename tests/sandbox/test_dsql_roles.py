"""DSQL's database roles at the sandbox's endpoint, as the Aurora DSQL guide describes them: admin creates a role
WITH LOGIN and maps it to an IAM principal with `AWS IAM GRANT`; a login as the role needs a DbConnect token
signed by that principal and the mapping; inside, the role has only what it was granted."""

from __future__ import annotations

import psycopg
import pytest

from dashboard import dsql
from dashboard.aws import client
from tests.sandbox.helpers import create_active_dsql_cluster

pytestmark = pytest.mark.django_db
ROLE = "vela_api_test"
VELAOPS = "arn:aws:iam::123456789012:user/velaops"  # the principal VelaOps signs as in the sandbox


@pytest.fixture(scope="module")
def cluster(sandbox):
    return create_active_dsql_cluster(sandbox)


@pytest.fixture
def admin(sandbox_environment, cluster):
    endpoint = dsql.cluster_endpoint(cluster["identifier"], "us-east-1")
    with dsql.TimedLogin(sandbox_environment, endpoint).open() as conn:
        conn.execute(f"CREATE ROLE {ROLE} WITH LOGIN")
        conn.execute("CREATE TABLE IF NOT EXISTS role_test_notes (id text PRIMARY KEY)")
        yield conn
        conn.execute(f"AWS IAM REVOKE {ROLE} FROM '{VELAOPS}'")
        conn.execute("DROP TABLE IF EXISTS role_test_notes")
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")


def login_as(environment, cluster, user: str) -> psycopg.Connection:
    endpoint = dsql.cluster_endpoint(cluster["identifier"], "us-east-1")
    signer = client(environment, "dsql")
    token = signer.generate_db_connect_auth_token(Hostname=endpoint, Region="us-east-1")
    return psycopg.connect(**{**dsql.connection_kwargs(environment, endpoint, token, 5), "user": user})


def test_a_role_logs_in_only_once_mapped_to_the_signing_principal(sandbox_environment, cluster, admin):
    with pytest.raises(psycopg.OperationalError, match="not mapped to the role"):
        login_as(sandbox_environment, cluster, ROLE)

    admin.execute(f"AWS IAM GRANT {ROLE} TO '{VELAOPS}'")
    mapped = admin.execute("SELECT arn FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s", [ROLE]).fetchall()
    assert mapped == [(VELAOPS,)]
    with login_as(sandbox_environment, cluster, ROLE) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == ROLE
        # Only what it was granted: nothing yet.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM role_test_notes")
        admin.execute(f"GRANT SELECT ON role_test_notes TO {ROLE}")
        assert conn.execute("SELECT count(*) FROM role_test_notes").fetchone()[0] == 0
        # Mapping roles to IAM is admin's alone.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"AWS IAM GRANT {ROLE} TO 'arn:aws:iam::123456789012:role/someone'")


def test_an_admin_token_is_not_a_roles_and_an_unknown_role_is_refused(sandbox_environment, cluster, admin):
    admin.execute(f"AWS IAM GRANT {ROLE} TO '{VELAOPS}'")
    endpoint = dsql.cluster_endpoint(cluster["identifier"], "us-east-1")
    admin_token = dsql.auth_token(sandbox_environment, endpoint)
    kwargs = {**dsql.connection_kwargs(sandbox_environment, endpoint, admin_token, 5), "user": ROLE}
    with pytest.raises(psycopg.OperationalError, match="needs a DbConnect token"):
        psycopg.connect(**kwargs)
    with pytest.raises(psycopg.OperationalError, match='role "nobody_here" does not exist'):
        login_as(sandbox_environment, cluster, "nobody_here")
    with pytest.raises(psycopg.errors.UndefinedObject, match='role "nobody_here" does not exist'):
        admin.execute("AWS IAM GRANT nobody_here TO 'arn:aws:iam::123456789012:role/x'")
