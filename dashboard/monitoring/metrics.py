"""/metrics: every target's live state and summary for Prometheus, served through prometheus-client: a
custom collector over one query per scrape, exposed as the Prometheus text format (0.0.4, or 1.0.0 when
the scraper asks for it) or OpenMetrics, as the Accept header negotiates (choose_encoder).

Access: `Authorization: Bearer <METRICS_TOKEN>` (for a scraper; an empty METRICS_TOKEN turns token
access off), or a logged-in user with the viewer role (for a person checking what is exported).

A target that is paused or not probed yet has no `velaops_target_up` sample at all, rather than 0 or
NaN: an alert on `velaops_target_up == 0` then fires only for targets that really failed, and
`velaops_target_paused` says which targets are paused. Figures a target does not have yet (no
latency, no probes in a window) are omitted the same way.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.registry import CollectorRegistry

from dashboard import roles
from dashboard.models import Incident, Target, TargetStatus
from dashboard.monitoring.selectors import LIVE_STATE_FIELDS

LABELS = ["environment", "target", "kind"]
HELP = {
    "velaops_target_up": "1 if the target's last state is up, 0 if down; absent while unknown or paused.",
    "velaops_target_paused": "1 if probing of the target is paused.",
    "velaops_target_latency_ms": "Latency of the target's last probe, in milliseconds.",
    "velaops_target_uptime_ratio": "Fraction of successful probes over the window (from rollups).",
    "velaops_target_p95_latency_ms": "95th percentile probe latency over the window, in milliseconds.",
    "velaops_target_open_incidents": "Open incidents of the target (0 or 1).",
}
WINDOWED = {"velaops_target_uptime_ratio", "velaops_target_p95_latency_ms"}


def metric_targets():
    """Every target with its environment's slug and its open incident count: one query."""
    open_count = (
        Incident.objects.filter(target=OuterRef("pk"), closed_at=None)
        .order_by()
        .values("target")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        Target.objects.select_related("environment")
        .only("name", "kind", *LIVE_STATE_FIELDS, "environment__slug")
        .annotate(open_incidents=Coalesce(Subquery(open_count, output_field=IntegerField()), 0))
        .order_by("environment__slug", "kind", "name")
    )


class TargetCollector:
    """The gauges of every target, read when a scrape collects (the query runs once per collect)."""

    def __init__(self, targets: Callable[[], Iterable[Target]] = metric_targets):
        self.targets = targets

    def collect(self) -> Iterator[Metric]:
        families = {
            name: GaugeMetricFamily(name, text, labels=LABELS + (["window"] if name in WINDOWED else []))
            for name, text in HELP.items()
        }
        for target in self.targets():
            labels = [target.environment.slug, target.name, target.kind]
            if not target.paused and target.status in (TargetStatus.UP, TargetStatus.DOWN):
                families["velaops_target_up"].add_metric(labels, target.status == TargetStatus.UP)
            families["velaops_target_paused"].add_metric(labels, target.paused)
            if target.last_latency_ms is not None:
                families["velaops_target_latency_ms"].add_metric(labels, target.last_latency_ms)
            for window, ratio in (("24h", target.uptime_24h), ("7d", target.uptime_7d), ("30d", target.uptime_30d)):
                if ratio is not None:
                    families["velaops_target_uptime_ratio"].add_metric([*labels, window], ratio)
            if target.p95_24h_ms is not None:
                families["velaops_target_p95_latency_ms"].add_metric([*labels, "24h"], target.p95_24h_ms)
            families["velaops_target_open_incidents"].add_metric(labels, target.open_incidents)
        yield from families.values()


# Its own registry, not prometheus-client's global one: /metrics exports the targets, not this process
# (whose figures would differ per gunicorn worker). auto_describe off: registering must not query.
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(TargetCollector())


def _token_matches(header: str) -> bool | None:
    """None without a bearer token; else whether it is the configured one (never, when none is configured)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    expected = settings.METRICS_TOKEN
    if not expected:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def _refusal(text: str, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _unauthorized() -> HttpResponse:
    response = _refusal("Log in, or send the metrics bearer token.\n", 401)
    response["WWW-Authenticate"] = 'Bearer realm="velaops-metrics"'
    return response


@login_not_required
@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = _token_matches(request.headers.get("Authorization", ""))
    if token is False:
        return _unauthorized()
    if token is None:
        if not request.user.is_authenticated:
            return _unauthorized()
        if not roles.can_view(request.user):
            return _refusal("You need the viewer role.\n", 403)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(REGISTRY), content_type=content_type)
    response["Vary"] = "Accept"  # the format follows the Accept header
    return response
