"""`velaops migration run ENV`: start or continue the environment's open migration and run every step that is
not done yet, in order, following each; the first that does not succeed stops the run (exit 1).

The runbook's rules are the server's: a step it refuses stops the run with its refusal (exit 5), a destructive
step runs only when its resource name was given with --confirm, and one that needs an approval stops with the
commands that ask for and grant it. The CLI decides nothing the API does not say."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from velaops_cli import errors
from velaops_cli.client import Client
from velaops_cli.follow import describe, follow_log

DONE = {"succeeded", "skipped"}


def open_or_start(client: Client, environment: str, progress: Callable[[str], None]) -> dict:
    env = client.get(f"/environments/{environment}")
    if env.get("open_migration") is not None:
        migration = client.get(f"/migrations/{env['open_migration']}")
        progress(f"Continuing migration {migration['id']} of {environment} ({migration.get('runbook_version')}).")
        return migration
    migration = client.post(f"/environments/{environment}/migrations")
    progress(f"Started migration {migration['id']} of {environment} ({migration.get('runbook_version')}).")
    return migration


def next_step(migration: dict) -> dict | None:
    steps = sorted(migration.get("steps", []), key=lambda s: s.get("position", 0))
    return next((s for s in steps if s.get("state") not in DONE), None)


def confirmation_for(migration: dict, step: dict, confirms: Iterable[str]) -> str:
    """The typed confirmation to send for the step's run: "" when it needs none; refuses (exit 5) with what to
    do when it is not runnable now."""
    offer = (step.get("actions") or {}).get("run") or {}
    label = f"Step {step.get('position')} “{step.get('title', step.get('key'))}” ({step.get('key')})"
    if offer.get("needs_approval"):
        raise errors.CliError(
            f"{label} needs an approver's approval first: `velaops approval request {migration['id']} "
            f"{step.get('key')}`, then an approver runs `velaops approval grant APPROVAL`.",
            errors.REFUSED,
            "needs_approval",
        )
    if offer.get("refusal"):
        raise errors.CliError(f"{label} cannot run: {offer['refusal']}", errors.REFUSED, "refused")
    if not offer.get("allowed", True):
        raise errors.CliError(f"{label} cannot run now.", errors.REFUSED, "refused")
    if not offer.get("destructive"):
        return ""
    name = offer.get("confirm") or ""
    if not name or name not in set(confirms):
        raise errors.CliError(
            f"{label} is destructive: type the resource name to confirm it, e.g. `--confirm {name or 'NAME'}`.",
            errors.REFUSED,
            "confirmation_required",
        )
    return name


def run_migration(
    client: Client,
    environment: str,
    *,
    confirms: Iterable[str] = (),
    reason: str = "",
    progress: Callable[[str], None],
    emit: Callable[[dict], None],
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Returns {"migration": <as it ended>, "attempts": [<each attempt run, as it ended>]}; raises CliError at
    the first step that does not succeed or may not run."""
    confirms = list(confirms)
    migration = open_or_start(client, environment, progress)
    attempts: list[dict] = []
    succeeded: set[str] = set()
    while migration.get("status") == "open":
        if migration.get("active_attempt"):
            # An attempt already queued or running (from the page, or a run that was interrupted): follow it to
            # its end instead of being refused, then go on from what it left.
            attempt = follow_log(client, migration["active_attempt"], emit, sleep=sleep)
            progress(f"    followed {describe(attempt)}")
            if attempt.get("status") != "succeeded":
                raise _failed(client, migration, attempt, attempts + [attempt])
            migration = client.get(f"/migrations/{migration['id']}")
            continue
        step = next_step(migration)
        if step is None:
            break
        if step["key"] in succeeded:  # the server says a step this run saw succeed is not done: do not loop
            raise errors.CliError(
                f"Step {step['key']} succeeded but the migration still shows it {step.get('state')}.",
                errors.SERVER,
                "inconsistent",
            )
        confirmation = confirmation_for(migration, step, confirms)
        progress(f"==> {step.get('position')}. {step.get('title', step['key'])} ({step['key']})")
        attempt = client.post(
            f"/migrations/{migration['id']}/steps/{step['key']}/run",
            {"confirmation": confirmation, "reason": reason},
        )
        attempt = follow_log(client, attempt["id"], emit, sleep=sleep)
        attempts.append(attempt)
        if attempt.get("status") != "succeeded":
            raise _failed(client, migration, attempt, attempts)
        succeeded.add(step["key"])
        progress(f"    {step['key']}: succeeded")
        migration = client.get(f"/migrations/{migration['id']}")
    if migration.get("status") != "completed":
        raise errors.CliError(
            f"Migration {migration['id']} is {migration.get('status')}, not completed.",
            errors.REFUSED,
            "not_completed",
        )
    return {"migration": migration, "attempts": attempts}


def _failed(client: Client, migration: dict, attempt: dict, attempts: list[dict]) -> errors.CliError:
    return errors.CliError(
        f"{describe(attempt)}\nMigration {migration['id']} stays open: fix the cause, then run this again.",
        errors.ATTEMPT_FAILED,
        f"attempt_{attempt.get('status')}",
        result={"migration": client.get(f"/migrations/{migration['id']}"), "attempts": attempts},
    )
