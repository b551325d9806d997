"""The velaops commands that act on a migration, as a subprocess against a live server and no worker (so a run
stays queued): approvals asked and granted by two people, a skip, a refused second run, a cancel, exports and an
abandon, each with its exit code."""

from __future__ import annotations

import json

import pytest

from dashboard.models import Approval, Attempt, MigrationRun
from dashboard.tokens import service as tokens
from tests.cli.test_cli_live import token, velaops  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


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
