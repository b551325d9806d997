"""Forms of the report pages: what people may ask for, validated before any work starts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from dashboard.models import ReportFormat, ReportSchedule
from dashboard.notifications.forms import EmailListField
from dashboard.periods import (
    MAX_CUSTOM_RANGE,
    Period,
    PeriodKind,
    completed_period,
    custom_period,
    validate_timezone,
    zone,
)

GENERATE_CHOICES = [
    (PeriodKind.DAILY.value, "Yesterday (the last whole day)"),
    (PeriodKind.WEEKLY.value, "Last week (Monday to Sunday)"),
    (PeriodKind.MONTHLY.value, "Last month"),
    (PeriodKind.CUSTOM.value, "Custom range"),
]


class TimezoneField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("initial", "UTC")
        kwargs.setdefault("help_text", "A time zone name such as UTC or Europe/Berlin.")
        super().__init__(**kwargs)

    def validate(self, value) -> None:
        super().validate(value)
        validate_timezone(value)


class GenerateForm(forms.Form):
    period = forms.ChoiceField(choices=GENERATE_CHOICES, initial=PeriodKind.DAILY.value)
    timezone = TimezoneField()
    start = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="Custom: from"
    )
    end = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), help_text="Custom: to"
    )
    recipients = EmailListField(label="Also email it to")

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        now = timezone.now()
        kind, tz_name = data["period"], data["timezone"]
        if kind != PeriodKind.CUSTOM:
            data["period_range"] = completed_period(kind, now, tz_name)
            return data
        start, end = data.get("start"), data.get("end")
        if not start or not end:
            raise ValidationError("A custom range needs both ends.")
        # The browser sends local wall-clock times: they mean the chosen time zone.
        tz = zone(tz_name)
        start, end = (_in_zone(moment, tz) for moment in (start, end))
        if end <= start:
            raise ValidationError("The range must end after it starts.")
        if end > now + timedelta(minutes=1):
            raise ValidationError("The range cannot end in the future.")
        if end - start > MAX_CUSTOM_RANGE:
            raise ValidationError(f"A range is at most {MAX_CUSTOM_RANGE.days} days.")
        if end - start < timedelta(minutes=1):
            raise ValidationError("A range is at least one minute.")
        data["period_range"] = custom_period(start, end, tz_name)
        return data

    @property
    def period_range(self) -> Period:
        return self.cleaned_data["period_range"]


def _in_zone(moment: datetime, tz) -> datetime:
    naive = moment.replace(tzinfo=None) if timezone.is_aware(moment) else moment
    return naive.replace(tzinfo=tz)


class ScheduleForm(forms.ModelForm):
    recipients = EmailListField()
    timezone = TimezoneField()
    formats = forms.MultipleChoiceField(
        choices=ReportFormat.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Attached to the email; the HTML report is the body.",
    )

    class Meta:
        model = ReportSchedule
        fields = ["name", "frequency", "cron_expression", "hour", "timezone", "recipients", "formats", "enabled"]

    def clean_name(self) -> str:
        # The (environment, name) constraint: the environment is not a field here, so the model form
        # leaves the constraint out of its checks and a duplicate would reach the database.
        name = self.cleaned_data["name"]
        others = ReportSchedule.objects.filter(environment_id=self.instance.environment_id, name=name)
        if others.exclude(pk=self.instance.pk).exists():
            raise ValidationError("This environment has a schedule of that name already.", code="unique")
        return name
