"""What the health overview shows: its template context and its live poll's changes, built from the
selectors' reads, the chart data and dashboard.formatting. The view parses the request, calls one of
these and renders.

Figures reach the template as ready strings (ids too: the template engine localizes integers, which
at 1,000 rows costs more than the rest of the row); the markup is in templates/monitoring/.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from datetime import datetime
from functools import cache

from django.core.cache import cache as shared_cache
from django.template.loader import get_template
from django.urls import reverse
from django.utils.safestring import SafeString

from dashboard import formatting as fmt
from dashboard.models import Attempt, Environment, Incident, ProbeKind, TargetStatus
from dashboard.monitoring import charts, selectors
from dashboard.monitoring.stats import HOUR

SORTS = {
    "status": "down first",
    "kind": "by kind",
    "name": "by name",
}
KIND_LABELS = dict(ProbeKind.choices)
KIND_ORDER = {kind: position for position, kind in enumerate(ProbeKind.values)}
# The live poll answers this when a target was added or removed: rows cannot be patched in.
RELOAD = "reload"
ROW_TEMPLATE = "monitoring/health_overview.html#target-row"
# A rendered row is kept while a viewer's poll may still ask for it: polls come every 5 s.
ROW_CACHE_SECONDS = 300
# Rows a process keeps in memory in front of Redis: a few minutes of changes of a few thousand targets.
LOCAL_ROWS = 8192


class _LocalRows:
    """The rows this process rendered or fetched last, least recently used out first. Entries never go
    stale: a key names its markup (target, stamp, variant, template)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows: OrderedDict[str, str] = OrderedDict()
        self.lock = threading.Lock()  # gunicorn's threads share it

    def get_many(self, keys: list[str]) -> dict[str, str]:
        with self.lock:
            found = {key: self.rows[key] for key in keys if key in self.rows}
            for key in found:
                self.rows.move_to_end(key)
        return found

    def set_many(self, rows: dict[str, str]) -> None:
        with self.lock:
            self.rows.update(rows)
            while len(self.rows) > self.size:
                self.rows.popitem(last=False)


_local_rows = _LocalRows(LOCAL_ROWS)

# --- the overview -------------------------------------------------------------------------------------


def overview(environment: Environment, sort: str | None, now: datetime) -> dict:
    sort = sort if sort in SORTS else "status"
    targets = selectors.overview_targets(environment)
    incidents = selectors.open_incidents(environment)
    prefix = _target_url_prefix(environment)
    rows = _sort_rows([_sort_fields(t) for t in targets], sort)
    _add_html(rows, environment, incidents, prefix, now, oob=False)
    return {
        "environment": environment,
        "rows": rows,
        "sort": sort,
        "sorts": SORTS,
        "counts": selectors.status_counts(targets),
        "total": len(rows),
        "since": max((t["changed"] for t in targets), default=0),
        "axis": selectors.micros(charts.day_axis(now)[0]),
        **_incidents_block(incidents, prefix, now),
        **_timeline(environment, now),
    }


def overview_changes(
    environment: Environment, since: datetime, shown: int | None, axis: str | None, now: datetime
) -> dict | str | None:
    """None when no target changed after `since` (one query); RELOAD when the page shows `shown` targets
    but the environment has another number; else the changed rows, counts and open incidents (each
    swapped out of band), the new `since`, and the timeline when the hour turned (`axis` is stale)."""
    changed = selectors.changed_targets(environment, since)
    if not changed:
        return None
    counts = selectors.status_counts_query(environment)
    if shown is not None and shown != sum(counts.values()):
        return RELOAD
    incidents = selectors.open_incidents(environment)
    prefix = _target_url_prefix(environment)
    rows = [_sort_fields(t) for t in changed]
    _add_html(rows, environment, incidents, prefix, now, oob=True)
    context = {
        "environment": environment,
        "rows": rows,
        "counts": counts,
        "total": sum(counts.values()),
        "since": max(selectors.micros(since), *(t["changed"] for t in changed)),
        "oob": True,
        "axis": selectors.micros(charts.day_axis(now)[0]),
        **_incidents_block(incidents, prefix, now),
    }
    if axis != str(context["axis"]):
        context.update(_timeline(environment, now))  # the hour turned: move the timeline with the sparklines
    return context


def _target_url_prefix(environment: Environment) -> str:
    # One reverse() for the page instead of one per row.
    return reverse("health-overview", args=[environment.slug]) + "targets/"


def _uptime_cell(ratio: float | None) -> dict:
    return {"text": fmt.uptime(ratio), "grade": fmt.uptime_grade(ratio)}


def summary_shown(uptimes: tuple[float | None, ...], p95_ms: float | None, sparkline: list[float | None]) -> tuple:
    """What a target's row shows of its summary (uptime cells, p95, the sparkline as drawn): the summary
    job marks a target changed only when this changes, so the live poll re-sends only those rows.

    The in-progress hour's point is compared for being there, not for its level: its average moves with
    every probe, and every probe that changes the row's latency cell re-sends the row (with the point as
    the job last wrote it) anyway; the hour's turn moves every line and re-sends every row once."""
    drawn = charts.spark_levels(sparkline)
    if drawn is not None:
        top, levels = drawn
        drawn = (top, tuple(levels[:-1]), levels[-1] is None) if levels else drawn
    return (*(tuple(_uptime_cell(ratio).values()) for ratio in uptimes), fmt.latency_ms(p95_ms), drawn)


def _sort_fields(target: dict) -> dict:
    """What sorting and grouping read of a row; the row's markup comes from _add_html."""
    label = target["label"]
    return {
        "pk": str(target["id"]),
        "name": label or target["name"],
        "kind": target["kind"],
        "kind_label": KIND_LABELS.get(target["kind"], target["kind"]),
        "status": selectors.shown_status(target),
        "group": None,
        "target": target,
    }


@cache
def _row_template_version() -> str:
    # Part of the cache key, so that a deploy that changes the row's markup never serves the old one.
    return hashlib.sha256(get_template(ROW_TEMPLATE).template.source.encode()).hexdigest()[:12]


def _add_html(
    rows: list[dict], environment: Environment, incidents: dict[int, Incident], prefix: str, now: datetime, *, oob: bool
) -> None:
    """Each row's markup, rendered once per change of what it shows for every viewer and poll.

    A target's `changed` stamp moves whenever its row would show something else (a probe's result, a
    pause, the summary job's figures as displayed), so (target, stamp) names the markup; the overview
    and its live polls (which differ by the out-of-band swap attribute) are cached apart. The in-progress
    hour's sparkline point is the one exception, as in summary_shown: it stays as first drawn until the
    row's next stamp. Rows with an open incident read the clock ("since", how long): rendered each time."""
    template = get_template(ROW_TEMPLATE)
    variant = f"overview-row:{_row_template_version()}:{int(oob)}:{environment.slug}:"
    keys = {row["pk"]: f"{variant}{row['pk']}:{row['target']['changed']}" for row in rows}
    wanted = [keys[row["pk"]] for row in rows if int(row["pk"]) not in incidents]
    cached = _local_rows.get_many(wanted)
    if len(cached) < len(wanted):
        shared = shared_cache.get_many([key for key in wanted if key not in cached])
        _local_rows.set_many(shared)
        cached.update(shared)
    fresh = {}
    for row in rows:
        html = cached.get(keys[row["pk"]])
        if html is None:
            incident = incidents.get(int(row["pk"]))
            html = template.render({"r": _overview_row(row["target"], incident, prefix, now), "oob": oob})
            if incident is None:
                fresh[keys[row["pk"]]] = str(html)
        row["html"] = SafeString(html)
        del row["target"]
    if fresh:
        shared_cache.set_many(fresh, ROW_CACHE_SECONDS)
        _local_rows.set_many(fresh)


def _overview_row(target: dict, incident: Incident | None, url_prefix: str, now: datetime) -> dict:
    status = selectors.shown_status(target)
    label = target["label"]
    pk = str(target["id"])
    row = {
        "pk": pk,
        "url": f"{url_prefix}{pk}/",
        "name": label or target["name"],
        "resource": target["name"] if label else "",
        "kind": target["kind"],
        "kind_label": KIND_LABELS.get(target["kind"], target["kind"]),
        "status": status,
        "last": fmt.latency_ms(target["last_latency_ms"]),
        "p95": fmt.latency_ms(target["p95_24h_ms"]),
        "uptimes": [_uptime_cell(target[name]) for name in ("uptime_24h", "uptime_7d", "uptime_30d")],
        "spark": charts.sparkline(target["spark"]),
        "incident": "",
        "group": None,
    }
    if incident is not None:
        opened = incident.opened_at
        open_for = fmt.duration((now - opened).total_seconds())
        row["incident"] = f"since {opened:%H:%M}" if now - opened < 20 * HOUR else f"since {opened:%m-%d %H:%M}"
        row["incident_title"] = f"down since {fmt.utc(opened)} ({open_for}): {incident.cause[:300]}"
    return row


def _sort_rows(rows: list[dict], sort: str) -> list[dict]:
    def by_name(row):
        return row["name"].lower()

    order = selectors.STATUS_ORDER
    if sort == "name":
        return sorted(rows, key=by_name)
    if sort == "kind":
        rows = sorted(rows, key=lambda r: (KIND_ORDER.get(r["kind"], 99), order.get(r["status"], 9), by_name(r)))
        _mark_groups(rows)
        return rows
    return sorted(rows, key=lambda r: (order.get(r["status"], 9), KIND_ORDER.get(r["kind"], 99), by_name(r)))


def _mark_groups(rows: list[dict]) -> None:
    """Put a group header on the first row of each kind: its label, size and how many are down."""
    sizes: dict[str, list[int]] = {}
    for row in rows:
        size = sizes.setdefault(row["kind"], [0, 0])
        size[0] += 1
        size[1] += row["status"] == TargetStatus.DOWN
    seen: set[str] = set()
    for row in rows:
        if row["kind"] not in seen:
            seen.add(row["kind"])
            total, down = sizes[row["kind"]]
            row["group"] = {"label": row["kind_label"], "total": total, "down": down}


def _incidents_block(incidents: dict[int, Incident], prefix: str, now: datetime) -> dict:
    rows = [
        {
            "url": f"{prefix}{incident.target_id}/",
            "name": incident.target.display_name,
            "opened_at": incident.opened_at,
            "duration": fmt.duration((now - incident.opened_at).total_seconds()),
            "cause": incident.cause,
            "failures": incident.failure_count,
        }
        for incident in sorted(incidents.values(), key=lambda incident: incident.opened_at)
    ]
    return {"open_incidents": rows}


def _timeline(environment: Environment, now: datetime) -> dict:
    start, end = charts.day_axis(now)
    events = event_rows(selectors.step_events(environment, start, end), environment, start, end)
    return {
        "timeline": {
            "start": start,
            "end": end,
            "now": f"{(now - start).total_seconds() / (end - start).total_seconds() * 100:.3f}",
            "ticks": [
                {"left": f"{hours / 24 * 100:.3f}", "label": f"{(start + HOUR * hours):%H:%M}"}
                for hours in range(0, 25, 6)
            ],
            "events": events,
        }
    }


def event_rows(attempts: list[Attempt], environment: Environment, start: datetime, end: datetime) -> list[dict]:
    """Step events placed on [start, end) as percentages, with what their tooltip and list show."""
    span = (end - start).total_seconds()
    rows = []
    for attempt in attempts:
        at = attempt.started_at or attempt.requested_at
        finished = attempt.finished_at
        left = max(0.0, min(100.0, (at - start).total_seconds() / span * 100))
        width = 0.0
        if finished:
            width = max(0.0, min(100.0 - left, (finished - at).total_seconds() / span * 100))
        rows.append(
            {
                "at": at,
                "t": at.timestamp(),
                "finished": finished,
                "left": f"{left:.3f}",
                "width": f"{width:.3f}",
                "title": attempt.step.title,
                "position": attempt.step.position,
                "action": attempt.action,
                "number": attempt.number,
                "status": attempt.status,
                # The runbook's bake steps are named bake_* (monitoring sits below the runbook: it reads keys).
                "bake": attempt.step.key.startswith("bake_") and attempt.action == "run",
                "operator": attempt.requested_by.get_username(),
                "url": reverse("attempt-detail", args=[environment.slug, attempt.migration_id, attempt.pk]),
            }
        )
    return rows
