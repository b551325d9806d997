from django.contrib import admin
from django.db import models

from .models import Approval, Attempt, AttemptLog, AuditEvent, Environment, MigrationRun, Step


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "region", "account_id", "requires_approval", "aws_endpoint_url"]
    search_fields = ["name", "slug", "account_id"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at", "updated_at"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
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
        ("Aurora connection", {"fields": ["aurora_database", "aurora_sslmode", "aurora_host_override"]}),
        (
            "DSQL connection",
            {"fields": ["dsql_port", "dsql_database", "dsql_user", "dsql_sslmode", "dsql_host_override"]},
        ),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]


class ReadOnlyAdmin(admin.ModelAdmin):
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
