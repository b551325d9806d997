"""The alerts page of an environment: settings (webhook never shown in full), maintenance windows, and
the recent alerts with each channel's delivery outcome. Thin: access through dashboard.access, reads in
dashboard.alerts.queries, changes in dashboard.alerts.service."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard import roles
from dashboard.access import environment_for_operator, environment_for_viewer
from dashboard.alerts import queries, service
from dashboard.alerts.forms import AlertSettingsForm, MaintenanceWindowForm
from dashboard.models import AlertSettings, Environment, MaintenanceWindow

WINDOW_ENDED_MESSAGES = {
    service.WindowEnded.REMOVED: "The planned maintenance window was removed.",
    service.WindowEnded.SHORTENED: "The maintenance window ended now; alerts are on again.",
}


def _context(request: HttpRequest, environment: Environment, window_form: MaintenanceWindowForm | None = None):
    now = timezone.now()
    return {
        "environment": environment,
        **queries.alerts_page(environment, now),
        "can_operate": roles.can_operate(request.user),
        "window_form": window_form or MaintenanceWindowForm(),
        "now": now,
    }


@require_GET
def alerts(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_viewer(request, slug)
    return render(request, "alerts/alerts.html", _context(request, environment))


@require_http_methods(["GET", "POST"])
def alert_settings_edit(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    instance = queries.alert_settings_of(environment) or AlertSettings(environment=environment)
    form = AlertSettingsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        service.alert_settings_save(form.save(commit=False))
        messages.success(request, "Alert settings saved.")
        return redirect("alerts", environment.slug)
    return render(
        request,
        "alerts/settings.html",
        {"environment": environment, "form": form, "alert_settings": instance if instance.pk else None},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
def maintenance_add(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    form = MaintenanceWindowForm(request.POST, instance=MaintenanceWindow(environment=environment))
    if not form.is_valid():
        return render(request, "alerts/alerts.html", _context(request, environment, form), status=400)
    window = service.maintenance_window_add(form.save(commit=False), created_by=request.user)
    messages.success(request, f"Alerts are quiet from {window.starts_at:%Y-%m-%d %H:%M} to {window.ends_at:%H:%M} UTC.")
    return redirect("alerts", environment.slug)


@require_POST
def maintenance_end(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    window = get_object_or_404(MaintenanceWindow, pk=pk, environment=environment)
    ended = service.maintenance_window_end(window)
    if ended in WINDOW_ENDED_MESSAGES:  # a window already over is left as it is, without a word
        messages.success(request, WINDOW_ENDED_MESSAGES[ended])
    return redirect("alerts", environment.slug)
