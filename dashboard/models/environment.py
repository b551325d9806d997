from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.urls import reverse

from dashboard.validators import (
    account_id_validator,
    port_validators,
    resource_name_validator,
    role_arn_validator,
    validate_bake_criteria,
    validate_region,
    validate_stack_changes,
)


class SslMode(models.TextChoices):
    DISABLE = "disable", "disable (sandbox only: no TLS)"
    REQUIRE = "require", "require"
    VERIFY_CA = "verify-ca", "verify-ca"
    VERIFY_FULL = "verify-full", "verify-full"


def cluster_endpoint(identifier: str, region: str) -> str:
    """A DSQL cluster's public endpoint. Built, not read from an API field that emulators report differently;
    here rather than in dashboard/dsql.py so that models need nothing that imports them back."""
    return f"{identifier}.dsql.{region}.on.aws"


def default_stacks() -> list[str]:
    return ["DatabaseStack", "ApiStack"]


class Environment(models.Model):
    """One AWS account and region where the Vela platform runs and VelaOps acts."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=50, unique=True, help_text="Used in URLs and resource tags.")
    description = models.TextField(blank=True)

    region = models.CharField(max_length=32, validators=[validate_region], help_text="e.g. us-east-1")
    account_id = models.CharField("account id", max_length=12, validators=[account_id_validator])
    role_arn = models.CharField(
        "role ARN",
        max_length=2048,
        blank=True,
        validators=[role_arn_validator],
        help_text="Assumed through STS for every AWS call; empty uses the process's own credentials.",
    )
    role_external_id = models.CharField("role external id", max_length=1224, blank=True)
    aws_endpoint_url = models.URLField(
        "AWS endpoint URL",
        blank=True,
        help_text="Only for an AWS-compatible endpoint such as the offline sandbox; empty for real AWS.",
    )
    requires_approval = models.BooleanField(
        default=False,
        help_text="Destructive actions need an approval by a different user with the approver role.",
    )

    # The Vela resources, by name.
    cloudformation_stacks = ArrayField(
        models.CharField(max_length=128, validators=[resource_name_validator]),
        default=default_stacks,
        blank=True,
        help_text="Comma-separated CloudFormation stack names.",
    )
    cloudformation_role_arn = models.CharField(
        "CloudFormation service role ARN",
        max_length=2048,
        blank=True,
        validators=[role_arn_validator],
        help_text="The role CloudFormation uses for the change sets VelaOps creates (passed with iam:PassRole).",
    )
    stack_changes = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_stack_changes],
        help_text='Where each change of the change-set runbook comes from, e.g. {"add_dsql": {"template_url": '
        '"https://…/DatabaseStack.template.json"}, "point_lambda": {"change_set": "ci-prepared"}}; changes: '
        "add_dsql, point_lambda, drop_aurora_api, remove_aurora.",
    )
    bake_criteria = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_bake_criteria],
        help_text="Overrides of the bake's criteria (the runbook's judgement of the Lambda repoint), e.g. "
        '{"bake_window_seconds": 300, "p95_latency_ratio_max": 1.2}; empty: the defaults in docs/runbook.md.',
    )
    lambda_function_name = models.CharField(
        "API Lambda function", max_length=140, blank=True, validators=[resource_name_validator]
    )
    api_health_url = models.URLField("API health URL", blank=True, help_text="The API's DSQL health route.")
    aurora_cluster_identifier = models.CharField(
        "Aurora cluster identifier", max_length=63, blank=True, validators=[resource_name_validator]
    )
    aurora_secret_id = models.CharField(
        "Aurora secret",
        max_length=2048,
        blank=True,
        validators=[resource_name_validator],
        help_text="Secrets Manager secret (name or ARN) holding the Aurora credentials.",
    )
    dsql_cluster_identifier = models.CharField(
        "DSQL cluster identifier",
        max_length=64,
        blank=True,
        validators=[resource_name_validator],
        help_text="The environment's current DSQL cluster; the runbook sets it when it provisions one.",
    )
    dynamodb_tables = ArrayField(
        models.CharField(max_length=255, validators=[resource_name_validator]),
        default=list,
        blank=True,
        verbose_name="DynamoDB tables",
        help_text="Comma-separated table names.",
    )

    # How to reach the Aurora cluster's database (endpoint and credentials come from AWS).
    aurora_database = models.CharField(max_length=63, default="postgres")
    aurora_sslmode = models.CharField(max_length=16, choices=SslMode.choices, default=SslMode.REQUIRE)
    aurora_host_override = models.GenericIPAddressField(
        blank=True, null=True, help_text="Connect to this address instead of resolving the endpoint."
    )

    # How to reach DSQL clusters (the endpoint comes from the DSQL API, the password is an IAM token).
    dsql_port = models.PositiveIntegerField("DSQL port", default=5432, validators=port_validators)
    dsql_database = models.CharField("DSQL database", max_length=63, default="postgres")
    dsql_user = models.CharField("DSQL user", max_length=63, default="admin")
    dsql_probe_user = models.CharField(
        "DSQL monitoring user",
        max_length=63,
        blank=True,
        default="",
        help_text="The database role the probes log in as, with their table in its own schema (the runbook's "
        "database-role step makes velaops_monitor); empty: the DSQL user.",
    )
    dsql_sslmode = models.CharField("DSQL sslmode", max_length=16, choices=SslMode.choices, default=SslMode.VERIFY_FULL)
    dsql_host_override = models.GenericIPAddressField(
        "DSQL host address override",
        blank=True,
        null=True,
        help_text="Connect to this address while still presenting the cluster's host name.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("operate_environment", "Can run migration actions"),
            ("approve_destructive", "Can approve destructive actions"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("environment-detail", args=[self.slug])

    @property
    def dsql_endpoint(self) -> str:
        """The cluster's public endpoint, in the form AWS serves it; empty without a cluster."""
        return cluster_endpoint(self.dsql_cluster_identifier, self.region) if self.dsql_cluster_identifier else ""
