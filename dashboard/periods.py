"""Report periods: calendar days, ISO weeks and months in a time zone, intervals between cron
occurrences, and custom ranges. Plain functions over aware datetimes; nothing here touches the database.

Every period is half-open, [start, end), with both ends stored in UTC. A daily period in Europe/Berlin
is 23, 24 or 25 hours long: boundaries are local midnights, whatever the clock change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError
from django.core.exceptions import ValidationError
from django.db import models

# A cron schedule firing more often than this would fill the archive with near-empty reports.
MIN_CRON_INTERVAL = timedelta(hours=1)
CRON_CHECKED_OCCURRENCES = 48
# Longest custom range accepted from people (reports read rollups, so this is about the reader, not cost).
MAX_CUSTOM_RANGE = timedelta(days=400)


class PeriodKind(models.TextChoices):
    DAILY = "daily", "daily"
    WEEKLY = "weekly", "weekly"
    MONTHLY = "monthly", "monthly"
    CRON = "cron", "cron expression"
    CUSTOM = "custom", "custom range"


CALENDAR_KINDS = (PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY)


def zone(name: str) -> ZoneInfo:
    validate_timezone(name)
    return ZoneInfo(name)


def validate_timezone(name: str) -> None:
    if not name or name not in _zone_names():
        raise ValidationError(f"“{name}” is not a time zone name (e.g. UTC, Europe/Berlin).", code="invalid")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"“{name}” is not a time zone name (e.g. UTC, Europe/Berlin).", code="invalid") from None


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


@dataclass(frozen=True)
class Period:
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC, exclusive
    timezone: str = "UTC"
    kind: str = PeriodKind.CUSTOM

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("period bounds must be aware datetimes")
        if self.end <= self.start:
            raise ValueError("a period must end after it starts")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def previous(self) -> Period:
        """The period of the same length just before this one: what the report compares against."""
        return Period(self.start - self.length, self.start, self.timezone, self.kind)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    @property
    def label(self) -> str:
        start, last = self.local(self.start), self.local(self.end - timedelta(microseconds=1))
        if self.kind == PeriodKind.DAILY:
            return f"{start:%A %d %B %Y}"
        if self.kind == PeriodKind.WEEKLY:
            return f"week {start:%G-W%V}, {start:%d %b} to {last:%d %b %Y}"
        if self.kind == PeriodKind.MONTHLY:
            return f"{start:%B %Y}"
        end = self.local(self.end)
        return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def completed_period(kind: str, moment: datetime, timezone: str) -> Period:
    """The most recent whole day, ISO week (Monday to Sunday) or month in `timezone` that ended at or
    before `moment`."""
    tz = zone(timezone)
    today = moment.astimezone(tz).date()
    if kind == PeriodKind.DAILY:
        first, last = today - timedelta(days=1), today
    elif kind == PeriodKind.WEEKLY:
        last = today - timedelta(days=today.weekday())
        first = last - timedelta(days=7)
    elif kind == PeriodKind.MONTHLY:
        last = today.replace(day=1)
        first = (last - timedelta(days=1)).replace(day=1)
    else:
        raise ValueError(f"{kind!r} is not a calendar period")
    return Period(local_midnight(first, tz), local_midnight(last, tz), timezone, kind)


def custom_period(start: datetime, end: datetime, timezone: str = "UTC") -> Period:
    return Period(start, end, timezone, PeriodKind.CUSTOM)


# --- cron --------------------------------------------------------------------------------------------


def schedule_expression(frequency: str, hour: int, expression: str = "") -> str:
    """The cron expression a schedule fires on: calendar frequencies fire at `hour` local time on the
    first day of their period (every day, Mondays, the 1st)."""
    if frequency == PeriodKind.DAILY:
        return f"0 {hour} * * *"
    if frequency == PeriodKind.WEEKLY:
        return f"0 {hour} * * 1"
    if frequency == PeriodKind.MONTHLY:
        return f"0 {hour} 1 * *"
    return expression.strip()


def validate_cron(expression: str) -> None:
    """A five-field cron expression (cronsim's dialect) that fires at most once an hour."""
    try:
        occurrences = CronSim(expression.strip(), datetime(2026, 1, 1, tzinfo=UTC))
        times = [next(occurrences) for _ in range(CRON_CHECKED_OCCURRENCES)]
    except CronSimError as exc:
        raise ValidationError(f"Not a valid cron expression: {exc}.", code="invalid") from None
    except StopIteration:
        raise ValidationError("This cron expression never fires.", code="invalid") from None
    if any(later - earlier < MIN_CRON_INTERVAL for earlier, later in zip(times, times[1:], strict=False)):
        raise ValidationError("Reports can be scheduled at most once an hour.", code="too_often")


def next_occurrence(expression: str, after: datetime, timezone: str) -> datetime:
    """The first time strictly after `after` that the expression fires, in UTC."""
    return next(CronSim(expression, after.astimezone(zone(timezone)))).astimezone(UTC)


def last_occurrence(expression: str, moment: datetime, timezone: str) -> datetime:
    """The last time at or before `moment` that the expression fired, in UTC."""
    probe = moment.astimezone(zone(timezone)).replace(microsecond=0) + timedelta(seconds=1)
    return next(CronSim(expression, probe, reverse=True)).astimezone(UTC)


def scheduled_period(frequency: str, expression: str, timezone: str, moment: datetime) -> Period:
    """The period a schedule reports on when it runs at `moment`: the most recent completed one.

    Calendar frequencies report on the last whole day, week or month; a cron schedule on the interval
    between its two most recent occurrences. A run that comes late (the scheduler was down) still
    reports on one period only: the most recent.
    """
    if frequency in CALENDAR_KINDS:
        return completed_period(frequency, moment, timezone)
    end = last_occurrence(expression, moment, timezone)
    start = last_occurrence(expression, end - timedelta(seconds=1), timezone)
    return Period(start, end, timezone, PeriodKind.CRON)
