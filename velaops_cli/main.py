"""The `velaops` command line. Each command is one or a few API calls (velaops_cli.client) and how to print them
(velaops_cli.output); the waiting lives in velaops_cli.follow and the pipeline in velaops_cli.pipeline."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import click

from velaops_cli import errors
from velaops_cli.client import Client
from velaops_cli.follow import describe, follow_log, require_succeeded, wait_attempt
from velaops_cli.output import Output, cell_text, fields, log_line, table
from velaops_cli.pipeline import run_migration

REPORT_FORMATS = {".pdf": "pdf", ".csv": "csv", ".html": "html", ".htm": "html"}
REPORT_READY = {"done", "ready", "succeeded"}
REPORT_ACTIVE = {"queued", "running"}


class State:
    """What the group's options give every command: where the API is, with which token, how to print."""

    def __init__(self, url: str, token: str, as_json: bool) -> None:
        self.url, self.token, self.as_json = url, token, as_json
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.url, self.token)
        return self._client

    @property
    def out(self) -> Output:
        return Output(self.as_json, self.redact)

    def redact(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def command(group: click.Group, name: str | None = None, **settings: Any):
    """A subcommand of `group` with its own --json (as well as the group's) and the errors turned into exit codes."""

    def decorate(function):
        @group.command(name, **settings)
        @click.option("--json", "as_json", is_flag=True, help="Machine output: one JSON document on stdout.")
        @click.pass_obj
        @functools.wraps(function)
        def wrapper(state: State, as_json: bool, **kwargs):
            state.as_json = state.as_json or as_json
            try:
                return function(state, **kwargs)
            except errors.CliError as error:
                state.out.error(error.message, error.as_json())
                raise SystemExit(error.exit_code) from None
            except KeyboardInterrupt:
                state.out.error(
                    "Interrupted: what was started on the server goes on.", {"error": {"code": "interrupted"}}
                )
                raise SystemExit(130) from None
            finally:
                if state._client is not None:
                    state._client.close()

        return wrapper

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--url", envvar="VELAOPS_URL", default="", show_envvar=True, help="VelaOps's address.")
@click.option(
    "--token",
    envvar="VELAOPS_TOKEN",
    default="",
    show_envvar=True,
    show_default=False,
    help="A personal API token (your page in VelaOps). Prefer the variable: arguments show in process lists.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine output: one JSON document on stdout.")
@click.pass_context
def cli(ctx: click.Context, url: str, token: str, as_json: bool) -> None:
    """VelaOps from pipelines and terminals, through its JSON API.

    Exit codes: 0 ok, 1 an attempt (or report) failed, was cancelled or never started, 2 usage or input the
    API rejected, 3 authentication (no, bad, expired or revoked token, or the role does not allow it),
    4 not found, 5 refused by the runbook's rules or a conflict, 6 server error or network, after retries.
    """
    ctx.obj = State(url, token, as_json)


# --- environments ----------------------------------------------------------------------------------


@cli.group()
def env() -> None:
    """Environments and their live resources."""


@command(env, "list")
def env_list(state: State) -> None:
    """The environments you can see."""
    page = state.client.get("/environments")
    rows = [
        (e["slug"], e.get("name"), e.get("region"), e.get("account_id"), e.get("runbook_mode"), e.get("open_migration"))
        for e in page.get("items", [])
    ]
    state.out.result(page, table(rows, ["slug", "name", "region", "account", "runbook", "open migration"]))


@command(env, "show")
@click.argument("environment")
def env_show(state: State, environment: str) -> None:
    """One environment and its live resources."""
    document = state.client.get(f"/environments/{environment}")
    lines = fields(document, ["slug", "name", "region", "account_id", "runbook_mode", "open_migration"])
    resources = document.get("resources")
    if resources:
        lines.append("resources:")
        lines += ["  " + line for line in describe_resources(resources)]
    state.out.result(document, lines)


def describe_resources(resources: Any) -> list[str]:
    if isinstance(resources, dict):
        items = resources.items()
    else:
        items = ((r.get("kind") or r.get("type") or "", r) for r in resources)
    lines = []
    for kind, value in items:
        if isinstance(value, dict):
            detail = ", ".join(f"{k}={cell_text(v)}" for k, v in value.items() if not isinstance(v, (dict, list)))
            lines.append(f"{kind}: {detail}")
        elif isinstance(value, list):
            lines.append(f"{kind}: {len(value)}")
            lines += ["  " + line for line in describe_resources({str(i): v for i, v in enumerate(value, 1)})]
        else:
            lines.append(f"{kind}: {cell_text(value)}")
    return lines


@command(cli, "health")
@click.argument("environment")
@click.option("--range", "range_", default="24h", show_default=True, help="The window of the latency figures.")
def health(state: State, environment: str, range_: str) -> None:
    """The environment's health targets: state and latency."""
    document = state.client.get(f"/environments/{environment}/health", range=range_)
    rows = [
        (
            t.get("name"),
            t.get("kind"),
            t.get("state"),
            t.get("paused"),
            t.get("latency_ms_p50"),
            t.get("latency_ms_p95"),
            t.get("last_probe_at"),
        )
        for t in document.get("targets", [])
    ]
    lines = table(rows, ["target", "kind", "state", "paused", "p50 ms", "p95 ms", "last probe"])
    summary = document.get("summary") or {}
    counts = ", ".join(f"{n} {state_name}" for state_name, n in (summary.get("counts") or {}).items() if n)
    if summary:
        lines.append(
            f"{summary.get('total', len(rows))} targets ({counts or 'none'}), "
            f"{summary.get('open_incidents', 0)} open incidents; latency over {summary.get('range', range_)}"
        )
    state.out.result(document, lines)


# --- migrations ------------------------------------------------------------------------------------


@cli.group()
def migration() -> None:
    """Start, follow, run, abandon and export migrations."""


def migration_lines(document: dict) -> list[str]:
    lines = fields(
        document, ["id", "environment", "status", "runbook_version", "started_by", "started_at", "finished_at"]
    )
    rows = []
    for step in sorted(document.get("steps", []), key=lambda s: s.get("position", 0)):
        run = (step.get("actions") or {}).get("run") or {}
        done = step.get("state") in ("succeeded", "skipped")
        note = "" if done else run.get("refusal") or ("needs approval" if run.get("needs_approval") else "")
        if not note and not done and run.get("destructive"):
            note = f"destructive: --confirm {run.get('confirm') or '?'}"
        rows.append((step.get("position"), step.get("key"), step.get("state"), step.get("title"), note))
    return lines + [""] + table(rows, ["#", "step", "state", "title", "note"])


@command(migration, "start")
@click.argument("environment")
@click.option("--wait", is_flag=True, help="Then wait until the migration is completed (exit 0) or abandoned (exit 1).")
def migration_start(state: State, environment: str, wait: bool) -> None:
    """Start a migration of ENVIRONMENT (its runbook chosen by the server)."""
    document = state.client.post(f"/environments/{environment}/migrations")
    state.out.progress(f"Started migration {document['id']} of {environment} ({document.get('runbook_version')}).")
    if wait:
        document = wait_migration(state, document)
    state.out.result(document, migration_lines(document))
    if document.get("status") == "abandoned":
        raise SystemExit(errors.ATTEMPT_FAILED)


def wait_migration(state: State, document: dict, poll: float = 2.0) -> dict:
    """Until the migration is no longer open, printing each step whose state changes (run from anywhere)."""
    import time

    seen = {s["key"]: s.get("state") for s in document.get("steps", [])}
    while document.get("status") == "open":
        time.sleep(poll)
        document = state.client.get(f"/migrations/{document['id']}")
        for step in document.get("steps", []):
            if seen.get(step["key"]) != step.get("state"):
                seen[step["key"]] = step.get("state")
                state.out.progress(f"{step.get('position')}. {step['key']}: {step.get('state')}")
    return document


@command(migration, "show")
@click.argument("migration_id", metavar="MIGRATION", type=int)
def migration_show(state: State, migration_id: int) -> None:
    """A migration, its steps and what each may do now."""
    document = state.client.get(f"/migrations/{migration_id}")
    state.out.result(document, migration_lines(document))


@command(migration, "list")
@click.option("--environment", "-e", help="Only this environment's.")
@click.option("--status", type=click.Choice(["open", "completed", "abandoned"]))
def migration_list(state: State, environment: str | None, status: str | None) -> None:
    """Migrations, newest first."""
    page = state.client.get("/migrations", environment=environment, status=status)
    rows = [
        (
            m["id"],
            m.get("environment"),
            m.get("status"),
            m.get("runbook_version"),
            m.get("started_by"),
            m.get("started_at"),
        )
        for m in page.get("items", [])
    ]
    state.out.result(page, table(rows, ["id", "environment", "status", "runbook", "started by", "started at"]))


@command(migration, "abandon")
@click.argument("migration_id", metavar="MIGRATION", type=int)
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
def migration_abandon(state: State, migration_id: int, reason: str) -> None:
    """Abandon an open migration."""
    document = state.client.post(f"/migrations/{migration_id}/abandon", {"reason": reason})
    state.out.result(document, f"Migration {migration_id}: {document.get('status')}.")


@command(migration, "export")
@click.argument("migration_id", metavar="MIGRATION", type=int)
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
def migration_export(state: State, migration_id: int, fmt: str, output: Path | None) -> None:
    """The migration's record (every attempt, who, when, outputs) as Markdown or JSON."""
    response = state.client.download(f"/migrations/{migration_id}/export", format=fmt)
    if output:
        output.write_bytes(response.content)
        state.out.result({"path": str(output), "bytes": len(response.content)}, f"Wrote {output}.")
    elif state.as_json and fmt == "json":
        state.out.result(response.json())
    else:
        state.out.result({"format": fmt, "content": response.text}, response.text.rstrip("\n"))


@command(migration, "run")
@click.argument("environment")
@click.option(
    "--confirm",
    "confirms",
    multiple=True,
    metavar="NAME",
    help="A resource name typed to confirm a destructive step (repeat for each); without it such a step stops the run.",
)
@click.option("--reason", default="", help="Recorded with each attempt.")
def migration_run(state: State, environment: str, confirms: tuple[str, ...], reason: str) -> None:
    """Start or continue ENVIRONMENT's open migration and run every step not done yet, in order, following each
    one's log; stop at the first that fails (exit 1) or may not run (exit 5)."""
    result = run_migration(
        state.client,
        environment,
        confirms=confirms,
        reason=reason,
        progress=state.out.progress,
        emit=lambda line: state.out.progress("    " + log_line(line)),
    )
    migration, ran = result["migration"], len(result["attempts"])
    state.out.result(result, f"Migration {migration['id']}: {migration.get('status')} ({ran} steps run).")


# --- steps -----------------------------------------------------------------------------------------


@cli.group()
def step() -> None:
    """Run, retry, roll back or skip a migration's step."""


def step_action(action: str, help_text: str, waits: bool = True) -> None:
    """Register `velaops step ACTION MIGRATION STEP`: one POST to the step's action, then finish_attempt."""

    def act(state: State, migration_id: int, key: str, reason: str, **kwargs) -> None:
        body = {"reason": reason}
        if waits:
            body["confirmation"] = kwargs["confirm"]
        attempt = state.client.post(f"/migrations/{migration_id}/steps/{key}/{action}", body)
        finish_attempt(state, attempt, wait=kwargs.get("wait", False), follow=kwargs.get("follow", False))

    options = [
        click.argument("migration_id", metavar="MIGRATION", type=int),
        click.argument("key", metavar="STEP"),
        click.option("--reason", default="", help="Recorded with the attempt (a skip needs one)."),
    ]
    if waits:
        options += [
            click.option("--confirm", default="", metavar="NAME", help="The resource name a destructive action needs."),
            click.option("--wait", is_flag=True, help="Wait for the attempt to end; exit 1 unless it succeeded."),
            click.option("--follow", "-f", is_flag=True, help="Stream its log until it ends (implies --wait)."),
        ]
    for option in reversed(options):
        act = option(act)
    command(step, action, help=help_text)(act)


def finish_attempt(state: State, attempt: dict, *, wait: bool, follow: bool) -> None:
    """Print the attempt; with --wait/--follow, once it has ended, and exit 1 unless it succeeded."""
    document: dict = {"attempt": attempt}
    if follow:
        state.out.progress(describe(attempt))
        lines: list[dict] = []

        def emit(line: dict) -> None:
            lines.append(line)
            state.out.progress(log_line(line))

        attempt = follow_log(state.client, attempt["id"], emit)
        document = {"attempt": attempt, "log": lines}
    elif wait:
        attempt = wait_attempt(state.client, attempt["id"])
        document = {"attempt": attempt}
    if wait or follow:
        require_succeeded(attempt, document)
    state.out.result(document, describe(attempt))


step_action("run", "Run STEP of MIGRATION (a failed step's run is its retry).")
step_action("retry", "Run STEP of MIGRATION again after it failed or was rolled back.")
step_action("rollback", "Roll STEP of MIGRATION back.")
step_action("skip", "Skip STEP of MIGRATION (--reason required).", waits=False)


# --- approvals -------------------------------------------------------------------------------------


@cli.group()
def approval() -> None:
    """Ask for and grant the approval a destructive action needs where the environment requires one."""


@command(approval, "request")
@click.argument("migration_id", metavar="MIGRATION", type=int)
@click.argument("key", metavar="STEP")
@click.option("--action", type=click.Choice(["run", "rollback"]), default="run", show_default=True)
def approval_request(state: State, migration_id: int, key: str, action: str) -> None:
    """Ask an approver to approve ACTION of STEP."""
    document = state.client.post(f"/migrations/{migration_id}/steps/{key}/approvals", {"action": action})
    state.out.result(
        document, f"Approval {document['id']} requested ({action} of {key}): `velaops approval grant {document['id']}`."
    )


@command(approval, "grant")
@click.argument("approval_id", metavar="APPROVAL", type=int)
def approval_grant(state: State, approval_id: int) -> None:
    """Grant an approval (an approver, not the person who asked)."""
    document = state.client.post(f"/approvals/{approval_id}/grant")
    state.out.result(document, f"Approval {approval_id} granted by {document.get('approved_by')}.")


# --- attempts --------------------------------------------------------------------------------------


@cli.group()
def attempt() -> None:
    """One attempt of a step: how it stands, its log, cancelling it."""


@command(attempt, "show")
@click.argument("attempt_id", metavar="ATTEMPT", type=int)
@click.option("--wait", is_flag=True, help="Wait for it to end; exit 1 unless it succeeded.")
def attempt_show(state: State, attempt_id: int, wait: bool) -> None:
    """An attempt: status, who asked, when, outputs."""
    document = wait_attempt(state.client, attempt_id) if wait else state.client.get(f"/attempts/{attempt_id}")
    lines = [describe(document)] + fields(document, ["requested_by", "reason", "started_at", "finished_at"])
    if document.get("outputs"):
        lines.append("outputs: " + json.dumps(document["outputs"], sort_keys=True, default=str))
    if wait:
        require_succeeded(document, document)
    state.out.result(document, lines)


@command(attempt, "log")
@click.argument("attempt_id", metavar="ATTEMPT", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep reading until the attempt ends; exit 1 unless it succeeded.")
@click.option("--after", type=int, default=None, help="Only lines after this cursor (a line's seq).")
def attempt_log(state: State, attempt_id: int, follow: bool, after: int | None) -> None:
    """An attempt's log lines."""
    if follow:
        lines: list[dict] = []

        def emit(line: dict) -> None:
            lines.append(line)
            if not state.as_json:
                state.out.progress(log_line(line))

        document = follow_log(state.client, attempt_id, emit, after=after)
        require_succeeded(document, {"attempt": document, "lines": lines})
        state.out.result({"attempt": document, "lines": lines}, [])
        return
    page = state.client.get(f"/attempts/{attempt_id}/log", after=after, limit=500)
    state.out.result(page, [log_line(line) for line in page.get("lines", [])])


@command(attempt, "cancel")
@click.argument("attempt_id", metavar="ATTEMPT", type=int)
def attempt_cancel(state: State, attempt_id: int) -> None:
    """Cancel a queued attempt, or ask a running one to stop between AWS calls."""
    document = state.client.post(f"/attempts/{attempt_id}/cancel")
    state.out.result(document, describe(document))


# --- reports ---------------------------------------------------------------------------------------


@cli.group()
def report() -> None:
    """Health reports."""


@command(report, "generate")
@click.argument("environment")
@click.option("--period", default="30d", show_default=True, help="7d, 30d, 90d, ... as the API accepts.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Wait, then download to this file."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["pdf", "csv", "html"]),
    default=None,
    help="Format to download (default: from -o's suffix, else pdf).",
)
def report_generate(state: State, environment: str, period: str, output: Path | None, fmt: str | None) -> None:
    """Generate a report of ENVIRONMENT's health over PERIOD; with -o, wait for it and download it."""
    import time

    document = state.client.post(f"/environments/{environment}/reports", {"period": period})
    state.out.progress(f"Report {document['id']} ({period}) {document.get('status')}.")
    if output is None:
        state.out.result(document, f"Report {document['id']}: {document.get('status')}.")
        return
    fmt = fmt or REPORT_FORMATS.get(output.suffix.lower(), "pdf")
    while document.get("status") in REPORT_ACTIVE:
        time.sleep(1.0)
        document = state.client.get(f"/reports/{document['id']}")
    if document.get("status") not in REPORT_READY:
        message = f"Report {document['id']} {document.get('status')}"
        if document.get("error"):
            message += f": {document['error']}"
        raise errors.CliError(message, errors.ATTEMPT_FAILED, "report_failed", result={"report": document})
    response = state.client.download(f"/reports/{document['id']}/download", format=fmt)
    output.write_bytes(response.content)
    state.out.result(
        {"report": document, "path": str(output), "format": fmt, "bytes": len(response.content)},
        f"Wrote {output} ({fmt}, {len(response.content)} bytes) from report {document['id']}.",
    )


def main() -> None:
    cli(prog_name="velaops")
