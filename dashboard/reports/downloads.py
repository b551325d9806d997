"""A generated report as a file in one of its formats: what the report page's links and the API both serve."""

from __future__ import annotations

from django.http import HttpResponse

from dashboard.models import Report
from dashboard.reports import service
from dashboard.reports.render import render_document

DOWNLOADS = {
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


def report_file(report: Report, fmt: str) -> HttpResponse:
    """`fmt` is one of DOWNLOADS (the callers check it: a 404 on the page, a 422 in the API)."""
    if fmt == "pdf":
        body: bytes | str = bytes(report.pdf)
    elif fmt == "csv":
        body = report.csv
    else:
        body = render_document(report.html, report.content)
    response = HttpResponse(body, content_type=DOWNLOADS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{service.attachment_stem(report)}.{fmt}"'
    response["X-Content-SHA256-Report"] = report.sha256
    return response
