"""The alerts page of an environment: settings (webhook never shown in full), maintenance windows, and
the recent alerts with each channel's delivery outcome."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard import roles
from dashboard.access import environment_for_operator, environment_for_viewer
from dashboard.models import Alert, AlertDelivery, AlertSettings, Environment, MaintenanceWindow
from dashboard.reports.forms import AlertSettingsForm, MaintenanceWindowForm

RECENT_ALERTS = 50


def _context(request: HttpRequest, environment: Environment, window_form: MaintenanceWindowForm | None = None):
    now = timezone.now()
    return {
        "environment": environment,
        "alert_settings": AlertSettings.objects.filter(environment=environment).first(),
        "windows": MaintenanceWindow.objects.filter(environment=environment, ends_at__gt=now)
        .select_related("created_by")
        .order_by("starts_at"),
        "past_windows": MaintenanceWindow.objects.filter(environment=environment, ends_at__lte=now)[:10],
        "alerts": Alert.objects.filter(environment=environment).prefetch_related(
            Prefetch("deliveries", queryset=AlertDelivery.objects.order_by("id"))
        )[:RECENT_ALERTS],
        "can_operate": roles.can_operate(request.user),
        "window_form": window_form or MaintenanceWindowForm(),
        "now": now,
    }


@require_GET
def alerts(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_viewer(request, slug)
    return render(request, "alerts/report_alerts.html", _context(request, environment))


@require_http_methods(["GET", "POST"])
def alert_settings_edit(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    instance = AlertSettings.objects.filter(environment=environment).first() or AlertSettings(environment=environment)
    form = AlertSettingsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Alert settings saved.")
        return redirect("alerts", environment.slug)
    return render(
        request,
        "alerts/report_alert_settings.html",
        {"environment": environment, "form": form, "alert_settings": instance if instance.pk else None},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
def maintenance_add(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    form = MaintenanceWindowForm(request.POST, instance=MaintenanceWindow(environment=environment))
    if not form.is_valid():
        return render(request, "alerts/report_alerts.html", _context(request, environment, form), status=400)
    window = form.save(commit=False)
    window.created_by = request.user
    window.save()
    messages.success(request, f"Alerts are quiet from {window.starts_at:%Y-%m-%d %H:%M} to {window.ends_at:%H:%M} UTC.")
    return redirect("alerts", environment.slug)


@require_POST
def maintenance_end(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    window = get_object_or_404(MaintenanceWindow, pk=pk, environment=environment)
    now = timezone.now()
    if window.starts_at > now:
        window.delete()
        messages.success(request, "The planned maintenance window was removed.")
    elif window.ends_at > now:
        # Kept, shortened: the alerts it kept quiet still point at it.
        MaintenanceWindow.objects.filter(pk=window.pk).update(ends_at=now)
        messages.success(request, "The maintenance window ended now; alerts are on again.")
    return redirect("alerts", environment.slug)
