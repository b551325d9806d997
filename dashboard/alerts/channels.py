"""The two ways a message leaves VelaOps: email through Django's configured backend, and a JSON POST to
a webhook. Errors raised here are recorded, so they name the host at most, never the webhook's URL."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from .delivery import DeliveryFailed

USER_AGENT = "VelaOps-alerts/1"


def send_email(
    *, to: str, subject: str, text: str, html: str = "", attachments: list[tuple[str, bytes | str, str]] = ()
) -> None:
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        connection=get_connection(fail_silently=False),
    )
    if html:
        message.attach_alternative(html, "text/html")
    for name, data, mimetype in attachments:
        message.attach(name, data, mimetype)
    try:
        sent = message.send()
    except OSError as exc:  # SMTP errors, refused connections, timeouts, a full disk for the file backend
        raise DeliveryFailed(f"email to {to}: {type(exc).__name__}: {exc}") from None
    if not sent:
        raise DeliveryFailed(f"email to {to}: the backend sent nothing")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a webhook that redirects is misconfigured: fail visibly rather than POST elsewhere


_opener = urllib.request.build_opener(_NoRedirects)


def post_webhook(url: str, payload: dict) -> None:
    parts = urlsplit(url)
    where = parts.hostname or "the webhook"
    if parts.scheme not in ("http", "https"):
        raise DeliveryFailed("webhook URL must be http or https")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with _opener.open(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            response.read(2048)
    except urllib.error.HTTPError as exc:
        answer = exc.read(200).decode(errors="replace").strip()
        raise DeliveryFailed(f"webhook at {where} answered HTTP {exc.code}{': ' + answer if answer else ''}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"webhook at {where} unreachable: {reason}") from None
