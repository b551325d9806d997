from .environment import Environment, SslMode, default_stacks
from .monitoring import (
    HealthMethod,
    Incident,
    ProbeKind,
    ProbeResult,
    Resolution,
    Rollup,
    RollupCursor,
    Target,
    TargetStatus,
)
from .runbook import Approval, Attempt, AttemptLog, AuditEvent, MigrationRun, Step

__all__ = [
    "HealthMethod",
    "Incident",
    "ProbeKind",
    "ProbeResult",
    "Resolution",
    "Rollup",
    "RollupCursor",
    "Target",
    "TargetStatus",
    "Approval",
    "Attempt",
    "AttemptLog",
    "AuditEvent",
    "Environment",
    "MigrationRun",
    "SslMode",
    "Step",
    "default_stacks",
]
