"""The two ways a message leaves VelaOps: email through Django's configured backend, and a JSON POST to
a webhook (only where dashboard.notifications.outbound allows). Errors raised here are recorded, so they name the
host at most, never the webhook's URL."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from dashboard.notifications import outbound
from dashboard.notifications.delivery import DeliveryFailed

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


def post_webhook(url: str, payload: dict) -> None:
    """POST `payload` to `url` if outbound allows it, on a connection to the address it checked.

    A refused URL and a redirect are final failures (a retry cannot change them); errors name the host
    only, and whatever the receiver answers is recorded without the URL's path, query or credentials."""
    try:
        destination = outbound.resolve(url)
    except outbound.Refused as exc:
        raise DeliveryFailed(f"webhook not sent, its URL is refused: {exc}", final=True) from None
    except outbound.Unresolvable as exc:
        raise DeliveryFailed(f"webhook unreachable: {exc}") from None
    where = destination.host
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    try:
        connection = outbound.connect(destination, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
        try:
            connection.request("POST", destination.target, body=json.dumps(payload).encode(), headers=headers)
            response = connection.getresponse()
            answer = response.read(2048)
        finally:
            connection.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:  # refused, timed out, TLS, a broken answer
        raise DeliveryFailed(f"webhook at {where} unreachable: {_scrub(_reason(exc), url)}") from None
    if 300 <= response.status < 400:
        # Not followed: the next hop would be a URL nobody checked (an internal address, say).
        to = _redirect_target(url, response.getheader("Location") or "")
        raise DeliveryFailed(
            f"webhook at {where} answered HTTP {response.status}, a redirect to {to}; redirects are not followed",
            final=True,
        )
    if response.status >= 400:
        text = _scrub(answer[:200].decode(errors="replace").strip(), url)
        raise DeliveryFailed(f"webhook at {where} answered HTTP {response.status}{': ' + text if text else ''}")


def _redirect_target(url: str, location: str) -> str:
    try:
        return outbound.redact(urljoin(url, location))
    except ValueError:  # a Location that is no URL at all
        return "an invalid URL"


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__  # TimeoutError() says nothing by itself


def _scrub(text: str, url: str) -> str:
    """`text` without the URL's secrets (some receivers echo the path they were called at)."""
    parts = urlsplit(url)
    secrets = {url, parts.path, parts.query, *parts.path.split("/")}
    secrets |= {value for item in parts.query.split("&") for value in item.split("=")}
    for secret in sorted((s for s in secrets if len(s) >= 8), key=len, reverse=True):
        text = text.replace(secret, "…")
    return text
