"""What a runbook step is: a small unit that checks live state, acts, verifies, and may roll back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dashboard.models import Environment, Step
    from dashboard.runbook.context import StepContext


@dataclass(frozen=True)
class StepDefinition:
    key: str
    title: str
    summary: str

    # Destructive actions need the resource's name typed to confirm, and approval where the environment asks.
    destructive: bool = False
    rollback_destructive: bool = False
    rollback_summary: str = ""

    def findings(self, outputs: dict[str, Any]) -> list[str]:
        """What a failed run found that an approver may accept instead of fixing (a blocked change set's
        blockers, preflight drift): recorded with the override. [] for a step whose failures are not findings
        (it must succeed, or be skipped)."""
        return []

    def automatic_rollback(self, outputs: dict[str, Any]) -> tuple[str, str] | None:
        """(step key, reason) of a change VelaOps rolls back by itself when this step's run fails with these
        outputs (a failed bake's judged change); None for every other step."""
        return None

    @property
    def is_gate(self) -> bool:
        """A check whose findings block the migration (reviews, drift): only an approver skips or overrides it."""
        return type(self).findings is not StepDefinition.findings

    @property
    def has_rollback(self) -> bool:
        return type(self).rollback is not StepDefinition.rollback

    def is_destructive(self, action: str) -> bool:
        return self.destructive if action == "run" else action == "rollback" and self.rollback_destructive

    def confirmation_name(self, step: Step, environment: Environment) -> str:
        """The resource name an operator must type to confirm a destructive action."""
        raise NotImplementedError(f"{self.key} is destructive but names no resource to confirm")

    def run(self, ctx: StepContext) -> dict[str, Any]:
        """Converge: check the live state, act only if needed, verify; return the outputs to record."""
        raise NotImplementedError

    def rollback(self, ctx: StepContext) -> dict[str, Any]:
        raise NotImplementedError
