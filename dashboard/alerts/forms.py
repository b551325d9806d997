"""Forms of the alerts pages: alert settings, maintenance windows, and the webhook URL field the admin
shares (so both check the URL the same way)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from dashboard.models import AlertSettings, MaintenanceWindow
from dashboard.notifications.forms import EmailListField, validate_webhook_url


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
