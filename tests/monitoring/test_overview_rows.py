"""The overview's rendered rows, shared by every viewer and live poll: a row is named by its target's
`changed` stamp, so it is rendered once per change, and a change shows at once."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from dashboard.formatting import latency_ms
from dashboard.models import Incident, ProbeKind, Target
from dashboard.redis_client import redis_client
from tests.monitoring.history import make_target, record

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def targets(bare_environment):
    up = make_target(bare_environment, "vela-dsql", kind=ProbeKind.DSQL)
    down = make_target(bare_environment, "vela-api", kind=ProbeKind.API_HEALTH, down_after=1)
    record(up, timezone.now(), 12.5)
    record(down, timezone.now(), None, ok=False, error="HTTP 502 from the health route")
    return {"up": up, "down": down}


def _row(html: str, pk: int) -> str:
    match = re.search(rf'<tr id="target-{pk}"[^>]*>.*?</tr>', html, re.S)
    assert match, f"no row for target {pk}"
    return match.group(0)


def _cached_rows() -> list[str]:
    return list(redis_client().scan_iter(match=f"{settings.REDIS_KEY_PREFIX}cache:*overview-row:*"))


def test_a_row_is_named_by_its_targets_stamp_and_a_change_shows_at_once(viewer_client, bare_environment, targets):
    url = reverse("health-overview", args=[bare_environment.slug])
    up = targets["up"]
    assert "vela-dsql" in _row(viewer_client.get(url).content.decode(), up.pk)
    # The stamp is what names the markup: a write that does not move it is not shown (every write the
    # app makes to what a row shows moves it) ...
    Target.objects.filter(pk=up.pk).update(label="Renamed behind the stamp")
    assert "Renamed behind the stamp" not in _row(viewer_client.get(url).content.decode(), up.pk)
    # ... and one that does is shown on the next view.
    Target.objects.filter(pk=up.pk).update(label="Renamed", changed_at=timezone.now())
    assert 'title="Renamed"' in _row(viewer_client.get(url).content.decode(), up.pk)
    record(up, timezone.now(), 47.25)
    assert latency_ms(47.25) in _row(viewer_client.get(url).content.decode(), up.pk)


def test_the_page_and_its_live_poll_are_cached_apart(viewer_client, bare_environment, targets):
    page = viewer_client.get(reverse("health-overview", args=[bare_environment.slug]))
    assert "hx-swap-oob" not in _row(page.content.decode(), targets["up"].pk)
    state = {"since": 0, "n": page.context["total"], "axis": page.context["axis"]}
    live = viewer_client.get(reverse("health-overview-live", args=[bare_environment.slug]), state, **HTMX)
    assert f'<tr id="target-{targets["up"].pk}" class="st-up" hx-swap-oob="true">' in live.content.decode()
    assert len([key for key in _cached_rows() if f":{targets['up'].pk}:" in key]) == 2


def test_a_row_with_an_open_incident_is_rendered_each_time(viewer_client, bare_environment, targets):
    url = reverse("health-overview", args=[bare_environment.slug])
    down = targets["down"]
    assert "HTTP 502" in _row(viewer_client.get(url).content.decode(), down.pk)
    assert not [key for key in _cached_rows() if f":{down.pk}:" in key]
    # Its "since" and "for how long" read the clock: nothing of it is kept.
    Incident.objects.filter(target=down, closed_at=None).update(cause="timed out after 5 s")
    assert "timed out after 5 s" in _row(viewer_client.get(url).content.decode(), down.pk)


def test_rows_are_rendered_without_redis(viewer_client, bare_environment, targets, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "dashboard.cache.TolerantRedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }  # Django's setting_changed handler drops the cache connections made with the old setting
    html = viewer_client.get(reverse("health-overview", args=[bare_environment.slug])).content.decode()
    assert latency_ms(12.5) in _row(html, targets["up"].pk)
