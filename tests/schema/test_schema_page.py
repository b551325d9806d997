"""The schema step on the migration page: its findings as a table under the step, its script as a download."""

import pytest
from django.urls import reverse

from dashboard.models import Attempt, Step
from dashboard.runbook import service
from tests.runbook.conftest import step

pytestmark = pytest.mark.django_db

OUTPUTS = {
    "findings": [
        {
            "object": "index cards_deck_id",
            "rule": "index_not_async",
            "severity": "rewritten",
            "detail": "CREATE INDEX",
            "action": "CREATE INDEX ASYNC (a job in sys.jobs, waited on)",
        },
        {
            "object": "trigger study_sessions_touch on study_sessions",
            "rule": "trigger",
            "severity": "dropped",
            "detail": "CREATE TRIGGER <script>alert(1)</script>",
            "action": "left out: do its work in the application, in the writing transaction",
        },
    ],
    "script": "-- DSQL schema\nCREATE INDEX ASYNC IF NOT EXISTS cards_deck_id ON public.cards (deck_id);\n",
    "objects": 1,
}


def test_the_findings_show_under_the_step_and_the_script_downloads(client, viewer, environment, operator):
    migration = service.migration_start(environment=environment, user=operator, source_address=None)
    url = reverse("migration-schema-script", args=[environment.slug, migration.pk])
    client.force_login(viewer)
    assert client.get(url).status_code == 404  # nothing translated yet

    target = step(migration, "apply_schema")
    Attempt.objects.create(
        migration=migration, step=target, number=1, action="run", status="failed", requested_by=operator,
        outputs=OUTPUTS, error={"code": "StepFailed", "message": "parity"},
    )  # fmt: skip
    Step.objects.filter(pk=target.pk).update(state=Step.State.FAILED)
    page = client.get(reverse("migration-detail", args=[environment.slug, migration.pk])).content.decode()
    assert "2 findings" in page and "index_not_async" in page and "download the DDL script" in page
    assert "<script>alert(1)</script>" not in page  # escaped like everything read from a catalog

    answer = client.get(url)
    assert answer.status_code == 200 and answer["Content-Type"].startswith("application/sql")
    assert "attachment;" in answer["Content-Disposition"]
    assert answer.content.decode() == OUTPUTS["script"]
    client.logout()
    assert client.get(url).status_code == 302  # login required
