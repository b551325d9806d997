"""Charts as SVG strings drawn on the server: the same markup reads in the browser, in the PDF
(WeasyPrint renders inline SVG) and in email clients that show SVG. No JavaScript, no fonts to load.

Inputs are the content snapshot's series: per target, [epoch seconds, probes, ok, avg ms, p95 ms].
Consecutive buckets of one colour are drawn as one rectangle, and the rectangles (and the lines of a grid) of
one colour as one path: the PDF renderer's cost is per element (styles, graphical state), and a year of a
flapping target is thousands of runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from dashboard import formatting as fmt

WIDTH = 720
LABEL_WIDTH = 170
ROW_HEIGHT = 16
ROW_GAP = 4
AXIS_HEIGHT = 18
LATENCY_HEIGHT = 120

COLOURS = {"good": "#1f9d55", "fair": "#e3a008", "poor": "#d64545", "none": "#e4e7ec"}  # by uptime grade
AVG_COLOUR = "#8da2d6"
P95_COLOUR = "#2454d6"
GRID = "#d0d5dd"
TEXT = "#475467"

TICK_STEPS = [
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=2),
    timedelta(days=7),
    timedelta(days=14),
    timedelta(days=30),
    timedelta(days=91),
]
MAX_TICKS = 8


def availability_strips(rows: list[tuple[str, list]], start: int, end: int, step: int, tz: ZoneInfo) -> str:
    """One strip per target across the period, coloured by the uptime of each bucket."""
    plot_width = WIDTH - LABEL_WIDTH
    height = len(rows) * (ROW_HEIGHT + ROW_GAP) + AXIS_HEIGHT
    scale = plot_width / max(1, end - start)
    parts = [_open(WIDTH, height, "Uptime over the period, per target")]
    # "none" first: each row's background, under its runs (which never overlap one another).
    shapes: dict[str, list[str]] = {colour: [] for colour in ("none", *COLOURS)}
    for index, (label, points) in enumerate(rows):
        y = index * (ROW_HEIGHT + ROW_GAP)
        parts.append(_text(LABEL_WIDTH - 6, y + ROW_HEIGHT - 4, _truncate(label, 28), anchor="end"))
        shapes["none"].append(_box(LABEL_WIDTH, y, plot_width, ROW_HEIGHT))
        for lo, hi, colour in _runs(points, start, end, step):
            x = LABEL_WIDTH + (lo - start) * scale
            shapes[colour].append(_box(x, y, max(0.6, (hi - lo) * scale), ROW_HEIGHT))
    parts.extend(f'<path d="{"".join(boxes)}" fill="{COLOURS[colour]}" />' for colour, boxes in shapes.items() if boxes)
    parts.append(_axis(start, end, LABEL_WIDTH, plot_width, height - AXIS_HEIGHT, tz))
    parts.append("</svg>")
    return "".join(parts)


def _runs(points: list, start: int, end: int, step: int):
    """Merge adjacent buckets of one colour into (from, to, colour) runs clipped to [start, end)."""
    run: list | None = None
    for at, probes, ok, *_ in points:
        lo, hi = max(at, start), min(at + step, end)
        if hi <= lo:
            continue
        colour = fmt.uptime_grade(ok / probes if probes else None)
        if run and run[2] == colour and run[1] == lo:
            run[1] = hi
            continue
        if run:
            yield tuple(run)
        run = [lo, hi, colour]
    if run:
        yield tuple(run)


# Cells per SVG of the latency grid: three rows of two, about 420 px. A page holds a few such images, and
# a page break can fall between two (one SVG for 20 targets was taller than an A4 page, and the PDF cut it).
LATENCY_CELLS_PER_IMAGE = 6


def latency_grid(items: list[tuple[str, list]], start: int, end: int, step: int, tz: ZoneInfo) -> str:
    """Average and p95 latency per bucket, one small chart per target, two to a row, in one SVG per
    LATENCY_CELLS_PER_IMAGE targets (few images for the PDF renderer to lay out, however many targets)."""
    size = LATENCY_CELLS_PER_IMAGE
    return "".join(
        _latency_image(items[first : first + size], start, end, step, tz, legend=not first)
        for first in range(0, len(items), size)
    )


def _latency_image(
    items: list[tuple[str, list]], start: int, end: int, step: int, tz: ZoneInfo, *, legend: bool
) -> str:
    cell_width, cell_height, columns = WIDTH / 2, LATENCY_HEIGHT + 16, 2
    rows = (len(items) + columns - 1) // columns
    top = 10 if legend else 0
    parts = [_open(WIDTH, rows * cell_height + top, "Latency per target: average and p95 per bucket")]
    if legend:
        parts.append(f'<rect x="{WIDTH - 150}" y="0" width="10" height="3" fill="{AVG_COLOUR}" />')
        parts.append(_text(WIDTH - 136, 5, "average"))
        parts.append(f'<rect x="{WIDTH - 80}" y="0" width="10" height="3" fill="{P95_COLOUR}" />')
        parts.append(_text(WIDTH - 66, 5, "p95"))
    for index, (label, points) in enumerate(items):
        x, y = (index % columns) * cell_width, top + (index // columns) * cell_height
        parts.append(f'<g transform="translate({x:.0f},{y:.0f})">')
        parts.append(f'<text x="4" y="11" fill="{TEXT}" font-weight="bold">{escape(_truncate(label, 48))}</text>')
        # The cells of an image share the time axis: only the bottom cell of each column labels it.
        bottom = index + columns >= len(items)
        parts.append(
            _latency_cell(points, start, end, step, tz, cell_width - 8, LATENCY_HEIGHT, top_offset=16, labels=bottom)
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _latency_cell(
    points: list,
    start: int,
    end: int,
    step: int,
    tz: ZoneInfo,
    width: float,
    height: float,
    top_offset: float,
    labels: bool = True,
) -> str:
    left = 44
    plot_width = width - left - 4
    plot_top = top_offset + 4
    plot_height = height - AXIS_HEIGHT - 8
    values = [value for point in points for value in point[3:5] if value is not None]
    if not values:
        return _text(width / 2, plot_top + plot_height / 2, "no latency measured", anchor="middle")
    top = _nice_ceiling(max(values))
    x_scale = plot_width / max(1, end - start)
    parts, grid = [], []
    for fraction in (0, 0.5, 1):
        y = plot_top + plot_height * (1 - fraction)
        grid.append(f"M{left} {y:.1f}H{left + plot_width:.1f}")
        parts.append(_text(left - 4, y + 3, fmt.latency_ms(top * fraction), anchor="end"))
    parts.append(_lines(grid))
    for column, colour, stroke in ((3, AVG_COLOUR, 1.2), (4, P95_COLOUR, 1.8)):
        for segment in _segments(points, column, step):
            coords = [
                (
                    left + (min(max(at + step / 2, start), end) - start) * x_scale,
                    plot_top + plot_height * (1 - value / top),
                )
                for at, value in segment
            ]
            if len(coords) == 1:
                parts.append(f'<circle cx="{coords[0][0]:.1f}" cy="{coords[0][1]:.1f}" r="1.8" fill="{colour}" />')
            else:
                points_text = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in coords)
                parts.append(
                    f'<polyline points="{points_text}" fill="none" stroke="{colour}" stroke-width="{stroke}" '
                    'stroke-linejoin="round" />'
                )
    parts.append(_axis(start, end, left, plot_width, plot_top + plot_height, tz, max_ticks=4, labels=labels))
    return "".join(parts)


def _segments(points: list, column: int, step: int):
    """Runs of consecutive buckets that have a value: a gap in the data is a gap in the line."""
    segment: list = []
    previous_at = None
    for point in points:
        at, value = point[0], point[column]
        if value is None or (previous_at is not None and at - previous_at > step):
            if segment:
                yield segment
            segment = []
        if value is not None:
            segment.append((at, value))
        previous_at = at
    if segment:
        yield segment


def _axis(
    start: int,
    end: int,
    left: float,
    width: float,
    y: float,
    tz: ZoneInfo,
    max_ticks: int = MAX_TICKS,
    labels: bool = True,
) -> str:
    span = end - start
    step = next((s for s in TICK_STEPS if span / s.total_seconds() <= max_ticks), TICK_STEPS[-1])
    fmt = "%H:%M" if step < timedelta(days=1) else "%d %b"
    lines, parts = [f"M{left} {y:.1f}H{left + width}"], []
    for tick in _ticks(start, end, step, tz):
        x = left + (tick.timestamp() - start) * width / max(1, span)
        lines.append(f"M{x:.1f} {y:.1f}v4")
        if labels:
            parts.append(_text(x, y + 14, tick.strftime(fmt), anchor="middle"))
    return _lines(lines) + "".join(parts)


def _ticks(start: int, end: int, step: timedelta, tz: ZoneInfo):
    local = datetime.fromtimestamp(start, UTC).astimezone(tz)
    if step >= timedelta(days=28):
        tick = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        months = round(step.days / 30)
        while tick.timestamp() < end:
            if tick.timestamp() >= start:
                yield tick
            month = tick.month - 1 + months
            tick = tick.replace(year=tick.year + month // 12, month=month % 12 + 1)
        return
    tick = local.replace(hour=0, minute=0, second=0, microsecond=0)
    while tick.timestamp() < end:
        if tick.timestamp() >= start:
            yield tick
        # Wall-clock arithmetic in the zone: ticks stay on local hours across a clock change.
        tick = (tick.replace(tzinfo=None) + step).replace(tzinfo=tz)


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value)))  # a power of ten above the value
    for fraction in (0.1, 0.2, 0.25, 0.5, 1.0):
        if value <= magnitude * fraction:
            return magnitude * fraction
    return float(magnitude)


def _open(width: int, height: float, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" role="img" aria-label="{escape(title)}" '
        f'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="10"><title>{escape(title)}</title>'
    )


def _box(x: float, y: float, width: float, height: float) -> str:
    """A rectangle as a closed subpath of a path."""
    return f"M{x:.1f} {y:.1f}h{width:.1f}v{height:.1f}h{-width:.1f}z"


def _lines(subpaths: list[str]) -> str:
    """Lines of the grid's colour as one path."""
    return f'<path d="{"".join(subpaths)}" fill="none" stroke="{GRID}" />'


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" fill="{TEXT}" text-anchor="{anchor}">{escape(text)}</text>'


def _truncate(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
