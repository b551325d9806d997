"""A migration run as a document: JSON for machines, Markdown for people. Same facts in both."""

from __future__ import annotations

from dashboard.models import Attempt, MigrationRun


def migration_as_json(migration: MigrationRun) -> dict:
    attempts = Attempt.objects.filter(migration=migration).select_related("requested_by").order_by("number")
    by_step: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        by_step.setdefault(attempt.step_id, []).append(attempt)
    return {
        "migration": migration.pk,
        "uuid": str(migration.uuid),
        "environment": migration.environment.slug,
        "runbook_version": migration.runbook_version,
        "status": migration.status,
        "started_by": str(migration.started_by),
        "started_at": migration.started_at,
        "finished_at": migration.finished_at,
        "summary": migration.summary,
        "steps": [
            {
                "position": step.position,
                "key": step.key,
                "title": step.title,
                "state": step.state,
                "outputs": step.outputs,
                "attempts": [_attempt(a) for a in by_step.get(step.pk, [])],
            }
            for step in migration.steps.order_by("position")
        ],
    }


def _attempt(attempt: Attempt) -> dict:
    return {
        "number": attempt.number,
        "action": attempt.action,
        "status": attempt.status,
        "operator": str(attempt.requested_by),
        "source_address": attempt.source_address,
        "requested_at": attempt.requested_at,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "duration_seconds": attempt.duration_seconds,
        "worker": attempt.worker,
        "reason": attempt.reason,
        "error": attempt.error,
        "aws_request_ids": attempt.outputs.get("aws_request_ids", []),
        "outputs": {k: v for k, v in attempt.outputs.items() if k != "aws_request_ids"},
    }


def migration_as_markdown(migration: MigrationRun) -> str:
    data = migration_as_json(migration)
    lines = [
        f"# Migration {data['migration']} of {data['environment']}",
        "",
        f"- Runbook: {data['runbook_version']}",
        f"- Status: **{data['status']}**",
        f"- Started by {data['started_by']} at {_time(data['started_at'])}"
        + (f", finished at {_time(data['finished_at'])}" if data["finished_at"] else ""),
        "",
        "| # | Step | State | Attempts |",
        "|---|---|---|---|",
    ]
    for step in data["steps"]:
        lines.append(f"| {step['position']} | {step['title']} | {step['state']} | {len(step['attempts'])} |")
    for step in data["steps"]:
        lines += ["", f"## {step['position']}. {step['title']} — {step['state']}"]
        for attempt in step["attempts"]:
            lines.append(
                f"- {attempt['action']} #{attempt['number']}: **{attempt['status']}** by {attempt['operator']}"
                f" (from {attempt['source_address'] or '?'}), requested {_time(attempt['requested_at'])}"
                + (f", {attempt['duration_seconds']:.1f} s" if attempt["duration_seconds"] is not None else "")
            )
            if attempt["reason"]:
                lines.append(f"  - reason: {attempt['reason']}")
            if attempt["error"]:
                error = attempt["error"]
                lines.append(
                    f"  - error: `{error.get('code')}` {error.get('message')}"
                    + (f" (request id {error['request_id']})" if error.get("request_id") else "")
                )
            if attempt["aws_request_ids"]:
                lines.append("  - AWS request ids: " + ", ".join(f"`{r}`" for r in attempt["aws_request_ids"]))
        if step["outputs"]:
            lines.append("")
            lines.append("Outputs:")
            lines += [f"- {key}: `{value}`" for key, value in step["outputs"].items() if key != "aws_request_ids"]
    return "\n".join(lines) + "\n"


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"
