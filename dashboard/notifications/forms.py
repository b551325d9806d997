"""Form fields and validators for where reports and alerts are sent: email addresses typed
comma-separated, and webhook URLs (only those dashboard.notifications.outbound lets VelaOps reach)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from dashboard.notifications import outbound

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


def validate_webhook_url(value: str) -> None:
    """Only a URL VelaOps may reach: public addresses, or allow-listed ones. Checked again at every send,
    because a name can resolve elsewhere later."""
    try:
        outbound.resolve(value)
    except outbound.Refused as exc:
        raise ValidationError(f"Not allowed: {exc}.", code="refused") from None
    except outbound.Unresolvable as exc:
        raise ValidationError(f"{exc}; check the host name.", code="unresolvable") from None
