from __future__ import annotations

import time

import boto3


def aws(sandbox, service: str):
    """A plain boto3 client on the sandbox's moto, as a test's independent witness: the account's administrator
    (the sandbox's admin key), not VelaOps's principal, whose calls the sandbox holds to infra/iam-policy.json."""
    from infra.sandbox.cfn.iam_auth import ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY

    return boto3.client(
        service,
        region_name=sandbox.config.region,
        endpoint_url=sandbox.config.moto_url,
        aws_access_key_id=ADMIN_ACCESS_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET_ACCESS_KEY,
    )


def create_active_dsql_cluster(sandbox, timeout: float = 15) -> dict:
    dsql = aws(sandbox, "dsql")
    cluster = dsql.create_cluster(deletionProtectionEnabled=False, tags={"test": "sandbox"})
    deadline = time.monotonic() + timeout
    while dsql.get_cluster(identifier=cluster["identifier"])["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "cluster never became ACTIVE"
        time.sleep(0.2)
    return dsql.get_cluster(identifier=cluster["identifier"])


VELA_DSQL_OBJECTS = (
    ("VIEW", "deck_sizes"),
    *(("TABLE", table) for table in ("study_sessions", "reviews", "cards", "decks", "tts_audio", "accounts")),
)


def clear_vela_schema_from_dsql(sandbox) -> None:
    """A new DSQL cluster is empty on AWS; the sandbox's clusters share one stand-in database (docs/sandbox.md),
    so a test that needs an empty cluster takes out the Vela schema an earlier migration applied there."""
    import psycopg

    with psycopg.connect(**sandbox.config.pg_params(sandbox.config.dsql_database)) as conn:
        for kind, name in VELA_DSQL_OBJECTS:
            conn.execute(f"DROP {kind} IF EXISTS {name} CASCADE")
        # The database roles too (PostgreSQL's roles are the server's: they outlive a test), and the probes' schema.
        conn.execute("DROP SCHEMA IF EXISTS velaops CASCADE")
        for role in ("vela_api", "velaops_monitor"):
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")
            conn.execute("DELETE FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s", [role])
