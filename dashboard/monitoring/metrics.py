"""/metrics: every target's live state and summary in the Prometheus text exposition format (0.0.4).

Access: `Authorization: Bearer <METRICS_TOKEN>` (for a scraper; an empty METRICS_TOKEN turns token
access off), or a logged-in user with the viewer role (for a person checking what is exported).

A target that is paused or not probed yet has no `velaops_target_up` sample at all, rather than 0 or
NaN: an alert on `velaops_target_up == 0` then fires only for targets that really failed, and
`velaops_target_paused` says which targets are paused. Figures a target does not have yet (no
latency, no probes in a window) are omitted the same way.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dashboard import roles
from dashboard.models import Incident, Target, TargetStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

METRICS = (
    ("velaops_target_up", "1 if the target's last state is up, 0 if down; absent while unknown or paused."),
    ("velaops_target_paused", "1 if probing of the target is paused."),
    ("velaops_target_latency_ms", "Latency of the target's last probe, in milliseconds."),
    ("velaops_target_uptime_ratio", "Fraction of successful probes over the window (from rollups)."),
    ("velaops_target_p95_latency_ms", "95th percentile probe latency over the window, in milliseconds."),
    ("velaops_target_open_incidents", "Open incidents of the target (0 or 1)."),
)


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    rendered = ",".join(f'{key}="{escape_label(str(text))}"' for key, text in labels.items())
    return f"{name}{{{rendered}}} {value:.10g}"


def exposition(targets: Iterable[Target]) -> str:
    """The text format: HELP and TYPE once per metric, then its samples, one target per sample."""
    samples: dict[str, list[str]] = {name: [] for name, _ in METRICS}
    for target in targets:
        labels = {"environment": target.environment.slug, "target": target.name, "kind": target.kind}
        if not target.paused and target.status in (TargetStatus.UP, TargetStatus.DOWN):
            samples["velaops_target_up"].append(_sample("velaops_target_up", labels, target.status == TargetStatus.UP))
        samples["velaops_target_paused"].append(_sample("velaops_target_paused", labels, target.paused))
        if target.last_latency_ms is not None:
            samples["velaops_target_latency_ms"].append(
                _sample("velaops_target_latency_ms", labels, target.last_latency_ms)
            )
        for window, ratio in (("24h", target.uptime_24h), ("7d", target.uptime_7d), ("30d", target.uptime_30d)):
            if ratio is not None:
                samples["velaops_target_uptime_ratio"].append(
                    _sample("velaops_target_uptime_ratio", {**labels, "window": window}, ratio)
                )
        if target.p95_24h_ms is not None:
            samples["velaops_target_p95_latency_ms"].append(
                _sample("velaops_target_p95_latency_ms", {**labels, "window": "24h"}, target.p95_24h_ms)
            )
        samples["velaops_target_open_incidents"].append(
            _sample("velaops_target_open_incidents", labels, target.open_incidents)
        )
    lines: list[str] = []
    for name, help_text in METRICS:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(samples[name])
    return "\n".join(lines) + "\n"


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
        .only(
            "name",
            "kind",
            "paused",
            "status",
            "last_latency_ms",
            "uptime_24h",
            "uptime_7d",
            "uptime_30d",
            "p95_24h_ms",
            "environment__slug",
        )
        .annotate(open_incidents=Coalesce(Subquery(open_count, output_field=IntegerField()), 0))
        .order_by("environment__slug", "kind", "name")
    )


def _token_matches(header: str) -> bool | None:
    """None without a bearer token; else whether it is the configured one (never, when none is configured)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    expected = settings.METRICS_TOKEN
    if not expected:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def _unauthorized() -> HttpResponse:
    response = HttpResponse("Log in, or send the metrics bearer token.\n", status=401, content_type=CONTENT_TYPE)
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
            return HttpResponse("You need the viewer role.\n", status=403, content_type=CONTENT_TYPE)
    return HttpResponse(exposition(metric_targets()), content_type=CONTENT_TYPE)
