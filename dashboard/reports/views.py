"""Report pages: the archive of an environment, one report and its downloads, "Generate now", schedules.
Thin: access through dashboard.access, reads in dashboard.reports.queries, the work in
dashboard.reports.service."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard import roles
from dashboard.access import environment_for_operator, environment_for_viewer
from dashboard.csp import allow_report_styles
from dashboard.models import Environment, Report, ReportSchedule
from dashboard.params import int_param
from dashboard.reports import queries, service
from dashboard.reports.downloads import DOWNLOADS, report_file
from dashboard.reports.forms import GenerateForm, ScheduleForm


def _archive_context(request: HttpRequest, environment: Environment, form: GenerateForm | None = None) -> dict:
    can_operate = roles.can_operate(request.user)
    return {
        "environment": environment,
        **queries.archive_page(environment, int_param(request.GET, "page", 1, minimum=1)),
        "can_operate": can_operate,
        "form": form or (GenerateForm() if can_operate else None),
    }


@require_GET
def report_archive(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_viewer(request, slug)
    return render(request, "reports/report_archive.html", _archive_context(request, environment))


@require_POST
def report_generate(request: HttpRequest, slug: str) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    form = GenerateForm(request.POST)
    if not form.is_valid():
        return render(request, "reports/report_archive.html", _archive_context(request, environment, form), status=400)
    service.report_request_create(
        environment=environment,
        period=form.period_range,
        requested_by=request.user,
        recipients=form.cleaned_data["recipients"],
    )
    messages.success(request, f"Report for {form.period_range.label} requested; it appears here when it is ready.")
    return redirect("report-archive", environment.slug)


def _report(request: HttpRequest, slug: str, pk: int, *defer: str) -> Report:
    environment = environment_for_viewer(request, slug)
    return get_object_or_404(queries.reports_of(environment, *defer), pk=pk)


@require_GET
def report_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    report = _report(request, slug, pk, "pdf", "csv")
    deliveries = queries.deliveries_of(report)
    response = render(
        request,
        "reports/report_detail.html",
        {"environment": report.environment, "report": report, "deliveries": deliveries},
    )
    return allow_report_styles(response, report.html)  # the stored report's own <style>, by hash


@require_GET
def report_download(request: HttpRequest, slug: str, pk: int, fmt: str) -> HttpResponse:
    if fmt not in DOWNLOADS:
        raise Http404("No such format.")
    response = report_file(_report(request, slug, pk), fmt)
    # The HTML format's own <style> is allowed by its hash.
    return allow_report_styles(response, response.content.decode()) if fmt == "html" else response


# --- schedules ---------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, slug: str, pk: int | None = None) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    schedule = get_object_or_404(ReportSchedule, pk=pk, environment=environment) if pk else None
    if schedule is None:
        schedule = ReportSchedule(environment=environment, formats=["pdf"])
    form = ScheduleForm(request.POST or None, instance=schedule)
    if request.method == "POST" and form.is_valid():
        try:
            saved = service.schedule_save(form.save(commit=False))
        except service.ScheduleNameTaken:  # the same name saved by someone else since the form checked it
            form.add_error("name", "This environment has a schedule of that name already.")
        else:
            when = f"next run {saved.next_run_at:%Y-%m-%d %H:%M} UTC" if saved.next_run_at else "disabled"
            messages.success(request, f"Schedule “{saved.name}” saved ({when}).")
            return redirect("report-archive", environment.slug)
    return render(
        request,
        "reports/report_schedule_form.html",
        {"environment": environment, "form": form, "schedule": schedule if pk else None},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
def schedule_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    environment = environment_for_operator(request, slug)
    schedule = get_object_or_404(ReportSchedule, pk=pk, environment=environment)
    service.schedule_delete(schedule)
    messages.success(request, f"Schedule “{schedule.name}” deleted; its reports stay in the archive.")
    return redirect("report-archive", environment.slug)
