"""Forms of the report and alert pages: what people may ask for, validated before any work starts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from dashboard.models import AlertSettings, MaintenanceWindow, ReportFormat, ReportSchedule
from dashboard.reports.periods import (
    MAX_CUSTOM_RANGE,
    Period,
    PeriodKind,
    completed_period,
    custom_period,
    validate_timezone,
    zone,
)
from dashboard.validators import validate_webhook_url

GENERATE_CHOICES = [
    (PeriodKind.DAILY.value, "Yesterday (the last whole day)"),
    (PeriodKind.WEEKLY.value, "Last week (Monday to Sunday)"),
    (PeriodKind.MONTHLY.value, "Last month"),
    (PeriodKind.CUSTOM.value, "Custom range"),
]
MAX_RECIPIENTS = 20


def parse_emails(text: str) -> list[str]:
    emails = [part.strip() for part in text.replace(";", ",").replace("\n", ",").split(",") if part.strip()]
    for email in emails:
        validate_email(email)
    if len(emails) > MAX_RECIPIENTS:
        raise ValidationError(f"At most {MAX_RECIPIENTS} addresses.")
    return list(dict.fromkeys(emails))


class EmailListField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated email addresses.")
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value)
        try:
            return parse_emails(text)
        except ValidationError:
            raise ValidationError("Enter email addresses separated by commas.") from None


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


def webhook_url_field() -> forms.URLField:
    """A webhook URL is a secret: never rendered back into a page, and a blank field keeps the current one."""
    return forms.URLField(
        label="Webhook URL",
        required=False,
        max_length=2048,
        assume_scheme="https",
        validators=[validate_webhook_url],  # public addresses only, checked again when sending
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave blank to keep the current webhook.",
    )


class AlertSettingsForm(forms.ModelForm):
    """The webhook URL is write-only here: the page never shows it, a blank field keeps the current one."""

    emails = EmailListField(label="Email addresses")
    new_webhook_url = webhook_url_field()
    remove_webhook = forms.BooleanField(required=False, label="Remove the webhook")

    class Meta:
        model = AlertSettings
        fields = ["enabled", "emails", "webhook_format", "resend_minutes", "notify_steps"]

    def save(self, commit: bool = True) -> AlertSettings:
        settings_row = super().save(commit=False)
        if self.cleaned_data.get("remove_webhook"):
            settings_row.webhook_url = ""
        elif self.cleaned_data.get("new_webhook_url"):
            settings_row.webhook_url = self.cleaned_data["new_webhook_url"]
        if commit:
            settings_row.save()
        return settings_row


class MaintenanceWindowForm(forms.ModelForm):
    starts_at = forms.DateTimeField(label="Starts (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ends_at = forms.DateTimeField(label="Ends (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    class Meta:
        model = MaintenanceWindow
        fields = ["starts_at", "ends_at", "reason"]

    def clean(self) -> dict:
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends:
            if ends <= starts:
                raise ValidationError("A window must end after it starts.")
            if ends <= timezone.now():
                raise ValidationError("This window would already be over.")
            if ends - starts > timedelta(days=31):
                raise ValidationError("A window is at most 31 days.")
        return data
