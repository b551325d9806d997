"""What a readiness check reports: findings, each with its severity, evidence and the fix as a team would make it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BLOCKER, WARNING, OK = "blocker", "warning", "ok"


@dataclass(frozen=True)
class Finding:
    area: str  # network, permissions, cluster, schema
    severity: str  # blocker (fails the step), warning (recorded), ok (a check that passed, shown as ticked)
    title: str
    evidence: dict[str, Any] = field(default_factory=dict)  # resource ids, route tables, rule ids, statements
    fix: str = ""  # the CDK (or console) change that clears it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def blockers(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == BLOCKER]
