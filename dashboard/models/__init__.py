from .alerts import Alert, AlertChannel, AlertDelivery, AlertKind, AlertSettings, MaintenanceWindow, WebhookFormat
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
from .reports import DeliveryStatus, Report, ReportDelivery, ReportFormat, ReportRequest, ReportSchedule
from .runbook import Approval, Attempt, AttemptLog, AuditEvent, MigrationRun, Step

__all__ = [
    "Alert",
    "AlertChannel",
    "AlertDelivery",
    "AlertKind",
    "AlertSettings",
    "DeliveryStatus",
    "MaintenanceWindow",
    "Report",
    "ReportDelivery",
    "ReportFormat",
    "ReportRequest",
    "ReportSchedule",
    "WebhookFormat",
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
