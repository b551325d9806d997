"""Waiting for an attempt: following its log by the API's cursor, or polling its status, until it ends."""

from __future__ import annotations

import time
from collections.abc import Callable

from velaops_cli import errors
from velaops_cli.client import Client

ACTIVE = {"queued", "running", "cancelling"}
POLL_SECONDS = 1.0
PAGE = 500


def follow_log(
    client: Client,
    attempt_id: int,
    emit: Callable[[dict], None],
    *,
    after: int | None = None,
    poll: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Emit every log line of the attempt from `after` on, as it is written, until the attempt has ended and
    every line was read; returns the attempt as it ended."""
    cursor = after
    while True:
        page = client.get(f"/attempts/{attempt_id}/log", after=cursor, limit=PAGE)
        for line in page.get("lines", []):
            emit(line)
        if page.get("cursor") is not None:
            cursor = page["cursor"]
        if page.get("finished"):
            return client.get(f"/attempts/{attempt_id}")
        if len(page.get("lines", [])) < PAGE:  # caught up: wait for more; a full page means read on at once
            sleep(poll)


def wait_attempt(
    client: Client, attempt_id: int, *, poll: float = POLL_SECONDS, sleep: Callable[[float], None] = time.sleep
) -> dict:
    while True:
        attempt = client.get(f"/attempts/{attempt_id}")
        if attempt.get("status") not in ACTIVE:
            return attempt
        sleep(poll)


def describe(attempt: dict) -> str:
    """One line on how an attempt stands or ended."""
    what = f"Attempt {attempt.get('id')} ({attempt.get('action', 'run')} of {attempt.get('step_key', '?')}, "
    what += f"#{attempt.get('number', '?')}): {attempt.get('status')}"
    error = attempt.get("error")
    if isinstance(error, dict) and error.get("message"):
        what += f": {error['message']}"
    elif isinstance(error, str) and error:
        what += f": {error}"
    elif attempt.get("status") not in ("succeeded", *ACTIVE) and attempt.get("reason"):
        what += f" ({attempt['reason']})"
    return what


def require_succeeded(attempt: dict, result: dict) -> None:
    """Exit 1 for an attempt that ended any other way than succeeded (failed, cancelled, interrupted, not
    started): a pipeline must stop there. `result` is what --json prints beside the error."""
    if attempt.get("status") != "succeeded":
        raise errors.CliError(
            describe(attempt), errors.ATTEMPT_FAILED, f"attempt_{attempt.get('status')}", result=result
        )
