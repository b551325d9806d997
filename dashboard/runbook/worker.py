"""The worker side of a migration: execute a queued attempt (claim it, heartbeat from a side thread that also
relays cancel requests, run the step, record its end), and the sweep that re-sends lost messages and marks
attempts whose worker died. People's actions are dashboard.runbook.service.

The worker records an attempt's end under the same migration row lock as every action (service.lock_migration),
so an action never sees the attempt ended and its step not yet following it.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from dashboard import queue
from dashboard.aws import AWS_EXCEPTIONS, describe_error
from dashboard.db import reconnecting
from dashboard.models import Attempt, MigrationRun, Step
from dashboard.redis_client import redis_client, redis_key
from dashboard.runbook import COMPLETE_KEY, events, step_definition
from dashboard.runbook.context import Cancelled, StepContext, StepFailed
from dashboard.runbook.definition import StepDefinition
from dashboard.runbook.service import RUN_ATTEMPT_TASK, ActionRefused, attempt_automatic_rollback, lock_migration

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 5  # seconds between a running attempt's heartbeats
STALE_AFTER = timedelta(seconds=30)  # no heartbeat for this long: the worker is gone
FINISH_WITHIN = 120  # seconds a finished attempt keeps trying to record its outcome through a database outage
QUEUED_TIMEOUT = timedelta(minutes=15)  # queued this long without a worker picking it up
RESEND_AFTER = timedelta(seconds=60)  # queued and unclaimed this long: its message may be lost, send it again
ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}


def _definition(step: Step) -> StepDefinition:
    # A step a newer runbook no longer has: recorded as the attempt's failure.
    definition = step_definition(step.key)
    if definition is None:
        raise ActionRefused(f"The runbook no longer has a step “{step.key}”.")
    return definition


class _Heartbeat(threading.Thread):
    """Stamps the attempt every few seconds and relays a cancel request to the step."""

    def __init__(self, attempt_id: int, cancel: threading.Event):
        super().__init__(name=f"heartbeat-{attempt_id}", daemon=True)
        self.attempt_id, self.cancel, self.stopped = attempt_id, cancel, threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(HEARTBEAT_INTERVAL):
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            "UPDATE dashboard_attempt SET heartbeat_at = now() WHERE id = %s "
                            "AND status IN ('running', 'cancelling') RETURNING status",
                            [self.attempt_id],
                        )
                        row = cursor.fetchone()
                except DatabaseError as exc:
                    # A PostgreSQL restart or failover: the next beat reconnects. Dying here would let the
                    # sweep call a healthy step's worker gone (STALE_AFTER allows several missed beats).
                    log.warning("attempt %s: heartbeat failed (%s); retrying at the next beat", self.attempt_id, exc)
                    connection.close()
                    continue
                if row is None:  # finished, or the sweep gave up on us: nothing to keep alive
                    return
                if row[0] == Attempt.Status.CANCELLING:
                    self.cancel.set()
        finally:
            connection.close()


def attempt_execute(attempt_id: int, worker: str = "") -> str | None:
    """Run a queued attempt to its end; returns the final status, None if it was not ours to run."""
    now = timezone.now()
    claimed = reconnecting(
        lambda: Attempt.objects.filter(pk=attempt_id, status=Attempt.Status.QUEUED).update(
            status=Attempt.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200]
        ),
        what=f"claiming attempt {attempt_id}",
        within=30,
    )
    if not claimed:  # cancelled before it started, or a duplicate delivery of the message
        return None
    attempt = Attempt.objects.select_related("step", "migration__environment", "requested_by").get(pk=attempt_id)
    cancel = threading.Event()
    heartbeat = _Heartbeat(attempt.pk, cancel)
    heartbeat.start()
    ctx = StepContext(attempt, cancel)
    outputs: dict = {}
    error: dict = {}
    try:
        definition = _definition(attempt.step)
        ctx.log(f"{attempt.action} started by {attempt.requested_by} on {worker or 'a worker'}")
        outputs = (definition.run if attempt.action == Attempt.Action.RUN else definition.rollback)(ctx) or {}
        status = Attempt.Status.SUCCEEDED
    except Cancelled:
        status = Attempt.Status.CANCELLED
        ctx.log("stopped between AWS calls at the operator's request", level="warning")
    except Exception as exc:  # noqa: BLE001 — every failure is recorded, none escapes unrecorded
        status = Attempt.Status.FAILED
        error, outputs = _describe_failure(exc)
        ctx.log(f"failed: {error['code']}: {error['message']}", level="error", data=error)
        if error["code"] == "InternalError":
            log.exception("attempt %s failed unexpectedly", attempt_id)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=HEARTBEAT_INTERVAL + 5)
    if ctx.request_ids:
        outputs = {**outputs, "aws_request_ids": ctx.request_ids}
    _finish(attempt, status, outputs, error)
    return status


def _describe_failure(exc: Exception) -> tuple[dict, dict]:
    if isinstance(exc, StepFailed):
        return {"code": "StepFailed", "message": str(exc)}, exc.data
    if isinstance(exc, AWS_EXCEPTIONS):
        error = describe_error(exc).as_dict()
        if error["code"] in ACCESS_DENIED_CODES and error["operation"]:
            service = getattr(exc, "velaops_service", "")
            error["iam_action"] = f"{service}:{error['operation']}" if service else error["operation"]
            error["message"] += f" (refused IAM action: {error['iam_action']})"
        return error, {}
    if isinstance(exc, psycopg.Error):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return {"code": f"SQL {sqlstate}".strip() if sqlstate else type(exc).__name__, "message": str(exc).strip()}, {}
    if isinstance(exc, SoftTimeLimitExceeded):
        return {"code": "TimeLimitExceeded", "message": "The step ran past the task's time limit."}, {}
    return {"code": "InternalError", "message": f"{type(exc).__name__}: {exc}"}, {}


def _finish(attempt: Attempt, status: str, outputs: dict, error: dict) -> None:
    """Record the outcome, reconnecting through a database outage for up to FINISH_WITHIN; if even that
    fails, leave the true outcome where the sweep will find it instead of a bare 'stopped heartbeating'."""
    close_old_connections()
    try:
        reconnecting(
            lambda: _finish_once(attempt, status, outputs, error),
            what=f"recording attempt {attempt.pk}",
            within=FINISH_WITHIN,
        )
    except DatabaseError as exc:
        cause = f"the worker finished it as {status} but could not record that: {type(exc).__name__}: {exc}"
        log.error("attempt %s: %s", attempt.pk, cause)
        _remember_unrecorded(attempt.pk, cause)
        raise


def _remember_unrecorded(attempt_id: int, cause: str) -> None:
    try:
        redis_client().set(redis_key(f"attempt-unrecorded:{attempt_id}"), cause[:2000], ex=7 * 86400)
    except RedisError:
        log.error("attempt %s: Redis is away too; the cause is only in this log", attempt_id)


def _unrecorded_cause(attempt_id: int) -> str | None:
    try:
        return redis_client().get(redis_key(f"attempt-unrecorded:{attempt_id}"))
    except RedisError:
        return None


def _finish_once(attempt: Attempt, status: str, outputs: dict, error: dict) -> None:
    with transaction.atomic():
        # Under the migration's lock, like every request: an action decides on the attempt and the step
        # together, so it must never see the attempt ended and its step not yet following it.
        migration = lock_migration(attempt.migration)
        finished = Attempt.objects.filter(
            pk=attempt.pk, status__in=[Attempt.Status.RUNNING, Attempt.Status.CANCELLING]
        ).update(status=status, finished_at=timezone.now(), outputs=outputs, error=error)
        if not finished:
            # The sweep declared us interrupted (a pause longer than STALE_AFTER): keep its verdict, log ours.
            StepContext(attempt).log(
                f"finished as {status} after being marked interrupted; retry to converge", level="warning"
            )
            return
        _apply_to_step(attempt, status, outputs)
        transaction.on_commit(lambda: events.attempt_ended.send(Attempt, attempt=attempt, status=status), robust=True)
        if status == Attempt.Status.FAILED and attempt.action == Attempt.Action.RUN:
            _roll_back_automatically(migration, attempt, outputs)


def _roll_back_automatically(migration: MigrationRun, attempt: Attempt, outputs: dict) -> None:
    """A failed bake's judged change is rolled back at once, in the transaction that records the failure: no
    action can come between them, and the record shows the one following the other."""
    definition = step_definition(attempt.step.key)
    wanted = definition.automatic_rollback(outputs) if definition else None
    if wanted is None:
        return
    key, reason = wanted
    ctx = StepContext(attempt)
    try:
        rollback = attempt_automatic_rollback(migration=migration, step_key=key, reason=reason)
    except ActionRefused as refusal:
        ctx.log(f"VelaOps could not start the rollback of {key} by itself: {refusal}", level="error")
        return
    ctx.log(f"VelaOps started the rollback of “{rollback.step.title}” (attempt #{rollback.number})", level="warning")


def _apply_to_step(attempt: Attempt, status: str, outputs: dict) -> None:
    step = attempt.step
    if attempt.action == Attempt.Action.RUN:
        if status == Attempt.Status.SUCCEEDED:
            Step.objects.filter(pk=step.pk).update(state=Step.State.SUCCEEDED, outputs=outputs)
            if step.key == COMPLETE_KEY:
                MigrationRun.objects.filter(pk=attempt.migration_id, status=MigrationRun.Status.OPEN).update(
                    status=MigrationRun.Status.COMPLETED, finished_at=timezone.now(), summary=outputs
                )
        elif status in (Attempt.Status.FAILED, Attempt.Status.INTERRUPTED):
            Step.objects.filter(pk=step.pk).update(state=Step.State.FAILED)
    elif attempt.action == Attempt.Action.ROLLBACK and status == Attempt.Status.SUCCEEDED:
        Step.objects.filter(pk=step.pk).update(state=Step.State.ROLLED_BACK)


def attempts_resend(now=None) -> int:
    """Hand the broker again the message of each attempt queued for a while and not claimed: a message lost
    with the broker (a Redis restarted empty) or never sent (the process died right after the commit).
    A duplicate is harmless: only a queued attempt is claimed. Returns how many were re-sent."""
    now = now or timezone.now()
    lost = Attempt.objects.filter(status=Attempt.Status.QUEUED, requested_at__lt=now - RESEND_AFTER).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - RESEND_AFTER)
    )
    sent = 0
    for attempt_id in lost.values_list("pk", flat=True):
        try:
            queue.send(RUN_ATTEMPT_TASK, attempt_id)
        except queue.QueueUnavailable as exc:
            log.warning("could not re-send attempt %s: %s", attempt_id, exc)
            break  # the broker is away for all of them; the next sweep tries again
        Attempt.objects.filter(pk=attempt_id, status=Attempt.Status.QUEUED).update(enqueued_at=timezone.now())
        sent += 1
    return sent


def attempts_sweep(stale_after: timedelta = STALE_AFTER) -> int:
    """Re-send lost messages of queued attempts; mark attempts whose worker stopped heartbeating interrupted,
    and those no worker picked up in time not started; returns how many were marked."""
    attempts_resend()
    now = timezone.now()
    stale = list(
        Attempt.objects.filter(
            status__in=[Attempt.Status.RUNNING, Attempt.Status.CANCELLING], heartbeat_at__lt=now - stale_after
        ).select_related("step", "migration")
    ) + list(
        Attempt.objects.filter(status=Attempt.Status.QUEUED, requested_at__lt=now - QUEUED_TIMEOUT).select_related(
            "step", "migration"
        )
    )
    marked = 0
    for attempt in stale:
        if attempt.status == Attempt.Status.QUEUED:
            reason = f"no worker picked it up within {QUEUED_TIMEOUT.seconds // 60} minutes"
        else:
            reason = _unrecorded_cause(attempt.pk) or (
                f"worker {attempt.worker or '?'} stopped sending heartbeats "
                f"(last at {attempt.heartbeat_at:%H:%M:%S} UTC); it was stopped or killed"
            )
        # Never claimed: nothing ran, so the step keeps its state; claimed and silent: the step failed.
        status = Attempt.Status.NOT_STARTED if attempt.status == Attempt.Status.QUEUED else Attempt.Status.INTERRUPTED
        with transaction.atomic():
            lock_migration(attempt.migration)
            if Attempt.objects.filter(pk=attempt.pk, status=attempt.status).update(
                status=status, finished_at=now, reason=reason
            ):
                StepContext(attempt).log(f"{status.label}: {reason}", level="error")
                _apply_to_step(attempt, status, {})
                transaction.on_commit(
                    lambda a=attempt, s=status: events.attempt_ended.send(Attempt, attempt=a, status=s), robust=True
                )
                marked += 1
    return marked
