"""Operating a migration: start it, request actions on its steps, approve, cancel; the worker side that
executes an attempt; and the sweep that marks attempts whose worker died.

Every state change is a compare-and-set (`filter(status=...).update(...)`); actions on one migration
are serialised by a row lock on it, and the database's partial unique constraint guarantees at most
one active attempt per migration whatever happens above it.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from datetime import timedelta

import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from redis.exceptions import RedisError

from dashboard import queue, roles
from dashboard.alerts.events import attempt_ended
from dashboard.aws import AWS_EXCEPTIONS, describe_error
from dashboard.db import reconnecting
from dashboard.models import Approval, Attempt, AuditEvent, Environment, MigrationRun, Step
from dashboard.redis_client import redis_client, redis_key
from dashboard.runbook import RUNBOOK_VERSION, STEPS, step_definition
from dashboard.runbook.context import Cancelled, StepContext, StepFailed

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 5  # seconds between a running attempt's heartbeats
STALE_AFTER = timedelta(seconds=30)  # no heartbeat for this long: the worker is gone
FINISH_WITHIN = 120  # seconds a finished attempt keeps trying to record its outcome through a database outage
QUEUED_TIMEOUT = timedelta(minutes=15)  # queued this long without a worker picking it up
RESEND_AFTER = timedelta(seconds=60)  # queued and unclaimed this long: its message may be lost, send it again
ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}

ACTIONABLE_FOR_RUN = {Step.State.PENDING, Step.State.FAILED, Step.State.ROLLED_BACK}
DONE_STATES = {Step.State.SUCCEEDED, Step.State.SKIPPED}


class ActionRefused(Exception):
    """An action that may not happen now; the message is shown to the person who asked."""


# --- people's actions ------------------------------------------------------------------------------


def migration_start(*, environment: Environment, user: AbstractBaseUser, source_address: str | None) -> MigrationRun:
    _require(roles.can_operate(user), "You need the operator role to start a migration.")
    try:
        with transaction.atomic():
            migration = MigrationRun.objects.create(
                environment=environment, runbook_version=RUNBOOK_VERSION, started_by=user
            )
            Step.objects.bulk_create(
                Step(migration=migration, position=index, key=definition.key, title=definition.title)
                for index, definition in enumerate(STEPS, start=1)
            )
            _audit(environment, migration, user, source_address, "migration.start", version=RUNBOOK_VERSION)
    except IntegrityError:
        raise ActionRefused(f"{environment} already has an open migration; finish or abandon it first.") from None
    return migration


def migration_abandon(
    *, migration: MigrationRun, user: AbstractBaseUser, source_address: str | None, reason: str
) -> None:
    _require(roles.can_operate(user), "You need the operator role to abandon a migration.")
    _require(bool(reason.strip()), "Say why the migration is abandoned.")
    with transaction.atomic():
        locked = _lock(migration)
        _require(locked.status == MigrationRun.Status.OPEN, "The migration is not open.")
        _require(not locked.attempts.filter(status__in=Attempt.ACTIVE).exists(), "An attempt is still active.")
        MigrationRun.objects.filter(pk=migration.pk, status=MigrationRun.Status.OPEN).update(
            status=MigrationRun.Status.ABANDONED, finished_at=timezone.now(), summary={"abandoned": reason.strip()}
        )
        _audit(locked.environment, locked, user, source_address, "migration.abandon", reason=reason.strip())


def attempt_request(
    *,
    step: Step,
    action: str,
    user: AbstractBaseUser,
    source_address: str | None,
    confirmation: str = "",
    reason: str = "",
) -> Attempt:
    """Queue a run or rollback of `step` (or record a skip). Raises ActionRefused with the reason."""
    migration = step.migration
    try:
        with _recording_refusal(migration, user, source_address, f"step.{action}", step=step.key), transaction.atomic():
            # The lock serialises every action on this migration: double clicks and two operators included.
            locked = _lock(migration)
            step = Step.objects.get(pk=step.pk)
            approval = _check_action(locked, step, action, user, confirmation, reason)
            number = (step.attempts.aggregate(n=Max("number"))["n"] or 0) + 1
            skip = action == Attempt.Action.SKIP
            now = timezone.now()
            attempt = Attempt.objects.create(
                migration=locked,
                step=step,
                number=number,
                action=action,
                status=Attempt.Status.SUCCEEDED if skip else Attempt.Status.QUEUED,
                requested_by=user,
                source_address=source_address,
                reason=reason.strip(),
                started_at=now if skip else None,
                finished_at=now if skip else None,
            )
            if skip:
                Step.objects.filter(pk=step.pk).update(state=Step.State.SKIPPED)
            if approval:
                Approval.objects.filter(pk=approval.pk, used_by_attempt__isnull=True).update(used_by_attempt=attempt)
            _audit(
                locked.environment,
                locked,
                user,
                source_address,
                f"step.{action}",
                step=step.key,
                attempt=attempt.number,
                reason=reason.strip(),
            )
    except IntegrityError:
        # The partial unique index caught a race the lock did not (it cannot, but the database is the guarantee).
        raise ActionRefused("Another attempt of this migration is already queued or running.") from None
    if not skip:
        # After the commit, so the worker finds the row; inside a caller's transaction, at its commit.
        if connection.in_atomic_block:
            transaction.on_commit(lambda: _enqueue(attempt, raise_=False), robust=True)
        else:
            _enqueue(attempt)
    return attempt


class NotQueued(ActionRefused):
    """The attempt was recorded but its message never reached the broker; it is recorded as not started."""


RUN_ATTEMPT_TASK = "tasks.runbook.run_attempt"


def _enqueue(attempt: Attempt, raise_: bool = True) -> None:
    try:
        queue.send(RUN_ATTEMPT_TASK, attempt.pk)
    except queue.QueueUnavailable as exc:
        reason = f"not started: {exc}; nothing ran"
        with transaction.atomic():
            _lock(attempt.migration)
            if Attempt.objects.filter(pk=attempt.pk, status=Attempt.Status.QUEUED).update(
                status=Attempt.Status.NOT_STARTED, finished_at=timezone.now(), reason=reason[:2000]
            ):
                StepContext(attempt).log(reason, level="error")
        log.warning("attempt %s %s", attempt.pk, reason)
        if raise_:
            raise NotQueued(
                f"“{attempt.step.title}” could not be queued: the task queue (Redis) is unreachable. "
                "Nothing ran; the attempt is recorded as not started. Try again once Redis is back."
            ) from exc
        return
    Attempt.objects.filter(pk=attempt.pk, status=Attempt.Status.QUEUED).update(enqueued_at=timezone.now())


def attempt_cancel(*, attempt: Attempt, user: AbstractBaseUser, source_address: str | None) -> str:
    """Cancel a queued attempt at once, or ask a running one to stop; returns the new status."""
    _require(roles.can_operate(user), "You need the operator role to cancel.")
    now = timezone.now()
    with transaction.atomic():
        _lock(attempt.migration)
        if Attempt.objects.filter(pk=attempt.pk, status=Attempt.Status.QUEUED).update(
            status=Attempt.Status.CANCELLED, finished_at=now, reason=f"cancelled by {user} before it started"
        ):
            status = Attempt.Status.CANCELLED
        elif Attempt.objects.filter(pk=attempt.pk, status=Attempt.Status.RUNNING).update(
            status=Attempt.Status.CANCELLING, reason=f"cancel requested by {user}"
        ):
            status = Attempt.Status.CANCELLING  # the worker stops between AWS calls and records it
        else:
            raise ActionRefused("The attempt is not queued or running any more.")
        _audit(
            attempt.migration.environment,
            attempt.migration,
            user,
            source_address,
            "attempt.cancel",
            step=attempt.step.key,
            attempt=attempt.number,
            status=status,
        )
    return status


def approval_request(*, step: Step, action: str, user: AbstractBaseUser, source_address: str | None) -> Approval:
    _require(roles.can_operate(user), "You need the operator role to ask for an approval.")
    definition = _definition(step)
    _require(definition.is_destructive(action), "Only destructive actions need an approval.")
    with transaction.atomic():
        locked = _lock(step.migration)  # two operators asking at once get one request
        pending = step.approvals.filter(action=action, used_by_attempt__isnull=True).first()
        if pending:
            return pending
        approval = Approval.objects.create(step=step, action=action, requested_by=user)
        _audit(locked.environment, locked, user, source_address, "approval.request", step=step.key, action=action)
    return approval


def approval_grant(*, approval: Approval, user: AbstractBaseUser, source_address: str | None) -> None:
    migration = approval.step.migration
    with _recording_refusal(migration, user, source_address, "approval.grant", step=approval.step.key):
        _require(roles.can_approve(user), "You need the approver role to approve.")
        _require(approval.requested_by_id != user.pk, "An approval must come from someone other than who asked.")
        updated = Approval.objects.filter(pk=approval.pk, approved_by__isnull=True).update(
            approved_by=user, approved_at=timezone.now()
        )
        _require(bool(updated), "This request was approved already.")
    _audit(
        migration.environment,
        migration,
        user,
        source_address,
        "approval.grant",
        step=approval.step.key,
        action=approval.action,
        requested_by=str(approval.requested_by),
    )


@contextmanager
def _recording_refusal(migration: MigrationRun, user, source_address: str | None, event: str, **details):
    """Refusals are audited too: who tried what, from where, and why it was refused."""
    try:
        yield
    except ActionRefused as refusal:
        _audit(
            migration.environment,
            migration,
            user,
            source_address,
            event,
            outcome="refused",
            reason=str(refusal),
            **details,
        )
        raise


def _check_action(
    migration: MigrationRun, step: Step, action: str, user: AbstractBaseUser, confirmation: str, reason: str
) -> Approval | None:
    _require(action in Attempt.Action.values, f"Unknown action {action!r}.")
    _require(roles.can_operate(user), "You need the operator role to act on a migration.")
    _require(migration.status == MigrationRun.Status.OPEN, f"The migration is {migration.status}.")
    _require(
        migration.runbook_version == RUNBOOK_VERSION,
        f"This migration follows runbook {migration.runbook_version}; this VelaOps runs {RUNBOOK_VERSION}. "
        "Its history stays readable, but it can no longer act: abandon it and start a new one.",
    )
    definition = _definition(step)
    active = migration.attempts.filter(status__in=Attempt.ACTIVE).select_related("step").first()
    _require(
        active is None,
        f"“{active.step.title if active else ''}” is already {active.status if active else ''}: "
        "wait for it to finish or cancel it.",
    )
    earlier = migration.steps.filter(position__lt=step.position).exclude(state__in=DONE_STATES)
    if action in (Attempt.Action.RUN, Attempt.Action.SKIP):
        _require(
            not earlier.exists(),
            "Earlier steps must succeed or be skipped first: " + ", ".join(s.title for s in earlier),
        )
        _require(step.state in ACTIONABLE_FOR_RUN, f"“{step.title}” has {step.state}; roll it back to run it again.")
    if action == Attempt.Action.SKIP:
        _require(bool(reason.strip()), "Say why the step is skipped.")
        _require(step.key != "complete", "The completion step cannot be skipped.")
    if action == Attempt.Action.ROLLBACK:
        _require(definition.has_rollback, f"“{step.title}” has no rollback.")
        _require(step.state in (Step.State.SUCCEEDED, Step.State.FAILED), f"“{step.title}” has nothing to roll back.")
        later = [
            s.title
            for s in migration.steps.filter(position__gt=step.position, state=Step.State.SUCCEEDED)
            if (d := step_definition(s.key)) and d.has_rollback
        ]
        _require(not later, "Roll back the later steps first: " + ", ".join(later))
    if not definition.is_destructive(action):
        return None
    expected = definition.confirmation_name(step, migration.environment)
    _require(
        bool(expected) and confirmation.strip() == expected,
        f"Type the resource name “{expected}” to confirm this destructive action.",
    )
    if not migration.environment.requires_approval:
        return None
    approval = step.approvals.filter(action=action, approved_by__isnull=False, used_by_attempt__isnull=True).first()
    _require(approval is not None, "This environment requires an approver's approval for this action.")
    return approval


def _lock(migration: MigrationRun) -> MigrationRun:
    # FOR NO KEY UPDATE of the migration row alone: serialises actions on it without blocking the
    # foreign-key checks of rows that merely reference it (audit events, attempts).
    return (
        MigrationRun.objects.select_for_update(no_key=True, of=("self",))
        .select_related("environment")
        .get(pk=migration.pk)
    )


def _definition(step: Step):
    definition = step_definition(step.key)
    if definition is None:
        raise ActionRefused(f"The runbook no longer has a step “{step.key}”.")
    return definition


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ActionRefused(message)


def _audit(environment, migration, user, source_address, event, outcome="ok", **details) -> None:
    AuditEvent.objects.create(
        environment=environment,
        migration=migration,
        user=user if getattr(user, "pk", None) else None,
        source_address=source_address,
        action=event,
        outcome=outcome,
        details={k: v for k, v in details.items() if v not in ("", None)},
    )


# --- the worker side -------------------------------------------------------------------------------


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
        _lock(attempt.migration)
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
        transaction.on_commit(lambda: attempt_ended.send(Attempt, attempt=attempt, status=status), robust=True)


def _apply_to_step(attempt: Attempt, status: str, outputs: dict) -> None:
    step = attempt.step
    if attempt.action == Attempt.Action.RUN:
        if status == Attempt.Status.SUCCEEDED:
            Step.objects.filter(pk=step.pk).update(state=Step.State.SUCCEEDED, outputs=outputs)
            if step.key == STEPS[-1].key:
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
            _lock(attempt.migration)
            if Attempt.objects.filter(pk=attempt.pk, status=attempt.status).update(
                status=status, finished_at=now, reason=reason
            ):
                StepContext(attempt).log(f"{status.label}: {reason}", level="error")
                _apply_to_step(attempt, status, {})
                transaction.on_commit(
                    lambda a=attempt, s=status: attempt_ended.send(Attempt, attempt=a, status=s), robust=True
                )
                marked += 1
    return marked
