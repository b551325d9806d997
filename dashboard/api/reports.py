"""Reports: ask for one (the page's "Generate now", validated by its form), list and read the requests, download
a generated report in each format; and the report schedules (create, change, delete). The work is
dashboard.reports.service's. A report's id here is its request's: it exists (queued) before the report does."""

# No `from __future__ import annotations`: ninja reads the operations' annotations at run time (see migrations).

import re
from datetime import datetime, timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Query, Router, Schema

from dashboard.api import lookups
from dashboard.api.errors import ApiError, responses
from dashboard.api.idempotency import idempotent
from dashboard.models import ReportRequest, ReportSchedule
from dashboard.periods import zone
from dashboard.reports import service
from dashboard.reports.downloads import DOWNLOADS, report_file
from dashboard.reports.forms import GenerateForm, ScheduleForm

router = Router(tags=["reports"])

LAST_DAYS = re.compile(r"^([1-9][0-9]{0,2})d$")  # "30d": the last 30 days up to now


class ReportIn(Schema):
    period: str = (
        "daily"  # daily | weekly | monthly (the last whole one) | custom (start, end) | <N>d (the last N days)
    )
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    recipients: list[str] = []


class ReportOut(Schema):
    id: int
    environment: str
    status: str  # queued | running | done | failed
    period: str
    period_start: datetime
    period_end: datetime
    timezone: str
    requested_by: str | None
    requested_at: datetime
    finished_at: datetime | None
    error: str
    report: int | None  # the generated report (the page's report-detail id), once done
    title: str | None
    sha256: str | None
    formats: list[str]  # what `download` can give now: empty until it is done


class ReportPage(Schema):
    items: list[ReportOut]
    count: int
    limit: int
    offset: int


class ScheduleIn(Schema):
    name: str
    frequency: str = "daily"
    cron_expression: str = ""
    hour: int = 7
    timezone: str = "UTC"
    recipients: list[str] = []
    formats: list[str] = ["pdf"]
    enabled: bool = True


class ScheduleOut(Schema):
    id: int
    environment: str
    name: str
    frequency: str
    cron_expression: str
    hour: int
    timezone: str
    recipients: list[str]
    formats: list[str]
    enabled: bool
    next_run_at: datetime | None
    last_run_at: datetime | None


class ScheduleList(Schema):
    items: list[ScheduleOut]
    count: int


def _requests():
    return ReportRequest.objects.select_related("environment", "requested_by", "report").defer(
        "report__content", "report__html", "report__csv", "report__pdf"
    )


def _report_out(request: ReportRequest) -> dict:
    report = request.report
    return {
        "id": request.pk,
        "environment": request.environment.slug,
        "status": request.status,
        "period": request.kind,
        "period_start": request.period_start,
        "period_end": request.period_end,
        "timezone": request.timezone,
        "requested_by": request.requested_by.get_username() if request.requested_by else None,
        "requested_at": request.requested_at,
        "finished_at": request.finished_at,
        "error": request.error,
        "report": report.pk if report else None,
        "title": report.title if report else None,
        "sha256": report.sha256 if report else None,
        "formats": list(DOWNLOADS) if report else [],
    }


def _form_data(payload: ReportIn) -> dict:
    """The page's form fields for what the API was asked; `<N>d` is a custom range ending now."""
    data = {"period": payload.period, "timezone": payload.timezone, "recipients": ", ".join(payload.recipients)}
    last = LAST_DAYS.match(payload.period)
    start, end = payload.start, payload.end
    if last:
        try:
            tz = zone(payload.timezone)
        except Exception:  # noqa: BLE001 - the form says what is wrong with the zone
            tz = None
        now = timezone.now()
        if tz is not None:
            end, start = now.astimezone(tz), (now - timedelta(days=int(last.group(1)))).astimezone(tz)
        data["period"] = "custom"
    for name, moment in (("start", start), ("end", end)):
        if moment is not None:
            # The form reads wall-clock times in the chosen zone, as a browser's datetime-local sends them.
            if timezone.is_aware(moment):
                try:
                    moment = moment.astimezone(zone(payload.timezone))
                except Exception:  # noqa: BLE001 - the form says what is wrong with the zone
                    pass
            data[name] = moment.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    return data


@router.post("/environments/{slug}/reports", response=responses({202: ReportOut}), operation_id="report_generate")
@idempotent
def report_generate(request: HttpRequest, slug: str, payload: ReportIn):
    """Generate a report now (a worker makes it): poll `GET /reports/{id}` until `done`, then download it."""
    environment = lookups.environment(request, slug, operate="report.generate")
    form = GenerateForm(_form_data(payload))
    data = lookups.validated(form)
    created = service.report_request_create(
        environment=environment, period=form.period_range, requested_by=request.user, recipients=data["recipients"]
    )
    return 202, _report_out(_requests().get(pk=created.pk))


@router.get("/environments/{slug}/reports", response=responses({200: ReportPage}), operation_id="report_list")
def report_list(
    request: HttpRequest,
    slug: str,
    status: ReportRequest.Status | None = None,
    limit: int = Query(50, ge=1, le=lookups.MAX_LIMIT),
    offset: int = Query(0, ge=0, le=1_000_000),
):
    """The environment's reports (requested and scheduled), newest first."""
    environment = lookups.environment(request, slug)
    reports = _requests().filter(environment=environment).order_by("-requested_at", "-id")
    if status is not None:
        reports = reports.filter(status=status)
    items, count = lookups.page(reports, limit, offset)
    return {"items": [_report_out(r) for r in items], "count": count, "limit": limit, "offset": offset}


def _request(request: HttpRequest, report_id: int) -> ReportRequest:
    found = get_object_or_404(_requests(), pk=report_id)
    lookups.environment(request, found.environment.slug)
    return found


@router.get("/reports/{int:report_id}", response=responses({200: ReportOut}), operation_id="report_get")
def report_get(request: HttpRequest, report_id: int):
    return _report_out(_request(request, report_id))


DOWNLOAD_RESPONSES = {
    200: {
        "description": "The report in the format asked for.",
        "content": {
            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
}


@router.get(
    "/reports/{int:report_id}/download",
    response=responses({}),
    operation_id="report_download",
    openapi_extra={"responses": DOWNLOAD_RESPONSES},
)
def report_download(request: HttpRequest, report_id: int, format: str = Query("pdf", pattern="^(pdf|csv|html)$")):
    """The file; 409 `not_ready` while the report is queued or running (`failed` if it failed)."""
    found = _request(request, report_id)
    if found.report_id is None:
        if found.status == ReportRequest.Status.FAILED:
            raise ApiError(409, "failed", f"The report failed: {found.error or 'no reason recorded'}.")
        raise ApiError(409, "not_ready", f"The report is {found.status}; try again when it is done.")
    report = found.report
    report.refresh_from_db()  # the deferred formats
    return report_file(report, format)


# --- schedules -------------------------------------------------------------------------------------------------


def _schedule_out(schedule: ReportSchedule) -> dict:
    return {
        "id": schedule.pk,
        "environment": schedule.environment.slug,
        "name": schedule.name,
        "frequency": schedule.frequency,
        "cron_expression": schedule.cron_expression,
        "hour": schedule.hour,
        "timezone": schedule.timezone,
        "recipients": list(schedule.recipients),
        "formats": list(schedule.formats),
        "enabled": schedule.enabled,
        "next_run_at": schedule.next_run_at,
        "last_run_at": schedule.last_run_at,
    }


def _schedule_save(schedule: ReportSchedule, payload: ScheduleIn) -> ReportSchedule:
    data = payload.dict()
    data["recipients"] = ", ".join(payload.recipients)
    if not data["enabled"]:
        data.pop("enabled")  # an unchecked box: absent from the form's data
    form = ScheduleForm(data, instance=schedule)
    lookups.validated(form)
    try:
        return service.schedule_save(form.save(commit=False))
    except service.ScheduleNameTaken:
        raise ApiError(
            409, "conflict", "This environment has a schedule of that name already.", {"name": ["Taken."]}
        ) from None


@router.get(
    "/environments/{slug}/report-schedules", response=responses({200: ScheduleList}), operation_id="schedule_list"
)
def schedule_list(request: HttpRequest, slug: str):
    environment = lookups.environment(request, slug)
    items = [_schedule_out(s) for s in environment.report_schedules.select_related("environment")]
    return {"items": items, "count": len(items)}


@router.post(
    "/environments/{slug}/report-schedules", response=responses({201: ScheduleOut}), operation_id="schedule_create"
)
@idempotent
def schedule_create(request: HttpRequest, slug: str, payload: ScheduleIn):
    environment = lookups.environment(request, slug, operate="report.schedule")
    saved = _schedule_save(ReportSchedule(environment=environment), payload)
    return 201, _schedule_out(saved)


def _schedule(request: HttpRequest, schedule_id: int, event: str) -> ReportSchedule:
    schedule = get_object_or_404(ReportSchedule.objects.select_related("environment"), pk=schedule_id)
    lookups.environment(request, schedule.environment.slug, operate=event)
    return schedule


@router.put(
    "/report-schedules/{int:schedule_id}", response=responses({200: ScheduleOut}), operation_id="schedule_update"
)
@idempotent
def schedule_update(request: HttpRequest, schedule_id: int, payload: ScheduleIn):
    return _schedule_out(_schedule_save(_schedule(request, schedule_id, "report.schedule"), payload))


@router.delete("/report-schedules/{int:schedule_id}", response=responses({204: None}), operation_id="schedule_delete")
@idempotent
def schedule_delete(request: HttpRequest, schedule_id: int):
    """Delete the schedule; its reports stay."""
    service.schedule_delete(_schedule(request, schedule_id, "report.schedule_delete"))
    return HttpResponse(status=204)
