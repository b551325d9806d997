from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db import models

from dashboard.alerts.forms import webhook_url_field
from dashboard.models import (
    Alert,
    AlertDelivery,
    AlertSettings,
    Approval,
    Attempt,
    AttemptLog,
    AuditEvent,
    Environment,
    Incident,
    MaintenanceWindow,
    MigrationRun,
    Report,
    ReportDelivery,
    ReportRequest,
    ReportSchedule,
    Step,
    Target,
)


class VelaModelAdmin(admin.ModelAdmin):
    def get_changelist_instance(self, request):
        # A filter value goes into a query as is, and PostgreSQL refuses NUL in text ("?status__exact=%00"
        # was a DataError): the admin's own answer to a bad filter instead, a redirect with ?e=1.
        if any("\x00" in key + "".join(values) for key, values in request.GET.lists()):
            raise IncorrectLookupParameters("NUL in a query parameter")
        return super().get_changelist_instance(request)


class StackChangesField(forms.JSONField):
    """The stack changes as JSON; an empty box is no change configured ({}), and JSON Python cannot read (an
    integer of thousands of digits raises ValueError, not a decode error) is the same clear error as bad JSON."""

    def to_python(self, value):
        if value in self.empty_values:
            return {}
        try:
            return super().to_python(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid", params={"value": "…"}) from None


@admin.register(Environment)
class EnvironmentAdmin(VelaModelAdmin):
    list_display = ["name", "slug", "region", "account_id", "requires_approval", "aws_endpoint_url"]
    search_fields = ["name", "slug", "account_id"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    formfield_overrides = {
        models.URLField: {"assume_scheme": "https"},
        models.JSONField: {"form_class": StackChangesField},
    }
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "requires_approval"]}),
        ("AWS account", {"fields": ["region", "account_id", "role_arn", "role_external_id", "aws_endpoint_url"]}),
        (
            "Vela resources",
            {
                "fields": [
                    "cloudformation_stacks",
                    "lambda_function_name",
                    "api_health_url",
                    "aurora_cluster_identifier",
                    "aurora_secret_id",
                    "dynamodb_tables",
                    "dsql_cluster_identifier",
                ]
            },
        ),
        ("Changes through CloudFormation", {"fields": ["stack_changes", "cloudformation_role_arn"]}),
        ("Bake and automatic rollback", {"fields": ["bake_criteria"]}),
        ("Aurora connection", {"fields": ["aurora_database", "aurora_sslmode", "aurora_host_override"]}),
        (
            "DSQL connection",
            {
                "fields": [
                    "dsql_port",
                    "dsql_database",
                    "dsql_user",
                    "dsql_probe_user",
                    "dsql_sslmode",
                    "dsql_host_override",
                ]
            },
        ),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]


class ReadOnlyAdmin(VelaModelAdmin):
    """Migration history is evidence: visible in the admin, never editable there."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MigrationRun)
class MigrationRunAdmin(ReadOnlyAdmin):
    list_display = ["pk", "environment", "status", "runbook_version", "started_by", "started_at", "finished_at"]
    list_filter = ["status", "environment"]


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = ["migration", "position", "title", "state"]
    list_filter = ["state"]


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
    list_display = ["migration", "step", "action", "number", "status", "requested_by", "requested_at", "finished_at"]
    list_filter = ["status", "action"]


@admin.register(AttemptLog)
class AttemptLogAdmin(ReadOnlyAdmin):
    list_display = ["attempt", "at", "level", "message"]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = ["step", "action", "requested_by", "approved_by", "approved_at", "used_by_attempt"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "environment", "user", "source_address", "action", "outcome"]
    list_filter = ["action", "outcome"]


# Written by the probes, shown read-only.
TARGET_LIVE_STATE = [
    "managed",
    "status",
    "status_since",
    "last_probed_at",
    "last_ok",
    "last_latency_ms",
    "last_error",
    "next_due_at",
]


@admin.register(Target)
class TargetAdmin(VelaModelAdmin):
    """Targets are created from each environment's configuration; here they are tuned, paused or added."""

    list_display = ["display_name", "environment", "kind", "status", "paused", "interval_seconds", "last_probed_at"]
    list_filter = ["environment", "kind", "status", "paused"]
    search_fields = ["name", "label"]
    list_editable = ["paused"]
    formfield_overrides = {models.CharField: {"strip": True}}
    fieldsets = [
        (None, {"fields": ["environment", "kind", "name", "label", "paused"]}),
        ("Schedule and thresholds", {"fields": ["interval_seconds", "timeout_seconds", "down_after", "up_after"]}),
        ("API health and DSQL options", {"fields": ["health_method", "health_path", "write_check"]}),
        ("Live state", {"fields": TARGET_LIVE_STATE}),
    ]
    readonly_fields = TARGET_LIVE_STATE

    def get_readonly_fields(self, request, obj=None):
        # What a managed target probes follows the environment; only how it is probed is tuned here.
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.managed:
            fields += ["environment", "kind", "name"]
        return fields


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ["target", "opened_at", "closed_at", "failure_count", "cause"]
    list_filter = ["target__environment", "target__kind"]
    list_select_related = ["target"]


# --- reports and alerts ----------------------------------------------------------------------------


@admin.register(ReportSchedule)
class ReportScheduleAdmin(VelaModelAdmin):
    list_display = ["name", "environment", "frequency", "cron_expression", "hour", "timezone", "enabled", "next_run_at"]
    list_filter = ["environment", "frequency", "enabled"]
    readonly_fields = ["next_run_at", "last_run_at", "created_at", "updated_at"]


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    """Generated reports are immutable: viewable here, downloadable from the report page."""

    list_display = ["title", "environment", "period_start", "period_end", "generated_at", "generated_by"]
    list_filter = ["environment", "kind"]
    exclude = ["html", "csv", "pdf", "content"]


@admin.register(ReportRequest)
class ReportRequestAdmin(ReadOnlyAdmin):
    list_display = ["pk", "environment", "schedule", "period_start", "period_end", "status", "attempts", "requested_at"]
    list_filter = ["status", "environment"]


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["report", "recipient", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["status"]


class AlertSettingsForm(forms.ModelForm):
    webhook_url = webhook_url_field()

    class Meta:
        model = AlertSettings
        fields = ["environment", "enabled", "emails", "webhook_url", "webhook_format", "resend_minutes", "notify_steps"]

    def clean_webhook_url(self) -> str:
        return self.cleaned_data["webhook_url"] or (self.instance.webhook_url if self.instance.pk else "")


@admin.register(AlertSettings)
class AlertSettingsAdmin(VelaModelAdmin):
    form = AlertSettingsForm
    list_display = ["environment", "enabled", "emails", "webhook_display", "resend_minutes", "notify_steps"]


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(VelaModelAdmin):
    list_display = ["environment", "starts_at", "ends_at", "reason", "created_by"]
    list_filter = ["environment"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "environment", "kind", "subject", "suppressed_reason"]
    list_filter = ["environment", "kind"]


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["alert", "channel", "recipient", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["status", "channel"]
