from .environment import Environment, SslMode, default_stacks
from .runbook import Approval, Attempt, AttemptLog, AuditEvent, MigrationRun, Step

__all__ = [
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
