"""People's actions on a migration: start it, request actions on its steps, approve, cancel, abandon.
What is allowed is decided by dashboard.runbook.actions, called here under the migration's row lock; the
worker side (executing an attempt, the sweep) is dashboard.runbook.worker.

Every state change is a compare-and-set (`filter(status=...).update(...)`); actions on one migration
are serialised by a row lock on it, and the database's partial unique constraint guarantees at most
one active attempt per migration whatever happens above it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from dashboard import queue, roles
from dashboard.aws import AWS_EXCEPTIONS, client, describe_error
from dashboard.models import Approval, Attempt, AuditEvent, Environment, MigrationRun, Step
from dashboard.runbook import Runbook, actions, runbook_for_mode, step_definition
from dashboard.runbook.actions import Offer
from dashboard.runbook.context import StepContext
from dashboard.runbook.steps import bake
from dashboard.stacks import ownership

log = logging.getLogger(__name__)

RUN_ATTEMPT_TASK = "tasks.runbook.run_attempt"


class ActionRefused(Exception):
    """An action that may not happen now; the message is shown to the person who asked."""


# --- people's actions ------------------------------------------------------------------------------


def choose_runbook(environment: Environment) -> tuple[Runbook, str]:
    """The runbook the environment's stacks call for, and why: CloudFormation owns what it owns."""
    if not environment.cloudformation_stacks:
        return runbook_for_mode(ownership.DIRECT_MODE), "the environment names no CloudFormation stack"
    try:
        owned = ownership.owned_resources(client(environment, "cloudformation"), environment.cloudformation_stacks)
    except AWS_EXCEPTIONS as exc:
        raise ActionRefused(
            f"VelaOps cannot tell which runbook applies: the stacks' resources could not be listed "
            f"({describe_error(exc)})."
        ) from None
    mode = ownership.runbook_mode(environment, owned)
    return runbook_for_mode(mode.name), mode.reason


def migration_start(*, environment: Environment, user: AbstractBaseUser, source_address: str | None) -> MigrationRun:
    _require(roles.can_operate(user), "You need the operator role to start a migration.")
    runbook, why = choose_runbook(environment)
    try:
        with transaction.atomic():
            migration = MigrationRun.objects.create(
                environment=environment, runbook_version=runbook.version, started_by=user
            )
            Step.objects.bulk_create(
                Step(migration=migration, position=index, key=definition.key, title=definition.title)
                for index, definition in enumerate(runbook.steps, start=1)
            )
            _audit(environment, migration, user, source_address, "migration.start", version=runbook.version, why=why)
    except IntegrityError:
        raise ActionRefused(f"{environment} already has an open migration; finish or abandon it first.") from None
    return migration


def migration_abandon(
    *, migration: MigrationRun, user: AbstractBaseUser, source_address: str | None, reason: str
) -> None:
    with transaction.atomic():
        locked = lock_migration(migration)
        _require_offer(actions.migration_actions(locked, user).abandon)
        _require(bool(reason.strip()), "Say why the migration is abandoned.")
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
            # The lock serialises every action on this migration: double clicks and two operators included;
            # the rules are decided on what is read under it.
            locked = lock_migration(migration)
            row = actions.migration_actions(locked, user).for_step(step.pk)
            step = row.step
            _require(action != Attempt.Action.OVERRIDE, "Accepting findings is attempt_override's.")
            approval = _check_typed(row.offer(action), confirmation, reason)
            number = _next_number(step)
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


def attempt_override(*, step: Step, user: AbstractBaseUser, source_address: str | None, reason: str) -> Attempt:
    """An approver accepts the findings of a gate's failed run (a change set's blockers, preflight drift):
    recorded as an attempt of its own, with the findings it accepted, and the step passes with that run's
    outputs (so the execute step deploys the very change set that was reviewed)."""
    migration = step.migration
    with _recording_refusal(migration, user, source_address, "step.override", step=step.key), transaction.atomic():
        locked = lock_migration(migration)
        row = actions.migration_actions(locked, user).for_step(step.pk)
        _require_offer(row.override)
        _require(bool(reason.strip()), "Say why the findings are accepted.")
        failed = [a for a in row.attempts if a.action == Attempt.Action.RUN][-1]
        findings = row.definition.findings(failed.outputs or {})
        outputs = {
            **{k: v for k, v in (failed.outputs or {}).items() if k != "aws_request_ids"},
            "overridden": {
                "findings": findings,
                "by": str(user),
                "reason": reason.strip(),
                "of_attempt": failed.number,
            },
        }
        now = timezone.now()
        attempt = Attempt.objects.create(
            migration=locked,
            step=row.step,
            number=_next_number(row.step),
            action=Attempt.Action.OVERRIDE,
            status=Attempt.Status.SUCCEEDED,
            requested_by=user,
            source_address=source_address,
            reason=reason.strip(),
            started_at=now,
            finished_at=now,
            outputs=outputs,
        )
        Step.objects.filter(pk=step.pk).update(state=Step.State.SUCCEEDED, outputs=outputs)
        _audit(
            locked.environment,
            locked,
            user,
            source_address,
            "step.override",
            step=step.key,
            attempt=attempt.number,
            reason=reason.strip(),
            findings=len(findings),
        )
    return attempt


AUTOMATIC_USERNAME = "VelaOps (automatic)"


def automatic_user() -> AbstractBaseUser:
    """Whom VelaOps's own actions are attributed to: an operator account nobody can log in as (no usable
    password; the login form and the API tokens need one to begin with)."""
    user, created = get_user_model().objects.get_or_create(username=AUTOMATIC_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=roles.OPERATOR))
    return user


def attempt_automatic_rollback(*, migration: MigrationRun, step_key: str, reason: str) -> Attempt:
    """VelaOps rolls back `step_key` by itself (a failed bake's judged change). Called by the worker under the
    migration's lock, in the transaction recording the failure. The runbook's rules apply as to anyone (later
    steps first, one attempt at a time); the typed confirmation and approval do not: restoring the state
    before a change the environment's bake criteria rejected was authorised when the bake was started."""
    user = automatic_user()
    row = next((r for r in actions.migration_actions(migration, user).steps if r.step.key == step_key), None)
    if row is None:
        raise ActionRefused(f"This migration has no step {step_key}.")
    _require_offer(row.rollback)
    attempt = Attempt.objects.create(
        migration=migration,
        step=row.step,
        number=_next_number(row.step),
        action=Attempt.Action.ROLLBACK,
        status=Attempt.Status.QUEUED,
        requested_by=user,
        reason=f"automatic: {reason}"[:2000],
    )
    _audit(
        migration.environment,
        migration,
        user,
        None,
        "step.rollback",
        step=step_key,
        attempt=attempt.number,
        reason=attempt.reason,
        automatic=True,
    )
    transaction.on_commit(lambda: _enqueue(attempt, raise_=False), robust=True)
    return attempt


def bake_stop(
    *, attempt: Attempt, user: AbstractBaseUser, source_address: str | None, outcome: str, reason: str
) -> None:
    """An operator ends a running bake early with a verdict of their own (pass or fail) and a reason; the bake
    reads it at its next probe (dashboard.runbook.steps.bake.STOP_EVENT) and records it with the figures."""
    migration = attempt.migration
    with (
        _recording_refusal(migration, user, source_address, bake.STOP_EVENT, step=attempt.step.key),
        transaction.atomic(),
    ):
        lock_migration(migration)
        current = Attempt.objects.select_related("step").get(pk=attempt.pk)
        _require(roles.can_operate(user), "You need the operator role to stop a bake.")
        _require(isinstance(step_definition(current.step.key), bake.BakeChange), "Only a bake can be stopped early.")
        _require(
            current.status == Attempt.Status.RUNNING and current.action == Attempt.Action.RUN,
            "The bake is not running any more.",
        )
        _require(outcome in bake.STOP_CHOICES, "Pass or fail the bake.")
        _require(bool(reason.strip()), "Say why the bake is stopped early.")
        _require(
            not AuditEvent.objects.filter(
                migration=migration, action=bake.STOP_EVENT, outcome="ok", details__attempt_id=attempt.pk
            ).exists(),
            "This bake has been stopped already.",
        )
        _audit(
            migration.environment,
            migration,
            user,
            source_address,
            bake.STOP_EVENT,
            step=current.step.key,
            attempt_id=attempt.pk,
            attempt=current.number,
            verdict=outcome,
            reason=reason.strip(),
        )


class NotQueued(ActionRefused):
    """The attempt was recorded but its message never reached the broker; it is recorded as not started."""


def _enqueue(attempt: Attempt, raise_: bool = True) -> None:
    try:
        queue.send(RUN_ATTEMPT_TASK, attempt.pk)
    except queue.QueueUnavailable as exc:
        reason = f"not started: {exc}; nothing ran"
        with transaction.atomic():
            lock_migration(attempt.migration)
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
    now = timezone.now()
    with transaction.atomic():
        lock_migration(attempt.migration)
        _require_offer(actions.cancel_offer(Attempt.objects.get(pk=attempt.pk), user))
        # Still conditional: a worker claims a queued attempt without the lock, so queued may become running.
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
    _require_offer(actions.ask_approval_offer(step, action, user))
    with transaction.atomic():
        locked = lock_migration(step.migration)  # two operators asking at once get one request
        pending = step.approvals.filter(action=action, used_by_attempt__isnull=True).first()
        if pending:
            return pending
        approval = Approval.objects.create(step=step, action=action, requested_by=user)
        _audit(locked.environment, locked, user, source_address, "approval.request", step=step.key, action=action)
    return approval


def approval_grant(*, approval: Approval, user: AbstractBaseUser, source_address: str | None) -> None:
    migration = approval.step.migration
    with _recording_refusal(migration, user, source_address, "approval.grant", step=approval.step.key):
        _require_offer(actions.approve_offer(approval, user))
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


def _check_typed(offer: Offer, confirmation: str, reason: str) -> Approval | None:
    """The rules first (the offer, decided under the lock), then what the person typed; returns the approval
    the attempt uses, if any."""
    _require_offer(offer)
    if offer.action == Attempt.Action.SKIP:
        _require(bool(reason.strip()), "Say why the step is skipped.")
    if offer.destructive:
        _require(
            bool(offer.confirm) and confirmation.strip() == offer.confirm,
            f"Type the resource name “{offer.confirm}” to confirm this destructive action.",
        )
    _require(not offer.awaiting_approval, actions.NEEDS_APPROVAL)
    return offer.approval


def lock_migration(migration: MigrationRun) -> MigrationRun:
    """Taken by every action on a migration and by the worker recording an attempt's end: whoever holds it
    sees the attempts and steps consistent with each other."""
    # FOR NO KEY UPDATE of the migration row alone: serialises actions on it without blocking the
    # foreign-key checks of rows that merely reference it (audit events, attempts).
    return (
        MigrationRun.objects.select_for_update(no_key=True, of=("self",))
        .select_related("environment")
        .get(pk=migration.pk)
    )


def _next_number(step: Step) -> int:
    return (step.attempts.aggregate(n=Max("number"))["n"] or 0) + 1


def _require_offer(offer: Offer) -> None:
    _require(not offer.refusal, offer.refusal)


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
