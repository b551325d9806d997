"""Alert settings and maintenance windows: read and change them as the alerts page does, through its forms
and dashboard.alerts.service. The webhook URL is a secret: never answered, only whether one is set."""

# No `from __future__ import annotations`: ninja reads the operations' annotations at run time (see migrations).

from datetime import datetime

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Schema

from dashboard.alerts import queries, service
from dashboard.alerts.forms import AlertSettingsForm, MaintenanceWindowForm
from dashboard.api import lookups
from dashboard.api.errors import responses
from dashboard.api.idempotency import idempotent
from dashboard.models import AlertSettings, MaintenanceWindow

router = Router(tags=["alerts"])


class AlertSettingsIn(Schema):
    enabled: bool = True
    emails: list[str] = []
    webhook_format: str = "slack"
    resend_minutes: int = 60
    notify_steps: bool = True
    new_webhook_url: str = ""  # blank: keep the current one
    remove_webhook: bool = False


class AlertSettingsOut(Schema):
    environment: str
    enabled: bool
    emails: list[str]
    webhook_set: bool
    webhook_display: str  # the webhook's host, as the page shows it; never the URL
    webhook_format: str
    resend_minutes: int
    notify_steps: bool


class WindowIn(Schema):
    starts_at: datetime
    ends_at: datetime
    reason: str


class WindowOut(Schema):
    id: int
    environment: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str | None
    active: bool


class WindowEndOut(Schema):
    outcome: str  # removed | shortened | already over
    window: WindowOut | None  # None once removed


class WindowList(Schema):
    items: list[WindowOut]
    count: int


def _settings_out(environment, row: AlertSettings | None) -> dict:
    row = row or AlertSettings(environment=environment)
    return {
        "environment": environment.slug,
        "enabled": row.enabled,
        "emails": list(row.emails),
        "webhook_set": bool(row.webhook_url),
        "webhook_display": row.webhook_display if row.webhook_url else "",
        "webhook_format": row.webhook_format,
        "resend_minutes": row.resend_minutes,
        "notify_steps": row.notify_steps,
    }


def _window_out(window: MaintenanceWindow) -> dict:
    now = timezone.now()
    return {
        "id": window.pk,
        "environment": window.environment.slug,
        "starts_at": window.starts_at,
        "ends_at": window.ends_at,
        "reason": window.reason,
        "created_by": window.created_by.get_username() if window.created_by else None,
        "active": window.starts_at <= now < window.ends_at,
    }


@router.get(
    "/environments/{slug}/alert-settings", response=responses({200: AlertSettingsOut}), operation_id="alert_settings"
)
def alert_settings(request: HttpRequest, slug: str):
    environment = lookups.environment(request, slug)
    return _settings_out(environment, queries.alert_settings_of(environment))


@router.put(
    "/environments/{slug}/alert-settings",
    response=responses({200: AlertSettingsOut}),
    operation_id="alert_settings_update",
)
@idempotent
def alert_settings_update(request: HttpRequest, slug: str, payload: AlertSettingsIn):
    environment = lookups.environment(request, slug, operate="alerts.settings")
    instance = queries.alert_settings_of(environment) or AlertSettings(environment=environment)
    data = payload.dict()
    data["emails"] = ", ".join(payload.emails)
    for box in ("enabled", "notify_steps", "remove_webhook"):
        if not data[box]:
            data.pop(box)  # an unchecked box is absent from a form's data
    form = AlertSettingsForm(data, instance=instance)
    lookups.validated(form)
    saved = service.alert_settings_save(form.save(commit=False))
    return _settings_out(environment, saved)


@router.get(
    "/environments/{slug}/maintenance-windows", response=responses({200: WindowList}), operation_id="window_list"
)
def window_list(request: HttpRequest, slug: str, current: bool = Query(True, description="Only windows not over")):
    environment = lookups.environment(request, slug)
    windows = environment.maintenance_windows.select_related("environment", "created_by").order_by("starts_at")
    if current:
        windows = windows.filter(ends_at__gt=timezone.now())
    items = [_window_out(w) for w in windows[: lookups.MAX_LIMIT]]
    return {"items": items, "count": len(items)}


@router.post(
    "/environments/{slug}/maintenance-windows", response=responses({201: WindowOut}), operation_id="window_create"
)
@idempotent
def window_create(request: HttpRequest, slug: str, payload: WindowIn):
    """Alerts stay quiet from `starts_at` to `ends_at` (at most 31 days)."""
    environment = lookups.environment(request, slug, operate="maintenance.add")
    data = {
        "starts_at": payload.starts_at.isoformat(),
        "ends_at": payload.ends_at.isoformat(),
        "reason": payload.reason,
    }
    form = MaintenanceWindowForm(data, instance=MaintenanceWindow(environment=environment))
    lookups.validated(form)
    window = service.maintenance_window_add(form.save(commit=False), created_by=request.user)
    return 201, _window_out(window)


@router.post(
    "/maintenance-windows/{int:window_id}/end", response=responses({200: WindowEndOut}), operation_id="window_end"
)
@idempotent
def window_end(request: HttpRequest, window_id: int):
    """A planned window is removed, a current one ends now."""
    window = get_object_or_404(MaintenanceWindow.objects.select_related("environment", "created_by"), pk=window_id)
    lookups.environment(request, window.environment.slug, operate="maintenance.end")
    ended = service.maintenance_window_end(window)
    if ended == service.WindowEnded.REMOVED:
        return {"outcome": str(ended), "window": None}
    window.refresh_from_db()
    return {"outcome": str(ended), "window": _window_out(window)}
