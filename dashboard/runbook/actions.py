"""Which actions a migration offers a user now, and for each one not offered, why not.

The one statement of the rules of acting on a migration (docs/runbook.md, "Operating it"). The service
enforces it: it calls this under the migration's row lock, on state read under that lock, and refuses with
`Offer.refusal`. The page only reads it, so it never shows a button the service would refuse.

What a person types (a skip's reason, a destructive action's resource name) is not known here: an offer
says a confirmation is needed (`confirm`) and the service checks the typed value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch

from dashboard import roles
from dashboard.models import Approval, Attempt, MigrationRun, Step
from dashboard.runbook import RUNBOOKS, step_definition
from dashboard.runbook.definition import StepDefinition

RUNNABLE_STATES = {Step.State.PENDING, Step.State.FAILED, Step.State.ROLLED_BACK}
DONE_STATES = {Step.State.SUCCEEDED, Step.State.SKIPPED}
ROLLBACK_STATES = {Step.State.SUCCEEDED, Step.State.FAILED}
RUN_LABELS = {Step.State.FAILED: "Retry", Step.State.ROLLED_BACK: "Run again"}
NEEDS_APPROVAL = "This environment requires an approver's approval for this action."


@dataclass(frozen=True)
class Offer:
    """One action of one step (or attempt, approval, migration) for one user."""

    action: str
    label: str = ""
    refusal: str = ""  # why it is not offered: the message the service refuses with; "" when it is
    destructive: bool = False  # the resource name must be typed (the service compares it)
    confirm: str = ""  # that name; "" when the step names none yet (the service then refuses any value)
    awaiting_approval: bool = False  # destructive on an environment requiring approval, and none granted yet
    approval: Approval | None = None  # the granted, unused approval the action would use; or the one to approve
    ask_approval: bool = False  # show "Ask approval": only the approval is missing and nobody asked yet

    @property
    def allowed(self) -> bool:
        return not self.refusal and not self.awaiting_approval


@dataclass
class StepActions:
    step: Step
    definition: StepDefinition | None
    attempts: list[Attempt]
    approvals: list[Approval]  # not yet used by an attempt, newest first
    run: Offer
    skip: Offer
    rollback: Offer
    override: Offer  # an approver accepts the findings of the latest failed run (blockers, drift)
    cancel: Offer | None  # when the latest attempt is active
    cancelling: bool  # the latest attempt is stopping (the page shows it, greyed)
    approve: list[Offer] = field(default_factory=list)  # one per approval, in the order of `approvals`

    @property
    def latest(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def gate_findings(self) -> list[str]:
        """What the latest run of a gate found and an approver could accept; [] otherwise."""
        latest = self.latest
        if self.definition is None or not self.definition.is_gate or latest is None:
            return []
        if latest.action != Attempt.Action.RUN or latest.status != Attempt.Status.FAILED:
            return []
        return self.definition.findings(latest.outputs or {})

    def offer(self, action: str) -> Offer:
        if action == Attempt.Action.RUN:
            return self.run
        if action == Attempt.Action.SKIP:
            return self.skip
        if action == Attempt.Action.ROLLBACK:
            return self.rollback
        if action == Attempt.Action.OVERRIDE:
            return self.override
        return Offer(action, refusal=f"Unknown action {action!r}.")


@dataclass
class MigrationActions:
    migration: MigrationRun
    steps: list[StepActions]
    active: Attempt | None
    abandon: Offer

    def for_step(self, step_pk: int) -> StepActions:
        return next(row for row in self.steps if row.step.pk == step_pk)


def migration_actions(migration: MigrationRun, user: AbstractBaseUser) -> MigrationActions:
    """Read the steps with their attempts and unused approvals, then decide. Fresh queries: called under the
    service's lock, they see exactly what the lock serialises (the worker records an attempt's end and its
    step's state together under the same lock)."""
    attempts = Attempt.objects.select_related("requested_by").order_by("number")
    approvals = Approval.objects.filter(used_by_attempt__isnull=True).select_related("requested_by", "approved_by")
    steps = list(
        migration.steps.prefetch_related(
            Prefetch("attempts", queryset=attempts), Prefetch("approvals", queryset=approvals)
        )
    )
    return decide(migration, steps, user)


def decide(migration: MigrationRun, steps: list[Step], user: AbstractBaseUser) -> MigrationActions:
    """The rules, on steps already loaded (ordered by position, `attempts` and unused `approvals` prefetched)."""
    attempts = {step.pk: list(step.attempts.all()) for step in steps}
    active_step, active = next(
        ((step, a) for step in steps for a in attempts[step.pk] if a.status in Attempt.ACTIVE), (None, None)
    )
    can_operate, can_approve = roles.can_operate(user), roles.can_approve(user)
    # What refuses every action of the migration, in the order the service has always checked it.
    if migration.status != MigrationRun.Status.OPEN:
        state = f"The migration is {migration.status}."
    elif migration.runbook_version not in RUNBOOKS:
        state = (
            f"This migration follows runbook {migration.runbook_version}; this VelaOps runs "
            f"{', '.join(RUNBOOKS)}. "
            "Its history stays readable, but it can no longer act: abandon it and start a new one."
        )
    else:
        state = ""
    common = "You need the operator role to act on a migration." if not can_operate else state
    busy = f"“{active_step.title}” is already {active.status}: wait for it to finish or cancel it." if active else ""

    rows = []
    for index, step in enumerate(steps):
        definition = step_definition(step.key)
        step_attempts = attempts[step.pk]
        step_approvals = list(step.approvals.all())
        if common:
            blocked = common
        elif definition is None:
            blocked = f"The runbook no longer has a step “{step.key}”."
        else:
            blocked = busy
        earlier = [s.title for s in steps[:index] if s.state not in DONE_STATES]
        forward = blocked or (
            "Earlier steps must succeed or be skipped first: " + ", ".join(earlier) if earlier else ""
        )
        forward = forward or (
            "" if step.state in RUNNABLE_STATES else f"“{step.title}” has {step.state}; roll it back to run it again."
        )
        later = [
            s.title
            for s in steps[index + 1 :]
            if s.state == Step.State.SUCCEEDED and (d := step_definition(s.key)) and d.has_rollback
        ]
        backward = blocked
        if not backward and not definition.has_rollback:
            backward = f"“{step.title}” has no rollback."
        if not backward and step.state not in ROLLBACK_STATES:
            backward = f"“{step.title}” has nothing to roll back."
        if not backward and later:
            backward = "Roll back the later steps first: " + ", ".join(later)
        latest = step_attempts[-1] if step_attempts else None
        rows.append(
            StepActions(
                step=step,
                definition=definition,
                attempts=step_attempts,
                approvals=step_approvals,
                run=_destructive(
                    migration,
                    step,
                    definition,
                    step_approvals,
                    Offer(Attempt.Action.RUN, RUN_LABELS.get(step.state, "Run"), forward),
                ),
                skip=_skip_offer(step, definition, forward, state, busy, earlier, can_approve),
                override=_override_offer(step, definition, step_attempts, user, state or busy, earlier, can_approve),
                rollback=_destructive(
                    migration,
                    step,
                    definition,
                    step_approvals,
                    Offer(Attempt.Action.ROLLBACK, "Roll back", backward),
                ),
                cancel=cancel_offer(latest, user) if latest and latest.is_active else None,
                cancelling=can_operate and latest is not None and latest.status == Attempt.Status.CANCELLING,
                approve=[approve_offer(approval, user) for approval in step_approvals],
            )
        )
    abandon = Offer("abandon", "Abandon", _abandon_refusal(migration, active, can_operate))
    return MigrationActions(migration=migration, steps=rows, active=active, abandon=abandon)


def _destructive(
    migration: MigrationRun, step: Step, definition: StepDefinition | None, approvals: list[Approval], offer: Offer
) -> Offer:
    """A destructive action needs the resource's name typed, and an approver's approval where the environment
    asks for one: each approval is used by exactly one attempt."""
    if definition is None or not definition.is_destructive(offer.action):
        return offer
    confirm = definition.confirmation_name(step, migration.environment) or ""
    if not migration.environment.requires_approval:
        return Offer(offer.action, offer.label, offer.refusal, destructive=True, confirm=confirm)
    granted = next((a for a in approvals if a.action == offer.action and a.approved_by_id), None)
    asked = any(a.action == offer.action for a in approvals)
    return Offer(
        offer.action,
        offer.label,
        offer.refusal,
        destructive=True,
        confirm=confirm,
        awaiting_approval=granted is None,
        approval=granted,
        ask_approval=granted is None and not asked and not offer.refusal,
    )


def _skip_offer(
    step: Step,
    definition: StepDefinition | None,
    forward: str,
    state: str,
    busy: str,
    earlier: list[str],
    can_approve: bool,
) -> Offer:
    if step.key == "complete":
        return Offer(Attempt.Action.SKIP, "Skip", forward or "The completion step cannot be skipped.")
    if definition is None or not definition.is_gate:
        return Offer(Attempt.Action.SKIP, "Skip", forward)
    # A gate (a review, a drift check) is what stops a bad change: passing it without its verdict is an
    # approver's call, like accepting its findings; the operator role neither grants nor is needed for it.
    refusal = (
        state or busy or ("Earlier steps must succeed or be skipped first: " + ", ".join(earlier) if earlier else "")
    )
    if not refusal and step.state not in RUNNABLE_STATES:
        refusal = f"“{step.title}” has {step.state}; roll it back to run it again."
    if not refusal and not can_approve:
        refusal = f"“{step.title}” is a gate: only an approver may skip it or accept its findings."
    return Offer(Attempt.Action.SKIP, "Skip", refusal)


def _override_offer(
    step: Step,
    definition: StepDefinition | None,
    attempts: list[Attempt],
    user: AbstractBaseUser,
    blocked: str,
    earlier: list[str],
    can_approve: bool,
) -> Offer:
    """An approver accepts what the latest failed run of a gate found; a second pair of eyes, so not the
    person who ran it."""
    runs = [a for a in attempts if a.action == Attempt.Action.RUN]
    latest = runs[-1] if runs else None
    if definition is None or not definition.is_gate:
        refusal = "Only a gate's findings (blockers, drift) can be accepted."
    elif blocked:
        refusal = blocked
    elif earlier:
        refusal = "Earlier steps must succeed or be skipped first: " + ", ".join(earlier)
    elif step.state != Step.State.FAILED or latest is None or latest.status != Attempt.Status.FAILED:
        refusal = f"“{step.title}” has no failed run to accept the findings of."
    elif not definition.findings(latest.outputs or {}):
        refusal = "Its last run failed without findings to accept: fix the cause and retry."
    elif not can_approve:
        refusal = "You need the approver role to accept a gate's findings."
    elif latest.requested_by_id == user.pk:
        refusal = "Findings must be accepted by someone other than who ran the step."
    else:
        refusal = ""
    return Offer(Attempt.Action.OVERRIDE, "Accept findings", refusal)


def _abandon_refusal(migration: MigrationRun, active: Attempt | None, can_operate: bool) -> str:
    if not can_operate:
        return "You need the operator role to abandon a migration."
    if migration.status != MigrationRun.Status.OPEN:
        return "The migration is not open."
    return "An attempt is still active." if active else ""


def is_gate_call(definition: StepDefinition | None, action: str) -> bool:
    """A gate's verdict (skip it, accept its findings) is an approver's call; every other action an operator's:
    who may ask at all (the pages and the API check it before the service decides)."""
    return action == Attempt.Action.OVERRIDE or (
        action == Attempt.Action.SKIP and definition is not None and definition.is_gate
    )


def cancel_offer(attempt: Attempt, user: AbstractBaseUser) -> Offer:
    """A queued attempt is cancelled at once, a running one asked to stop (the service's conditional updates
    decide which, since a worker claims a queued attempt without the lock)."""
    if not roles.can_operate(user):
        return Offer("cancel", "Cancel", "You need the operator role to cancel.")
    if attempt.status not in (Attempt.Status.QUEUED, Attempt.Status.RUNNING):
        return Offer("cancel", "Cancel", "The attempt is not queued or running any more.")
    return Offer("cancel", "Cancel")


def ask_approval_offer(step: Step, action: str, user: AbstractBaseUser) -> Offer:
    """Asking may come ahead of time (before the step is reached); asking twice returns the first request."""
    if not roles.can_operate(user):
        return Offer("ask_approval", refusal="You need the operator role to ask for an approval.")
    definition = step_definition(step.key)
    if definition is None:
        return Offer("ask_approval", refusal=f"The runbook no longer has a step “{step.key}”.")
    if not definition.is_destructive(action):
        return Offer("ask_approval", refusal="Only destructive actions need an approval.")
    return Offer("ask_approval")


def approve_offer(approval: Approval, user: AbstractBaseUser) -> Offer:
    if not roles.can_approve(user):
        refusal = "You need the approver role to approve."
    elif approval.requested_by_id == user.pk:
        refusal = "An approval must come from someone other than who asked."
    elif approval.approved_by_id:
        refusal = "This request was approved already."
    else:
        refusal = ""
    return Offer("approve", "Approve", refusal, approval=approval)
