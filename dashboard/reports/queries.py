"""What the report pages read: the archive (a page of reports, the schedules, unfinished requests), one
report, its deliveries."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from dashboard.models import Environment, Report, ReportDelivery, ReportRequest

REPORTS_PER_PAGE = 50
OPEN_REQUESTS = 20


def archive_page(environment: Environment, page_number: int) -> dict:
    reports = (
        Report.objects.filter(environment=environment)
        .defer("content", "html", "csv", "pdf")  # the list shows titles and periods only
        .select_related("generated_by", "schedule")
    )
    page: Page = Paginator(reports, REPORTS_PER_PAGE).get_page(page_number)
    return {
        "page": page,
        "schedules": environment.report_schedules.all(),
        "requests": ReportRequest.objects.filter(environment=environment)
        .exclude(status=ReportRequest.Status.DONE)
        .select_related("requested_by", "schedule")[:OPEN_REQUESTS],
    }


def reports_of(environment: Environment, *defer: str) -> QuerySet[Report]:
    return (
        Report.objects.defer(*defer)
        .select_related("environment", "generated_by", "schedule")
        .filter(environment=environment)
    )


def deliveries_of(report: Report) -> QuerySet[ReportDelivery]:
    return ReportDelivery.objects.filter(report=report)
