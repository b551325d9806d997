"""The change-set runbook's steps as the pages show them: a review's diff, read like `cdk diff` (one row per
resource change, the dangerous ones marked, the blockers first), and for an execute step the reviewed change
set it deploys.

A review's diff is on its step once it succeeded, and on its failed attempt otherwise: the worker records a
StepFailed's data as the attempt's outputs, and a blocked review's data is its whole outputs (diff, blockers).
Everything is read from what the page already loaded (steps with their attempts prefetched): no query, however
many rows the diff has.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from dashboard.models import Attempt, Step
from dashboard.runbook import step_definition
from dashboard.runbook.actions import StepActions
from dashboard.runbook.export import NOT_PRINTED
from dashboard.runbook.steps.stack_change import ExecuteChange, ReviewChange

DETAILS_SHOWN = 20  # property changes listed per resource; the others are counted (the attempt has them all)
OPEN_UP_TO = 30  # a diff of this many rows or fewer shows unfolded; a longer one starts folded
DANGEROUS_REPLACEMENTS = ("True", "Conditional")
ACTION_CLASSES = {"Add": "ok", "Modify": "warn", "Remove": "danger", "Import": "info", "Dynamic": "warn"}


@dataclass(frozen=True)
class ResourceChange:
    action: str
    logical_id: str
    type: str
    physical_id: str
    replacement: str
    policy_action: str
    scope: str
    details: list[dict[str, Any]]  # the first DETAILS_SHOWN
    details_more: int  # how many more there are

    @property
    def replaced(self) -> bool:
        return self.replacement in DANGEROUS_REPLACEMENTS

    @property
    def deletes(self) -> bool:
        # Delete, ReplaceAndDelete: the resource (or its old copy) and its data go.
        return "Delete" in self.policy_action

    @property
    def danger(self) -> bool:
        return self.replaced or self.deletes

    @property
    def action_class(self) -> str:
        return ACTION_CLASSES.get(self.action, "")

    @property
    def policy_class(self) -> str:
        if self.deletes:
            return "danger"
        if "Snapshot" in self.policy_action:
            return "warn"
        return "ok" if "Retain" in self.policy_action else ""


@dataclass(frozen=True)
class ChangeSetView:
    key: str  # the review step's key: what the page's element ids are made of
    stack: str
    change_set: str
    empty: bool
    rows: list[ResourceChange]
    blockers: list[str]
    attempt: Attempt | None  # the attempt the diff comes from (the page links it)
    failed: bool  # from a failed review: not what an execute step may deploy
    overridden: dict[str, Any] | None = None  # an approver accepted the blockers: by, reason, of_attempt

    @property
    def counts(self) -> list[tuple[str, int]]:
        return sorted(Counter(row.action for row in self.rows).items())

    @property
    def dangerous(self) -> int:
        return sum(row.danger for row in self.rows)

    @property
    def unfolded(self) -> bool:
        return len(self.rows) <= OPEN_UP_TO


def _row(row: dict[str, Any]) -> ResourceChange:
    details = row.get("details") or []
    return ResourceChange(
        action=row.get("action", ""),
        logical_id=row.get("logical_id", ""),
        type=row.get("type", ""),
        physical_id=row.get("physical_id", ""),
        replacement=row.get("replacement", ""),
        policy_action=row.get("policy_action", ""),
        scope=", ".join(row.get("scope") or []),
        details=details[:DETAILS_SHOWN],
        details_more=max(0, len(details) - DETAILS_SHOWN),
    )


def change_set_view(
    key: str, outputs: dict[str, Any], attempt: Attempt | None = None, *, failed: bool = False
) -> ChangeSetView | None:
    """The diff a review recorded in `outputs`; None when they hold none (a review that failed before it)."""
    if not isinstance(outputs, dict) or not isinstance(outputs.get("diff"), list):
        return None
    return ChangeSetView(
        key=key,
        stack=outputs.get("stack", ""),
        change_set=outputs.get("change_set", ""),
        empty=bool(outputs.get("empty")),
        rows=[_row(row) for row in outputs["diff"]],
        blockers=list(outputs.get("blockers") or []),
        attempt=attempt,
        failed=failed,
        overridden=outputs.get("overridden") if isinstance(outputs.get("overridden"), dict) else None,
    )


def review_view(row: StepActions) -> ChangeSetView | None:
    """A review step's diff: the step's own once it succeeded; else its latest run's, if that failed with one."""
    step = row.step
    if step.state == Step.State.SUCCEEDED:
        # The run that passed, or the override that accepted its blockers: what the step's outputs come from.
        passed = next((a for a in reversed(row.attempts) if a.status == Attempt.Status.SUCCEEDED), None)
        return change_set_view(step.key, step.outputs, passed)
    latest = row.latest
    if latest is not None and latest.action == Attempt.Action.RUN and latest.status == Attempt.Status.FAILED:
        return change_set_view(step.key, latest.outputs, latest, failed=True)
    return None


def page_rows(rows: list[StepActions]) -> list[tuple[StepActions, ChangeSetView | None, ChangeSetView | None]]:
    """Each step row with the diff to show under it (a review) and the change set it deploys (an execute
    step: its review's, once the review succeeded)."""
    reviews = {}
    for row in rows:
        if isinstance(step_definition(row.step.key), ReviewChange):
            reviews[row.step.key] = review_view(row)
    shown = []
    for row in rows:
        definition = step_definition(row.step.key)
        deploys = None
        if isinstance(definition, ExecuteChange):
            review = reviews.get(definition.review)
            deploys = review if review is not None and not review.failed else None
        shown.append((row, reviews.get(row.step.key), deploys))
    return shown


def printed_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    """An attempt's outputs without what has its own display or is too big to print."""
    return {key: value for key, value in (outputs or {}).items() if key not in NOT_PRINTED}
