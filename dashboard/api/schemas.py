"""The API's objects: pydantic schemas (they make the OpenAPI document) and the functions that build them
from the models and from what dashboard.runbook.actions offers. Field names follow the shared contract
(docs/api.md); fields may be added, never renamed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema

from dashboard.models import Approval, Attempt, AttemptLog, Environment, MigrationRun
from dashboard.runbook import RUNBOOKS, actions
from dashboard.runbook.actions import Offer, StepActions

# --- shared -------------------------------------------------------------------------------------------


class Paged(Schema):
    count: int
    limit: int
    offset: int


def username(user) -> str | None:
    return user.get_username() if user is not None else None


# --- environments -------------------------------------------------------------------------------------


class EnvironmentOut(Schema):
    slug: str
    name: str
    description: str
    region: str
    account_id: str
    requires_approval: bool
    runbook_mode: Literal["stacks", "direct"] | None
    open_migration: int | None


class ResourceOut(Schema):
    kind: str
    name: str
    exists: bool | None
    state: str
    details: dict[str, str]
    error_code: str
    error_message: str


class EnvironmentDetailOut(EnvironmentOut):
    resources: list[ResourceOut]
    resources_error: str | None  # the resources could not be read at all (e.g. the role cannot be assumed)
    resources_read_at: datetime | None  # when the resources shown were read (the page's shared snapshot)


class EnvironmentPage(Schema):
    items: list[EnvironmentOut]
    count: int


def environment_out(environment: Environment, open_migration: MigrationRun | None, mode: str | None = None) -> dict:
    if mode is None and open_migration is not None and open_migration.runbook_version in RUNBOOKS:
        mode = RUNBOOKS[open_migration.runbook_version].mode  # the runbook the open migration follows
    return {
        "slug": environment.slug,
        "name": environment.name,
        "description": environment.description,
        "region": environment.region,
        "account_id": environment.account_id,
        "requires_approval": environment.requires_approval,
        "runbook_mode": mode,
        "open_migration": open_migration.pk if open_migration else None,
    }


# --- migrations, steps, attempts -------------------------------------------------------------------------


class OfferOut(Schema):
    allowed: bool
    refusal: str | None
    destructive: bool
    confirm: str | None  # the resource name a destructive action's `confirmation` must repeat
    needs_approval: bool  # an approver's approval is still missing
    approval: int | None  # the granted approval the action would use


class StepActionsOut(Schema):
    run: OfferOut
    rollback: OfferOut
    skip: OfferOut
    override: OfferOut
    cancel: OfferOut | None


class ApprovalOut(Schema):
    id: int
    step_key: str
    action: str
    requested_by: str | None
    requested_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    used_by_attempt: int | None
    can_approve: bool
    refusal: str | None


class StepOut(Schema):
    id: int
    position: int
    key: str
    title: str
    state: str
    actions: StepActionsOut
    latest_attempt: int | None
    approvals: list[ApprovalOut]


class MigrationOut(Schema):
    id: int
    environment: str
    status: Literal["open", "completed", "abandoned"]
    runbook_version: str
    started_by: str | None
    started_at: datetime
    finished_at: datetime | None
    summary: dict[str, Any]
    active_attempt: int | None
    abandon: OfferOut
    steps: list[StepOut]


class MigrationSummaryOut(Schema):
    id: int
    environment: str
    status: Literal["open", "completed", "abandoned"]
    runbook_version: str
    started_by: str | None
    started_at: datetime
    finished_at: datetime | None


class MigrationPage(Paged):
    items: list[MigrationSummaryOut]


class AttemptOut(Schema):
    id: int
    migration: int
    environment: str
    step: int
    step_key: str
    number: int
    action: str
    status: str
    requested_by: str | None
    requested_at: datetime
    reason: str
    started_at: datetime | None
    finished_at: datetime | None
    outputs: dict[str, Any]
    error: dict[str, Any]
    finished: bool  # a final state: it will not change any more


class AttemptPage(Paged):
    items: list[AttemptOut]


class LogLineOut(Schema):
    seq: int
    at: datetime
    level: str
    message: str


class LogPage(Schema):
    lines: list[LogLineOut]
    cursor: int
    finished: bool
    status: str


def offer_out(offer: Offer) -> dict:
    refusal = offer.refusal or (actions.NEEDS_APPROVAL if offer.awaiting_approval else "")
    return {
        "allowed": offer.allowed,
        "refusal": refusal or None,
        "destructive": offer.destructive,
        "confirm": offer.confirm or None,
        "needs_approval": offer.awaiting_approval,
        "approval": offer.approval.pk if offer.approval and offer.approval.approved_by_id else None,
    }


def approval_out(approval: Approval, step_key: str, offer: Offer | None = None) -> dict:
    return {
        "id": approval.pk,
        "step_key": step_key,
        "action": approval.action,
        "requested_by": username(approval.requested_by),
        "requested_at": approval.requested_at,
        "approved_by": username(approval.approved_by),
        "approved_at": approval.approved_at,
        "used_by_attempt": approval.used_by_attempt_id,
        "can_approve": offer.allowed if offer else False,
        "refusal": (offer.refusal or None) if offer else None,
    }


def step_out(row: StepActions) -> dict:
    step = row.step
    return {
        "id": step.pk,
        "position": step.position,
        "key": step.key,
        "title": step.title,
        "state": step.state,
        "actions": {
            "run": offer_out(row.run),
            "rollback": offer_out(row.rollback),
            "skip": offer_out(row.skip),
            "override": offer_out(row.override),
            "cancel": offer_out(row.cancel) if row.cancel else None,
        },
        "latest_attempt": row.latest.pk if row.latest else None,
        "approvals": [approval_out(a, step.key, o) for a, o in zip(row.approvals, row.approve, strict=True)],
    }


def migration_summary_out(migration: MigrationRun) -> dict:
    return {
        "id": migration.pk,
        "environment": migration.environment.slug,
        "status": migration.status,
        "runbook_version": migration.runbook_version,
        "started_by": username(migration.started_by),
        "started_at": migration.started_at,
        "finished_at": migration.finished_at,
    }


def migration_out(migration: MigrationRun, user) -> dict:
    """The migration with each step and what it offers `user` now: the rules of dashboard.runbook.actions."""
    offers = actions.migration_actions(migration, user)
    return {
        **migration_summary_out(migration),
        "summary": migration.summary or {},
        "active_attempt": offers.active.pk if offers.active else None,
        "abandon": offer_out(offers.abandon),
        "steps": [step_out(row) for row in offers.steps],
    }


FINAL_STATUSES = frozenset(Attempt.Status.values) - set(Attempt.ACTIVE)


def attempt_out(attempt: Attempt) -> dict:
    return {
        "id": attempt.pk,
        "migration": attempt.migration_id,
        "environment": attempt.migration.environment.slug,
        "step": attempt.step_id,
        "step_key": attempt.step.key,
        "number": attempt.number,
        "action": attempt.action,
        "status": attempt.status,
        "requested_by": username(attempt.requested_by),
        "requested_at": attempt.requested_at,
        "reason": attempt.reason,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "outputs": attempt.outputs or {},
        "error": attempt.error or {},
        "finished": attempt.status in FINAL_STATUSES,
    }


def log_line_out(line: AttemptLog) -> dict:
    return {"seq": line.pk, "at": line.at, "level": line.level, "message": line.message}


class ResourceChangeOut(Schema):
    action: str
    logical_id: str
    type: str
    physical_id: str
    replacement: str
    policy_action: str
    scope: str
    details: list[dict[str, Any]]
    details_more: int


class ChangeSetOut(Schema):
    """A review step's change set as the page's diff shows it."""

    review_step: str
    attempt: int | None
    stack: str
    change_set: str
    empty: bool
    failed: bool  # from a failed review: not what the deploy step may execute
    blockers: list[str]
    overridden: dict[str, Any] | None
    changes: list[ResourceChangeOut]


# --- request bodies ---------------------------------------------------------------------------------------


class ActionIn(Schema):
    confirmation: str = ""  # a destructive action's resource name, typed as on the page
    reason: str = ""  # a skip's reason (required there), or any note


class ReasonIn(Schema):
    reason: str


class ApprovalIn(Schema):
    action: Literal["run", "rollback"]


class BakeStopIn(Schema):
    outcome: Literal["pass", "fail"]  # the operator's verdict; a fail starts the automatic rollback
    reason: str
