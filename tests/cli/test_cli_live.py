"""The velaops command (.venv/bin/velaops, as `make install` writes it) as a subprocess, over real HTTP, against a
live VelaOps server (pytest-django's live_server), a real Celery worker and the sandbox: the whole change-set
migration run by `velaops migration run sandbox`, a sandbox fault making a step fail (exit 1, the failure
printed), and the exit codes and --json output around them. The token never appears in anything it prints."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

from dashboard.models import Attempt, AuditEvent, MigrationRun, ProbeKind
from dashboard.monitoring.probes import run_probe
from dashboard.monitoring.recording import record_outcome
from dashboard.runbook import THROUGH_STACKS
from dashboard.tokens import service as tokens
from tests.runbook.test_full_migration import worker  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

VELAOPS = Path(sys.executable).with_name("velaops")


def velaops(server, token: str, *arguments: str, timeout: float = 240) -> subprocess.CompletedProcess:
    assert VELAOPS.exists(), f"{VELAOPS} is missing: make install writes it"
    environ = {"VELAOPS_URL": server.url, "VELAOPS_TOKEN": token, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([str(VELAOPS), *arguments], env=environ, capture_output=True, text=True, timeout=timeout)
    assert token not in done.stdout and token not in done.stderr
    return done


# The bake steps' criteria for these tests: a few seconds of bake after ten probes of history, and latency bounds
# wide enough that a machine busy with other tests does not fail it (the bake's judgement is tests/bake's).
QUICK_BAKE = {
    "baseline_min_samples": 10,
    "bake_window_seconds": 4,
    "bake_interval_seconds": 0.1,
    "bake_min_samples": 10,
    "p95_latency_ratio_max": 10.0,
    "dsql_check_p95_ms_max": 5000,
}


@pytest.fixture
def token(operator) -> str:
    return tokens.token_create(user=operator, name="pipeline").clear


def ready_for_the_bake(environment) -> None:
    """Real probes of the API before the change (the history the bake's baseline reads), and a short bake."""
    environment.bake_criteria = QUICK_BAKE
    environment.save(update_fields=["bake_criteria"])
    target = environment.targets.get(kind=ProbeKind.API_HEALTH)
    for _ in range(12):
        record_outcome(target.pk, timezone.now(), run_probe(target))


def test_velaops_runs_the_whole_sandbox_migration(
    worker,  # noqa: F811
    live_server,
    fresh_sandbox_environment,
    token,
):
    environment = fresh_sandbox_environment
    ready_for_the_bake(environment)
    listed = velaops(live_server, token, "env", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (sandbox,) = json.loads(listed.stdout)["items"]
    assert (sandbox["slug"], sandbox["open_migration"]) == ("sandbox", None)

    # Without a typed name the run stops, before anything destructive, at the first change set's execution.
    first = velaops(live_server, token, "migration", "run", "sandbox")
    assert first.returncode == 5, first.stdout + first.stderr
    assert "is destructive: type the resource name to confirm it, e.g. `--confirm DatabaseStack`" in first.stderr
    migration = MigrationRun.objects.get(environment=environment, status="open")
    assert migration.runbook_version == THROUGH_STACKS.version
    keys = [d.key for d in THROUGH_STACKS.steps]
    done = keys[: keys.index("execute_add_dsql")]
    assert list(migration.steps.filter(state="succeeded").values_list("key", flat=True).order_by("position")) == done
    assert "==> 1. Preflight" in first.stdout and f"Started migration {migration.pk} of sandbox" in first.stdout

    # Given the names, it goes on from there and completes the migration.
    aurora = environment.aurora_cluster_identifier
    rest = velaops(
        live_server,
        token,
        "migration",
        "run",
        "sandbox",
        "--confirm",
        "DatabaseStack",
        "--confirm",
        "ApiStack",
        "--confirm",
        aurora,
        "--reason",
        "pipeline 1234",
        timeout=600,
    )
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert f"Continuing migration {migration.pk} of sandbox" in rest.stdout
    ran = len(keys) - len(done)
    assert rest.stdout.rstrip().endswith(f"Migration {migration.pk}: completed ({ran} steps run).")
    migration.refresh_from_db()
    assert migration.status == "completed"
    runs = Attempt.objects.filter(migration=migration, action="run")
    assert runs.count() == len(keys) and {a.status for a in runs} == {"succeeded"}
    assert set(runs.filter(step__key__in=keys[len(done) :]).values_list("reason", flat=True)) == {"pipeline 1234"}
    # Each step's log streamed as it ran: a line the decommission step writes, in the CLI's output.
    decommission = runs.get(step__key="decommission_aurora")
    assert decommission.logs.exists()
    assert decommission.logs.first().message in rest.stdout

    shown = velaops(live_server, token, "migration", "show", str(migration.pk), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "completed"


def test_a_sandbox_fault_makes_the_step_fail_and_velaops_exit_1(
    worker,  # noqa: F811
    live_server,
    fresh_sandbox_environment,
    token,
    sandbox,
):
    sandbox.faults.update({"dsql_refuse": True})  # the DSQL endpoint closes every connection
    failed = velaops(live_server, token, "--json", "migration", "run", "sandbox", "--confirm", "DatabaseStack")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    document = json.loads(failed.stdout)
    attempt = document["attempts"][-1]
    assert attempt["status"] == "failed" and attempt["step_key"] == "verify_dsql"
    assert document["error"]["code"] == "attempt_failed"
    assert document["migration"]["status"] == "open"
    # People read it on stderr: which attempt of which step, and the error it recorded.
    recorded = Attempt.objects.get(pk=attempt["id"])
    assert f"Attempt {recorded.pk} (run of verify_dsql, #1): failed: {recorded.error['message']}" in failed.stderr
    assert "stays open: fix the cause, then run this again" in failed.stderr

    # A step run on its own and followed exits 1 the same way, its log streamed first.
    again = velaops(live_server, token, "step", "run", str(recorded.migration_id), "verify_dsql", "--follow")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "(run of verify_dsql, #2): failed" in again.stderr
    assert recorded.logs.first().message in again.stdout


def test_exit_codes_for_auth_not_found_and_refusal(live_server, sandbox_environment, operator, viewer, token):
    revoked = tokens.token_create(user=operator, name="old")
    tokens.token_revoke(user=operator, token_id=revoked.token.pk)
    for bad in ("velaops_not-a-token", revoked.clear):
        denied = velaops(live_server, bad, "env", "list")
        assert denied.returncode == 3, denied.stderr
        assert denied.stdout == "" and denied.stderr.startswith("Error: The API token")
    as_json = velaops(live_server, revoked.clear, "env", "list", "--json")
    assert json.loads(as_json.stdout)["error"]["code"] == "token_revoked"

    # A viewer's token reads but may not start a migration: the role, not the token, decides.
    viewing = tokens.token_create(user=viewer, name="read-only").clear
    assert velaops(live_server, viewing, "env", "show", "sandbox").returncode == 0
    assert velaops(live_server, viewing, "migration", "start", "sandbox").returncode == 3

    missing = velaops(live_server, token, "env", "show", "nowhere", "--json")
    assert missing.returncode == 4 and json.loads(missing.stdout)["error"]["code"]

    started = velaops(live_server, token, "migration", "start", "sandbox", "--json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["status"] == "open"
    twice = velaops(live_server, token, "migration", "start", "sandbox")
    assert twice.returncode == 5 and "already has an open migration" in twice.stderr

    usage = velaops(live_server, token, "step", "run", "not-a-number", "x")
    assert usage.returncode == 2


class LosingProxy:
    """A TCP proxy in front of the live server that loses the first answer: the request reaches the server and is
    handled, then the client's connection is closed before the response, as a dropped network would do."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port, self.lost = upstream_port, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(client,), daemon=True).start()

    def relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        lose = self.lost == 0
        self.lost += lose
        threading.Thread(target=self.pipe, args=(client, upstream, False), daemon=True).start()
        self.pipe(upstream, client, lose)

    @staticmethod
    def pipe(source: socket.socket, target: socket.socket, lose: bool) -> None:
        try:
            while data := source.recv(65536):
                if lose:  # the server answered: the client never sees it
                    break
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self.listener.close()


def test_a_write_whose_answer_was_lost_is_retried_and_acts_once(live_server, sandbox_environment, token):
    proxy = LosingProxy(int(live_server.url.rsplit(":", 1)[1]))
    try:
        started = velaops(SimpleNamespace(url=proxy.url), token, "migration", "start", "sandbox", "--json")
    finally:
        proxy.close()
    assert proxy.lost == 1
    # The retry carried the same Idempotency-Key: the server answered it with the first request's response
    # instead of starting a second migration (or refusing: "already has an open migration").
    assert started.returncode == 0, started.stderr
    (migration,) = MigrationRun.objects.filter(environment=sandbox_environment)
    assert json.loads(started.stdout)["id"] == migration.pk
    assert AuditEvent.objects.filter(action="migration.start", migration=migration).count() == 1
