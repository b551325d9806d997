"""The superuser-only fault page, present only for the environment of a running sandbox."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def control(settings, sandbox):
    settings.SANDBOX_CONTROL_URL = sandbox.config.control_url
    return sandbox


def test_superuser_sees_the_switches_and_turns_one_on(client, superuser, control, sandbox_environment):
    client.force_login(superuser)
    page = client.get(reverse("sandbox-faults", args=[sandbox_environment.slug]))
    assert page.status_code == 200 and b"dsql_refuse" in page.content
    response = client.post(
        reverse("sandbox-set-fault", args=[sandbox_environment.slug]), {"name": "dsql_refuse", "value": "on"}
    )
    assert response.status_code == 302
    assert control.faults.current.dsql_refuse is True
    client.post(
        reverse("sandbox-set-fault", args=[sandbox_environment.slug]), {"name": "dsql_latency_ms", "value": "250"}
    )
    assert control.faults.current.dsql_latency_ms == 250


def test_a_bad_value_is_shown_not_applied(client, superuser, control, sandbox_environment):
    client.force_login(superuser)
    url = reverse("sandbox-set-fault", args=[sandbox_environment.slug])
    response = client.post(url, {"name": "dsql_latency_ms", "value": "soon"}, follow=True)
    assert b"milliseconds" in response.content
    assert control.faults.current.dsql_latency_ms == 0


def test_operator_is_refused(client, operator, control, sandbox_environment):
    client.force_login(operator)
    assert client.get(reverse("sandbox-faults", args=[sandbox_environment.slug])).status_code == 403
    url = reverse("sandbox-set-fault", args=[sandbox_environment.slug])
    assert client.post(url, {"name": "health_fail", "value": "on"}).status_code == 403
    assert control.faults.current.health_fail is False


def test_setting_a_fault_needs_post(client, superuser, control, sandbox_environment):
    client.force_login(superuser)
    assert client.get(reverse("sandbox-set-fault", args=[sandbox_environment.slug])).status_code == 405


def test_other_environments_have_no_fault_page(client, superuser, control, environment):
    client.force_login(superuser)
    assert client.get(reverse("sandbox-faults", args=[environment.slug])).status_code == 404
    environment.aws_endpoint_url = "http://127.0.0.1:9"
    environment.save()
    assert client.get(reverse("sandbox-faults", args=[environment.slug])).status_code == 404


def test_without_a_control_url_there_is_no_fault_page(client, superuser, settings, sandbox_environment):
    settings.SANDBOX_CONTROL_URL = ""
    client.force_login(superuser)
    assert client.get(reverse("sandbox-faults", args=[sandbox_environment.slug])).status_code == 404


def test_dsql_idle_is_a_choice_that_sets_moto_and_goes_back_when_cleared(
    client, superuser, control, sandbox_environment
):
    from infra.sandbox import dsql_lifecycle

    client.force_login(superuser)
    page = client.get(reverse("sandbox-faults", args=[sandbox_environment.slug]))
    assert b'<option value="inactive">' in page.content and b"network-path" in page.content
    url = reverse("sandbox-set-fault", args=[sandbox_environment.slug])
    client.post(url, {"name": "dsql_idle", "value": "inactive"})
    assert control.faults.current.dsql_idle == "inactive"
    assert dsql_lifecycle.current(control.config.moto_url)["forced"] == "INACTIVE"
    response = client.post(url, {"name": "dsql_idle", "value": "asleep"}, follow=True)
    assert b"off, idle, inactive" in response.content
    control.faults.clear()
    assert dsql_lifecycle.current(control.config.moto_url)["forced"] is None
