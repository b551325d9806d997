"""The environment page says which runbook the environment's stacks call for, and why."""

from __future__ import annotations

import pytest

from dashboard.environments.resources import ResourceState, StackResource, StackResources, runbook_mode


@pytest.mark.django_db
def test_the_sandbox_page_names_the_owning_stacks(client, viewer, sandbox_environment):
    client.force_login(viewer)
    response = client.get(sandbox_environment.get_absolute_url())
    assert response.status_code == 200
    view = response.context["ownership"]
    assert view.mode.through_stacks
    assert {(o.stack, o.logical_id) for o in view.mode.owned} >= {
        ("ApiStack", "ApiFunctionCE271BD4"),
        ("DatabaseStack", "Aurora2CBAB212"),
    }
    page = response.content.decode()
    assert "Through CloudFormation." in page and "ApiFunctionCE271BD4" in page


def stack_row(name, items=(), error=""):
    listing = StackResources(tuple(items), error_code="AccessDenied" if error else "", error_message=error)
    return ResourceState("CloudFormation stack", name, True, "CREATE_COMPLETE", stack_resources=listing)


def test_mode_is_direct_when_no_stack_owns_the_resources(environment):
    rows = [stack_row("ApiStack", [StackResource("Other", "AWS::Lambda::Function", "not-vela", "CREATE_COMPLETE")])]
    view = runbook_mode(environment, rows)
    assert view.mode.name == "direct" and not view.mode.owned


def test_mode_is_unknown_when_a_stack_cannot_be_listed(environment):
    view = runbook_mode(environment, [stack_row("ApiStack", error="not allowed")])
    assert view.mode is None and view.unknown == "the resources of ApiStack could not be listed: not allowed"
