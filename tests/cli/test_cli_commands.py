"""The velaops commands besides the pipeline, as a subprocess against a live server: health, a report generated
by a real worker and downloaded, approvals asked and granted by two people, a skip, a cancel, an export and an
abandon, each with its exit code."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from dashboard.models import Approval, Attempt, MigrationRun, ProbeKind
from dashboard.monitoring.probes import run_probe
from dashboard.monitoring.recording import record_outcome
from dashboard.tokens import service as tokens
from tests.cli.test_cli_live import token, velaops  # noqa: F401  (fixture)
from tests.runbook.test_full_migration import worker  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_health_and_a_report_downloaded_as_pdf(worker, live_server, sandbox_environment, token, tmp_path):  # noqa: F811
    target = sandbox_environment.targets.get(kind=ProbeKind.API_HEALTH)
    for _ in range(3):
        record_outcome(target.pk, timezone.now(), run_probe(target))

    health = velaops(live_server, token, "health", "sandbox")
    assert health.returncode == 0, health.stderr
    header, *rows = health.stdout.splitlines()
    assert header.split()[:3] == ["TARGET", "KIND", "STATE"]
    assert any(line.startswith(target.name) and " api_health " in f" {line} " for line in rows), health.stdout
    as_json = json.loads(velaops(live_server, token, "health", "sandbox", "--json").stdout)
    (probed,) = [t for t in as_json["targets"] if t["id"] == target.pk]
    assert probed["latency_ms_p50"] is not None and as_json["summary"]["total"] == len(as_json["targets"])

    pdf = tmp_path / "report.pdf"
    made = velaops(live_server, token, "report", "generate", "sandbox", "--period", "30d", "-o", str(pdf))
    assert made.returncode == 0, made.stdout + made.stderr
    assert pdf.read_bytes().startswith(b"%PDF-") and f"Wrote {pdf} (pdf, " in made.stdout
    csv = tmp_path / "report.csv"
    again = velaops(live_server, token, "--json", "report", "generate", "sandbox", "--period", "7d", "-o", str(csv))
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert document["format"] == "csv" and document["bytes"] == len(csv.read_bytes()) > 0
    assert document["report"]["status"] == "done"


def test_approvals_skips_cancels_exports_and_abandons(live_server, sandbox_environment, token, approver):  # noqa: F811
    sandbox_environment.requires_approval = True
    sandbox_environment.save(update_fields=["requires_approval"])
    approving = tokens.token_create(user=approver, name="approver").clear
    started = json.loads(velaops(live_server, token, "migration", "start", "sandbox", "--json").stdout)
    migration = str(started["id"])

    # Asked ahead of time by the operator, granted by an approver: not by who asked, and once.
    asked = velaops(live_server, token, "--json", "approval", "request", migration, "execute_add_dsql")
    assert asked.returncode == 0, asked.stderr
    approval = json.loads(asked.stdout)["id"]
    own = velaops(live_server, token, "approval", "grant", str(approval))  # a refusal by the runbook's rules
    assert own.returncode == 5 and "You need the approver role to approve." in own.stderr
    granted = velaops(live_server, approving, "approval", "grant", str(approval))
    assert granted.returncode == 0, granted.stderr
    assert f"Approval {approval} granted by {approver.get_username()}." in granted.stdout
    twice = velaops(live_server, approving, "approval", "grant", str(approval))
    assert twice.returncode == 5 and "approved already" in twice.stderr
    assert Approval.objects.get(pk=approval).approved_by == approver
    not_destructive = velaops(live_server, token, "approval", "request", migration, "preflight_stacks")
    assert not_destructive.returncode == 5 and "Only destructive actions need an approval" in not_destructive.stderr

    # A skip needs a reason; with one it is recorded as the step's attempt.
    assert velaops(live_server, token, "step", "skip", migration, "preflight_stacks").returncode == 5
    skipped = velaops(live_server, token, "--json", "step", "skip", migration, "preflight_stacks", "--reason", "hand")
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["attempt"]["action"] == "skip"

    # No worker here: a run stays queued, a second is refused, and the queued one is cancelled at once.
    queued = json.loads(velaops(live_server, token, "--json", "step", "run", migration, "preflight_drift").stdout)
    attempt = str(queued["attempt"]["id"])
    assert queued["attempt"]["status"] == "queued"
    busy = velaops(live_server, token, "step", "run", migration, "preflight_aurora_empty")
    assert busy.returncode == 5, busy.stderr
    cancelled = velaops(live_server, token, "attempt", "cancel", attempt)
    assert cancelled.returncode == 0
    assert cancelled.stdout.startswith(f"Attempt {attempt} (run of preflight_drift, #1): cancelled (cancelled by otto")
    assert Attempt.objects.get(pk=attempt).status == "cancelled"
    shown = velaops(live_server, token, "attempt", "show", attempt, "--wait")
    assert shown.returncode == 1 and "cancelled" in shown.stderr  # ended, but not succeeded
    assert velaops(live_server, token, "attempt", "log", attempt).returncode == 0

    exported = velaops(live_server, token, "--json", "migration", "export", migration, "--format", "json")
    assert exported.returncode == 0, exported.stderr
    assert "preflight_stacks" in exported.stdout and json.loads(exported.stdout)
    markdown = velaops(live_server, token, "migration", "export", migration)
    assert markdown.returncode == 0 and "hand" in markdown.stdout

    assert velaops(live_server, token, "migration", "abandon", migration).returncode == 2  # --reason is required
    abandoned = velaops(live_server, token, "migration", "abandon", migration, "--reason", "rehearsal over")
    assert abandoned.returncode == 0 and f"Migration {migration}: abandoned." in abandoned.stdout
    assert MigrationRun.objects.get(pk=migration).status == "abandoned"
