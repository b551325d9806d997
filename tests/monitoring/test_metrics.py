"""/metrics: Prometheus text exposition of every target, for a bearer token or a logged-in viewer."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from dashboard.models import Environment, ProbeKind, Target
from dashboard.monitoring.rollup import refresh_summaries, rollup_all
from tests.monitoring.history import make_target, record

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-scrape-token"


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def targets(bare_environment):
    now = timezone.now()
    up = make_target(bare_environment, "vela-dsql", kind=ProbeKind.DSQL)
    for minute in range(10):
        record(up, now - timedelta(minutes=20 - minute), 10.0 + minute, ok=minute != 4)
    down = make_target(bare_environment, "vela-api", kind=ProbeKind.API_HEALTH, down_after=1)
    record(down, now - timedelta(minutes=3), None, ok=False, error="HTTP 502")
    paused = make_target(bare_environment, "vela-aurora", kind=ProbeKind.AURORA, paused=True)
    record(paused, now - timedelta(minutes=30), 3.0)
    unknown = make_target(bare_environment, "vela-users", kind=ProbeKind.DYNAMODB)
    while rollup_all(now)["minutes"]:
        pass
    refresh_summaries(now)
    return {"up": up, "down": down, "paused": paused, "unknown": unknown}


class Samples(dict):
    """Sample values by `name{labels}`, whatever order the labels are written in (prometheus-client
    sorts them by name; order carries no meaning in the format)."""

    @staticmethod
    def key(sample: str) -> str:
        name, _, labels = sample.partition("{")
        pairs = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)
        return name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(pairs)) + "}" if labels else name

    def __getitem__(self, sample: str) -> float:
        return super().__getitem__(self.key(sample))

    def __contains__(self, sample: object) -> bool:
        return super().__contains__(self.key(str(sample)))


def samples(body: str) -> Samples:
    found = Samples()
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            dict.__setitem__(found, Samples.key(name), float(value))
    return found


def test_metrics_with_the_bearer_token(client, token, targets, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    body = response.content.decode()
    values = samples(body)
    labels = 'environment="bare",target="vela-dsql",kind="dsql"'
    assert values[f"velaops_target_up{{{labels}}}"] == 1
    assert values[f"velaops_target_latency_ms{{{labels}}}"] == 19.0
    assert values[f'velaops_target_uptime_ratio{{{labels},window="24h"}}'] == 0.9
    assert values[f'velaops_target_uptime_ratio{{{labels},window="30d"}}'] == 0.9
    p95 = Target.objects.get(pk=targets["up"].pk).p95_24h_ms
    assert values[f'velaops_target_p95_latency_ms{{{labels},window="24h"}}'] == pytest.approx(p95)
    assert values[f"velaops_target_open_incidents{{{labels}}}"] == 0

    api = 'environment="bare",target="vela-api",kind="api_health"'
    assert values[f"velaops_target_up{{{api}}}"] == 0
    assert values[f"velaops_target_open_incidents{{{api}}}"] == 1
    assert f"velaops_target_latency_ms{{{api}}}" not in values  # failed without a latency

    # Paused and never-probed targets have no up sample at all (documented in dashboard/metrics.py).
    assert not [name for name in values if name.startswith("velaops_target_up{") and "vela-aurora" in name]
    assert not [name for name in values if name.startswith("velaops_target_up{") and "vela-users" in name]
    assert values['velaops_target_paused{environment="bare",target="vela-aurora",kind="aurora"}'] == 1

    # HELP and TYPE once per metric, before its samples.
    for name in ("up", "latency_ms", "uptime_ratio", "p95_latency_ms", "open_incidents"):
        assert body.count(f"# TYPE velaops_target_{name} gauge\n") == 1
        assert body.index(f"# HELP velaops_target_{name} ") < body.index(f"\nvelaops_target_{name}{{")


def test_metrics_query_count_does_not_grow_with_targets(client, token, bare_environment, django_assert_num_queries):
    Target.objects.bulk_create(
        [Target(environment=bare_environment, kind=ProbeKind.DYNAMODB, name=f"table-{n}") for n in range(300)]
    )
    with django_assert_num_queries(1):
        body = client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}").content.decode()
    assert body.count("velaops_target_open_incidents{") == 300


def test_label_values_are_escaped(client, token, bare_environment):
    odd = Environment.objects.create(name="Odd", slug="odd", region="us-east-1", account_id="123456789012")
    Target.objects.create(environment=odd, kind=ProbeKind.API_HEALTH, name='https://x/a"b\\c\nd', status="up")
    body = client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}").content.decode()
    # prometheus-client writes labels sorted by name and values as floats ("1.0").
    assert 'velaops_target_up{environment="odd",kind="api_health",target="https://x/a\\"b\\\\c\\nd"} 1.0\n' in body
    # Every sample line is well formed: name{labels} value.
    for line in body.splitlines():
        assert line.startswith("#") or re.fullmatch(r'velaops_target_\w+\{(\w+="(?:[^"\\]|\\.)*",?)+\} \S+', line), line


def test_metrics_for_a_logged_in_viewer(client, viewer, targets):
    client.force_login(viewer)
    response = client.get(reverse("metrics"))
    assert response.status_code == 200
    assert "velaops_target_up{" in response.content.decode()


def test_metrics_refuses_a_user_without_the_viewer_role(client, outsider, token):
    client.force_login(outsider)
    assert client.get(reverse("metrics")).status_code == 403


def test_metrics_without_credentials_is_401(client, token):
    response = client.get(reverse("metrics"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_token_is_401_even_for_a_logged_in_viewer(client, viewer, token):
    client.force_login(viewer)
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_an_empty_token_setting_turns_token_access_off(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get(reverse("metrics"), HTTP_AUTHORIZATION="Bearer anything").status_code == 401


def test_metrics_is_get_only(client, token):
    assert client.post(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 405


def test_metrics_negotiates_openmetrics(client, token, targets):
    response = client.get(
        reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT="application/openmetrics-text"
    )
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    body = response.content.decode()
    assert body.endswith("# EOF\n")
    assert (
        samples(body.removesuffix("# EOF\n"))['velaops_target_up{environment="bare",target="vela-dsql",kind="dsql"}']
        == 1
    )
    assert "Accept" in response["Vary"]
