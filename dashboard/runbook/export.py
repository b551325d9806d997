"""A migration run as a document: JSON for machines, Markdown for people. Same facts in both."""

from __future__ import annotations

from dashboard.models import Attempt, MigrationRun

# Outputs not printed among a step's others: the diff has its own table (the page's, the export's change sets),
# the previous template is only kept for the rollback to deploy (tens of kilobytes of JSON nobody reads there);
# the schema step's script is a download of its own and its findings a table of their own.
NOT_PRINTED = ("diff", "previous_template", "script", "findings")


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
            lines += [
                f"- {key}: `{value}`"
                for key, value in step["outputs"].items()
                if key != "aws_request_ids" and key not in NOT_PRINTED and key not in BAKE_KEYS
            ]
    lines += _change_sets(data["steps"])
    lines += _bakes(data["steps"])
    return "\n".join(lines) + "\n"


def _change_sets(steps: list[dict]) -> list[str]:
    """Every change set the run reviewed, with its diff and whether its execute step deployed it."""
    executed = {
        step["key"]: step["outputs"].get("executed")
        for step in steps
        if step["key"].startswith("execute_") and step["state"] == "succeeded"
    }
    reviewed = [s for s in steps if isinstance(s["outputs"].get("diff"), list) and s["outputs"].get("change_set")]
    if not reviewed:
        return []
    lines = ["", "## Change sets"]
    for step in reviewed:
        out = step["outputs"]
        deployed = executed.get(step["key"].replace("review_", "execute_", 1))
        state = "executed" if deployed else "changes nothing" if out.get("empty") else "reviewed, not executed"
        lines += ["", f"### {out['change_set']} on {out.get('stack', '?')} — {state}", ""]
        if out.get("change_set_id"):
            lines.append(f"- id: `{out['change_set_id']}`")
        if out.get("overridden"):
            accepted = out["overridden"]
            lines.append(f"- blockers accepted by {accepted['by']}: {accepted['reason']}")
            lines += [f"  - {finding}" for finding in accepted["findings"]]
        if not out["diff"]:
            continue
        lines += ["", "| Action | Logical ID | Type | Physical ID | Replacement | Policy | Property changes |"]
        lines.append("|---|---|---|---|---|---|---|")
        for row in out["diff"]:
            changes = "; ".join(_detail(d) for d in (row.get("details") or [])) or "—"
            cells = [
                row.get("action", ""),
                f"`{row.get('logical_id', '')}`",
                row.get("type", ""),
                f"`{row['physical_id']}`" if row.get("physical_id") else "—",
                row.get("replacement") or "—",
                row.get("policy_action") or "—",
                changes,
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


# A bake's verdict and criteria have their section (_bakes).
BAKE_KEYS = ("verdict", "criteria")
BAKE_FIGURES = (
    ("answered", "answered probes"),
    ("errors", "failed probes"),
    ("degraded", "of which served, degraded"),
    ("api_ms_p50", "API p50 ms"),
    ("api_ms_p95", "API p95 ms"),
    ("api_ms_p99", "API p99 ms"),
    ("dsql_ms_p95", "DSQL check p95 ms"),
    ("cold_starts", "cold starts"),
    ("init_ms_p95", "Init Duration p95 ms"),
)


def _bakes(steps: list[dict]) -> list[str]:
    """Every bake's verdict with its checks, the figures beside the baseline's, and the criteria."""
    runs = [(step, a) for step in steps for a in step["attempts"] if (a["outputs"] or {}).get("verdict")]
    if not runs:
        return []
    lines = ["", "## Bakes"]
    for step, attempt in runs:
        verdict = attempt["outputs"]["verdict"]
        lines += ["", f"### {step['title']}, run #{attempt['number']} — {verdict['outcome']}", "", verdict["reason"]]
        lines += ["", "| Check | Outcome | Finding |", "|---|---|---|"]
        lines += [f"| {c['name']} | {c['outcome']} | {_cell(c['summary'])} |" for c in verdict["checks"]]
        baseline, bake = verdict["figures"]["baseline"], verdict["figures"]["bake"]
        lines += ["", "| Figure | Baseline | Bake |", "|---|---|---|"]
        lines += [f"| {label} | {_short(baseline.get(k))} | {_short(bake.get(k))} |" for k, label in BAKE_FIGURES]
        criteria = attempt["outputs"].get("criteria") or {}
        lines += ["", "Criteria: " + ", ".join(f"{name} {value}" for name, value in criteria.items())]
    return lines


def _detail(detail: dict) -> str:
    path = detail.get("attribute", "") + (f".{detail['name']}" if detail.get("name") else "")
    if detail.get("before") is None and detail.get("after") is None:
        return path
    return f"{path}: {_short(detail.get('before'))} → {_short(detail.get('after'))}"


def _short(value, limit: int = 80) -> str:
    text = "—" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(text: str) -> str:
    # A pipe or newline in a value (a template's JSON) would break the table's row.
    return str(text).replace("|", "\\|").replace("\n", " ")


def _time(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"
