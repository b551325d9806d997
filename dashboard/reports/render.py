"""Every format of a report, rendered from its content snapshot alone: the HTML body (shown in VelaOps,
sent as the email body, and the PDF's source), the standalone HTML document, CSV and PDF."""

from __future__ import annotations

import base64
import csv
import gc
import io
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from dashboard import formatting as fmt
from dashboard.reports import charts

# The page and the PDF list the longest incidents (in time order); the CSV lists them all. A table row
# costs the PDF renderer ~10 ms, and a reader skims the worst ones anyway.
MAX_INCIDENT_ROWS = 25


@dataclass(frozen=True)
class Rendered:
    content: dict
    html: str  # the body fragment
    csv: str
    pdf: bytes


def render_all(content: dict) -> Rendered:
    body = render_body(content)
    return Rendered(content=content, html=body, csv=render_csv(content), pdf=render_pdf(body, content))


def render_body(content: dict) -> str:
    return render_to_string("reports/body.html", body_context(content))


def render_document(body: str, content: dict) -> str:
    """A standalone HTML file: the body with a title, nothing loaded from anywhere."""
    return render_to_string("reports/document.html", {"body": mark_safe(body), "title": title_of(content)})  # noqa: S308  (rendered by us, autoescaped)


def title_of(content: dict) -> str:
    period = content["period"]
    kind = {"daily": "Daily health report", "weekly": "Weekly health report", "monthly": "Monthly health report"}
    return f"{kind.get(period['kind'], 'Health report')}: {content['environment']['name']}, {period['label']}"


# --- HTML --------------------------------------------------------------------------------------------


def body_context(content: dict) -> dict:
    period = content["period"]
    tz = ZoneInfo(period["timezone"])
    series = content["series"]
    start, end, step = series["start"], series["end"], series["resolution"]
    start = max(start, int(_parse(period["start"]).timestamp()))
    names = {str(row["id"]): row["name"] for row in content["targets"]}
    strips = charts.availability_strips(
        [(names[key], points) for key, points in series["targets"].items() if key in names], start, end, step, tz
    )
    latency_items = [
        (row["name"], points)
        for row in content["targets"]
        if (points := series["targets"].get(str(row["id"]))) and any(p[3] is not None for p in points)
    ]
    latency = charts.latency_grid(latency_items, start, end, step, tz) if latency_items else ""
    settled = _parse(content.get("history_settled_until"))
    return {
        "c": content,
        "title": title_of(content),
        "period_start": _local(period["start"], tz),
        "period_end": _local(period["end"], tz),
        "previous_start": _local(content["previous_period"]["start"], tz),
        "previous_end": _local(content["previous_period"]["end"], tz),
        "generated_at": _local(content["generated_at"], tz),
        "timezone": period["timezone"],
        "summary": _summary(content["summary"]),
        "targets": [_target(row) for row in content["targets"]],
        "cold_targets": [_target(row) for row in content["targets"] if row["cold"]],
        "incidents": [_incident(row, tz) for row in _longest(content["incidents"], MAX_INCIDENT_ROWS)],
        "incidents_total": len(content["incidents"]),
        "steps": [_step(row, tz) for row in content["steps"]],
        "strips_svg": mark_safe(strips),  # noqa: S308  (built by charts with every text escaped)
        "latency_svg": mark_safe(latency),  # noqa: S308  (built by charts with every text escaped)
        "chart_resolution": "hour" if step == 3600 else "day",
        "history_incomplete_until": _local(content["history_settled_until"], tz)
        if settled and settled < _parse(period["end"])
        else None,
    }


def _longest(incidents: list[dict], limit: int) -> list[dict]:
    if len(incidents) <= limit:
        return incidents
    keep = sorted(range(len(incidents)), key=lambda i: -incidents[i]["in_period_seconds"])[:limit]
    return [incidents[i] for i in sorted(keep)]


def _summary(summary: dict) -> dict:
    return {
        **summary,
        "uptime": fmt.uptime(_ratio(summary["uptime_pct"])),
        "uptime_delta": fmt.uptime_change(summary["uptime_delta_pct"]),
        "downtime": fmt.duration(summary["downtime_seconds"]),
    }


KIND_SHORT = {
    "dsql": "DSQL",
    "lambda_config": "Lambda config",
    "api_health": "API health",
    "aurora": "Aurora",
    "dynamodb": "DynamoDB",
}


def _target(row: dict) -> dict:
    cold = row["cold"] or {}
    return {
        **row,
        "kind_short": KIND_SHORT.get(row["kind"], row["kind"]),
        "uptime": fmt.uptime(_ratio(row["uptime_pct"])),
        "uptime_delta": fmt.uptime_change(row["uptime_delta_pct"]),
        "uptime_delta_class": _trend(row["uptime_delta_pct"], higher_is_better=True),
        "downtime": fmt.duration(row["downtime_seconds"]),
        "p50_text": fmt.latency_ms(row["p50"]),
        "p95_text": fmt.latency_ms(row["p95"]),
        "p99_text": fmt.latency_ms(row["p99"]),
        "avg_text": fmt.latency_ms(row["latency_avg"]),
        "p95_delta": fmt.latency_ms(row["p95_delta_ms"], signed=True),
        "p95_delta_class": _trend(row["p95_delta_ms"], higher_is_better=False),
        "previous_uptime": fmt.uptime(_ratio(row["previous"]["uptime_pct"])),
        "previous_p95": fmt.latency_ms(row["previous"]["p95"]),
        "cold_count": cold.get("count"),
        "cold_share": fmt.percent(_ratio(cold.get("share_pct"))),
        "cold_avg": fmt.latency_ms(cold.get("cold_avg")),
        "warm_avg": fmt.latency_ms(cold.get("warm_avg")),
        "phases_text": ", ".join(f"{name} {fmt.latency_ms(value)}" for name, value in row["phases"].items()),
    }


def _incident(row: dict, tz: ZoneInfo) -> dict:
    return {
        **row,
        "opened": _local(row["opened_at"], tz),
        "closed": _local(row["closed_at"], tz),
        "duration": fmt.duration(row["duration_seconds"]),
        "in_period": fmt.duration(row["in_period_seconds"]),
    }


def _step(row: dict, tz: ZoneInfo) -> dict:
    return {
        **row,
        "when": _local(row["started_at"] or row["requested_at"], tz),
        "duration": fmt.duration(row["duration_seconds"]),
    }


def _trend(delta: float | None, *, higher_is_better: bool) -> str:
    if not delta:
        return ""
    return "better" if (delta > 0) == higher_is_better else "worse"


def _ratio(percentage: float | None) -> float | None:
    # The snapshot stores percentages (0..100); dashboard.formatting takes ratios, as the pages have them.
    return None if percentage is None else percentage / 100


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _local(value: str | None, tz: ZoneInfo) -> datetime | None:
    moment = _parse(value)
    return moment.astimezone(tz) if moment else None


# --- CSV ---------------------------------------------------------------------------------------------

TARGET_COLUMNS = [
    "target",
    "kind",
    "probes",
    "failed",
    "uptime_pct",
    "downtime_seconds",
    "incidents",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "avg_ms",
    "cold_starts",
    "cold_avg_ms",
    "warm_avg_ms",
    "previous_uptime_pct",
    "uptime_delta_pp",
    "previous_p95_ms",
    "p95_delta_ms",
]
INCIDENT_COLUMNS = [
    "target",
    "kind",
    "opened_at",
    "closed_at",
    "duration_seconds",
    "in_period_seconds",
    "failures",
    "cause",
]
STEP_COLUMNS = [
    "migration",
    "position",
    "step",
    "action",
    "attempt",
    "status",
    "operator",
    "approved_by",
    "requested_at",
    "started_at",
    "finished_at",
    "duration_seconds",
    "error",
]


def render_csv(content: dict) -> str:
    """Four blocks separated by a blank line: report, target, incident, step. Each starts with a header row
    whose first cell is "block"; every data row's first cell names its block, so one filter on the first
    column gives a plain table. Times are ISO 8601 in UTC; numbers are unformatted."""
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    period = content["period"]
    out.writerow(["block", "title", "environment", "period_start", "period_end", "timezone", "generated_at"])
    out.writerow(
        [
            "report",
            title_of(content),
            content["environment"]["slug"],
            period["start"],
            period["end"],
            period["timezone"],
            content["generated_at"],
        ]
    )
    out.writerow([])
    out.writerow(["block", *TARGET_COLUMNS])
    for row in content["targets"]:
        cold = row["cold"] or {}
        out.writerow(
            [
                "target",
                row["name"],
                row["kind"],
                row["probes"],
                row["failed"],
                _n(row["uptime_pct"]),
                _n(row["downtime_seconds"]),
                row["incidents"],
                _n(row["p50"]),
                _n(row["p95"]),
                _n(row["p99"]),
                _n(row["latency_avg"]),
                cold.get("count", ""),
                _n(cold.get("cold_avg")),
                _n(cold.get("warm_avg")),
                _n(row["previous"]["uptime_pct"]),
                _n(row["uptime_delta_pct"]),
                _n(row["previous"]["p95"]),
                _n(row["p95_delta_ms"]),
            ]
        )
    out.writerow([])
    out.writerow(["block", *INCIDENT_COLUMNS])
    for row in content["incidents"]:
        out.writerow(
            [
                "incident",
                row["target"],
                row["kind"],
                row["opened_at"],
                row["closed_at"] or "",
                _n(row["duration_seconds"]),
                _n(row["in_period_seconds"]),
                row["failures"],
                _safe_cell(row["cause"]),
            ]
        )
    out.writerow([])
    out.writerow(["block", *STEP_COLUMNS])
    for row in content["steps"]:
        out.writerow(
            [
                "step",
                row["migration"],
                row["position"],
                _safe_cell(row["step"]),
                row["action"],
                row["number"],
                row["status"],
                _safe_cell(row["operator"]),
                _safe_cell(row["approved_by"]),
                row["requested_at"],
                row["started_at"] or "",
                row["finished_at"] or "",
                _n(row["duration_seconds"]),
                _safe_cell(row["error"]),
            ]
        )
    return buffer.getvalue()


def _n(value) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _safe_cell(text: str) -> str:
    # Spreadsheets run a cell starting with = + - @ as a formula: error messages are not formulas.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


# --- PDF ---------------------------------------------------------------------------------------------


def render_pdf(body: str, content: dict) -> bytes:
    import weasyprint  # imported here: the web process never needs Pango unless it renders
    from weasyprint.urls import URLFetcher

    document = _svgs_as_images(render_document(body, content))
    # Reports are self-contained: the renderer may read the inline images and nothing else.
    with _cyclic_gc_paused():
        return weasyprint.HTML(string=document, url_fetcher=URLFetcher(allowed_protocols={"data"})).write_pdf()


@contextmanager
def _cyclic_gc_paused():
    """WeasyPrint makes hundreds of thousands of short-lived objects, and the allocations set off the
    cyclic collector's full passes over the whole process's heap: a tenth of a report's time. Reference
    counting still frees what it can; the cycles left wait for the first pass after this."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_INLINE_SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def _svgs_as_images(document: str) -> str:
    """Inline charts become data-URI images for the PDF: drawn the same, but the HTML layout no longer
    cascades styles through thousands of chart elements (a year's report renders in about half the time)."""

    def as_image(match: re.Match) -> str:
        encoded = base64.b64encode(match.group(0).encode()).decode()
        return f'<img class="chart" alt="" src="data:image/svg+xml;base64,{encoded}">'

    return _INLINE_SVG.sub(as_image, document)
