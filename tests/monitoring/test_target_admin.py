import pytest
from django.urls import reverse

from dashboard.models import HealthMethod, ProbeKind, Target


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def form(environment, **overrides):
    data = {
        "environment": environment.pk,
        "kind": ProbeKind.API_HEALTH,
        "name": "https://api.example.com/health/dsql",
        "label": "API (edge)",
        "interval_seconds": 15,
        "timeout_seconds": 5,
        "down_after": 3,
        "up_after": 2,
        "health_method": HealthMethod.URL,
        "health_path": "/health/dsql",
    }
    return {**data, **overrides}


def test_a_target_is_added_by_hand_with_its_own_thresholds(admin_client, bare_environment):
    response = admin_client.post(reverse("admin:dashboard_target_add"), form(bare_environment))
    assert response.status_code == 302
    target = Target.objects.get(label="API (edge)")
    assert (target.interval_seconds, target.down_after, target.managed) == (15, 3, False)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "not a url"}, "name"),
        ({"name": "ftp://example.com/x"}, "name"),
        ({"kind": ProbeKind.DYNAMODB, "name": "bad table name!"}, "name"),
        ({"interval_seconds": 1}, "interval_seconds"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"health_path": "health"}, "health_path"),
    ],
)
def test_bad_input_is_refused_with_a_message(admin_client, bare_environment, overrides, field):
    response = admin_client.post(reverse("admin:dashboard_target_add"), form(bare_environment, **overrides))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Target.objects.exists()


def test_what_a_managed_target_probes_cannot_be_edited(admin_client, environment):
    target = environment.targets.get(kind=ProbeKind.AURORA)
    response = admin_client.get(reverse("admin:dashboard_target_change", args=[target.pk]))
    assert response.status_code == 200
    fields = response.context["adminform"].form.fields
    assert "name" not in fields and "interval_seconds" in fields
