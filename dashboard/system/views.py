"""VelaOps's own health for load balancers and monitors: /healthz, public, never cached."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dashboard.system.health import velaops_health


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    report = velaops_health()
    return JsonResponse(report, status=200 if report["status"] != "down" else 503)
