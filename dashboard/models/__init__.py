from dashboard.models.alerts import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertKind,
    AlertSettings,
    MaintenanceWindow,
    WebhookFormat,
)
from dashboard.models.api import ApiToken, IdempotencyRecord
from dashboard.models.environment import Environment, SslMode, default_stacks
from dashboard.models.monitoring import (
    FillingRollup,
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
from dashboard.models.notifications import DeliveryStatus
from dashboard.models.readiness import ReadinessCheck
from dashboard.models.reports import Report, ReportDelivery, ReportFormat, ReportRequest, ReportSchedule
from dashboard.models.runbook import Approval, Attempt, AttemptLog, AuditEvent, MigrationRun, Step

__all__ = [
    "Alert",
    "AlertChannel",
    "AlertDelivery",
    "AlertKind",
    "AlertSettings",
    "ApiToken",
    "DeliveryStatus",
    "MaintenanceWindow",
    "Report",
    "ReportDelivery",
    "ReportFormat",
    "ReportRequest",
    "ReportSchedule",
    "WebhookFormat",
    "FillingRollup",
    "HealthMethod",
    "IdempotencyRecord",
    "Incident",
    "ProbeKind",
    "ProbeResult",
    "ReadinessCheck",
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
