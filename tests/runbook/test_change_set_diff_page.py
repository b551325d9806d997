"""A change-set review on the migration page reads like a diff: the blockers first, one row per resource change
with the dangerous ones marked, each Modify's property changes folded under it; every value escaped (they come
from AWS and templates); as many queries for 200 rows as for 2. The execute step names the change set it
deploys, and the attempt page never prints the previous template."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dashboard.models import Attempt, Step
from dashboard.runbook import THROUGH_STACKS, service
from tests.runbook.conftest import mark, step

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
BLOCKER = "Aurora2CBAB212 (AWS::RDS::DBCluster, vela-aurora) would be replaced (True): its data would not follow"
PREVIOUS_TEMPLATE = '{"Resources": {"PreviousTemplateMarker": {"Type": "AWS::SSM::Parameter"}}' + " " * 60_000 + "}"
BEFORE_REVIEW = [s.key for s in THROUGH_STACKS.steps[: [s.key for s in THROUGH_STACKS.steps].index("review_add_dsql")]]


@pytest.fixture
def migration(environment, operator, monkeypatch):
    # The change-set runbook without asking AWS which stacks own what (these tests reach no AWS).
    monkeypatch.setattr(service, "choose_runbook", lambda environment: (THROUGH_STACKS, "the stacks own them"))
    return service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")


def detail(attribute="Properties", name="Environment", before=None, after=None, recreation="Never"):
    return {
        "attribute": attribute,
        "name": name,
        "requires_recreation": recreation,
        "before": before,
        "after": after,
        "evaluation": "Static",
        "source": "DirectModification",
        "causing": "",
    }


def diff(rows: int) -> list[dict]:
    """`rows` resource changes: the DSQL cluster added, Aurora replaced and removed with Retain, then Lambdas."""
    dsql = {
        "action": "Add",
        "logical_id": "DsqlCluster",
        "type": "AWS::DSQL::Cluster",
        "physical_id": "",
        "replacement": "",
        "policy_action": "",
        "scope": [],
        "details": [],
    }
    replaced = {
        "action": "Modify",
        "logical_id": "AuroraReplaced",
        "type": "AWS::RDS::DBCluster",
        "physical_id": "vela-aurora",
        "replacement": "True",
        "policy_action": "ReplaceAndDelete",
        "scope": ["Properties"],
        "details": [
            detail(
                name="DBClusterIdentifier",
                before="vela-aurora",
                after="<script>alert('x')</script>",
                recreation="Always",
            )
        ],
    }
    retained = {
        "action": "Remove",
        "logical_id": "Aurora2CBAB212",
        "type": "AWS::RDS::DBCluster",
        "physical_id": "vela-aurora",
        "replacement": "",
        "policy_action": "Retain",
        "scope": [],
        "details": [],
    }
    functions = [
        {
            "action": "Modify",
            "logical_id": f"Function{n}",
            "type": "AWS::Lambda::Function",
            "physical_id": f"vela-fn-{n}",
            "replacement": "False",
            "policy_action": "",
            "scope": ["Properties"],
            "details": [detail(before="A&B", after=f"value-{n}"), detail(name="Timeout", before="3", after="30")],
        }
        for n in range(max(0, rows - 3))
    ]
    return [dsql, replaced, retained, *functions][:rows]


def review_outputs(rows: int, blockers=(BLOCKER,), name="velaops-m1-review-add-dsql") -> dict:
    return {
        "stack": "DatabaseStack",
        "change_set": name,
        "change_set_id": f"arn:aws:cloudformation:us-east-1:123456789012:changeSet/{name}/1",
        "empty": rows == 0,
        "diff": diff(rows),
        "blockers": list(blockers),
        "previous_template": PREVIOUS_TEMPLATE,
        "since_event": "event-1",
    }


def failed_review(migration, operator, rows: int) -> Attempt:
    """The review as the worker records a blocked one: failed, its StepFailed's data as the attempt's outputs."""
    mark(migration, *BEFORE_REVIEW)
    review = step(migration, "review_add_dsql")
    review.state = Step.State.FAILED
    review.save(update_fields=["state"])
    return Attempt.objects.create(
        migration=migration,
        step=review,
        number=1,
        action=Attempt.Action.RUN,
        status=Attempt.Status.FAILED,
        requested_by=operator,
        outputs=review_outputs(rows),
        error={"code": "StepFailed", "message": f"The change set of DatabaseStack may not run: {BLOCKER}."},
    )


def succeeded_review(migration, operator, outputs: dict) -> Attempt:
    mark(migration, *BEFORE_REVIEW)
    review = step(migration, "review_add_dsql")
    review.state, review.outputs = Step.State.SUCCEEDED, outputs
    review.save(update_fields=["state", "outputs"])
    return Attempt.objects.create(
        migration=migration,
        step=review,
        number=1,
        action=Attempt.Action.RUN,
        status=Attempt.Status.SUCCEEDED,
        requested_by=operator,
        outputs=outputs,
    )


def get(client, url, **headers):
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def change_set(html: str, key: str) -> str:
    match = re.search(rf'<tr class="change-set-row" data-change-set="{key}">.*?</table>', html, re.S)
    assert match, f"no change set under {key}"
    return match.group(0)


def test_a_blocked_review_shows_its_blockers_and_every_row(client, migration, operator):
    failed_review(migration, operator, 200)
    client.force_login(operator)
    html = get(client, migration.get_absolute_url())
    shown = change_set(html, "review_add_dsql")
    assert "review failed" in shown
    blockers = shown.split('class="blockers"', 1)[1].split("</div>", 1)[0]
    assert "May not run" in blockers and BLOCKER in blockers
    assert shown.index('class="blockers"') < shown.index("<table")  # above the table
    assert shown.count('<tr class="diff-row') == 200
    assert "velaops-m1-review-add-dsql" in shown and "DatabaseStack" in shown
    assert "200 resource changes: 1 add, 198 modify, 1 remove" in " ".join(shown.split())
    # A diff this long starts folded; the blockers above it do not.
    assert '<details class="diff" id="diff-review_add_dsql" data-keep-open>' in shown

    add = re.search(r'<tr class="diff-row" data-logical-id="DsqlCluster">.*?</tr>', shown, re.S).group(0)
    assert '<span class="badge ok">Add</span>' in add and "AWS::DSQL::Cluster" in add
    replaced = re.search(r'<tr class="diff-row danger" data-logical-id="AuroraReplaced">.*?</tr>', shown, re.S)
    assert replaced, "a replacement is marked dangerous"
    assert '<span class="badge danger">True</span>' in replaced.group(0)
    assert '<span class="badge danger">ReplaceAndDelete</span>' in replaced.group(0)
    props = re.search(r'<tr class="diff-props danger" data-props-of="AuroraReplaced">.*?</tr>', shown, re.S)
    assert props and "recreation Always" in props.group(0)
    retained = re.search(r'<tr class="diff-row" data-logical-id="Aurora2CBAB212">.*?</tr>', shown, re.S).group(0)
    assert '<span class="badge danger">Remove</span>' in retained and '<span class="badge ok">Retain</span>' in retained
    function = re.search(r'<tr class="diff-props" data-props-of="Function7">.*?</tr>', shown, re.S).group(0)
    assert "2 property changes" in function and "Properties.Timeout" in function
    assert '<code class="before">3</code> → <code class="after">30</code>' in function


def test_values_from_aws_are_escaped_and_the_previous_template_never_shown(client, migration, operator):
    failed_review(migration, operator, 5)
    client.force_login(operator)
    for html in (get(client, migration.get_absolute_url()), get(client, migration.get_absolute_url(), **HTMX)):
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
        assert "A&amp;B" in html
        assert "PreviousTemplateMarker" not in html


def test_the_query_count_does_not_grow_with_the_rows(client, migration, operator, environment):
    client.force_login(operator)
    attempt = failed_review(migration, operator, 2)

    def queries(url, **headers) -> int:
        with CaptureQueriesContext(connection) as captured:
            get(client, url, **headers)
        return len(captured)

    url = migration.get_absolute_url()
    few = (queries(url), queries(url, **HTMX), queries(attempt.get_absolute_url()))
    Attempt.objects.filter(pk=attempt.pk).update(outputs=review_outputs(200))
    many = (queries(url), queries(url, **HTMX), queries(attempt.get_absolute_url()))
    assert few == many


def test_the_execute_step_names_the_change_set_it_deploys(client, migration, operator):
    succeeded_review(migration, operator, review_outputs(3, blockers=()))
    client.force_login(operator)
    html = get(client, migration.get_absolute_url())
    shown = change_set(html, "review_add_dsql")
    assert 'class="blockers"' not in shown and "review failed" not in shown
    assert '<details class="diff" id="diff-review_add_dsql" data-keep-open open>' in shown  # short: unfolded
    execute = re.search(r'<tr class="step-\w+" data-step="execute_add_dsql">.*?</tr>', html, re.S).group(0)
    prompt = " ".join(execute.split())
    assert (
        'Deploy change set <code class="mono">velaops-m1-review-add-dsql</code> to stack '
        '<code class="mono">DatabaseStack</code>: type <code class="mono">DatabaseStack</code> to confirm'
    ) in prompt
    assert "Deploys change set" in prompt and "3 resource changes" in prompt


def test_an_empty_change_set_says_it_changes_nothing(client, migration, operator):
    succeeded_review(migration, operator, review_outputs(0, blockers=()))
    client.force_login(operator)
    html = get(client, migration.get_absolute_url())
    assert "The change set changes nothing." in html
    assert "(it changes nothing)" in html


def test_a_review_without_a_diff_shows_none(client, migration, operator):
    """A review that failed before describing a change set (no stack change configured): its error only."""
    mark(migration, *BEFORE_REVIEW)
    review = step(migration, "review_add_dsql")
    Step.objects.filter(pk=review.pk).update(state=Step.State.FAILED)
    Attempt.objects.create(
        migration=migration,
        step=review,
        number=1,
        action=Attempt.Action.RUN,
        status=Attempt.Status.FAILED,
        requested_by=operator,
        error={"code": "StepFailed", "message": "No change is configured for add_dsql of DatabaseStack."},
    )
    client.force_login(operator)
    html = get(client, migration.get_absolute_url())
    assert "change-set-row" not in html and "No change is configured" in html


def test_the_attempt_page_shows_the_diff_and_not_the_previous_template(client, migration, operator):
    attempt = failed_review(migration, operator, 200)
    client.force_login(operator)
    html = get(client, attempt.get_absolute_url())
    assert "PreviousTemplateMarker" not in html
    assert "kept for the rollback to deploy" in html
    assert html.count('<tr class="diff-row') == 200 and BLOCKER in html
    outputs = html.split('id="outputs"', 1)[1]
    assert "since_event" in outputs and "change_set_id" in outputs
    assert "logical_id" not in outputs  # the diff is the table above, not printed again


def test_the_api_gives_the_same_diff_as_the_page(migration, operator, viewer):
    from tests.api.conftest import api_client

    failed_review(migration, operator, rows=5)
    answer = api_client(viewer).get(f"/api/v1/migrations/{migration.pk}/change-sets")
    assert answer.status_code == 200
    (change_set,) = answer.json()
    assert change_set["review_step"] == "review_add_dsql" and change_set["failed"] is True
    assert change_set["stack"] == "DatabaseStack" and change_set["blockers"] == [BLOCKER]
    assert len(change_set["changes"]) == 5
    assert {"action", "logical_id", "replacement", "policy_action", "details"} <= set(change_set["changes"][0])
