from django.contrib import admin
from django.db import models

from .models import Environment


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
