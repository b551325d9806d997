"""What an alert says: subject, body and link when it is raised; the email and webhook payload it is
sent as. Nothing secret goes in: error messages as the probes recorded them, names and times."""

from __future__ import annotations

from django.template.loader import render_to_string

from dashboard.formatting import duration, utc
from dashboard.models import Alert, AlertKind, Attempt, Incident, Target, WebhookFormat
from dashboard.notifications.links import link_to

SUBJECT_LIMIT = 300


def target_message(kind: str, target: Target, incident: Incident | None, now) -> tuple[str, str, str]:
    environment = target.environment
    name = f"{target.get_kind_display()} {target.display_name}"
    link = link_to("target-detail", environment.slug, target.pk, fallback=("environment-detail", (environment.slug,)))
    if kind == AlertKind.TARGET_UP:
        took = duration(incident.duration_seconds(now)) if incident else "an unknown time"
        subject = f"RECOVERED: {name} is up again after {took}"
        lines = [f"{name} in {environment.name} recovered at {_utc(target.status_since or now)}."]
        if incident:
            lines.append(f"It had been down since {_utc(incident.opened_at)} ({took}); cause: {incident.cause}")
    else:
        since = incident.opened_at if incident else target.status_since or now
        prefix = "STILL DOWN" if kind == AlertKind.TARGET_STILL_DOWN else "DOWN"
        subject = f"{prefix}: {name}"
        if kind == AlertKind.TARGET_STILL_DOWN:
            subject += f" (for {duration((now - since).total_seconds())})"
        lines = [f"{name} in {environment.name} is down since {_utc(since)}."]
        if incident:
            lines.append(f"Cause: {incident.cause}")
            if incident.last_error and incident.last_error != incident.cause:
                lines.append(f"Latest error: {incident.last_error}")
            lines.append(f"Failed probes so far: {incident.failure_count}")
    return _subject(environment.name, subject), "\n".join(lines), link


def attempt_message(kind: str, attempt: Attempt) -> tuple[str, str, str]:
    environment = attempt.migration.environment
    step = attempt.step
    verb = "failed" if kind == AlertKind.STEP_FAILED else "was interrupted"
    subject = f"Runbook step {verb}: {step.position}. {step.title} ({attempt.action} #{attempt.number})"
    lines = [
        f"{attempt.action.capitalize()} #{attempt.number} of step {step.position}, “{step.title}”, {verb} "
        f"at {_utc(attempt.finished_at)} in migration {attempt.migration_id} of {environment.name}.",
        f"Requested by {attempt.requested_by.get_username()}.",
    ]
    if attempt.error:
        lines.append(f"Error: {attempt.error.get('code', '')}: {attempt.error.get('message', '')}")
    if attempt.reason:
        lines.append(f"Reason: {attempt.reason}")
    link = link_to("attempt-detail", environment.slug, attempt.migration_id, attempt.pk)
    return _subject(environment.name, subject), "\n".join(lines), link


def email_parts(alert: Alert) -> tuple[str, str, str]:
    context = {"alert": alert, "environment": alert.environment}
    return (
        alert.subject,
        render_to_string("email/alert.txt", context),
        render_to_string("email/alert.html", context),
    )


def webhook_payload(alert: Alert, format: str) -> dict:
    text = f"{alert.subject}\n{alert.body}"
    if alert.link:
        text += f"\n{alert.link}"
    if format == WebhookFormat.TEXT:
        return {"text": text}
    body = alert.body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}},
    ]
    if alert.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Open in VelaOps"}, "url": alert.link}
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{alert.environment.name} · {alert.get_kind_display()} · {_utc(alert.created_at)}",
                }
            ],
        }
    )
    return {"text": text, "blocks": blocks}


def _subject(environment: str, text: str) -> str:
    return f"[VelaOps {environment}] {text}"[:SUBJECT_LIMIT]


def _utc(moment) -> str:
    return utc(moment) if moment else "an unknown time"
