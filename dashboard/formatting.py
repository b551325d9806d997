"""How VelaOps prints a figure: one rule per figure, used by the health pages, the reports (HTML, PDF,
email), their server-side charts and the alerts' messages, so a figure reads the same everywhere.

Inputs are plain numbers in the unit they are measured in: ratios (0..1) for uptime and shares,
milliseconds for latency, seconds for durations, aware datetimes for times. A missing figure is a dash.
CSV and JSON carry raw numbers and do not come through here.

The browser-side hover values (static/velaops/health.js) follow the same latency rule; its per-bucket
availability still prints two decimals.
"""

from __future__ import annotations

from datetime import UTC, datetime

DASH = "—"

# --- uptime ----------------------------------------------------------------------------------------------

UPTIME_DIGITS = 3  # one failed probe in 30 days at a 30 s interval is 99.999 %: two decimals would hide it
_FULL = f"{100:.{UPTIME_DIGITS}f}"
_BEST_BELOW_FULL = f"{100 - 10**-UPTIME_DIGITS:.{UPTIME_DIGITS}f}"


def uptime(ratio: float | None) -> str:
    """Share of successful probes, three decimals: "99.982 %". Exactly all is "100 %"; anything less
    never prints as 100 (99.9996 % is "99.999 %"): a failure must not round away."""
    if ratio is None:
        return DASH
    if ratio >= 1:
        return "100 %"
    text = f"{max(ratio, 0.0) * 100:.{UPTIME_DIGITS}f}"
    return f"{_BEST_BELOW_FULL if text == _FULL else text} %"


def uptime_change(points: float | None) -> str:
    """A change of uptime, in percentage points at uptime's precision: "+0.012 pp", "±0 pp"."""
    if points is None:
        return DASH
    if round(points, UPTIME_DIGITS) == 0:
        return "±0 pp"
    return f"{points:+.{UPTIME_DIGITS}f} pp"


def uptime_grade(ratio: float | None) -> str:
    """good (≥ 99.9 %), fair (≥ 99 %), poor, or none without probes: the colour of an uptime figure."""
    if ratio is None:
        return "none"
    if ratio >= 0.999:
        return "good"
    return "fair" if ratio >= 0.99 else "poor"


# --- latency ---------------------------------------------------------------------------------------------


def latency_ms(ms: float | None, *, signed: bool = False) -> str:
    """Three significant figures or so, switching to seconds from 10 s: "4.20 ms", "12.5 ms", "340 ms",
    "12.3 s". Zero is "0 ms" (a chart's baseline). `signed` prints a change: "+12.5 ms", "±0 ms"."""
    if ms is None:
        return DASH
    if signed:
        text = latency_ms(abs(ms))
        return "±0 ms" if text in ("0 ms", "0.00 ms") else ("-" if ms < 0 else "+") + text
    if ms == 0:
        return "0 ms"
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


# --- durations, shares, counts ----------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """Two units, the second zero-padded so a column of durations lines up: "42 s", "5 min 00 s",
    "3 h 07 min", "2 d 04 h" (hours up to 48)."""
    if seconds is None:
        return DASH
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def percent(ratio: float | None) -> str:
    """A share that is not an uptime (cold starts among invocations), one decimal: "12.5 %"."""
    return DASH if ratio is None else f"{ratio * 100:.1f} %"


def count(number: int | None) -> str:
    """A count, in plain digits: what the templates print for an integer (Django's default, no grouping)."""
    return DASH if number is None else str(number)


# --- times -----------------------------------------------------------------------------------------------


def utc(moment: datetime | None) -> str:
    """A moment in UTC to the second, as pages and messages name it: "2025-03-01 14:05:09 UTC"."""
    return DASH if moment is None else f"{utc_clock(moment)} UTC"


def utc_clock(moment: datetime) -> str:
    """utc() without the zone, for a table whose heading names it: "2025-03-01 14:05:09"."""
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
