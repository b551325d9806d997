"""`manage.py report`: generate one health report and write it to a file (or stdout).

manage.py report --environment sandbox --period daily --format pdf --out report.pdf
manage.py report --environment sandbox --period 2026-11-01..2026-11-08 --timezone Europe/Berlin --format csv --out -
"""

from __future__ import annotations

import sys
from datetime import date, datetime, time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dashboard.models import Environment
from dashboard.periods import (
    CALENDAR_KINDS,
    MAX_CUSTOM_RANGE,
    Period,
    completed_period,
    custom_period,
    validate_timezone,
    zone,
)
from dashboard.reports.generate import build_report, report_store
from dashboard.reports.render import render_document

FORMATS = ("html", "csv", "pdf")


class Command(BaseCommand):
    help = "Generate a health report of an environment for a period and write it as HTML, CSV or PDF."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--environment", required=True, metavar="SLUG")
        parser.add_argument(
            "--period",
            required=True,
            metavar="daily|weekly|monthly|FROM..TO",
            help="The last whole day, week or month, or a range of dates or ISO datetimes (TO excluded).",
        )
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, metavar="FILE", help="Where to write it; - for stdout.")
        parser.add_argument("--timezone", default="UTC", help="Time zone of the period's boundaries (default UTC).")
        parser.add_argument("--store", action="store_true", help="Also keep it in the environment's report archive.")

    def handle(self, *args, **options) -> None:
        environment = Environment.objects.filter(slug=options["environment"]).first()
        if environment is None:
            raise CommandError(f"No environment with the slug {options['environment']!r}.")
        try:
            validate_timezone(options["timezone"])
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from None
        period = parse_period(options["period"], options["timezone"])
        rendered = build_report(environment, period)
        if options["store"]:
            report = report_store(environment=environment, period=period, rendered=rendered)
            self.stderr.write(f"stored as report {report.pk}")
        data: bytes
        if options["format"] == "pdf":
            data = rendered.pdf
        elif options["format"] == "csv":
            data = rendered.csv.encode()
        else:
            data = render_document(rendered.html, rendered.content).encode()
        if options["out"] == "-":
            if options["format"] == "pdf" and sys.stdout.isatty():
                raise CommandError("Refusing to write a PDF to a terminal; use --out FILE.")
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            return
        with open(options["out"], "wb") as out:
            out.write(data)
        self.stderr.write(
            f"{period.label} ({period.start:%Y-%m-%d %H:%M} to {period.end:%Y-%m-%d %H:%M} UTC): "
            f"{len(data)} bytes written to {options['out']}"
        )


def parse_period(text: str, tz_name: str) -> Period:
    if text in CALENDAR_KINDS:
        return completed_period(text, timezone.now(), tz_name)
    if ".." not in text:
        raise CommandError("--period is daily, weekly, monthly or FROM..TO (e.g. 2026-11-01..2026-11-08).")
    first, _, last = text.partition("..")
    start, end = _moment(first, tz_name), _moment(last, tz_name)
    if end <= start:
        raise CommandError("The period must end after it starts.")
    if end - start > MAX_CUSTOM_RANGE:
        raise CommandError(f"A period is at most {MAX_CUSTOM_RANGE.days} days.")
    return custom_period(start, end, tz_name)


def _moment(text: str, tz_name: str) -> datetime:
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (2026-11-01) or an ISO datetime (2026-11-01T06:00).") from None
    if len(text) == 10:  # a bare date: its midnight
        moment = datetime.combine(date.fromisoformat(text), time(0))
    return moment if moment.tzinfo else moment.replace(tzinfo=zone(tz_name))
