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
                try:
                    with conn.transaction():
                        conn.execute(f"DROP ROLE {role}")
                except psycopg.errors.DependentObjectsStillExist:
                    pass  # another test session's stand-in database holds grants to it: gone from this one
            conn.execute("DELETE FROM sys.iam_pg_role_mappings WHERE pg_role_name = %s", [role])


# The bake in tests: four seconds at five probes a second after a dozen probes of history. A test machine's
# load moves a few seconds' tail far more than the changes these tests make, so the latency allowance is wide
# and the DSQL check's ceiling well above a loaded sandbox's login: the flow is tested here; the judgement's
# power and false-alarm rate are tests/bake/test_statistics.py's.
QUICK_BAKE = {
    "baseline_min_samples": 10,
    "bake_window_seconds": 4,
    "bake_interval_seconds": 0.2,
    "bake_min_samples": 10,
    "p95_latency_ratio_max": 10.0,
    "dsql_check_p95_ms_max": 500,
}


def probe_history(environment, count: int = 12):
    """Real probes of the API health route, recorded as the scheduler's are: the history a baseline reads."""
    from django.utils import timezone

    from dashboard.models import ProbeKind
    from dashboard.monitoring.probes import run_probe
    from dashboard.monitoring.recording import record_outcome

    target = environment.targets.get(kind=ProbeKind.API_HEALTH)
    for _ in range(count):
        record_outcome(target.pk, timezone.now(), run_probe(target))
    return target


def ready_for_bake(environment):
    """A quick bake and enough history for its baseline: what a whole-migration test needs."""
    environment.bake_criteria = QUICK_BAKE
    environment.save(update_fields=["bake_criteria"])
    probe_history(environment)
    return environment
