"""Validators for the AWS identifiers an environment is configured with, and for webhook URLs."""

from __future__ import annotations

import functools
import re

from botocore.loaders import create_loader
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator

# ASCII only, to the end of the string: in Python's re, \d and \w match every script's digits and
# letters ('١٢٣', '１'), and $ matches before a trailing newline. AWS accepts neither.
account_id_validator = RegexValidator(r"\A[0-9]{12}\Z", "An AWS account id is exactly 12 digits, e.g. 123456789012.")

# arn:PARTITION:iam::ACCOUNT:role/OPTIONAL/PATH/NAME (IAM's own character set for names and paths).
role_arn_validator = RegexValidator(
    r"\Aarn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([A-Za-z0-9_+=,.@-]+/)*[A-Za-z0-9_+=,.@-]{1,64}\Z",
    "Expected an IAM role ARN such as arn:aws:iam::123456789012:role/VelaOpsOperator.",
)

# DNS label characters only: the resource names we store are used in API calls and host names.
resource_name_validator = RegexValidator(
    r"\A[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,254}\Z",
    "Use letters, digits and . _ - : / + = @ only (AWS resource name or ARN).",
)

# A TCP port (a PositiveIntegerField alone takes 0 to 2147483647).
PORT_MESSAGE = "A port is a number from 1 to 65535."
port_validators = [MinValueValidator(1, PORT_MESSAGE), MaxValueValidator(65535, PORT_MESSAGE)]


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region in botocore's endpoint data, across partitions (aws, aws-cn, aws-us-gov, ...)."""
    endpoints = create_loader().load_data("endpoints")
    return frozenset(region for partition in endpoints["partitions"] for region in partition["regions"])


_REGION_SHAPE = re.compile(r"\A[a-z]{2}(-[a-z]+)+-[0-9]+\Z")


def validate_region(value: str) -> None:
    if not _REGION_SHAPE.match(value or ""):
        raise ValidationError(f"“{value}” is not an AWS region name (expected a name like us-east-1).", code="invalid")
    if value not in known_regions():
        raise ValidationError(f"“{value}” is not a known AWS region.", code="unknown")


# The changes of the change-set runbook (dashboard/runbook/steps/stack_change.py), each from a template
# (an S3 HTTPS URL of a `cdk synth` template) or a change set the team's CI prepared on the stack.
STACK_CHANGE_PURPOSES = ("add_dsql", "point_lambda", "drop_aurora_api", "remove_aurora")
_CHANGE_SET_NAME = re.compile(r"\A[A-Za-z][-A-Za-z0-9]{0,127}\Z")
_TEMPLATE_URL = re.compile(r"\Ahttps://[A-Za-z0-9.-]+(:[0-9]+)?/[!-~]{1,1000}\Z")


def validate_stack_changes(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError('Give an object: {purpose: {"template_url": …} or {"change_set": …}}.')
    for purpose, source in value.items():
        if purpose not in STACK_CHANGE_PURPOSES:
            raise ValidationError(f"Unknown change {purpose!r}: use {', '.join(STACK_CHANGE_PURPOSES)}.")
        if not isinstance(source, dict) or len(source) != 1 or not set(source) <= {"template_url", "change_set"}:
            raise ValidationError(f"{purpose}: give exactly one of template_url or change_set.")
        url, name = source.get("template_url"), source.get("change_set")
        if url is not None and not (isinstance(url, str) and _TEMPLATE_URL.match(url)):
            raise ValidationError(f"{purpose}: template_url must be an https URL of the template (e.g. in S3).")
        if name is not None and not (isinstance(name, str) and _CHANGE_SET_NAME.match(name)):
            raise ValidationError(f"{purpose}: change_set must be a change-set name (letters, digits, hyphens).")


# The bake's criteria (issue #16), editable per environment (Environment.bake_criteria): name → (default,
# lowest, highest). Defaults and why are in docs/runbook.md ("Bake and automatic rollback"); dashboard.bake
# reads the effective values with bake_criteria().
BAKE_CRITERIA: dict[str, tuple[float, float, float]] = {
    # The baseline: the API health target's history before the repoint.
    # Raw probe results are kept 48 h (PROBE_RAW_RETENTION): a baseline reads them, not rollups.
    "baseline_window_minutes": (1440, 10, 2880),
    "baseline_min_samples": (30, 10, 100000),
    # The bake: probes of the API at a raised rate after the change.
    "bake_window_seconds": (600, 5, 7200),
    "bake_interval_seconds": (2, 0.05, 60),
    "bake_min_samples": (30, 5, 100000),
    # The verdict.
    "p95_latency_ratio_max": (1.25, 1.0, 10.0),
    "cold_init_p95_increase_ms_max": (100, 0, 10000),
    "dsql_check_p95_ms_max": (1000, 10, 60000),
    "error_rate_max": (0.01, 0.0, 0.5),
    "significance": (0.01, 0.0001, 0.2),
}


def validate_bake_criteria(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError('Bake criteria are a JSON object, e.g. {"bake_window_seconds": 300}.')
    unknown = sorted(set(value) - set(BAKE_CRITERIA))
    if unknown:
        raise ValidationError(f"Unknown bake criteria: {', '.join(unknown)}; known: {', '.join(BAKE_CRITERIA)}.")
    for name, figure in value.items():
        _default, lowest, highest = BAKE_CRITERIA[name]
        if isinstance(figure, bool) or not isinstance(figure, int | float) or not lowest <= figure <= highest:
            raise ValidationError(f"Bake criterion {name} must be a number from {lowest:g} to {highest:g}.")
